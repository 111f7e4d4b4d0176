//! What comes back after sending, read from the files mail systems write:
//! delivery status notifications (RFC 3464 `multipart/report` messages, one
//! `.eml` or many in an mbox), an email service's event export (CSV), and
//! returned mail as a mail room scans it (one piece a line: the print
//! files' DataMatrix payload `RUN_ID|PIECE|...`, `RUN_ID/PIECE`, an
//! Intelligent Mail barcode's digits, tracking code then routing code, or a
//! Royal Mail Mailmark's content, 4-state or 2D: see
//! [`crate::model::print::mailmark_key`]).
//! Each becomes a [`Notice`] with a stable key (the same file imported
//! twice gives the same keys), or an [`Unusable`] saying which line or
//! message could not be read and why: nothing is dropped silently.
//! `ops::feedback` matches notices to the contact history.
//!
//! The CSV export has a header row with these columns (names in any case,
//! in any order; others are ignored): `message_id` or `email` (at least
//! one), `event` (`bounce`, `hard_bounce`, `soft_bounce`, `complaint`,
//! `spamreport`, `delivered`, ...), `time`, `reason` (the server's answer;
//! for a plain `bounce`, a status `4.x.x` in it makes it soft, otherwise it
//! is hard).
//!
//! A `time` is read in one of the forms email services write
//! ([`export_time`]): RFC 3339 (`2026-12-01T09:30:00+01:00`, `...Z`, with
//! or without fractions of a second), the same with a space for the `T`
//! and no zone (taken as UTC), RFC 2822 (`Tue, 01 Dec 2026 09:30:00
//! +0100`), or Unix seconds (10 digits) or milliseconds (13 digits). It is
//! kept in UTC, so events order by time. A time in any other form stops
//! the import, naming the line: nothing of the file is recorded, rather
//! than events ordered by the text of their times. An export without a
//! `time` column gets the time of the import; its lines stay separate
//! events (their key names the file and the line), so two bounces of one
//! address are never merged into one.
//!
//! The same CSV form carries address corrections, as a customer system
//! exports them when a customer confirms or corrects an address after a
//! return or a bounce: a `customer_id` column (or `email`), `event`
//! `address_corrected` (also `address_confirmed`, `address_changed`), and
//! optionally `channel` (`post` or `email`; empty: both), `time` and
//! `reason`. A correction clears the holds and bounces recorded before it
//! for that customer's addresses; a later return or bounce counts again.

use std::path::Path;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::error::{Error, Result};
use crate::util::clock::rfc3339_utc;

/// An export's time as RFC 3339 in UTC (times are compared as text, which
/// only UTC times allow), from one of the forms in the module docs; none
/// for any other text.
pub fn export_time(time: &str) -> Option<String> {
    let t = time.trim();
    let seconds = if matches!(t.len(), 10 | 13) && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().ok()?;
        if t.len() == 13 {
            n / 1000
        } else {
            n
        }
    } else if let Some(s) = iso_time(t) {
        s
    } else {
        let d = mail_parser::DateTime::parse_rfc822(t).filter(|d| d.is_valid())?;
        // RFC 2822 names the weekday or the month in letters.
        if !t.bytes().any(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        d.to_timestamp()
    };
    Some(rfc3339_utc(seconds))
}

/// Seconds of an RFC 3339 time, or of `YYYY-MM-DD HH:MM:SS` (UTC).
fn iso_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let shape = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let zone = &t[19..];
    let normal = match zone {
        "" => format!("{}T{}Z", &t[..10], &t[11..19]),
        _ => format!("{}T{}{zone}", &t[..10], &t[11..19]),
    };
    let normal = normal.replace(['z'], "Z");
    mail_parser::DateTime::parse_rfc3339(&normal)
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp())
}

/// What a notice says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A permanent failure (5.x.x).
    HardBounce,
    /// A temporary failure (4.x.x).
    SoftBounce,
    /// A spam complaint.
    Complaint,
    /// Delivered: nothing to act on, counted.
    Delivered,
    /// A letter came back undeliverable.
    Returned,
    /// The customer's address was corrected or confirmed.
    AddressCorrected,
}

/// One thing a file says about one message and recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Stable over re-imports of the same file.
    pub key: String,
    /// The Message-ID of our message it concerns (no angle brackets).
    pub message_id: Option<String>,
    /// The recipient it concerns (lower case).
    pub recipient: Option<String>,
    /// The customer it concerns, when the file names one (a correction).
    pub customer_id: Option<String>,
    /// The channel a correction is for (`post`, `email`); none: both.
    pub channel: Option<String>,
    /// A returned letter: its run id and piece number.
    pub piece: Option<(String, u32)>,
    /// A returned letter: its Intelligent Mail tracking code (20 digits).
    pub tracking: Option<String>,
    /// What happened.
    pub kind: NoticeKind,
    /// When, as the file says (RFC 3339 when it can be read as a date).
    pub at: Option<String>,
    /// The status and the server's words.
    pub detail: String,
    /// Where in the file: `FILE`, `FILE#N` (Nth message), `FILE:LINE`.
    pub place: String,
}

/// Something in a file that could not be read as a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// Where in the file.
    pub place: String,
    /// Why.
    pub why: String,
}

/// What a file holds.
#[derive(Debug, Default)]
pub struct Read {
    /// The notices.
    pub notices: Vec<Notice>,
    /// What could not be read.
    pub unusable: Vec<Unusable>,
}

/// Reads a file of delivery status notifications (`.eml`, mbox) or an
/// email service's CSV export, told apart by their first bytes.
pub fn read(path: &Path) -> Result<Read> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let mut out = Read::default();
    // A file copied while it was written ends in the middle of a line.
    let cut = !bytes.is_empty() && !bytes.ends_with(b"\n");
    if bytes.starts_with(b"From ") {
        let reader = std::io::BufReader::new(&bytes[..]);
        let messages: Vec<_> = mail_parser::mailbox::mbox::MessageIterator::new(reader).collect();
        let last = messages.len();
        for (n, message) in messages.into_iter().enumerate() {
            let place = format!("{name}#{}", n + 1);
            match message {
                Ok(_) if cut && n + 1 == last => out.unusable.push(Unusable {
                    place,
                    why: "the last message is cut off (the file ends in the middle of a line): it is not recorded".into(),
                }),
                Ok(m) => dsn(m.contents(), &place, &mut out),
                Err(e) => out.unusable.push(Unusable {
                    place,
                    why: format!("cannot read the mbox: {e}"),
                }),
            }
        }
    } else if looks_like_csv(&bytes) {
        csv_export(&bytes, &name, &mut out)?;
    } else if looks_like_returns(&bytes) {
        returns(&bytes, &name, &mut out);
    } else {
        dsn(&bytes, &name, &mut out);
    }
    Ok(out)
}

/// A returned-mail file: its first line is a piece (see [`returned_piece`])
/// or a tracking code.
fn looks_like_returns(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| {
            returned_piece(l).is_some()
                || is_tracking_code(l)
                || crate::model::print::mailmark_key(l).is_some()
        })
}

/// The run id and piece number of a returned-mail line: a scanned
/// DataMatrix (`RUN_ID|PIECE|SHEET/SHEETS|...`, as the print files carry
/// it) or a piece id (`RUN_ID/PIECE`).
fn returned_piece(line: &str) -> Option<(String, u32)> {
    let line = line.trim();
    let (run, rest) = line.split_once('|').or_else(|| line.rsplit_once('/'))?;
    let piece = rest.split('|').next()?.trim().parse().ok()?;
    let run = run.trim();
    (!run.is_empty() && !run.contains(char::is_whitespace)).then(|| (run.to_owned(), piece))
}

/// An Intelligent Mail barcode's tracking code (20 digits, with a routing
/// code 20 to 31).
fn is_tracking_code(line: &str) -> bool {
    let digits = imb_digits(line);
    (20..=31).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An IMb as scanned or printed (`tracking-routing`), digits only.
fn imb_digits(line: &str) -> String {
    line.chars().filter(|c| !matches!(c, '-' | ' ')).collect()
}

/// The notices of a returned-mail file: one returned piece a line
/// (`#` starts a comment).
fn returns(bytes: &[u8], name: &str, out: &mut Read) {
    let text = String::from_utf8_lossy(bytes);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = format!("{name}:{}", n + 1);
        match returned_piece(line) {
            Some((run, piece)) => out.notices.push(Notice {
                key: format!("returned {run}/{piece}"),
                message_id: None,
                recipient: None,
                customer_id: None,
                channel: None,
                piece: Some((run, piece)),
                tracking: None,
                kind: NoticeKind::Returned,
                at: None,
                detail: format!("returned undeliverable: {line}"),
                place,
            }),
            None if crate::model::print::mailmark_key(line).is_some() => {
                let key = crate::model::print::mailmark_key(line).unwrap_or_default();
                out.notices.push(Notice {
                    key: format!("returned {}", key.to_lowercase()),
                    message_id: None,
                    recipient: None,
                    customer_id: None,
                    channel: None,
                    piece: None,
                    tracking: Some(key),
                    kind: NoticeKind::Returned,
                    at: None,
                    detail: format!("returned undeliverable: Mailmark {line}"),
                    place,
                })
            }
            None if is_tracking_code(line) => out.notices.push(Notice {
                key: format!("returned imb {}", &imb_digits(line)[..20]),
                message_id: None,
                recipient: None,
                customer_id: None,
                channel: None,
                piece: None,
                tracking: Some(imb_digits(line)[..20].to_owned()),
                kind: NoticeKind::Returned,
                at: None,
                detail: format!("returned undeliverable: IMb {line}"),
                place,
            }),
            None => out.unusable.push(Unusable {
                place,
                why: format!("`{line}` is neither a DataMatrix payload (RUN_ID|PIECE|...), a piece id (RUN_ID/PIECE), an Intelligent Mail barcode nor a Royal Mail Mailmark"),
            }),
        }
    }
}

/// A CSV export starts with a header line naming an event column.
fn looks_like_csv(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first).to_ascii_lowercase();
    first.contains(',')
        && first
            .split(',')
            .any(|c| c.trim().trim_matches('"') == "event")
}

/// The notices of one delivery status notification.
fn dsn(raw: &[u8], place: &str, out: &mut Read) {
    let unusable = |why: &str| Unusable {
        place: place.to_owned(),
        why: why.to_owned(),
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        out.unusable.push(unusable("not an email message"));
        return;
    };
    if cut_off(&message, raw) {
        out.unusable.push(unusable(
            "the report is cut off (its closing MIME boundary is missing): it is not recorded",
        ));
        return;
    }
    let status_text = match status_text(&message) {
        Ok(text) => text,
        Err(why) => {
            out.unusable.push(unusable(why));
            return;
        }
    };
    let original = original_message_id(&message);
    let at = message.date().map(|d| rfc3339_utc(d.to_timestamp()));
    let own_id = message.message_id().map(str::to_owned);
    let mut found = false;
    // Per-recipient fields come after the per-message block, each block
    // separated by a blank line (RFC 3464, 2.1).
    for block in status_text.replace("\r\n", "\n").split("\n\n") {
        let fields = header_fields(block);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let Some(recipient) = field("Final-Recipient").or(field("Original-Recipient")) else {
            continue;
        };
        found = true;
        let recipient = recipient
            .split_once(';')
            .map_or(recipient, |(_, a)| a)
            .trim()
            .trim_matches(['<', '>'])
            .to_lowercase();
        let code = field("Status").unwrap_or("").trim().to_owned();
        let action = field("Action").unwrap_or("").trim().to_ascii_lowercase();
        let Some(kind) = dsn_kind(&code, &action) else {
            out.unusable.push(Unusable {
                place: place.to_owned(),
                why: format!("recipient {recipient}: no status or action to go by"),
            });
            continue;
        };
        let diagnostic = field("Diagnostic-Code").unwrap_or("").trim();
        let detail = format!("{code} {action} {diagnostic}").trim().to_owned();
        let identity = own_id
            .clone()
            .unwrap_or_else(|| crate::util::digest::sha256_hex(raw)[..32].to_owned());
        out.notices.push(Notice {
            key: format!("dsn {identity} {recipient} {code}"),
            message_id: original.clone(),
            recipient: Some(recipient),
            customer_id: None,
            channel: None,
            piece: None,
            tracking: None,
            kind,
            at: at.clone(),
            detail,
            place: place.to_owned(),
        });
    }
    if !found {
        out.unusable.push(unusable(
            "the delivery status names no recipient (Final-Recipient)",
        ));
    }
}

/// Whether a multipart message ends before its closing boundary (a file
/// copied while it was written).
fn cut_off(message: &Message, raw: &[u8]) -> bool {
    let boundary = message
        .content_type()
        .filter(|c| c.ctype() == "multipart")
        .and_then(|c| c.attribute("boundary"));
    boundary.is_some_and(|b| {
        let end = format!("--{b}--");
        !raw.windows(end.len()).any(|w| w == end.as_bytes())
    })
}

/// The text of a report's `message/delivery-status` part, or why there is
/// none.
fn status_text(message: &Message) -> std::result::Result<String, &'static str> {
    let is_report = message
        .content_type()
        .is_some_and(|c| c.ctype() == "multipart" && c.subtype() == Some("report"));
    let Some(status) = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            (c.ctype() == "message" || c.ctype() == "text")
                && c.subtype() == Some("delivery-status")
        })
    }) else {
        return Err(if is_report {
            "a report without a delivery-status part"
        } else {
            "not a delivery status notification (no multipart/report)"
        });
    };
    Ok(match &status.body {
        PartType::Text(t) => t.to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into_owned(),
        PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
        _ => String::new(),
    })
}

/// What a recipient's `Status` and `Action` say happened.
fn dsn_kind(code: &str, action: &str) -> Option<NoticeKind> {
    Some(match (code.chars().next(), action) {
        (_, "delivered" | "relayed" | "expanded") => NoticeKind::Delivered,
        (Some('5'), _) => NoticeKind::HardBounce,
        (Some('4'), _) | (_, "delayed") => NoticeKind::SoftBounce,
        (Some('2'), _) => NoticeKind::Delivered,
        _ if action == "failed" => NoticeKind::HardBounce,
        _ => return None,
    })
}

/// The Message-ID of the message a report is about: from its attached copy
/// (`message/rfc822`) or headers (`text/rfc822-headers`).
fn original_message_id(report: &Message) -> Option<String> {
    for part in &report.parts {
        match &part.body {
            PartType::Message(m) => {
                if let Some(id) = m.message_id() {
                    return Some(id.to_owned());
                }
            }
            PartType::Text(t)
                if part
                    .content_type()
                    .is_some_and(|c| c.subtype() == Some("rfc822-headers")) =>
            {
                let headers = format!("{t}\r\n\r\n");
                if let Some(id) = MessageParser::default()
                    .parse(headers.as_bytes())
                    .and_then(|m| m.message_id().map(str::to_owned))
                {
                    return Some(id);
                }
            }
            _ => {}
        }
    }
    None
}

/// `Name: value` fields of a block, continuation lines joined.
fn header_fields(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    fields
}

/// What an export's `event` says happened (a plain `bounce` is soft when
/// its reason has a 4.x.x status).
fn csv_kind(event: &str, reason: &str) -> Option<NoticeKind> {
    Some(match event.replace(['-', ' '], "_").as_str() {
        "hard_bounce" | "hardbounce" | "bounced" | "failed" | "dropped" => NoticeKind::HardBounce,
        "soft_bounce" | "softbounce" | "deferred" | "delayed" => NoticeKind::SoftBounce,
        "bounce" if reason.trim_start().starts_with('4') || reason.contains(" 4.") => {
            NoticeKind::SoftBounce
        }
        "bounce" => NoticeKind::HardBounce,
        "complaint" | "spamreport" | "spam_report" | "spam" => NoticeKind::Complaint,
        "delivered" | "delivery" | "sent" | "open" | "click" => NoticeKind::Delivered,
        "address_corrected" | "address_confirmed" | "address_changed" | "corrected" => {
            NoticeKind::AddressCorrected
        }
        _ => return None,
    })
}

/// A line's `time` in UTC; one in no documented form stops the import of
/// the file `name` (see the module docs).
fn line_time(time: Option<&str>, place: &str, name: &str) -> Result<Option<String>> {
    match time.map(|t| (t, export_time(t))) {
        Some((_, Some(at))) => Ok(Some(at)),
        Some((t, None)) => Err(Error::Input(format!(
            "{place}: the time `{}` is in no form letterpress reads (RFC 3339, RFC 2822, `YYYY-MM-DD HH:MM:SS` in UTC, Unix seconds); nothing of {name} was imported",
            t.escape_default()
        ))),
        None => Ok(None),
    }
}

/// A line's message id, address, customer id and channel.
type RowIds<'a> = (
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
);

/// Why a line of an export names no message or customer it can be
/// matched to, if it does not.
fn row_problem(event: &str, kind: NoticeKind, ids: RowIds) -> Option<String> {
    let correction = kind == NoticeKind::AddressCorrected;
    match ids {
        (None, None, None, _) => Some("neither a message id, an address nor a customer id".into()),
        (None, None, Some(_), _) if !correction => {
            Some(format!("a `{event}` needs a message id or an address"))
        }
        (_, _, _, Some(c)) if correction && c != "post" && c != "email" => {
            Some(format!("channel `{c}` is neither `post` nor `email`"))
        }
        _ => None,
    }
}

/// The key that makes an export line's notice recorded once, however
/// often the file is imported.
fn csv_key(
    event: &str,
    when: &str,
    (message_id, recipient, customer_id, channel): RowIds,
) -> String {
    format!(
        "csv {} {} {} {}{}",
        message_id.as_deref().unwrap_or("-"),
        recipient.as_deref().unwrap_or("-"),
        event,
        when,
        customer_id
            .as_deref()
            .map(|c| format!(" {c} {}", channel.as_deref().unwrap_or("-")))
            .unwrap_or_default()
    )
}

/// The notices of an email service's CSV export (see the module docs).
fn csv_export(bytes: &[u8], name: &str, out: &mut Read) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Input(format!("{name}: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |n: &str| headers.iter().position(|h| h == n);
    let (id_col, email_col, event_col) = (column("message_id"), column("email"), column("event"));
    let (time_col, reason_col) = (column("time"), column("reason"));
    let (customer_col, channel_col) = (column("customer_id"), column("channel"));
    if id_col.is_none() && email_col.is_none() && customer_col.is_none() {
        return Err(Error::Input(format!(
            "{name}: the export needs a `message_id`, an `email` or a `customer_id` column (it has {})",
            headers.join(", ")
        )));
    }
    let file_id = &crate::util::digest::sha256_hex(bytes)[..16];
    for (n, row) in reader.records().enumerate() {
        let place = format!("{name}:{}", n + 2);
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                out.unusable.push(Unusable {
                    place,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let get = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let reason = get(reason_col).unwrap_or_default();
        let event = get(event_col).unwrap_or_default().to_ascii_lowercase();
        let Some(kind) = csv_kind(&event, &reason) else {
            out.unusable.push(Unusable {
                place,
                why: format!("unknown event `{event}`"),
            });
            continue;
        };
        let message_id = get(id_col).map(|m| m.trim_matches(['<', '>']).to_owned());
        let recipient = get(email_col).map(|e| e.to_lowercase());
        let customer_id = get(customer_col);
        let channel = get(channel_col).map(|c| c.to_ascii_lowercase());
        let why = row_problem(
            &event,
            kind,
            (&message_id, &recipient, &customer_id, &channel),
        );
        if let Some(why) = why {
            out.unusable.push(Unusable { place, why });
            continue;
        }
        let time = get(time_col);
        let at = line_time(time.as_deref(), &place, name)?;
        // The key keeps the time as the file gives it; without one, the
        // file and line keep separate lines apart.
        let when = time
            .clone()
            .unwrap_or_else(|| format!("{file_id}:{}", n + 2));
        let ids = (&message_id, &recipient, &customer_id, &channel);
        let key = csv_key(&event, &when, ids);
        out.notices.push(Notice {
            key,
            message_id,
            recipient,
            customer_id,
            channel,
            piece: None,
            tracking: None,
            kind,
            at,
            detail: format!("{event} {reason}").trim().to_owned(),
            place,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_times_are_read_in_the_documented_forms_and_kept_in_utc() {
        let utc = "2026-12-01T08:30:00Z";
        for t in [
            "2026-12-01T09:30:00+01:00",
            "2026-12-01T08:30:00Z",
            "2026-12-01T08:30:00.123Z",
            "2026-12-01 08:30:00",
            "Tue, 01 Dec 2026 09:30:00 +0100",
            "1796113800",
            "1796113800123",
        ] {
            assert_eq!(export_time(t).as_deref(), Some(utc), "{t}");
        }
        for t in [
            "last Tuesday",
            "01/12/2026 08:30",
            "2026-12-01",
            "12",
            "2026-13-01T08:30:00Z",
        ] {
            assert_eq!(export_time(t), None, "{t}");
        }
    }
}
