//! `letterpress feedback`: bounces, complaints and returned mail into the
//! contact history, and a customer's history out of it.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::feedback::{correct, import, show, ImportOptions, ImportReport};
use letterpress::util::text::{count, printable};

use super::args::Json;
use super::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Read delivery status notifications (RFC 3464 .eml files or an mbox),
    /// email service exports (CSV: message_id or email, event, time,
    /// reason), returned-mail scans (one DataMatrix payload, piece id or
    /// IMb a line) and address corrections (CSV: customer_id, event
    /// address_corrected, channel, time, reason) into the contact history,
    /// matched to our messages by Message-ID, else by address, and to our
    /// letters by piece or barcode. Importing a file twice adds nothing;
    /// lines that match nothing are listed (exit 1).
    Import {
        /// The contact history (SQLite), created on first use.
        #[arg(long, value_name = "DB", env = "LETTERPRESS_CONTACTS")]
        contacts: PathBuf,
        /// The files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        json: Json,
    },
    /// Record that a customer's address was corrected or confirmed (say,
    /// by phone after a returned letter): the returns and bounces recorded
    /// before now stop holding their letters or emails. Exit 1 when the
    /// history has nothing to correct for them.
    Correct {
        /// The customer (record id).
        id: String,
        /// Only this channel's addresses: `post` or `email` (default both).
        #[arg(long, value_parser = ["post", "email"])]
        channel: Option<String>,
        /// Who and why, kept with the event (`"confirmed by phone, J. Doe"`).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// The contact history (SQLite).
        #[arg(long, value_name = "DB", env = "LETTERPRESS_CONTACTS")]
        contacts: PathBuf,
        #[command(flatten)]
        json: Json,
    },
    /// Delete the events that happened before a date (what the bank no
    /// longer needs to keep); reports how many.
    Purge {
        /// Events before this day (YYYY-MM-DD) go.
        #[arg(long, value_name = "DATE")]
        before: String,
        /// The contact history (SQLite).
        #[arg(long, value_name = "DB", env = "LETTERPRESS_CONTACTS")]
        contacts: PathBuf,
        #[command(flatten)]
        json: Json,
    },
    /// Print a customer's contact history, oldest first.
    Show {
        /// The customer (record id).
        id: String,
        /// The contact history (SQLite).
        #[arg(long, value_name = "DB", env = "LETTERPRESS_CONTACTS")]
        contacts: PathBuf,
        #[command(flatten)]
        json: Json,
    },
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Command::Import { json, .. }
            | Command::Correct { json, .. }
            | Command::Show { json, .. }
            | Command::Purge { json, .. } => json.json,
        }
    }
}

pub fn execute(command: Command, cx: &Context) -> Result<i32, Error> {
    let out = &cx.out;
    match command {
        Command::Import {
            contacts, files, ..
        } => {
            let report = import(&ImportOptions { contacts, files })?;
            Ok(tell(&report, out))
        }
        Command::Correct {
            id,
            channel,
            note,
            contacts,
            ..
        } => {
            let report = correct(&contacts, &id, channel.as_deref(), note.as_deref())?;
            Ok(tell(&report, out))
        }
        Command::Purge {
            before, contacts, ..
        } => {
            let date = letterpress::util::clock::Date::parse(&before)
                .ok_or_else(|| Error::Usage(format!("--before `{before}`: expected YYYY-MM-DD")))?;
            let removed = letterpress::ops::feedback::purge(&contacts, date)?;
            out.info(
                "purged",
                &format!(
                    "feedback purge: {} before {date} deleted",
                    count(removed, "event", "events")
                ),
                serde_json::json!({"removed": removed}),
            );
            Ok(out.summary(EXIT_OK, &serde_json::json!({"removed": removed})))
        }
        Command::Show { id, contacts, .. } => {
            let events = show(&contacts, &id)?;
            // Every field may come from an imported file: shown, not obeyed.
            for e in &events {
                out.print(format!(
                    "{}  {:<17} {:<5} {}  {}{}",
                    printable(&e.at),
                    e.kind.name(),
                    printable(&e.channel),
                    printable(&e.address),
                    printable(&e.source),
                    e.detail
                        .as_deref()
                        .map(|d| format!(" ({})", printable(d)))
                        .unwrap_or_default()
                ));
            }
            if events.is_empty() {
                out.print(format!("no events for {id}"));
            }
            Ok(out.summary(EXIT_OK, &serde_json::json!({"id": id, "events": events})))
        }
    }
}

/// Lists what needs a person and the counts; the exit code (1 when some
/// notices matched nothing or could not be read).
fn tell(report: &ImportReport, out: &super::output::Out) -> i32 {
    for u in report.unmatched.iter().chain(&report.unusable) {
        out.item("needs a person", "feedback_unmatched", &printable(u));
    }
    for a in &report.by_address {
        out.item(
            "matched by address only (no Message-ID)",
            "feedback_by_address",
            &printable(a),
        );
    }
    out.info(
        "imported",
        &format!(
            "feedback: {}: {} recorded, {} recorded before, {}, {} matched by address only, {} unmatched, {} unreadable",
            count(report.notices, "notice", "notices"),
            report.recorded,
            report.already,
            count(report.delivered, "delivery", "deliveries"),
            report.by_address.len(),
            report.unmatched.len(),
            report.unusable.len()
        ),
        serde_json::json!({"recorded": report.recorded, "unmatched": report.unmatched.len()}),
    );
    let code = if report.needs_attention() {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    };
    out.summary(code, report)
}
