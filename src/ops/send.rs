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

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::manifest::MANIFEST_FILE;
use crate::model::vocab::DocStatus;
use crate::output::delivery::{
    accepted_ids, check_relay, deliver, transport, JournalEntry, Outcome, Outgoing, Pacer, Retry,
    JOURNAL_FILE, LOCK_FILE,
};
use crate::util::jsonl;
use crate::util::lock::Lock;

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
    /// The contact history to record accepted and refused messages in.
    pub contacts: Option<PathBuf>,
    /// List what would be sent, send nothing.
    pub dry_run: bool,
    /// A PEM file with a CA certificate to trust besides the public roots
    /// (a relay with a company-internal certificate).
    pub ca: Option<PathBuf>,
    /// Set (by a signal handler, or by the caller) to stop between
    /// messages; see [`crate::util::stop`].
    pub stop: crate::util::stop::StopFlag,
    /// How the send's lock is held and waited for; see
    /// [`crate::util::lock`].
    pub lock: crate::util::lock::LockTerms,
}

impl SendOptions {
    /// Sends the run in `run` through `smtp` at 10 messages a second over 4
    /// connections, 4 attempts a message with 2 s before the first retry,
    /// trusting the public roots only, until `stop` is set.
    pub fn new(run: impl Into<PathBuf>, smtp: impl Into<String>) -> SendOptions {
        SendOptions {
            run: run.into(),
            smtp: smtp.into(),
            rate: 10.0,
            connections: 4,
            max_attempts: 4,
            retry_delay: Duration::from_secs(2),
            contacts: None,
            dry_run: false,
            ca: None,
            stop: crate::util::stop::StopFlag::new(),
            lock: crate::util::lock::LockTerms::default(),
        }
    }
}

/// The outcome of a `send`.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
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
    /// Events newly recorded in the contact history (with `contacts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts_recorded: Option<usize>,
    /// What the operator should know that is not a failure (a stale lock
    /// taken over).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The same checks a real send makes on each message before it connects:
/// the file is there and unchanged, the addresses read.
fn dry_run(todo: &[&Outgoing], report: &mut SendReport) {
    for o in todo {
        match o.load() {
            Ok(_) => report
                .would_send
                .push(format!("{} -> {}", o.file().display(), o.to)),
            Err(why) => {
                report.failed += 1;
                report
                    .errors
                    .push(format!("{} ({}): {why}", o.record_id, o.to));
            }
        }
    }
}

/// Delivers `todo` over `opts.connections` connections at the global rate,
/// until done or a signal; returns how each delivery that started ended.
fn deliver_all(
    opts: &SendOptions,
    transport: &lettre::SmtpTransport,
    todo: Vec<&Outgoing>,
    journal: jsonl::Chained,
) -> Vec<Outcome> {
    let journal = Mutex::new(journal);
    let pacer = Pacer::new(opts.rate);
    let retry = Retry {
        max_attempts: opts.max_attempts,
        delay: opts.retry_delay,
    };
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
                let outcome = deliver(o, transport, &pacer, &journal, retry, &opts.stop);
                results
                    .lock()
                    .expect("no panics while locked")
                    .push(outcome);
            });
        }
    });
    results.into_inner().expect("threads joined")
}

/// Sends the run's emails; see the module docs.
pub fn send(opts: &SendOptions) -> Result<SendReport> {
    if opts.rate <= 0.0 || opts.connections == 0 || opts.max_attempts == 0 {
        return Err(Error::Usage(
            "--rate, --connections and --max-attempts must be positive".into(),
        ));
    }
    let (outgoing, run_id, purged) = sendable(&opts.run)?;
    // The relay is checked in a dry run too (building the transport does
    // not connect), so a dry run refuses what a real send would.
    let transport = relay(opts)?;

    // A dry run takes no lock: it writes nothing.
    let lock = match opts.dry_run {
        true => None,
        false => Some(Lock::take(
            &opts.run.join(LOCK_FILE),
            "send",
            opts.lock,
            Some(opts.stop.clone()),
        )?),
    };
    let journal_path = opts.run.join(JOURNAL_FILE);
    let (journal, entries) = open_journal(&journal_path, &run_id, opts.dry_run)?;
    let accepted = accepted_ids(&entries);
    let mut report = SendReport {
        messages: outgoing.len(),
        warnings: lock
            .iter()
            .filter_map(|l| l.warning())
            .map(str::to_owned)
            .collect(),
        ..SendReport::default()
    };
    let todo: Vec<&Outgoing> = outgoing
        .iter()
        .filter(|o| {
            let done = accepted.contains(&o.message_id);
            if done {
                report.already_accepted += 1;
            }
            !done && !purged_message(o, purged.as_ref(), &mut report)
        })
        .collect();
    let Some(journal) = journal else {
        dry_run(&todo, &mut report);
        return Ok(report);
    };
    if !todo.is_empty() {
        check_relay(&transport, &opts.smtp)?;
    }
    let total = todo.len();
    let outcomes = deliver_all(opts, &transport, todo, journal);
    let stopped = tally(outcomes, &mut report);
    if let Some(db) = &opts.contacts {
        report.contacts_recorded = Some(record_contacts(db, &journal_path, &run_id)?);
    }
    if let Some(lock) = lock.as_ref().filter(|l| l.lost()) {
        return Err(Error::Output(lock.lost_reason()));
    }
    if let Some(signal) = opts.stop.requested() {
        let done = report.accepted + report.failed;
        if done < total || stopped > 0 {
            return Err(Error::Stopped {
                signal,
                message: format!(
                    "send stopped by {} after {} of {} emails ({} accepted, {} failed); every message is in {JOURNAL_FILE}: send again to go on, nothing is sent twice",
                    crate::util::stop::signal_name(signal),
                    crate::util::stop::count(done),
                    crate::util::stop::count(total),
                    report.accepted,
                    report.failed
                ),
            });
        }
    }
    Ok(report)
}

/// Counts the outcomes into `report`; returns how many were stopped.
fn tally(outcomes: Vec<Outcome>, report: &mut SendReport) -> usize {
    let mut stopped = 0;
    for outcome in outcomes {
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
    stopped
}

/// The delivery journal and what it holds: open to append, or for a dry
/// run, which writes nothing (not even the cut of a torn line), read only.
fn open_journal(
    path: &Path,
    run_id: &str,
    dry_run: bool,
) -> Result<(Option<jsonl::Chained>, Vec<JournalEntry>)> {
    let origin = jsonl::origin(JOURNAL_FILE, run_id);
    Ok(match dry_run {
        true => (None, jsonl::read_chained(path, &origin)?),
        false => {
            let (journal, entries) = jsonl::Chained::open(path, &origin)?;
            (Some(journal), entries)
        }
    })
}

/// Whether `o`'s file was deleted by `purge` after its retention time;
/// it is then a failure that says so, not an unreadable file.
fn purged_message(
    o: &Outgoing,
    purged: Option<&crate::ops::purge::Purged>,
    report: &mut SendReport,
) -> bool {
    let Some(p) = purged.filter(|p| p.files.contains_key(&o.path)) else {
        return false;
    };
    report.failed += 1;
    report.errors.push(format!(
        "{}: {} was purged on {} after its retention time of {}: not sent",
        o.record_id,
        o.path,
        p.purged_at.get(..10).unwrap_or(&p.purged_at),
        crate::util::text::count(p.retention_days as usize, "day", "days")
    ));
    true
}

/// The transport to the relay of `--smtp`, trusting `--smtp-ca` if given.
fn relay(opts: &SendOptions) -> Result<lettre::SmtpTransport> {
    let ca = match &opts.ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| Error::Usage(format!("--smtp-ca `{}`: {e}", path.display())))?,
        ),
        None => None,
    };
    transport(&opts.smtp, opts.connections, ca.as_deref())
}

/// The rendered emails of the finished run in `run`, after the checks that
/// keep anything unapproved or unverified from a customer: the folder holds
/// a finished run whose manifest and journal are unedited (their digests),
/// it is not a draft run (`--allow-draft`: review copies, whatever the
/// `.eml` files say), and it is a whole run, not one shard of it. Also
/// the run's purge record, if its documents were purged.
type Sendable = (Vec<Outgoing>, String, Option<crate::ops::purge::Purged>);
fn sendable(run: &Path) -> Result<Sendable> {
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
    if let Some(why) = crate::ops::release::refusal(run)? {
        return Err(refuse(why));
    }
    if let Some(shard) = manifest.shard {
        return Err(refuse(format!(
            "it holds shard {shard} of a sharded run; merge the shards (`letterpress manifest merge`) and send the merged run, so every email is sent once"
        )));
    }
    let mut outgoing = Vec::new();
    crate::manifest::journal::check_sealed(run, &manifest.documents, "send", |d| {
        if d.channel != "email" || d.status != DocStatus::Rendered {
            return;
        }
        // A purged run's journal keeps no address (the file says it was purged).
        if let (Some(record_id), Some(message_id), Some(path), Some(sha256)) =
            (d.record_id, d.message_id, d.path, d.sha256)
        {
            outgoing.push(Outgoing {
                record_id,
                message_id,
                to: d.to.unwrap_or_default(),
                run: run.to_path_buf(),
                path,
                sha256,
            });
        }
    })?;
    let purged = crate::ops::purge::purged(run)?;
    Ok((outgoing, manifest.run_id, purged))
}

/// Records in the contact history the final outcome of every message the
/// relay answered, from the delivery journal (accepted, or refused for
/// good; a deferred one is not final). The whole journal each time: the events' keys make it
/// idempotent, and a `send` killed before this point is made good by the
/// next one. Returns the events newly recorded.
fn record_contacts(db: &Path, journal: &Path, run_id: &str) -> Result<usize> {
    use crate::contacts::{Contacts, Event, EventKind};
    let origin = jsonl::origin(JOURNAL_FILE, run_id);
    let entries: Vec<JournalEntry> = jsonl::read_chained(journal, &origin)?;
    let events: Vec<Event> = entries
        .into_iter()
        .filter_map(|e| {
            let kind = match (e.status.as_str(), e.code) {
                ("accepted", _) => EventKind::Accepted,
                // Refused for good by the relay (a 5xx reply). A message
                // that never reached it (a lost connection, a file changed
                // after the run) taught nothing of the address.
                ("failed", Some(500..=599)) => EventKind::Refused,
                _ => return None,
            };
            Some(Event {
                key: format!("send {} {}", e.message_id, kind.name()),
                customer_id: Some(e.record_id),
                address: e.to.to_lowercase(),
                channel: "email".into(),
                kind,
                at: e.at,
                run_id: Some(run_id.to_owned()),
                piece: None,
                message_id: Some(e.message_id),
                source: "send".into(),
                detail: Some(e.reply),
                barcode: None,
            })
        })
        .collect();
    Contacts::open(db)?.record(&events)
}
