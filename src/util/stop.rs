//! Stopping a command cleanly on SIGTERM and SIGINT.
//!
//! Schedulers stop work with a signal: Kubernetes and Slurm send SIGTERM
//! (then SIGKILL after a grace period), a person at a terminal presses
//! Ctrl-C (SIGINT). A [`StopFlag`] is how a command learns of it: the
//! binary installs the handlers ([`StopFlag::on_signals`]) and hands the
//! flag to the library, which checks it between records (`run`) and between
//! messages (`send`), finishes the work in hand, makes its journal durable,
//! releases its lock and returns [`crate::Error::Stopped`], which exits with
//! 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). A second
//! signal ends the process at once with the same code. A library caller
//! that wants to stop a run sets the flag itself ([`StopFlag::request`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A request to stop, shared between a signal handler and the work.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicUsize>);

impl StopFlag {
    /// A flag nobody has set.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }

    /// Asks the work to stop, as `signal` would.
    pub fn request(&self, signal: i32) {
        self.0.store(signal.max(1) as usize, Ordering::SeqCst);
    }

    /// Installs handlers for SIGTERM and SIGINT: the first signal sets the
    /// flag, a second one exits the process at once with 128 + its number.
    pub fn on_signals() -> std::io::Result<StopFlag> {
        let flag = StopFlag::new();
        let armed = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // Registered first, so it sees `armed` as the first signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                crate::error::exit_signal(signal),
                armed.clone(),
            )?;
            signal_hook::flag::register(signal, armed.clone())?;
            signal_hook::flag::register_usize(signal, flag.0.clone(), signal as usize)?;
        }
        Ok(flag)
    }
}

/// The name of a signal for messages (`SIGTERM`).
pub fn signal_name(signal: i32) -> String {
    match signal {
        signal_hook::consts::SIGTERM => "SIGTERM".into(),
        signal_hook::consts::SIGINT => "SIGINT".into(),
        signal_hook::consts::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// A count with thousands separators, for one-line messages (`1,234`).
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn a_request_is_seen() {
        let f = StopFlag::new();
        assert_eq!(f.requested(), None);
        f.clone().request(15);
        assert_eq!(f.requested(), Some(15));
    }
}
