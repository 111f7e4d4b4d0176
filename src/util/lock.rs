//! Lock files that keep two processes off the same folder, as leases.
//!
//! Used by `run` (one run per output folder, or per shard) and `send` (one
//! delivery per run). A lock is a file that names its holder (process id,
//! host, start time), when the holder last renewed it and for how long
//! that renewal holds (the lease: `--lock-lease` or
//! `LETTERPRESS_LOCK_LEASE` seconds, default [`DEFAULT_LEASE`]). The holder
//! renews it about every twelfth of the lease (every 10 s by default) while
//! it works, and removes it when it ends, also on a graceful stop
//! (SIGTERM).
//!
//! A second process is refused, naming the holder, while the lease holds.
//! A lock whose lease has expired (its holder was killed, its node lost) is
//! taken over with a warning naming the old holder, from any host: that is
//! what lets a Slurm task requeued onto another node, or a rescheduled
//! Kubernetes pod, resume without a person.
//!
//! Who holds a lock is a random id drawn by each process, not its host name
//! and process id: two containers, or two cloned machines, can have the
//! same host name and the same pid (often 1). The renewals are the proof
//! that the holder lives. Its process id is only a hint, used to take over
//! at once the lock of a process that has ended, and only when the lock
//! was taken under this host name, on this very boot of this kernel and in
//! this process id namespace (the kernel's boot id and the namespace's
//! inode, as the lock file records them); anywhere else, the lease has to
//! run out. (A lock of an earlier version, which names neither and has no
//! lease, is judged by host name and pid, as it always was.)
//!
//! A lock whose last renewal lies in the future by this host's clock says
//! that the clocks of two hosts disagree: it is refused, naming the time
//! it gives, since its holder cannot be judged (a person checks the clocks
//! and removes the lock file if its holder is gone).
//!
//! Invariants:
//! - a lock file appears whole or not at all (written to a temporary file,
//!   then linked to its name, which fails if the name exists);
//! - a takeover is done by one process at a time (it holds `<lock>.takeover`
//!   while it checks that the lock it judged expired is still the same one
//!   and replaces it);
//! - a holder only renews or removes a lock that is still its own. One
//!   that finds its lock taken, or cannot renew it for half the lease (the
//!   shared file system out of reach), asks its work to stop (as SIGTERM
//!   would) well before another process may take the lease over. A holder
//!   paused for longer than the lease (SIGSTOP, a frozen VM) can still find
//!   another in its place when it wakes: it then stops at its next record.
//!
//! Lease times are compared across hosts, so clocks must agree to well
//! within the lease (NTP does; the default leaves minutes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::clock::{now_rfc3339, unix_seconds};
use crate::util::stop::StopFlag;

/// How long a renewal holds when `LETTERPRESS_LOCK_LEASE` does not say: a
/// Slurm task requeued after its node was lost (which Slurm notices after
/// 5 minutes by default) or a rescheduled pod finds it expired.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// How a lock is held and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTerms {
    /// How long a renewal holds ([`DEFAULT_LEASE`]).
    pub lease: Duration,
    /// How long to wait for a lock another process holds, for it to be
    /// released or its lease to expire, before giving up (default 0: at
    /// once). A scheduler's retry on another node gives the lease plus a
    /// little, so it waits out the lost attempt's lease instead of failing.
    pub wait: Duration,
}

impl Default for LockTerms {
    fn default() -> LockTerms {
        LockTerms {
            lease: DEFAULT_LEASE,
            wait: Duration::ZERO,
        }
    }
}

/// The environment variable that overrides the host name a process gives
/// in its locks (a container's generated name, or a test).
pub const HOST_ENV: &str = "LETTERPRESS_HOSTNAME";

/// A held lock: renewed while it lives, removed when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    me: Holder,
    /// Set when the lock was taken over from an earlier holder.
    warning: Option<String>,
    renewer: Option<Renewer>,
    lost: Arc<AtomicBool>,
}

/// Who holds a lock, as written in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder: random, drawn once per process ([`process_id`]).
    #[serde(default)]
    pub id: String,
    /// Process id (a hint: see the module docs).
    pub pid: u32,
    /// Host name (for people).
    pub host: String,
    /// The command that holds it (`run`, `send`, `reconcile`, ...).
    #[serde(default)]
    pub what: String,
    /// The kernel boot and process id namespace `pid` belongs to
    /// ([`pid_space`]): where `pid` means this process.
    #[serde(default)]
    pub pid_space: String,
    /// When it took the lock (RFC 3339).
    pub started: String,
    /// When it last renewed it (seconds since 1970).
    #[serde(default)]
    pub renewed: i64,
    /// How long a renewal holds, in seconds.
    #[serde(default)]
    pub lease: u64,
}

/// This process's holder id: 128 random bits, drawn once.
pub fn process_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system's random numbers");
        crate::util::digest::hex(&bytes)
    })
}

/// Where this process's id means this process: the kernel's boot id and
/// the inode of its process id namespace (`<boot id>/pid:[<inode>]`); empty
/// where the system does not say (then a pid is never trusted).
pub fn pid_space() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid");
    match (boot, ns) {
        (Ok(boot), Ok(ns)) => format!("{}/{}", boot.trim(), ns.display()),
        _ => String::new(),
    }
}

impl Holder {
    fn me(what: &str, lease: Duration) -> Holder {
        Holder {
            id: process_id().to_owned(),
            pid: std::process::id(),
            host: hostname(),
            what: what.to_owned(),
            pid_space: pid_space(),
            started: now_rfc3339(),
            renewed: unix_seconds(),
            lease: lease.as_secs().max(1),
        }
    }

    /// The holder a lock file names: a JSON line, or the `pid host
    /// started` line of earlier versions (no lease: it never expires, as
    /// those locks never did).
    fn parse(text: &str) -> Option<Holder> {
        if let Ok(h) = serde_json::from_str::<Holder>(text.trim()) {
            return Some(h);
        }
        let mut parts = text.split_whitespace();
        Some(Holder {
            id: String::new(),
            pid: parts.next()?.parse().ok()?,
            host: parts.next()?.to_owned(),
            what: String::new(),
            pid_space: String::new(),
            started: parts.next()?.to_owned(),
            renewed: 0,
            lease: 0,
        })
    }

    fn line(&self) -> String {
        serde_json::to_string(self).expect("serializes") + "\n"
    }

    /// The same holder (a renewal changes only `renewed`): the same id (a
    /// lock of an earlier version, without one: the same pid, host and start).
    fn same(&self, other: &Holder) -> bool {
        self.id == other.id
            && self.pid == other.pid
            && self.host == other.host
            && self.started == other.started
    }

    /// Seconds since its last renewal, when it has a lease (negative: the
    /// renewal lies in the future by this host's clock).
    fn silent_for(&self) -> Option<i64> {
        (self.lease > 0).then(|| unix_seconds() - self.renewed)
    }

    /// Why it no longer holds the lock, if it does not: its process is gone
    /// (known only on this boot and in this pid namespace), or its lease
    /// expired (any host).
    fn gone(&self) -> Option<String> {
        // A lock of an earlier version names no pid space (and has no
        // lease): its pid is trusted on the same host, as it always was.
        let legacy = self.id.is_empty() && self.pid_space.is_empty();
        let same_space = !self.pid_space.is_empty() && self.pid_space == pid_space();
        let here = self.host == hostname() && (legacy || same_space);
        if here && !Path::new("/proc").join(self.pid.to_string()).exists() {
            return Some("no longer runs".into());
        }
        match self.silent_for() {
            Some(s) if s > self.lease as i64 => Some(format!(
                "let its lease of {} s expire (last renewed {s} s ago)",
                self.lease
            )),
            _ => None,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, started {}",
            self.pid, self.host, self.started
        )?;
        match self.silent_for() {
            Some(s) if s < 0 => write!(
                f,
                ", renewed at {} by its clock, {} s in the future by this host's: the two clocks disagree (lease {} s)",
                crate::util::clock::rfc3339_utc(self.renewed),
                -s,
                self.lease
            )?,
            Some(s) => write!(f, ", renewed {s} s ago (lease {} s)", self.lease)?,
            None => {}
        }
        Ok(())
    }
}

/// This machine's host name, as locks give it: `LETTERPRESS_HOSTNAME` if
/// set, else the system's (`unknown` if it has none).
pub fn hostname() -> String {
    if let Ok(name) = std::env::var(HOST_ENV) {
        let name = name.trim();
        if !name.is_empty() && !name.contains(char::is_whitespace) {
            return name.to_owned();
        }
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    if ok && !name.is_empty() && !name.contains(char::is_whitespace) {
        name
    } else {
        "unknown".into()
    }
}

/// A file beside `path` that only this process writes (named by its
/// random id: two hosts may share a name and a pid).
fn own_temp(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}.{}", process_id()));
    path.with_file_name(name)
}

/// Writes `holder` to the new file `path`, whole or not at all: `false`
/// when `path` exists.
fn create(path: &Path, holder: &Holder) -> Result<bool> {
    let temp = own_temp(path, "new");
    std::fs::File::create(&temp)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, holder.line().as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| Error::io(&temp, e))?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The holder `path` names, `None` when it is gone or cannot be read.
fn read(path: &Path) -> std::io::Result<Option<(String, Option<Holder>)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let holder = Holder::parse(&text);
            Ok(Some((text, holder)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Lock {
    /// Takes the lock at `path` for `what` (e.g. "run", "send") on
    /// `terms`, or says who holds it (after waiting up to `terms.wait`). A
    /// lock whose holder is gone (see the module docs) is taken over;
    /// [`Lock::warning`] then says so. While the lock lives it is renewed;
    /// `stop` is asked to stop the work if it is lost (and ends a wait).
    pub fn take(path: &Path, what: &str, terms: LockTerms, stop: Option<StopFlag>) -> Result<Lock> {
        let lease = terms.lease;
        let me = Holder::me(what, lease);
        let mut warning = None;
        let deadline = std::time::Instant::now() + terms.wait;
        let mut waited = false;
        let mut tries = 0;
        while tries < 20 {
            tries += 1;
            if create(path, &me)? {
                let lost = Arc::new(AtomicBool::new(false));
                let renewer = Renewer::start(path, &me, lease, stop, lost.clone());
                return Ok(Lock {
                    path: path.to_path_buf(),
                    me,
                    warning,
                    renewer: Some(renewer),
                    lost,
                });
            }
            let Some((text, holder)) = read(path).map_err(|e| Error::io(path, e))? else {
                continue; // released between the two calls
            };
            let why = match &holder {
                None => "the file cannot be read (a lock of a process killed while writing it)"
                    .to_owned(),
                Some(h) => match h.gone() {
                    Some(why) => why,
                    None => {
                        let stopped = stop.as_ref().is_some_and(|s| s.requested().is_some());
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() || stopped {
                            return Err(refusal(path, what, h));
                        }
                        if !waited {
                            eprintln!(
                                "letterpress: waiting up to {} s for the lock {} ({h})",
                                left.as_secs(),
                                path.display()
                            );
                            waited = true;
                        }
                        std::thread::sleep(left.min(Duration::from_millis(500)));
                        tries = 0;
                        continue;
                    }
                },
            };
            if take_over(path, &text)? {
                warning = Some(match holder {
                    Some(h) => format!(
                        "took over the lock {} of a {what} whose holder {why} ({h})",
                        path.display()
                    ),
                    None => format!("removed the lock file {}: {why}", path.display()),
                });
            } else {
                // Another process is taking it over; see who wins.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(Error::Output(format!(
            "cannot take the lock {}: other processes keep taking it",
            path.display()
        )))
    }

    /// What taking the lock had to clear away, for the caller to report.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Whether the lock was lost while held (taken over, or not renewable
    /// for half its lease): the work was asked to stop.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Why the lock was lost, for the error that ends the work.
    pub fn lost_reason(&self) -> String {
        format!(
            "lost the lock {} while working (another process took it over, or it could not be renewed): stopped between records; run the same command with --resume once the other one has ended",
            self.path.display()
        )
    }
}

/// The refusal of a lock held by `holder`.
fn refusal(path: &Path, what: &str, holder: &Holder) -> Error {
    let hint = if holder.lease == 0 {
        format!(
            "it was taken by an earlier letterpress, which does not renew its locks; if it does not run, remove the lock file {}",
            path.display()
        )
    } else if holder.silent_for().is_some_and(|s| s < 0) {
        format!(
            "its holder cannot be judged while the clocks disagree: set the clocks right (NTP), and if it does not run, remove the lock file {}",
            path.display()
        )
    } else {
        format!(
            "wait for it to end; if it was lost, the lock can be taken over once its lease has expired (lock file {})",
            path.display()
        )
    };
    let theirs = match holder.what.as_str() {
        "" => what,
        w => w,
    };
    Error::Output(format!(
        "another {theirs} is working in this folder ({holder}); {hint}"
    ))
}

/// Removes the lock at `path` if it still reads `seen`, under the takeover
/// guard; `false` if another process is taking it over now.
fn take_over(path: &Path, seen: &str) -> Result<bool> {
    let mut guard = path.as_os_str().to_os_string();
    guard.push(".takeover");
    let guard = PathBuf::from(guard);
    let me = Holder::me("takeover", Duration::from_secs(30));
    if !create(&guard, &me)? {
        // A guard left by a process killed in the middle of a takeover.
        if let Ok(Some((_, Some(h)))) = read(&guard) {
            if h.gone().is_some() {
                let _ = std::fs::remove_file(&guard);
            }
        }
        return Ok(false);
    }
    let still = read(path).map_err(|e| Error::io(path, e))?;
    let result = match still {
        Some((text, _)) if text == seen => std::fs::remove_file(path)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| Error::io(path, e)),
        _ => Ok(()),
    };
    let _ = std::fs::remove_file(&guard);
    result.map(|()| true)
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.stop();
        }
        // Only our own: after a takeover the file is another's.
        if let Ok(Some((_, Some(h)))) = read(&self.path) {
            if h.same(&self.me) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// The thread that renews a lock.
#[derive(Debug)]
struct Renewer {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Renewer {
    fn start(
        path: &Path,
        me: &Holder,
        lease: Duration,
        stop: Option<StopFlag>,
        lost: Arc<AtomicBool>,
    ) -> Renewer {
        let (done, wait) = mpsc::channel::<()>();
        let (path, mut me) = (path.to_path_buf(), me.clone());
        let every = (lease / 12).clamp(Duration::from_millis(200), Duration::from_secs(10));
        let thread = std::thread::Builder::new()
            .name("lock-lease".into())
            .spawn(move || {
                let mut last_ok = std::time::Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(every) {
                    let lose = |why: String| {
                        eprintln!("letterpress: error: {why}");
                        lost.store(true, Ordering::SeqCst);
                        if let Some(stop) = &stop {
                            stop.request(signal_hook::consts::SIGTERM);
                        }
                    };
                    match renew(&path, &mut me) {
                        Ok(true) => last_ok = std::time::Instant::now(),
                        Ok(false) => {
                            let now = read(&path).ok().flatten().and_then(|(_, h)| h);
                            lose(format!(
                                "the lock {} was taken over by {}: stopping",
                                path.display(),
                                now.map_or("another process".into(), |h| h.to_string())
                            ));
                            return;
                        }
                        Err(e) if last_ok.elapsed() > lease / 2 => {
                            lose(format!(
                                "cannot renew the lock {} for {} s ({e}): stopping before its lease of {} s runs out",
                                path.display(),
                                last_ok.elapsed().as_secs(),
                                lease.as_secs()
                            ));
                            return;
                        }
                        Err(_) => {}
                    }
                }
            })
            .expect("a thread for the lock's lease");
        Renewer { done, thread }
    }

    fn stop(self) {
        drop(self.done);
        let _ = self.thread.join();
    }
}

/// Renews the lock at `path` if it is still `me`'s: `false` if another
/// holds it now.
fn renew(path: &Path, me: &mut Holder) -> std::io::Result<bool> {
    match read(path)? {
        Some((_, Some(h))) if h.same(me) => {}
        _ => return Ok(false),
    }
    me.renewed = unix_seconds();
    crate::util::fs::write_atomic(path, me.line().as_bytes(), false)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lp-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn terms(lease: Duration) -> LockTerms {
        LockTerms {
            lease,
            wait: Duration::ZERO,
        }
    }

    fn holder(pid: u32, host: &str, silent: i64, lease: u64) -> String {
        Holder {
            id: format!("{host}-{pid}"),
            pid,
            host: host.into(),
            what: "run".into(),
            // Another host is another boot.
            pid_space: match host == hostname() {
                true => pid_space(),
                false => format!("{host}-boot/pid:[1]"),
            },
            started: "2026-01-01T00:00:00Z".into(),
            renewed: unix_seconds() - silent,
            lease,
        }
        .line()
    }

    #[test]
    fn a_live_holder_is_named_and_a_dead_one_replaced() {
        let dir = scratch("live");
        let path = dir.join(".lock");
        let lease = Duration::from_secs(60);
        let held = Lock::take(&path, "run", terms(lease), None).unwrap();
        let err = Lock::take(&path, "run", terms(lease), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&hostname()), "{err}");
        drop(held);
        assert!(!path.exists(), "released");
        // A dead process of this host (pid beyond pid_max), lease unexpired.
        std::fs::write(&path, holder(4999999, &hostname(), 0, 600)).unwrap();
        let again = Lock::take(&path, "run", terms(lease), None).unwrap();
        let warning = again.warning().unwrap();
        assert!(
            warning.contains("pid 4999999") && warning.contains("no longer runs"),
            "{warning}"
        );
        drop(again);
        // An earlier version's lock of another host: no lease, refused.
        std::fs::write(&path, "12 build-7 2026-01-01T00:00:00Z\n").unwrap();
        let err = Lock::take(&path, "run", terms(lease), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("build-7") && err.contains("remove the lock file"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pid_is_trusted_only_in_its_own_boot_and_namespace_and_a_future_renewal_is_named() {
        let dir = scratch("space");
        let path = dir.join(".lock");
        let lease = Duration::from_secs(60);
        // The same host name and a pid that does not run here, but taken in
        // another container (another pid namespace) or a cloned machine: a
        // live holder as far as anyone here can tell.
        let twin = Holder {
            id: "twin".into(),
            pid: 4999999,
            host: hostname(),
            what: "send".into(),
            pid_space: "another-boot/pid:[1]".into(),
            started: "2026-01-01T00:00:00Z".into(),
            renewed: unix_seconds(),
            lease: 120,
        };
        std::fs::write(&path, twin.line()).unwrap();
        let err = Lock::take(&path, "send", terms(lease), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another send is working"), "{err}");
        // Renewed ten years ahead by its clock.
        let ahead = Holder {
            renewed: unix_seconds() + 315_360_000,
            ..twin
        };
        std::fs::write(&path, ahead.line()).unwrap();
        let err = Lock::take(&path, "send", terms(lease), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in the future")
                && err.contains("clocks disagree")
                && !err.contains("-315"),
            "{err}"
        );
        assert!(
            err.contains(&crate::util::clock::rfc3339_utc(ahead.renewed)),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_hosts_lock_is_refused_while_its_lease_holds_and_taken_after() {
        let dir = scratch("lease");
        let path = dir.join(".lock");
        let lease = Duration::from_secs(60);
        std::fs::write(&path, holder(12, "node-a", 5, 120)).unwrap();
        let err = Lock::take(&path, "run", terms(lease), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node-a") && err.contains("renewed 5 s ago"),
            "{err}"
        );
        std::fs::write(&path, holder(12, "node-a", 121, 120)).unwrap();
        let taken = Lock::take(&path, "run", terms(lease), None).unwrap();
        let warning = taken.warning().unwrap().to_owned();
        assert!(
            warning.contains("node-a") && warning.contains("lease of 120 s expire"),
            "{warning}"
        );
        let now = Holder::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(now.host, hostname());
        drop(taken);
        // With a wait, a lease that expires meanwhile is waited out.
        std::fs::write(&path, holder(12, "node-a", 1, 2)).unwrap();
        let started = std::time::Instant::now();
        let waiting = LockTerms {
            lease,
            wait: Duration::from_secs(10),
        };
        let taken = Lock::take(&path, "run", waiting, None).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
        assert!(taken.warning().unwrap().contains("node-a"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_holder_renews_its_lease_and_stops_when_it_is_taken() {
        let dir = scratch("renew");
        let path = dir.join(".lock");
        let stop = StopFlag::new();
        let held = Lock::take(
            &path,
            "run",
            terms(Duration::from_secs(3)),
            Some(stop.clone()),
        )
        .unwrap();
        let first = Holder::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(1300));
        let later = Holder::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            later.same(&first) && later.renewed > first.renewed,
            "renewed"
        );
        assert!(!held.lost() && stop.requested().is_none());
        // Another process takes it over (as after a pause longer than the lease).
        std::fs::write(&path, holder(77, "node-b", 0, 120)).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert!(held.lost(), "the holder noticed");
        assert!(stop.requested().is_some(), "and asked its work to stop");
        drop(held);
        assert!(
            std::fs::read_to_string(&path).unwrap().contains("node-b"),
            "the new holder's lock is left alone"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
