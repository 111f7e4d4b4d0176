//! Routing: which channels a checked record goes to, and why not the others.
//!
//! Between checking (stage 2) and rendering (stage 3). A run renders a set of
//! channels (`--channels`, default: the layout's). For every record and every
//! channel of the run there is exactly one [`Decision`], so the manifest
//! accounts for each record once per channel:
//!
//! - a record on the suppression list (`--suppress FILE`, matched by record id
//!   or email address) is suppressed on every channel, with the list's line;
//! - the record's contact preference (the layout's `preference_field`:
//!   `print`, `email` or `both`; `default_preference` when empty) picks its
//!   channels; a channel it does not want is suppressed with that reason;
//! - a record that wants email but has no valid address falls back to print:
//!   its email is suppressed and its letter rendered, both saying why. If the
//!   run has no pdf channel, the email fails instead, since the customer
//!   would otherwise get nothing.
//!
//! An unknown preference value fails the record on every channel, naming the
//! field.

use std::collections::HashMap;
use std::path::Path;

use lettre::Address;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::layout::LayoutMeta;

/// An output channel.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A PDF letter, for print and mail.
    Pdf,
    /// An email (HTML + text, as a `.eml` file).
    Email,
}

impl Channel {
    /// The name in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Pdf => "pdf",
            Channel::Email => "email",
        }
    }
}

/// A customer's contact preference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    /// Letters only.
    Print,
    /// Email only (print only as a fallback).
    Email,
    /// Both.
    #[default]
    Both,
}

/// What happens to a record on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Render it; the note (if any) goes into the manifest, e.g. a fallback.
    Render(Option<String>),
    /// Render nothing, for this reason.
    Suppress(String),
    /// The record fails on this channel, for this reason.
    Fail(String),
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

/// Record ids and email addresses that must not be sent anything.
#[derive(Debug, Default)]
pub struct Suppressions {
    file: String,
    /// Record id → line.
    ids: HashMap<String, usize>,
    /// Lower-cased address → line.
    addresses: HashMap<String, usize>,
}

impl Suppressions {
    /// Reads a suppression file: one record id or email address a line
    /// (an entry with `@` is an address, matched case-insensitively); blank
    /// lines and lines starting with `#` are ignored.
    pub fn load(path: &Path) -> Result<Suppressions> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("suppression list `{}`: {e}", path.display())))?;
        let mut s = Suppressions {
            file: path.display().to_string(),
            ..Suppressions::default()
        };
        for (i, line) in text.lines().enumerate() {
            let entry = line.trim().trim_start_matches('\u{feff}');
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            if entry.contains('@') {
                s.addresses.entry(entry.to_lowercase()).or_insert(i + 1);
            } else {
                s.ids.entry(entry.to_owned()).or_insert(i + 1);
            }
        }
        Ok(s)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ids.len() + self.addresses.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why a record is suppressed, if it is.
    fn reason(&self, id: &str, address: Option<&str>) -> Option<String> {
        let hit = |what: &str, line: usize| {
            format!(
                "{what} is on the suppression list {} (line {line})",
                self.file
            )
        };
        if let Some(line) = self.ids.get(id) {
            return Some(hit("record id", *line));
        }
        let address = address?.trim().to_lowercase();
        self.addresses
            .get(&address)
            .map(|line| hit("email address", *line))
    }
}

/// Routes a checked record over the run's `channels`.
pub fn route(
    meta: &LayoutMeta,
    record: &Map<String, Value>,
    id: &str,
    channels: &[Channel],
    suppressions: &Suppressions,
) -> Route {
    let raw_address = meta
        .email
        .as_ref()
        .and_then(|e| record.get(&e.to_field))
        .and_then(Value::as_str);
    let suppressed = suppressions.reason(id, raw_address);
    let preference = match preference(meta, record) {
        Ok(p) => p,
        Err(why) => {
            return Route {
                decisions: channels
                    .iter()
                    .map(|c| (*c, Decision::Fail(why.clone())))
                    .collect(),
                to: None,
            }
        }
    };
    let address = match (&meta.email, raw_address.map(str::trim)) {
        (None, _) => Err("the layout has no email channel".to_string()),
        (Some(e), None | Some("")) => Err(format!("field `{}` is empty", e.to_field)),
        (Some(e), Some(a)) => a.parse::<Address>().map_err(|err| {
            format!(
                "field `{}`: `{a}` is not a valid address ({err})",
                e.to_field
            )
        }),
    };
    let wants_print = matches!(preference, Preference::Print | Preference::Both);
    let wants_email = matches!(preference, Preference::Email | Preference::Both);
    let falls_back = wants_email && address.is_err();
    let has_pdf = channels.contains(&Channel::Pdf);
    let decisions = channels
        .iter()
        .map(|&c| {
            let d = if let Some(why) = &suppressed {
                Decision::Suppress(why.clone())
            } else {
                match c {
                    Channel::Email if !wants_email => {
                        Decision::Suppress("contact preference is print".into())
                    }
                    Channel::Email => match &address {
                        Ok(_) => Decision::Render(None),
                        Err(why) if has_pdf => Decision::Suppress(format!(
                            "no valid email address ({why}): sent by post instead"
                        )),
                        Err(why) => Decision::Fail(format!(
                            "no valid email address ({why}), and this run has no pdf channel to fall back to"
                        )),
                    },
                    Channel::Pdf if wants_print => Decision::Render(None),
                    Channel::Pdf if falls_back => Decision::Render(Some(format!(
                        "fallback to print: no valid email address ({})",
                        address.as_ref().err().map_or("", |s| s.as_str())
                    ))),
                    Channel::Pdf => Decision::Suppress("contact preference is email".into()),
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
