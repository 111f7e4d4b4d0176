//! `feedback import` and `feedback show`: what comes back after sending,
//! into the contact history (see [`crate::contacts`]).
//!
//! `import` reads delivery status notifications and email service exports
//! ([`crate::input::feedback`]), matches each notice to our message by its
//! Message-ID (as `send` recorded it), and records the bounce or complaint
//! for that customer and address. A notice that gives a Message-ID which
//! is not one of ours matches nothing (it is listed): it is about another
//! sender's message, even if it names an address we also write to. Only a
//! notice without a Message-ID is matched by its address, and the report
//! lists it as matched by address only. A complaint is about the mailbox:
//! it is recorded for every customer the history knows at that address,
//! and no customer is emailed there again. All
//! events of one import are written in one transaction: a killed import
//! leaves the database as before it. Importing the same file again adds
//! nothing (stable keys). Notices that match no message of ours, and
//! messages or lines that cannot be read, are counted and listed with
//! their place in the file; they need a person (exit 1).
//!
//! An address correction (a customer system's export, or `feedback
//! correct` at the desk) is recorded against the addresses that stand in
//! the customer's way: on post, every postal address of theirs with a
//! returned letter; on email, every address of theirs with a bounce (or
//! the address the correction names). A correction that finds nothing to
//! correct is listed, like any notice that matches nothing.

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
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
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
    /// Notices without a Message-ID, matched by their address only:
    /// `place: address`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_address: Vec<String>,
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
        notices(&db, read.notices, &now, &mut report, &mut events)?;
    }
    report.recorded = db.record(&events)?;
    report.already = events.len() - report.recorded;
    Ok(report)
}

/// Records that customer `customer_id`'s address on `channel` (`post`,
/// `email`; none: both) was corrected or confirmed now, as a person at the
/// desk says (`note`): the holds and bounces recorded before it no longer
/// count. Nothing to correct is reported as unmatched.
pub fn correct(
    contacts: &std::path::Path,
    customer_id: &str,
    channel: Option<&str>,
    note: Option<&str>,
) -> Result<ImportReport> {
    let mut db = Contacts::open(contacts)?;
    let now = now_rfc3339();
    let notice = Notice {
        key: format!("correct {customer_id} {} {now}", channel.unwrap_or("-")),
        message_id: None,
        recipient: None,
        customer_id: Some(customer_id.to_owned()),
        channel: channel.map(str::to_owned),
        piece: None,
        tracking: None,
        kind: NoticeKind::AddressCorrected,
        at: Some(now.clone()),
        detail: note.unwrap_or("address corrected").to_owned(),
        place: "feedback correct".into(),
    };
    let (mut report, mut events) = (ImportReport::default(), Vec::new());
    notices(&db, vec![notice], &now, &mut report, &mut events)?;
    report.recorded = db.record(&events)?;
    report.already = events.len() - report.recorded;
    Ok(report)
}

/// Matches `notices` to the history, into `events` and `report`.
fn notices(
    db: &Contacts,
    notices: Vec<Notice>,
    now: &str,
    report: &mut ImportReport,
    events: &mut Vec<Event>,
) -> Result<()> {
    for notice in notices {
        report.notices += 1;
        if notice.message_id.is_none() && notice.kind != NoticeKind::AddressCorrected {
            if let (Some(a), None, None) = (&notice.recipient, &notice.piece, &notice.tracking) {
                report.by_address.push(format!("{}: {a}", notice.place));
            }
        }
        match to_event(db, notice, now)? {
            Matched::Events(e) => events.extend(e),
            Matched::Delivered => report.delivered += 1,
            Matched::Nothing(why) => report.unmatched.push(why),
        }
    }
    Ok(())
}

enum Matched {
    Events(Vec<Event>),
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
        NoticeKind::AddressCorrected => return corrected(db, n, now),
        NoticeKind::HardBounce => EventKind::HardBounce,
        NoticeKind::SoftBounce => EventKind::SoftBounce,
        NoticeKind::Complaint => EventKind::Complaint,
        NoticeKind::Delivered => return Ok(Matched::Delivered),
    };
    // A Message-ID that is not ours is another sender's message: never
    // matched by the address it names.
    let sent = match (&n.message_id, &n.recipient) {
        (Some(id), _) => db.by_message_id(id)?,
        (None, Some(address)) => db.by_address(address)?,
        (None, None) => None,
    };
    let Some(sent) = sent else {
        let what = match (&n.message_id, &n.recipient) {
            (Some(id), Some(to)) => format!(
                "no message of ours has the Message-ID {id} (it is not matched by its address {to})"
            ),
            (Some(id), None) => format!("no message of ours has the Message-ID {id}"),
            (None, Some(to)) => format!("no message of ours went to {to}"),
            (None, None) => "it names neither a message nor an address".into(),
        };
        return Ok(Matched::Nothing(format!("{}: {what}", n.place)));
    };
    let address = n.recipient.clone().unwrap_or(sent.address);
    let mut customers = vec![sent.customer_id];
    if kind == EventKind::Complaint {
        for c in db.customers_at(&address)? {
            if !customers.contains(&Some(c.clone())) {
                customers.push(Some(c));
            }
        }
    }
    let at = n.at.unwrap_or_else(|| now.to_owned());
    let events = customers
        .into_iter()
        .enumerate()
        .map(|(i, customer_id)| Event {
            // The first keeps the notice's key, so earlier imports match.
            key: match (i, &customer_id) {
                (0, _) => n.key.clone(),
                (_, c) => format!("{} for {}", n.key, c.as_deref().unwrap_or("-")),
            },
            customer_id,
            address: address.clone(),
            channel: "email".into(),
            kind,
            at: at.clone(),
            run_id: sent.run_id.clone(),
            piece: None,
            message_id: n.message_id.clone(),
            source: n.place.clone(),
            detail: Some(n.detail.clone()),
            barcode: None,
        })
        .collect();
    Ok(Matched::Events(events))
}

/// The events of an address correction: one for each address of the
/// customer's that a return or a bounce stands against (see the module
/// docs), or for the email address the notice names.
fn corrected(db: &Contacts, n: Notice, now: &str) -> Result<Matched> {
    let wants = |c: &str| n.channel.as_deref().is_none_or(|w| w == c);
    let mut targets: Vec<(String, String, Option<String>)> = Vec::new();
    if let Some(customer) = &n.customer_id {
        for (channel, address) in db.standing_against(customer)? {
            let named = channel == "email" && n.recipient.is_some();
            if wants(&channel) && !named {
                targets.push((channel, address, Some(customer.clone())));
            }
        }
    }
    if let Some(address) = n.recipient.as_ref().filter(|_| wants("email")) {
        let customer = match &n.customer_id {
            Some(c) => Some(c.clone()),
            None => db.by_address(address)?.and_then(|s| s.customer_id),
        };
        if customer.is_some() {
            targets.push(("email".into(), address.clone(), customer));
        }
    }
    if targets.is_empty() {
        let who = n
            .customer_id
            .as_deref()
            .map(|c| format!("customer {c}"))
            .or(n.recipient.as_deref().map(|a| format!("the address {a}")))
            .unwrap_or_default();
        return Ok(Matched::Nothing(format!(
            "{}: {who} has no returned letter or bounced email address in the contact history: nothing to correct",
            n.place
        )));
    }
    let at = n.at.unwrap_or_else(|| now.to_owned());
    Ok(Matched::Events(
        targets
            .into_iter()
            .map(|(channel, address, customer_id)| Event {
                key: format!("{} {address}", n.key),
                customer_id,
                address,
                channel,
                kind: EventKind::AddressCorrected,
                at: at.clone(),
                run_id: None,
                piece: None,
                message_id: None,
                source: n.place.clone(),
                detail: Some(n.detail.clone()),
                barcode: None,
            })
            .collect(),
    ))
}

/// The event of a returned letter, matched by its IMb tracking code or its
/// run and piece to the letter `run --contacts` recorded.
fn returned(db: &Contacts, n: Notice, now: &str) -> Result<Matched> {
    let (sent, what) = match (&n.tracking, &n.piece) {
        (Some(t), _) => (db.by_barcode(t)?, format!("had the postal barcode {t}")),
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
    Ok(Matched::Events(vec![Event {
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
    }]))
}

/// Deletes the events before `date`; returns how many.
pub fn purge(contacts: &std::path::Path, date: crate::util::clock::Date) -> Result<usize> {
    Contacts::open(contacts)?.purge_before(&date.to_string())
}

/// A customer's history, oldest first.
pub fn show(contacts: &std::path::Path, customer_id: &str) -> Result<Vec<Event>> {
    Contacts::open(contacts)?.history(customer_id)
}
