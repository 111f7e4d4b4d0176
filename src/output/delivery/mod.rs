//! Delivery of email messages to an SMTP relay, the last step of stage 4 of
//! the data path (after a run has written its `.eml` files): the transport (TLS,
//! STARTTLS, or plain text to a loopback relay only), a global rate limit,
//! retries of temporary failures, and the delivery journal, one line per
//! attempt. Which messages of a run are sent, and the checks before, are
//! [`crate::ops::send`].
//!
//! # SMTP URL
//! `smtps://host[:465]` (TLS from the first byte), `smtp://host[:587]`
//! (STARTTLS, required), or `smtp://host:port?tls=none`, which sends in
//! plain text and is allowed only to a loopback address (a local relay or a
//! test sink). Certificates are verified against the public web roots plus,
//! with `--smtp-ca FILE`, a company CA. Credentials never come from the
//! command line: set
//! `LETTERPRESS_SMTP_USER` and `LETTERPRESS_SMTP_PASSWORD`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::clock::now_rfc3339;
use crate::util::jsonl;
use crate::util::stop::StopFlag;

/// The delivery journal's file name in a run folder.
pub const JOURNAL_FILE: &str = "delivery.jsonl";

/// The lock file a running `send` holds in the run folder.
pub const LOCK_FILE: &str = ".send.lock";

/// Environment variables holding the SMTP credentials.
pub const USER_ENV: &str = "LETTERPRESS_SMTP_USER";
/// See [`USER_ENV`].
pub const PASSWORD_ENV: &str = "LETTERPRESS_SMTP_PASSWORD";

/// One line of the delivery journal.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    /// The message's Message-ID.
    pub message_id: String,
    /// The record it belongs to.
    pub record_id: String,
    /// The recipient.
    pub to: String,
    /// `accepted`, `deferred` or `failed`.
    pub status: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The server's reply, or the error.
    pub reply: String,
    /// The server's reply code, when the relay answered (none: the message
    /// never reached it, e.g. the connection failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// A message to submit.
pub struct Outgoing {
    /// The record it belongs to.
    pub record_id: String,
    /// Its Message-ID, the key of the delivery journal.
    pub message_id: String,
    /// The recipient.
    pub to: String,
    /// The run folder.
    pub run: PathBuf,
    /// The `.eml` file, relative to the run folder (as the journal names it).
    pub path: String,
    /// The file's SHA-256 as the manifest records it.
    pub sha256: String,
}

/// How often and how patiently a temporary failure is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each further one.
    pub delay: Duration,
}

/// How the delivery of one message ended.
pub enum Outcome {
    /// The server accepted it.
    Accepted,
    /// Failed for good; the reason, for the report.
    Failed(String),
    /// A signal came while it waited to be retried; it is journaled as
    /// deferred and goes out with the next `send`.
    Stopped,
}

impl Outgoing {
    /// The `.eml` file's path, for messages.
    pub fn file(&self) -> PathBuf {
        self.run.join(&self.path)
    }

    /// The message's bytes and envelope, if the file is the one the run
    /// wrote (size and SHA-256 as in the manifest) and its addresses read.
    pub fn load(&self) -> std::result::Result<(Vec<u8>, Envelope), String> {
        let bytes = crate::util::fs::read_inside(&self.run, &self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.file().display()))?;
        if crate::util::digest::sha256_hex(&bytes) != self.sha256 {
            return Err(format!(
                "{} does not match the hash in the manifest; it was changed after the run and is not sent",
                self.file().display()
            ));
        }
        let (from, to) = match (envelope_sender(&bytes), self.to.parse::<Address>()) {
            (Some(f), Ok(t)) => (f, t),
            _ => return Err("cannot read the sender or recipient address".into()),
        };
        let envelope = Envelope::new(Some(from), vec![to]).map_err(|e| e.to_string())?;
        Ok((bytes, envelope))
    }
}

/// Submits one message, retrying temporary failures with backoff (a
/// signal on `stop` ends the wait); journals every attempt.
pub fn deliver(
    o: &Outgoing,
    transport: &SmtpTransport,
    pacer: &Pacer,
    journal: &Mutex<jsonl::Chained>,
    retry: Retry,
    stop: &StopFlag,
) -> Outcome {
    let record = |status: &str, attempt: u32, (reply, code): (String, Option<u16>)| {
        let entry = JournalEntry {
            message_id: o.message_id.clone(),
            record_id: o.record_id.clone(),
            to: o.to.clone(),
            status: status.into(),
            attempt,
            reply,
            code,
            at: now_rfc3339(),
        };
        let mut journal = journal.lock().expect("no panics while locked");
        // A journal that cannot be written would risk a second delivery on
        // the next send: stop this message's delivery with the reason.
        journal
            .push(&entry)
            .and_then(|()| journal.sync())
            .map_err(|e| format!("cannot write the delivery journal: {e}"))
    };
    let fail = |attempt: u32, (why, code): (String, Option<u16>)| -> Outcome {
        let why = match record("failed", attempt, (why.clone(), code)) {
            Ok(()) => why,
            Err(e) => e,
        };
        Outcome::Failed(format!("{} ({}): {why}", o.record_id, o.to))
    };
    let (bytes, envelope) = match o.load() {
        Ok(loaded) => loaded,
        Err(why) => return fail(0, (why, None)),
    };
    let mut delay = retry.delay;
    for attempt in 1..=retry.max_attempts {
        pacer.wait();
        match transport.send_raw(&envelope, &bytes) {
            Ok(response) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                let code = Some(u16::from(response.code()));
                return match record("accepted", attempt, (reply, code)) {
                    Ok(()) => Outcome::Accepted,
                    Err(e) => Outcome::Failed(format!("{} ({}): {e}", o.record_id, o.to)),
                };
            }
            Err(e) if e.is_permanent() => return fail(attempt, said(&e)),
            Err(e) if attempt < retry.max_attempts => {
                if let Err(e) = record("deferred", attempt, said(&e)) {
                    return Outcome::Failed(format!("{} ({}): {e}", o.record_id, o.to));
                }
                // Wait for the retry, but not past a signal.
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    if stop.requested().is_some() {
                        return Outcome::Stopped;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
                }
                delay *= 2;
            }
            Err(e) => {
                let (why, code) = said(&e);
                let attempts = crate::util::text::count(attempt as usize, "attempt", "attempts");
                let why = format!("{why} (temporary, but still failing after {attempts})");
                return fail(attempt, (why, code));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// An SMTP error's words and, when the relay answered, its reply code.
fn said(e: &lettre::transport::smtp::Error) -> (String, Option<u16>) {
    (e.to_string(), e.status().map(u16::from))
}

/// The address in the message's `From:` header.
fn envelope_sender(eml: &[u8]) -> Option<Address> {
    let head_end = eml.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&eml[..head_end]).ok()?;
    let line = head
        .split("\r\n")
        .find(|l| l.len() > 5 && l[..5].eq_ignore_ascii_case("from:"))?;
    let value = &line[5..];
    let addr = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.trim(),
    };
    addr.trim().parse().ok()
}

/// The Message-IDs `entries` record as accepted.
pub fn accepted_ids(entries: &[JournalEntry]) -> HashSet<String> {
    entries
        .iter()
        .filter(|e| e.status == "accepted")
        .map(|e| e.message_id.clone())
        .collect()
}

/// Connects to the relay once before anything is sent: a relay that does
/// not offer STARTTLS when TLS was asked for, whose certificate is not
/// trusted, or that cannot be reached stops `send` here (exit 2), instead
/// of every message being retried as a temporary failure.
pub fn check_relay(transport: &SmtpTransport, url: &str) -> Result<()> {
    let e = match transport.test_connection() {
        Ok(true) => return Ok(()),
        Ok(false) => {
            return Err(Error::Output(format!(
                "--smtp `{url}`: the relay did not answer as an SMTP server; nothing was sent"
            )))
        }
        Err(e) => e,
    };
    let text = e.to_string();
    let hint = if text.contains("STARTTLS") {
        "the relay does not offer STARTTLS, which smtp:// requires: use smtps:// for a relay that speaks TLS from the first byte, or smtp://127.0.0.1:PORT?tls=none for a local relay without TLS"
    } else if e.is_tls() || text.contains("certificate") {
        "the TLS connection failed: check the relay's name and certificate (--smtp-ca adds a company CA)"
    } else {
        "check the host, the port and that the relay runs"
    };
    Err(Error::Usage(format!(
        "--smtp `{url}`: the first connection failed ({text}): {hint}; nothing was sent"
    )))
}

/// Builds the SMTP transport for `url` (see the module docs).
pub fn transport(url: &str, connections: usize, ca: Option<&[u8]>) -> Result<SmtpTransport> {
    let usage = |why: &str| Error::Usage(format!("--smtp `{url}`: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| usage("expected smtp://host[:port] or smtps://host[:port]"))?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    if authority.contains('@') {
        return Err(usage(&format!(
            "credentials do not belong on the command line; set {USER_ENV} and {PASSWORD_ENV}"
        )));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, Some(p.parse::<u16>().map_err(|_| usage("bad port"))?))
        }
        _ => (authority, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(usage("no host"));
    }
    let plain = match query {
        "" => false,
        "tls=none" => true,
        _ => return Err(usage("the only option is ?tls=none")),
    };
    let tls = |h: &str| {
        let mut params = TlsParameters::builder(h.into());
        if let Some(pem) = ca {
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(Error::Usage(
                    "--smtp-ca: not a PEM certificate (no BEGIN CERTIFICATE block)".into(),
                ));
            }
            let cert = Certificate::from_pem(pem)
                .map_err(|e| Error::Usage(format!("--smtp-ca: not a PEM certificate: {e}")))?;
            params = params.add_root_certificate(cert);
        }
        params
            .build()
            .map_err(|e| usage(&format!("TLS setup failed: {e}")))
    };
    let (tls, default_port) = match (scheme, plain) {
        ("smtps", false) => (Tls::Wrapper(tls(host)?), 465),
        ("smtp", false) => (Tls::Required(tls(host)?), 587),
        ("smtp", true) => {
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(usage(
                    "?tls=none sends in plain text and is allowed only to a loopback address",
                ));
            }
            (Tls::None, 25)
        }
        _ => return Err(usage("the scheme must be smtp or smtps")),
    };
    let mut builder = SmtpTransport::builder_dangerous(host)
        .port(port.unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(connections as u32));
    match (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
        (Ok(user), Ok(password)) => builder = builder.credentials(Credentials::new(user, password)),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            return Err(Error::Usage(format!(
                "set both {USER_ENV} and {PASSWORD_ENV}, or neither"
            )))
        }
        _ => {}
    }
    Ok(builder.build())
}

/// A global rate limit: hands out send slots `1/rate` seconds apart.
pub struct Pacer {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// Slots `1/rate` seconds apart.
    pub fn new(rate: f64) -> Pacer {
        Pacer {
            gap: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Blocks until this caller's slot.
    /// Blocks until the next slot.
    pub fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("no panics while locked");
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.gap;
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_connecting() {
        let err = |u: &str| {
            transport(u, 2, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("smtp://user:pw@mail.example").contains(USER_ENV));
        assert!(err("smtp://mail.example?tls=none").contains("loopback"));
        assert!(err("http://mail.example").contains("scheme"));
        assert!(err("mail.example").contains("smtp://"));
        assert!(err("smtp://mail.example:x").contains("port"));
        assert!(transport("smtp://127.0.0.1:2525?tls=none", 2, None).is_ok());
        assert!(transport("smtps://mail.example", 2, None).is_ok());
        assert!(transport("smtp://[::1]:25?tls=none", 2, None).is_ok());
        let bad_ca = transport("smtps://mail.example", 2, Some(b"not pem"));
        assert!(bad_ca.err().unwrap().to_string().contains("--smtp-ca"));
    }

    #[test]
    fn the_sender_is_read_from_the_from_header() {
        let eml = b"From: \"Bank\" <hello@bank.example>\r\nTo: a@b.example\r\n\r\nbody";
        assert_eq!(
            envelope_sender(eml).unwrap().to_string(),
            "hello@bank.example"
        );
    }

    #[test]
    fn the_pacer_spaces_slots() {
        let p = Pacer::new(50.0);
        let start = Instant::now();
        for _ in 0..6 {
            p.wait();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }
}
