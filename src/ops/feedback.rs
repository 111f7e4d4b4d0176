//! `feedback import` and `feedback show`: what comes back after sending,
//! into the contact history (see [`crate::contacts`]).
//!
//! `import` reads delivery status notifications and email service exports
//! ([`crate::input::feedback`]), matches each notice to our message by its
//! Message-ID (as `send` recorded it), else by the recipient's address,
//! and records the bounce or complaint for that customer and address. All
//! events of one import are written in one transaction: a killed import
//! leaves the database as before it. Importing the same file again adds
//! nothing (stable keys). Notices that match no message of ours, and
//! messages or lines that cannot be read, are counted and listed with
//! their place in the file; they need a person (exit 1).

use std::path::PathBuf;

use serde::Serialize;

use crate::contacts::{Contacts, Event, EventKind};
use crate::error::Result;
use crate::input::feedback::{self, Notice, NoticeKind};
use crate::util::clock::now_rfc3339;

/// What `feedback import` is asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The contact history.
    pub contacts: PathBuf,
    /// The files to read.
    pub files: Vec<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Notices read.
    pub notices: usize,
    /// Events newly recorded.
    pub recorded: usize,
    /// Notices recorded by an earlier import.
    pub already: usize,
    /// Deliveries reported: nothing to record.
    pub delivered: usize,
    /// Notices that match no message or address of ours: `place: why`.
    pub unmatched: Vec<String>,
    /// What could not be read: `place: why`.
    pub unusable: Vec<String>,
}

impl ImportReport {
    /// Whether some lines need a person.
    pub fn needs_attention(&self) -> bool {
        !self.unmatched.is_empty() || !self.unusable.is_empty()
    }
}

/// Imports feedback files; see the module docs.
pub fn import(opts: &ImportOptions) -> Result<ImportReport> {
    let mut db = Contacts::open(&opts.contacts)?;
    let mut report = ImportReport::default();
    let mut events = Vec::new();
    let now = now_rfc3339();
    for file in &opts.files {
        let read = feedback::read(file)?;
        report.unusable.extend(
            read.unusable
                .iter()
                .map(|u| format!("{}: {}", u.place, u.why)),
        );
        for notice in read.notices {
            report.notices += 1;
            match to_event(&db, notice, &now)? {
                Matched::Event(e) => events.push(*e),
                Matched::Delivered => report.delivered += 1,
                Matched::Nothing(why) => report.unmatched.push(why),
            }
        }
    }
    report.recorded = db.record(&events)?;
    report.already = events.len() - report.recorded;
    Ok(report)
}

enum Matched {
    Event(Box<Event>),
    Delivered,
    Nothing(String),
}

/// The event a notice records, matched to our message or address.
fn to_event(db: &Contacts, n: Notice, now: &str) -> Result<Matched> {
    if n.tracking.is_some() || n.piece.is_some() {
        return returned(db, n, now);
    }
    let kind = match n.kind {
        NoticeKind::Returned => {
            return Ok(Matched::Nothing(format!(
                "{}: a return without its piece",
                n.place
            )))
        }
        NoticeKind::HardBounce => EventKind::HardBounce,
        NoticeKind::SoftBounce => EventKind::SoftBounce,
        NoticeKind::Complaint => EventKind::Complaint,
        NoticeKind::Delivered => return Ok(Matched::Delivered),
    };
    let sent = match &n.message_id {
        Some(id) => db.by_message_id(id)?,
        None => None,
    };
    let sent = match (sent, &n.recipient) {
        (Some(s), _) => Some(s),
        (None, Some(address)) => db.by_address(address)?,
        (None, None) => None,
    };
    let Some(sent) = sent else {
        let what = match (&n.message_id, &n.recipient) {
            (Some(id), Some(to)) => {
                format!("no message of ours has the Message-ID {id} or went to {to}")
            }
            (Some(id), None) => format!("no message of ours has the Message-ID {id}"),
            (None, Some(to)) => format!("no message of ours went to {to}"),
            (None, None) => "it names neither a message nor an address".into(),
        };
        return Ok(Matched::Nothing(format!("{}: {what}", n.place)));
    };
    Ok(Matched::Event(Box::new(Event {
        key: n.key,
        customer_id: sent.customer_id,
        address: n.recipient.unwrap_or(sent.address),
        channel: "email".into(),
        kind,
        at: n.at.unwrap_or_else(|| now.to_owned()),
        run_id: sent.run_id,
        piece: None,
        message_id: n.message_id,
        source: n.place,
        detail: Some(n.detail),
        barcode: None,
    })))
}

/// The event of a returned letter, matched by its IMb tracking code or its
/// run and piece to the letter `run --contacts` recorded.
fn returned(db: &Contacts, n: Notice, now: &str) -> Result<Matched> {
    let (sent, what) = match (&n.tracking, &n.piece) {
        (Some(t), _) => (db.by_barcode(t)?, format!("had the IMb tracking code {t}")),
        (None, Some((run, piece))) => (
            db.by_piece(run, *piece)?,
            format!("was piece {piece} of run {run}"),
        ),
        (None, None) => {
            return Ok(Matched::Nothing(format!(
                "{}: a return without its piece",
                n.place
            )))
        }
    };
    let Some(sent) = sent else {
        return Ok(Matched::Nothing(format!(
            "{}: no letter of ours {what} (was the run made with --contacts?)",
            n.place
        )));
    };
    Ok(Matched::Event(Box::new(Event {
        key: n.key,
        customer_id: sent.customer_id,
        address: sent.address,
        channel: "post".into(),
        kind: EventKind::Returned,
        at: n.at.unwrap_or_else(|| now.to_owned()),
        run_id: sent.run_id,
        piece: sent.piece,
        message_id: None,
        source: n.place,
        detail: Some(n.detail),
        barcode: n.tracking,
    })))
}

/// Deletes the events before `date`; returns how many.
pub fn purge(contacts: &std::path::Path, date: crate::util::clock::Date) -> Result<usize> {
    Contacts::open(contacts)?.purge_before(&date.to_string())
}

/// A customer's history, oldest first.
pub fn show(contacts: &std::path::Path, customer_id: &str) -> Result<Vec<Event>> {
    Contacts::open(contacts)?.history(customer_id)
}
