//! Delivery: submit a finished run's emails to an SMTP relay, exactly once.
//!
//! After stage 5: `letterpress send --run DIR --smtp URL` reads the run's
//! manifest, checks each `.eml` against the hash the manifest recorded (an
//! altered or missing file is never sent), and submits the messages over a
//! small pool of SMTP connections in parallel, under a global rate limit.
//!
//! Every outcome is appended to the delivery journal `DIR/delivery.jsonl`
//! (one JSON object a line, flushed and synced after each message): the
//! message id, record id, recipient, `status` (`accepted`, `deferred` for a
//! temporary failure that will be retried, `failed` for a permanent one or
//! when the retries are used up), the attempt number and the server's reply.
//! Before anything is sent (and in a dry run, which reports the same
//! refusals), `send` refuses, with exit 2: a folder whose manifest or
//! journal was edited after the run (their digests), a draft run
//! (`--allow-draft`: its emails are review copies, whatever their files
//! say), one shard of a sharded run (send the merged run), and a relay URL
//! that would send in plain text to another host. A dry run also checks
//! every message's file against its hash, as the real send does before it
//! submits it. SIGTERM and SIGINT stop the sending between messages (exit
//! 143 or 130); the journal is complete, and the next `send` goes on.
//!
//! A message is sent only if the journal holds no `accepted` line for its
//! Message-ID, so re-running `send` after a crash or a partial failure never
//! sends an accepted message twice. The one window left is a crash after the
//! server accepted a message and before its journal line reached the disk;
//! the Message-ID (the same on every re-run) lets the receiving side spot
//! such a duplicate. A lock file keeps two `send`s off the same run.
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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use crate::clock::now_rfc3339;
use crate::error::{Error, Result};
use crate::manifest::{DocStatus, MANIFEST_FILE};

/// The delivery journal's file name in a run folder.
pub const JOURNAL_FILE: &str = "delivery.jsonl";

/// The lock file a running `send` holds in the run folder.
pub const LOCK_FILE: &str = ".send.lock";

/// Environment variables holding the SMTP credentials.
pub const USER_ENV: &str = "LETTERPRESS_SMTP_USER";
/// See [`USER_ENV`].
pub const PASSWORD_ENV: &str = "LETTERPRESS_SMTP_PASSWORD";

/// What `send` is asked to do.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The run folder (holding `manifest.json`).
    pub run: PathBuf,
    /// The relay, see the module docs.
    pub smtp: String,
    /// Messages per second over all connections.
    pub rate: f64,
    /// Parallel connections.
    pub connections: usize,
    /// Attempts per message before a temporary failure counts as failed.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each attempt.
    pub retry_delay: Duration,
    /// List what would be sent, send nothing.
    pub dry_run: bool,
    /// A PEM file with a CA certificate to trust besides the public roots
    /// (a relay with a company-internal certificate).
    pub ca: Option<PathBuf>,
    /// Set (by a signal handler, or by the caller) to stop between
    /// messages; see [`crate::stop`].
    pub stop: crate::stop::StopFlag,
}

/// One line of the delivery journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// The outcome of a `send`.
#[derive(Debug, Default, Serialize)]
pub struct SendReport {
    /// Emails the run rendered.
    pub messages: usize,
    /// Accepted by the server in this `send`.
    pub accepted: usize,
    /// Skipped: accepted by an earlier `send`.
    pub already_accepted: usize,
    /// Failed permanently, or temporarily on every attempt.
    pub failed: usize,
    /// In a dry run: what would be sent, as `path -> to`.
    pub would_send: Vec<String>,
    /// The failures, one line each.
    pub errors: Vec<String>,
}

/// A message to submit.
struct Outgoing {
    record_id: String,
    message_id: String,
    to: String,
    path: PathBuf,
    sha256: String,
}

/// Sends the run's emails; see the module docs.
pub fn send(opts: &SendOptions) -> Result<SendReport> {
    if opts.rate <= 0.0 || opts.connections == 0 || opts.max_attempts == 0 {
        return Err(Error::Usage(
            "--rate, --connections and --max-attempts must be positive".into(),
        ));
    }
    let outgoing = sendable(&opts.run)?;
    // The relay is checked in a dry run too (building the transport does
    // not connect), so a dry run refuses what a real send would.
    let ca = match &opts.ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| Error::Usage(format!("--smtp-ca `{}`: {e}", path.display())))?,
        ),
        None => None,
    };
    let transport = transport(&opts.smtp, opts.connections, ca.as_deref())?;

    let _lock = if opts.dry_run {
        None
    } else {
        Some(crate::lock::Lock::take(&opts.run.join(LOCK_FILE), "send")?)
    };
    let journal_path = opts.run.join(JOURNAL_FILE);
    let accepted = accepted_ids(&journal_path)?;
    let mut report = SendReport {
        messages: outgoing.len(),
        ..SendReport::default()
    };
    let todo: Vec<&Outgoing> = outgoing
        .iter()
        .filter(|o| {
            let done = accepted.contains(&o.message_id);
            if done {
                report.already_accepted += 1;
            }
            !done
        })
        .collect();
    if opts.dry_run {
        // The same checks a real send makes on each message before it
        // connects: the file is there and unchanged, the addresses read.
        for o in todo {
            match o.load() {
                Ok(_) => report
                    .would_send
                    .push(format!("{} -> {}", o.path.display(), o.to)),
                Err(why) => {
                    report.failed += 1;
                    report
                        .errors
                        .push(format!("{} ({}): {why}", o.record_id, o.to));
                }
            }
        }
        return Ok(report);
    }

    let journal = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| Error::io(&journal_path, e))?,
    );
    let pacer = Pacer::new(opts.rate);
    let total = todo.len();
    let next = Mutex::new(todo.into_iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.connections {
            scope.spawn(|| loop {
                // A signal stops the sending between messages.
                if opts.stop.requested().is_some() {
                    break;
                }
                let Some(o) = next.lock().expect("no panics while locked").next() else {
                    break;
                };
                let outcome = deliver(o, &transport, &pacer, &journal, opts);
                results
                    .lock()
                    .expect("no panics while locked")
                    .push(outcome);
            });
        }
    });
    let mut stopped = 0;
    for outcome in results.into_inner().expect("threads joined") {
        match outcome {
            Outcome::Accepted => report.accepted += 1,
            Outcome::Failed(why) => {
                report.failed += 1;
                report.errors.push(why);
            }
            Outcome::Stopped => stopped += 1,
        }
    }
    report.errors.sort();
    if let Some(signal) = opts.stop.requested() {
        let done = report.accepted + report.failed;
        if done < total || stopped > 0 {
            return Err(Error::Stopped {
                signal,
                message: format!(
                    "send stopped by {} after {} of {} emails ({} accepted, {} failed); every message is in {JOURNAL_FILE}: send again to go on, nothing is sent twice",
                    crate::stop::signal_name(signal),
                    crate::stop::count(done),
                    crate::stop::count(total),
                    report.accepted,
                    report.failed
                ),
            });
        }
    }
    Ok(report)
}

/// How the delivery of one message ended.
enum Outcome {
    Accepted,
    /// Failed for good; the reason, for the report.
    Failed(String),
    /// A signal came while it waited to be retried; it is journaled as
    /// deferred and goes out with the next `send`.
    Stopped,
}

/// The rendered emails of the finished run in `run`, after the checks that
/// keep anything unapproved or unverified from a customer: the folder holds
/// a finished run whose manifest and journal are unedited (their digests),
/// it is not a draft run (`--allow-draft`: review copies, whatever the
/// `.eml` files say), and it is a whole run, not one shard of it.
fn sendable(run: &Path) -> Result<Vec<Outgoing>> {
    let manifest_path = run.join(MANIFEST_FILE);
    let refuse = |why: String| Error::Usage(format!("send refuses {}: {why}", run.display()));
    let (manifest, intact) = crate::manifest::read_checked(&manifest_path, "send")?;
    if !intact {
        return Err(refuse(format!(
            "{} was edited after the run (its content does not match its manifest_digest); `letterpress verify` says more",
            manifest_path.display()
        )));
    }
    if manifest.draft {
        return Err(refuse(format!(
            "it is a draft run of {}@{} (made with --allow-draft): its emails are review copies and never go to customers; approve the version and run it again",
            manifest.layout.name, manifest.layout.version
        )));
    }
    if let Some(shard) = manifest.shard {
        return Err(refuse(format!(
            "it holds shard {shard} of a sharded run; merge the shards (`letterpress manifest merge`) and send the merged run, so every email is sent once"
        )));
    }
    let mut documents = crate::journal::documents(run)?;
    let mut outgoing = Vec::new();
    for d in documents.by_ref() {
        let d = d?;
        if d.channel != "email" || d.status != DocStatus::Rendered {
            continue;
        }
        if let (Some(record_id), Some(message_id), Some(to), Some(path), Some(sha256)) =
            (d.record_id, d.message_id, d.to, d.path, d.sha256)
        {
            outgoing.push(Outgoing {
                record_id,
                message_id,
                to,
                path: run.join(path),
                sha256,
            });
        }
    }
    if documents.sha256() != manifest.documents.sha256 {
        return Err(refuse(format!(
            "its journal {} does not match the hash in the manifest (edited after the run); `letterpress verify` says more",
            manifest.documents.path
        )));
    }
    Ok(outgoing)
}

impl Outgoing {
    /// The message's bytes and envelope, if the file is the one the run
    /// wrote (size and SHA-256 as in the manifest) and its addresses read.
    fn load(&self) -> std::result::Result<(Vec<u8>, Envelope), String> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        if crate::output::sha256_hex(&bytes) != self.sha256 {
            return Err(format!(
                "{} does not match the hash in the manifest; it was changed after the run and is not sent",
                self.path.display()
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

/// Submits one message, retrying temporary failures with backoff; journals
/// every attempt.
fn deliver(
    o: &Outgoing,
    transport: &SmtpTransport,
    pacer: &Pacer,
    journal: &Mutex<std::fs::File>,
    opts: &SendOptions,
) -> Outcome {
    let record = |status: &str, attempt: u32, reply: String| {
        let entry = JournalEntry {
            message_id: o.message_id.clone(),
            record_id: o.record_id.clone(),
            to: o.to.clone(),
            status: status.into(),
            attempt,
            reply,
            at: now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).expect("entry serializes");
        line.push(b'\n');
        let mut file = journal.lock().expect("no panics while locked");
        // A journal that cannot be written would risk a second delivery on
        // the next send: stop this message's delivery with the reason.
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the delivery journal: {e}"))
    };
    let fail = |attempt: u32, why: String| -> Outcome {
        let why = match record("failed", attempt, why.clone()) {
            Ok(()) => why,
            Err(e) => e,
        };
        Outcome::Failed(format!("{} ({}): {why}", o.record_id, o.to))
    };
    let (bytes, envelope) = match o.load() {
        Ok(loaded) => loaded,
        Err(why) => return fail(0, why),
    };
    let mut delay = opts.retry_delay;
    for attempt in 1..=opts.max_attempts {
        pacer.wait();
        match transport.send_raw(&envelope, &bytes) {
            Ok(response) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                return match record("accepted", attempt, reply) {
                    Ok(()) => Outcome::Accepted,
                    Err(e) => Outcome::Failed(format!("{} ({}): {e}", o.record_id, o.to)),
                };
            }
            Err(e) if e.is_permanent() => return fail(attempt, e.to_string()),
            Err(e) if attempt < opts.max_attempts => {
                if let Err(e) = record("deferred", attempt, e.to_string()) {
                    return Outcome::Failed(format!("{} ({}): {e}", o.record_id, o.to));
                }
                // Wait for the retry, but not past a signal.
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    if opts.stop.requested().is_some() {
                        return Outcome::Stopped;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
                }
                delay *= 2;
            }
            Err(e) => {
                return fail(
                    attempt,
                    format!("{e} (temporary, but still failing after {attempt} attempts)"),
                )
            }
        }
    }
    unreachable!("the last attempt returns")
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

/// The Message-IDs the journal records as accepted.
fn accepted_ids(path: &Path) -> Result<HashSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    // A line cut short by a crash is ignored: its message was not recorded
    // as accepted, so it is sent again (see the module docs).
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<JournalEntry>(l).ok())
        .filter(|e| e.status == "accepted")
        .map(|e| e.message_id)
        .collect())
}

/// Builds the SMTP transport for `url` (see the module docs).
fn transport(url: &str, connections: usize, ca: Option<&[u8]>) -> Result<SmtpTransport> {
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
struct Pacer {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            gap: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Blocks until this caller's slot.
    fn wait(&self) {
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
