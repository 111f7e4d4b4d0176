//! Routing: which channels a checked record goes to, and why not the others.
//!
//! Between checking (stage 2) and rendering (stage 3). A run renders a set of
//! channels (`--channels`, default: the layout's). For every record and every
//! channel of the run there is exactly one [`Decision`], so the manifest
//! accounts for each record once per channel:
//!
//! - a record on the suppression list (`--suppress FILE`, matched by record id
//!   or email address) is *suppressed* on every channel: withheld, with the
//!   list's line ([`Decision::Suppress`]);
//! - the record's contact preference (the layout's `preference_field`:
//!   `print`, `email` or `both`; `default_preference` when empty) picks its
//!   channels; a channel it does not want is *routed elsewhere*, saying where
//!   ([`Decision::Elsewhere`]);
//! - a record that wants email but has no valid address falls back to print:
//!   its email is routed elsewhere and its letter rendered, both saying why.
//!   If the run has no pdf channel, the email fails instead, since the
//!   customer would otherwise get nothing;
//! - a letter to a postal address whose mail came back (the contact
//!   history, `--contacts`) is *held* ([`Decision::Hold`]) unless the
//!   customer has a valid email address, which then gets the message
//!   instead; the hold lasts until the address changes or is corrected;
//! - the web letter (the `web` channel) is rendered for every record that is
//!   not suppressed, whatever its preference: it is the copy the customer
//!   portal keeps, not a way of reaching the customer.
//!
//! The two are kept apart because they mean different things to a reviewer:
//! a suppressed document is one the bank chose not to send, a document
//! routed elsewhere is the same message reaching the customer another way.
//! Every suppression list entry that matches no record is reported
//! ([`Suppressions::unmatched`]): such an entry is often a typo that leaves
//! a customer contacted.
//!
//! An unknown preference value fails the record on every channel, naming the
//! field.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use lettre::Address;
use serde_json::{Map, Value};

use crate::contacts::Block;
use crate::error::{Error, Result};
use crate::model::layout::LayoutMeta;
use crate::model::manifest::Unmatched;
use crate::model::vocab::{Channel, Preference};

/// What happens to a record on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Render it; the note (if any) goes into the manifest, e.g. a fallback.
    Render(Option<String>),
    /// Withhold it: the record is on the suppression list (the reason names
    /// the list and its line).
    Suppress(String),
    /// Not on this channel: the customer is reached on another one, by their
    /// contact preference or as a fallback (the reason says which).
    Elsewhere(String),
    /// The record fails on this channel, for this reason.
    Fail(String),
    /// Hold the letter: mail to this postal address came back, and the
    /// customer has no valid email address (the reason names the return).
    Hold(String),
}

/// A record's route: a decision per run channel, and the email address when
/// it is valid.
#[derive(Debug, Clone)]
pub struct Route {
    /// One decision per channel of the run, in the run's order.
    pub decisions: Vec<(Channel, Decision)>,
    /// The recipient's address, when the record has a valid one.
    pub to: Option<Address>,
}

/// Record ids and email addresses that must not be sent anything, read from
/// a suppression list (see [`Suppressions::parse`]), with a note of which
/// entries matched a record.
#[derive(Debug, Default)]
pub struct Suppressions {
    file: String,
    /// Every distinct entry, in file order, with its line and whether a
    /// record matched it.
    entries: Vec<Entry>,
    /// NFC record id → entry.
    ids: HashMap<String, usize>,
    /// NFC, lower-cased address → entry.
    addresses: HashMap<String, usize>,
}

#[derive(Debug)]
struct Entry {
    value: String,
    line: usize,
    matched: AtomicBool,
}

/// Text in Unicode normalisation form C, borrowed when it already is.
pub fn nfc(s: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
    if is_nfc_quick(s.chars()) == IsNormalized::Yes {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.nfc().collect())
    }
}

impl Suppressions {
    /// Reads a suppression file; see [`Suppressions::parse`]. Anything it
    /// cannot interpret stops the run, naming the file and line.
    pub fn load(path: &Path) -> Result<Suppressions> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Input(format!("suppression list `{}`: {e}", path.display())))?;
        Suppressions::parse(&bytes, &path.display().to_string())
            .map_err(|e| Error::Input(format!("suppression list {e}")))
    }

    /// Parses a suppression list as people write them: one record id or
    /// email address a line (an entry with `@` is an address). Around an
    /// entry, white space is ignored, and so is a note after it: after `#`
    /// (`C-01001  # asked by phone`), a tab, a comma or a semicolon (a
    /// spreadsheet's second column, a trailing comma). An entry may be
    /// quoted (`"C-01001"`, with `""` for a quote inside). Blank lines and
    /// lines starting with `#` are skipped, and so is a byte order mark.
    /// Ids and addresses are compared in Unicode normalisation form C,
    /// addresses in any letter case.
    ///
    /// A line that cannot be read as one entry is an error naming the line:
    /// two values separated by spaces (`C-01001 C-01002`), an unclosed
    /// quote, a control character, an entry with `@` that is not an email
    /// address, or bytes that are not UTF-8. A list that suppresses the
    /// wrong customer, or none, must never be read silently.
    pub fn parse(bytes: &[u8], file: &str) -> std::result::Result<Suppressions, String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut s = Suppressions {
            file: file.to_owned(),
            ..Suppressions::default()
        };
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let at = |why: String| format!("{file} line {n}: {why}");
            let line = std::str::from_utf8(raw)
                .map_err(|_| at("not valid UTF-8 (save the list as UTF-8)".into()))?;
            let Some(value) = entry_of(line).map_err(at)? else {
                continue;
            };
            let value = nfc(&value).into_owned();
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                return Err(at(format!(
                    "`{}` holds the control character U+{:04X}",
                    value.escape_debug(),
                    c as u32
                )));
            }
            let (map, key) = if value.contains('@') {
                if value.parse::<Address>().is_err() {
                    return Err(at(format!("`{value}` is not an email address")));
                }
                (&mut s.addresses, value.to_lowercase())
            } else {
                (&mut s.ids, value.clone())
            };
            if !map.contains_key(&key) {
                map.insert(key.clone(), s.entries.len());
                s.entries.push(Entry {
                    value: key,
                    line: n,
                    matched: AtomicBool::new(false),
                });
            }
        }
        Ok(s)
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why a record with this id and address is suppressed, if it is; notes
    /// the entry as matched.
    pub fn check(&self, id: &str, address: Option<&str>) -> Option<String> {
        let hit = |what: &str, i: usize| {
            let e = &self.entries[i];
            e.matched.store(true, Ordering::Relaxed);
            format!(
                "{what} is on the suppression list {} (line {})",
                self.file, e.line
            )
        };
        if let Some(&i) = self.ids.get(nfc(id.trim()).as_ref()) {
            return Some(hit("record id", i));
        }
        let address = nfc(address?.trim()).to_lowercase();
        self.addresses
            .get(&address)
            .map(|&i| hit("email address", i))
    }

    /// The entries no record matched so far, in file order.
    pub fn unmatched(&self) -> Vec<Unmatched> {
        self.entries
            .iter()
            .filter(|e| !e.matched.load(Ordering::Relaxed))
            .map(|e| Unmatched {
                line: e.line,
                entry: e.value.clone(),
            })
            .collect()
    }
}

/// The entry of one line of a suppression list, if it has one.
fn entry_of(line: &str) -> std::result::Result<Option<String>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let several = || {
        format!(
            "`{line}` holds more than one value; write one record id or email address a line (a note goes after `#` or a tab; quote an id that has spaces)"
        )
    };
    let value = if let Some(quoted) = line.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if chars.peek().map(|&(_, c)| c) == Some('"') => {
                    chars.next();
                    value.push('"');
                }
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let rest = &quoted[end.ok_or("the quote is never closed")?..];
        let note = rest.starts_with('\t') || rest.trim_start().starts_with(['#', ',', ';']);
        if !rest.trim().is_empty() && !note {
            return Err(several());
        }
        value.trim().to_owned()
    } else {
        // The entry ends at a tab, comma or semicolon, or a `#` after white
        // space; what follows is a note.
        let mut end = line.len();
        let mut after_space = false;
        for (i, c) in line.char_indices() {
            if matches!(c, '\t' | ',' | ';') || (c == '#' && after_space) {
                end = i;
                break;
            }
            after_space = c.is_whitespace();
        }
        let value = line[..end].trim();
        if value.contains(char::is_whitespace) {
            return Err(several());
        }
        value.to_owned()
    };
    if value.is_empty() {
        return Err("the line has a note but no record id or email address".into());
    }
    Ok(Some(value))
}

/// Routes a checked record over the run's `channels`; `suppressed` is why
/// the record is on the suppression list, if it is ([`Suppressions::check`]),
/// `history` why the contact history says not to email it, and `held` why
/// it holds letters to its postal address (a letter came back): the
/// customer gets email instead if they have a valid address, else the
/// letter is held ([`Decision::Hold`], saying why).
pub fn route(
    meta: &LayoutMeta,
    record: &Map<String, Value>,
    channels: &[Channel],
    suppressed: Option<String>,
    history: Option<&Block>,
    held: Option<&Block>,
) -> Route {
    let raw_address = meta
        .email
        .as_ref()
        .and_then(|e| record.get(&e.to_field))
        .and_then(Value::as_str);
    let preference = match preference(meta, record) {
        Ok(p) => p,
        Err(why) => return Route::failing(channels, &why),
    };
    let address = email_address(meta, raw_address, history);
    let wants_print = matches!(preference, Preference::Print | Preference::Both);
    let wants_email = matches!(preference, Preference::Email | Preference::Both);
    let falls_back = wants_email && address.is_err();
    let has_pdf = channels.contains(&Channel::Pdf);
    let held_to_email = held.is_some() && address.is_ok() && channels.contains(&Channel::Email);
    let decisions = channels
        .iter()
        .map(|&c| {
            let d = if let Some(why) = &suppressed {
                Decision::Suppress(why.clone())
            } else {
                match c {
                    Channel::Email if !wants_email && held_to_email => Decision::Render(Some(
                        format!("{}: email instead", held.expect("checked").reason),
                    )),
                    Channel::Email if !wants_email => {
                        Decision::Elsewhere("contact preference is print: routed to print".into())
                    }
                    Channel::Email if history.is_some_and(|b| b.complaint) => {
                        Decision::Suppress(history.expect("checked").reason.clone())
                    }
                    Channel::Email => match &address {
                        Ok(_) => Decision::Render(None),
                        Err(why) if has_pdf => Decision::Elsewhere(format!(
                            "no valid email address ({why}): routed to print instead"
                        )),
                        Err(why) => Decision::Fail(format!(
                            "no valid email address ({why}), and this run has no pdf channel to fall back to"
                        )),
                    },
                    Channel::Pdf if held.is_some() => {
                        let reason = &held.expect("checked").reason;
                        match held_to_email {
                            true => Decision::Elsewhere(format!("{reason}: routed to email")),
                            false => Decision::Hold(reason.clone()),
                        }
                    }
                    Channel::Pdf if wants_print => Decision::Render(None),
                    Channel::Pdf if falls_back => Decision::Render(Some(format!(
                        "fallback to print: no valid email address ({})",
                        address.as_ref().err().map_or("", |s| s.as_str())
                    ))),
                    Channel::Pdf => {
                        Decision::Elsewhere("contact preference is email: routed to email".into())
                    }
                    // The portal keeps every customer's letter, whatever
                    // the channel it reaches them by.
                    Channel::Web => Decision::Render(None),
                }
            };
            (c, d)
        })
        .collect();
    Route {
        decisions,
        to: address.ok(),
    }
}

impl Route {
    /// A route that fails the record on every channel for `why`.
    fn failing(channels: &[Channel], why: &str) -> Route {
        Route {
            decisions: channels
                .iter()
                .map(|c| (*c, Decision::Fail(why.to_owned())))
                .collect(),
            to: None,
        }
    }
}

/// The record's email address, or why it has none that may be used. An
/// address the history rules out counts as no valid address: the customer
/// who wanted email gets the letter, saying why.
fn email_address(
    meta: &LayoutMeta,
    raw: Option<&str>,
    history: Option<&Block>,
) -> std::result::Result<Address, String> {
    let address = match (&meta.email, raw.map(str::trim)) {
        (None, _) => Err("the layout has no email channel".to_string()),
        (Some(e), None | Some("")) => Err(format!("field `{}` is empty", e.to_field)),
        (Some(e), Some(a)) => a.parse::<Address>().map_err(|err| {
            format!(
                "field `{}`: `{a}` is not a valid address ({err})",
                e.to_field
            )
        }),
    };
    match (address, history) {
        (Ok(_), Some(block)) => Err(block.reason.clone()),
        (address, _) => address,
    }
}

/// The key of a record's postal address in the contact history: a keyed
/// hash (HMAC-SHA256 with the deployment's address key, see
/// [`crate::contacts::key`]) of the address object (the recipient's
/// `address` field, else `address`), its values trimmed and in lower case,
/// in field-name order. The same address however the data spaces or
/// capitalises it gives the same key; a changed address gives another,
/// which is how a move clears a hold. Only the hash is kept, not the
/// address, and without the key nobody can hash an address list to find
/// it.
pub fn postal_key(
    meta: &LayoutMeta,
    record: &Map<String, Value>,
    key: &crate::contacts::AddressKey,
) -> Option<String> {
    let field = meta
        .recipient
        .as_ref()
        .and_then(|r| r.address.as_deref())
        .unwrap_or("address");
    let Value::Object(address) = record.get(field)? else {
        return None;
    };
    let mut parts: Vec<(&String, String)> = address
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            (!text.is_empty()).then(|| (k, text.to_lowercase()))
        })
        .collect();
    parts.sort();
    let joined: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let hash = key.hash(&joined.join("\n"));
    Some(format!("post:{}", &hash[..24]))
}

fn preference(
    meta: &LayoutMeta,
    record: &Map<String, Value>,
) -> std::result::Result<Preference, String> {
    let Some(field) = &meta.preference_field else {
        return Ok(meta.default_preference);
    };
    match record.get(field) {
        None | Some(Value::Null) => Ok(meta.default_preference),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(meta.default_preference),
            "print" | "post" | "paper" => Ok(Preference::Print),
            "email" | "e-mail" => Ok(Preference::Email),
            "both" => Ok(Preference::Both),
            other => Err(format!(
                "field `{field}`: `{other}` is not a contact preference (print, email or both)"
            )),
        },
        Some(v) => Err(format!(
            "field `{field}`: `{v}` is not a contact preference (print, email or both)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A layout with an email channel, a preference field and the given
    /// default preference.
    fn meta(default_preference: &str) -> LayoutMeta {
        serde_yaml::from_str(&format!(
            "name: t\nversion: 1\ntitle: T\nstatus: approved\nid_field: id\n\
             page: {{format: a4, max_pages: 2}}\nfields: []\n\
             preference_field: contact\ndefault_preference: {default_preference}\n\
             email: {{from: bank@example.com, to_field: email, subject: Hi}}\n"
        ))
        .expect("the test layout parses")
    }

    fn record(contact: &str, email: &str) -> Map<String, Value> {
        let Value::Object(m) = json!({"id": "C-1", "contact": contact, "email": email}) else {
            unreachable!()
        };
        m
    }

    const BOTH: [Channel; 2] = [Channel::Pdf, Channel::Email];

    fn decisions(r: &Route) -> Vec<Decision> {
        r.decisions.iter().map(|(_, d)| d.clone()).collect()
    }

    #[test]
    fn each_preference_picks_its_channels_and_names_the_other() {
        let m = meta("both");
        let print = route(
            &m,
            &record("Paper", "a@example.com"),
            &BOTH,
            None,
            None,
            None,
        );
        assert_eq!(
            decisions(&print),
            [
                Decision::Render(None),
                Decision::Elsewhere("contact preference is print: routed to print".into())
            ]
        );
        let email = route(
            &m,
            &record(" e-mail ", "a@example.com"),
            &BOTH,
            None,
            None,
            None,
        );
        assert_eq!(
            decisions(&email),
            [
                Decision::Elsewhere("contact preference is email: routed to email".into()),
                Decision::Render(None)
            ]
        );
        assert_eq!(email.to.unwrap().to_string(), "a@example.com");
        let both = route(&m, &record("", "a@example.com"), &BOTH, None, None, None);
        assert_eq!(
            decisions(&both),
            [Decision::Render(None), Decision::Render(None)]
        );
    }

    #[test]
    fn a_missing_address_falls_back_to_print_or_fails_without_a_pdf_channel() {
        let m = meta("email");
        let r = route(&m, &record("email", " "), &BOTH, None, None, None);
        assert_eq!(
            decisions(&r),
            [
                Decision::Render(Some(
                    "fallback to print: no valid email address (field `email` is empty)".into()
                )),
                Decision::Elsewhere(
                    "no valid email address (field `email` is empty): routed to print instead"
                        .into()
                )
            ]
        );
        assert!(r.to.is_none());
        let only_email = route(
            &m,
            &record("email", "not an address"),
            &[Channel::Email],
            None,
            None,
            None,
        );
        let [Decision::Fail(why)] = &decisions(&only_email)[..] else {
            panic!("{only_email:?}")
        };
        assert!(
            why.contains("`not an address` is not a valid address"),
            "{why}"
        );
        assert!(why.contains("no pdf channel to fall back to"), "{why}");
    }

    #[test]
    fn suppression_wins_over_every_channel_and_a_bad_preference_fails_all() {
        let m = meta("both");
        let r = route(
            &m,
            &record("email", "a@example.com"),
            &BOTH,
            Some("listed".into()),
            None,
            None,
        );
        assert_eq!(
            decisions(&r),
            [
                Decision::Suppress("listed".into()),
                Decision::Suppress("listed".into())
            ]
        );
        let r = route(&m, &record("fax", "a@example.com"), &BOTH, None, None, None);
        let why = "field `contact`: `fax` is not a contact preference (print, email or both)";
        assert_eq!(
            decisions(&r),
            [Decision::Fail(why.into()), Decision::Fail(why.into())]
        );
    }

    #[test]
    fn suppression_lists_match_ids_and_addresses_as_people_write_them() {
        let list = "\u{feff}# do not contact\nC-1  # asked by phone\n\"C 2\",\"note\"\n\
                    Ana@Example.COM\tcomplaint\n\nC-1\nunused@example.com\n";
        let s = Suppressions::parse(list.as_bytes(), "dnc.txt").unwrap();
        assert_eq!(s.len(), 4, "the repeated C-1 counts once");
        assert_eq!(
            s.check("C-1", None).as_deref(),
            Some("record id is on the suppression list dnc.txt (line 2)")
        );
        assert!(s.check("C 2", None).is_some());
        assert_eq!(
            s.check("C-9", Some(" ana@example.com ")).as_deref(),
            Some("email address is on the suppression list dnc.txt (line 4)")
        );
        assert_eq!(s.check("C-9", Some("b@example.com")), None);
        let unmatched = s.unmatched();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(
            (unmatched[0].line, unmatched[0].entry.as_str()),
            (7, "unused@example.com")
        );
    }

    #[test]
    fn suppression_lines_that_cannot_be_one_entry_are_refused_by_line() {
        for (text, why) in [
            ("C-1 C-2\n", "line 1: `C-1 C-2` holds more than one value"),
            ("ok\n\"C-1\n", "line 2: the quote is never closed"),
            ("x@\n", "line 1: `x@` is not an email address"),
            (
                ", a note only\n",
                "line 1: the line has a note but no record id",
            ),
        ] {
            let err = Suppressions::parse(text.as_bytes(), "l.txt").unwrap_err();
            assert!(err.starts_with(&format!("l.txt {why}")), "{text:?}: {err}");
        }
        let err = Suppressions::parse(b"C-1\n\xff\n", "l.txt").unwrap_err();
        assert!(err.contains("line 2: not valid UTF-8"), "{err}");
    }

    #[test]
    fn the_contact_history_takes_email_away_and_the_letter_says_why() {
        let m = meta("email");
        let bounce = Block {
            reason: "email to a@example.com not used: the contact history has a hard bounce".into(),
            complaint: false,
        };
        let r = route(
            &m,
            &record("email", "a@example.com"),
            &BOTH,
            None,
            Some(&bounce),
            None,
        );
        let d = decisions(&r);
        assert!(
            d.iter()
                .any(|d| matches!(d, Decision::Render(Some(n)) if n.contains("hard bounce"))),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|d| matches!(d, Decision::Elsewhere(w) if w.contains("routed to print"))),
            "{d:?}"
        );
        let complaint = Block {
            reason: "email suppressed: the customer complained".into(),
            complaint: true,
        };
        let r = route(
            &m,
            &record("both", "a@example.com"),
            &BOTH,
            None,
            Some(&complaint),
            None,
        );
        let d = decisions(&r);
        assert!(
            d.contains(&Decision::Suppress(complaint.reason.clone())),
            "{d:?}"
        );
        assert!(d.iter().any(|d| matches!(d, Decision::Render(_))), "{d:?}");
    }
}
