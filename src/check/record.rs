//! Checking one record after another, as a run reads them: the schema
//! and the characters of every value, the record id and duplicates, file
//! names, forbidden wording in the data, the suppression list, the route
//! over the channels and the piece it becomes in a print run. `run` and
//! `validate` use this one checker, so `validate` sees every failure a run
//! finds before rendering.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::check::route::{self, Decision, Route, Suppressions};
use crate::check::schema::{check_record, Origin};
use crate::check::wording::Wording;
use crate::contacts::Verdicts;
use crate::input::RawRecord;
use crate::layout::catalog::Layout;
use crate::layout::locale::{self, Rules};
use crate::layout::texts::Texts;
use crate::model::file::FileEntry;
use crate::model::layout::LayoutMeta;
use crate::model::manifest::Document;
use crate::model::vocab::{Channel, Format, LetterFormat};

/// A record that passed every check and waits to be rendered.
pub struct Job {
    /// Its position in the input, from 0.
    pub index: usize,
    /// The line it starts on.
    pub line: u64,
    /// Its record id.
    pub id: String,
    /// The stem of its files' names (see
    /// [`crate::output::file_names::FileNamer`]); set by the run.
    pub stem: String,
    /// The checked record.
    pub record: Map<String, Value>,
    /// The locale it is written in.
    pub locale: &'static Rules,
    /// Its decision on each channel of the run.
    pub route: Route,
    /// Whether the suppression list withholds it (on every channel).
    pub listed: bool,
    /// The form of its letter, when the layout has an `accessibility_field`.
    pub format: Option<LetterFormat>,
    /// Why the contact history took email away from it or held its
    /// letter, if it did.
    pub history: Option<String>,
    /// Its postal address's key in the contact history (with `--contacts`).
    pub postal: Option<String>,
    /// The mail piece number in a print run.
    pub sequence: Option<u32>,
    /// Its postal barcode (IMb or Mailmark) or why it cannot have one.
    pub imb: Option<std::result::Result<crate::model::print::Postal, String>>,
}

/// Mail pieces of a print run: the mailing order planned before rendering.
pub use crate::model::print::Pieces;

/// What a pass over the records in input order found of the checks that
/// depend on the records before one (duplicate ids, file names): a print
/// run plans its mailing order in such a pass, and its later passes over
/// the same records take these verdicts instead of keeping every record's
/// id again (about 90 bytes a record). It holds only the exceptions.
#[derive(Debug, Default)]
pub struct Known {
    /// The records whose id an earlier record has: the line of that one.
    pub duplicates: HashMap<usize, u64>,
    /// The records whose files' names got the hash suffix (see
    /// [`crate::output::file_names::FileNamer`]).
    pub renamed: std::collections::HashSet<usize>,
}

/// Checks records in input order: schema, record id, duplicates, forbidden
/// wording, suppression, then routes them over the run's channels.
pub struct Checker<'a> {
    layout: &'a Layout,
    origin: Origin,
    channels: &'a [Channel],
    suppressions: &'a Suppressions,
    texts: &'a Texts,
    pieces: Option<&'a Pieces>,
    history: Option<&'a Verdicts>,
    address_key: Option<&'a crate::contacts::AddressKey>,
    /// 128-bit hash of every record id seen so far (as two words: a
    /// `u128` would be aligned to 16 bytes, and each entry padded to 32),
    /// with its line: 25 to 50 bytes a record instead of the id itself. Two different ids would have
    /// to collide in 128 bits to be taken for duplicates, and even then the
    /// record fails visibly, it is never lost. Not kept when the plan gives
    /// the verdicts ([`Plan::known`]).
    seen: HashMap<[u64; 2], u64>,
    /// The duplicates found so far (input position, line of the first).
    duplicates: HashMap<usize, u64>,
    known: Option<&'a Known>,
    wording: Wording,
}

/// What checking and routing a record needs besides the record.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// The layout version.
    pub layout: &'a Layout,
    /// The run's channels.
    pub channels: &'a [Channel],
    /// The suppression list.
    pub suppressions: &'a Suppressions,
    /// The layout's wording (which locales it speaks).
    pub texts: &'a Texts,
    /// The mail pieces of a print run.
    pub pieces: Option<&'a Pieces>,
    /// The duplicate ids an earlier pass over the same records found: with
    /// them, the checker keeps no ids of its own.
    pub known: Option<&'a Known>,
    /// What the contact history says about emailing (`--contacts`).
    pub history: Option<&'a Verdicts>,
    /// The key postal addresses are hashed with (with `history`).
    pub address_key: Option<&'a crate::contacts::AddressKey>,
}

impl<'a> Checker<'a> {
    /// A checker for records of `format` (CSV text is converted to the
    /// schema's types).
    pub fn new(plan: Plan<'a>, format: Format) -> Self {
        let origin = if format.typed() {
            Origin::Json
        } else {
            Origin::Text
        };
        Checker {
            layout: plan.layout,
            origin,
            channels: plan.channels,
            suppressions: plan.suppressions,
            texts: plan.texts,
            pieces: plan.pieces,
            history: plan.history,
            address_key: plan.address_key,
            seen: HashMap::new(),
            duplicates: HashMap::new(),
            known: plan.known,
            wording: Wording::new(
                &plan.layout.meta.required_text,
                &plan.layout.meta.forbidden_text,
            ),
        }
    }

    /// Turns a raw record into a job, or into failed documents (one per channel).
    pub fn check(&mut self, raw: RawRecord) -> Checked {
        let (index, line) = (raw.index, raw.line);
        let channels = self.channels;
        let fail = |id: Option<String>, why: String| {
            Checked::Failed(
                channels
                    .iter()
                    .map(|c| Document::failed(index, line, id.as_deref(), *c, &why))
                    .collect(),
            )
        };
        let record = match raw.data {
            Ok(record) => record,
            Err(why) => return fail(None, why),
        };
        let id = id_of(&record, &self.layout.meta.id_field);
        // Matched before the schema check, so that an entry of the list that
        // names an invalid record is not reported as matching nobody.
        let address = self.layout.meta.email.as_ref().and_then(|e| {
            record
                .get(&e.to_field)
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let suppressed = self
            .suppressions
            .check(id.as_deref().unwrap_or(""), address.as_deref());
        let record = match check_record(record, &self.layout.meta.fields, self.origin) {
            Ok(record) => record,
            Err(problems) => return fail(id, problems.join("; ")),
        };
        let Some(id) = id else {
            let field = &self.layout.meta.id_field;
            return fail(None, format!("field `{field}`: not a usable record id"));
        };
        let meta = &self.layout.meta;
        let to_field = meta.email.as_ref().map(|e| e.to_field.as_str());
        let declared = |k: &str| Some(k) != to_field && meta.fields.iter().any(|f| f.name == k);
        if let Some(why) = self.wording.forbidden_in_record(&record, declared) {
            return fail(Some(id), why);
        }
        if let Some(first) = self.first_use(index, &id, line) {
            let why = format!("duplicate record id (first used at line {first})");
            return fail(Some(id), why);
        }
        let format = match letter_format(meta.accessibility_field.as_deref(), &record) {
            Ok(format) => meta.accessibility_field.as_ref().map(|_| format),
            Err(why) => return fail(Some(id), why),
        };
        let locale = record_locale(meta, self.texts, &record);
        let said = self.history_of(&id, address.as_deref(), &record);
        let (block, held) = (said.email, said.held);
        let listed = suppressed.is_some();
        let route = route::route(meta, &record, channels, suppressed, block, held);
        let sequence = self.pieces.and_then(|p| p.sequence_of(index));
        Checked::Ready(Box::new(Job {
            index,
            line,
            id,
            stem: String::new(),
            record,
            locale,
            route,
            listed,
            format,
            history: block.or(held).map(|b| b.reason.clone()),
            postal: said.postal,
            sequence,
            imb: None,
        }))
    }

    /// The line where an earlier record used `id`, if one did.
    fn first_use(&mut self, index: usize, id: &str, line: u64) -> Option<u64> {
        if let Some(known) = self.known {
            return known.duplicates.get(&index).copied();
        }
        let key = crate::util::digest::words(typst::utils::hash128(&id));
        match self.seen.get(&key) {
            Some(&first) => {
                self.duplicates.insert(index, first);
                Some(first)
            }
            None => {
                self.seen.insert(key, line);
                None
            }
        }
    }

    /// Makes room for the ids of `records` records at once, so that the
    /// table never holds its old and new copy together while it grows.
    pub fn reserve(&mut self, records: usize) {
        if self.known.is_none() {
            self.seen.reserve(records);
        }
    }

    /// The duplicates this checker found (input position, line of the
    /// first use).
    pub fn into_duplicates(self) -> HashMap<usize, u64> {
        self.duplicates
    }
}

/// What the contact history says about a record.
struct Said<'h> {
    /// Why not to email it.
    email: Option<&'h crate::contacts::Block>,
    /// Its postal address's key.
    postal: Option<String>,
    /// Why its letter is held.
    held: Option<&'h crate::contacts::Block>,
}

impl<'a> Checker<'a> {
    /// What the history (with `--contacts`) says about customer `id` at
    /// `address` and the record's postal address.
    fn history_of(&self, id: &str, address: Option<&str>, record: &Map<String, Value>) -> Said<'a> {
        let email = self.history.and_then(|h| h.email(id, address));
        let postal = self
            .history
            .and(self.address_key)
            .and_then(|key| route::postal_key(&self.layout.meta, record, key));
        let held = self
            .history
            .zip(postal.as_deref())
            .and_then(|(h, key)| h.held.get(key));
        Said {
            email,
            postal,
            held,
        }
    }
}

/// The outcome of checking one record.
pub enum Checked {
    /// Valid: render it (boxed: a job is much larger than a failure).
    Ready(Box<Job>),
    /// Invalid: these are its manifest entries, one per channel.
    Failed(Vec<Document>),
}

/// The record's id: the `field`'s string (trimmed, not empty) or integer.
pub fn id_of(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The record's locale: its `locale_field` resolved (see [`crate::layout::locale`]),
/// else the layout's default.
/// A locale whose language the layout's texts do not have falls back to the
/// default too.
pub fn record_locale(
    meta: &LayoutMeta,
    texts: &Texts,
    record: &Map<String, Value>,
) -> &'static Rules {
    meta.locale_field
        .as_ref()
        .and_then(|f| record.get(f))
        .and_then(Value::as_str)
        .and_then(locale::resolve)
        .filter(|r| texts.speaks(r.tag))
        .or_else(|| locale::rules(&meta.default_locale))
        .unwrap_or(&locale::RULES[0])
}

/// The form the record's letter takes: its `accessibility_field` read
/// (`standard`, `large-print`; empty or absent: standard). An other value
/// is an error naming the field.
pub fn letter_format(
    field: Option<&str>,
    record: &Map<String, Value>,
) -> std::result::Result<LetterFormat, String> {
    let Some(field) = field else {
        return Ok(LetterFormat::Standard);
    };
    let wrong = |v: &dyn std::fmt::Display| {
        format!("field `{field}`: `{v}` is not a letter format this layout makes (standard or large-print)")
    };
    match record.get(field) {
        None | Some(Value::Null) => Ok(LetterFormat::Standard),
        Some(Value::String(s)) => {
            let words: Vec<String> = s
                .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            match words.join("-").as_str() {
                "" | "standard" => Ok(LetterFormat::Standard),
                "large-print" | "large" => Ok(LetterFormat::LargePrint),
                _ => Err(wrong(&s.trim())),
            }
        }
        Some(v) => Err(wrong(v)),
    }
}

impl Job {
    /// The entry of the first channel on which this checked record is
    /// bound to fail before it is rendered (its route fails it, or its
    /// letter cannot have its IMb), if there is one.
    pub fn failure(&self) -> Option<Document> {
        self.route.decisions.iter().find_map(|(channel, d)| {
            let why = match (channel, d) {
                (_, Decision::Fail(why)) => why,
                (Channel::Pdf, Decision::Render(_)) => match &self.imb {
                    Some(Err(why)) => why,
                    _ => return None,
                },
                _ => return None,
            };
            Some(Document::failed(
                self.index,
                self.line,
                Some(&self.id),
                *channel,
                why,
            ))
        })
    }

    /// The entry of this record's `channel` for the file rendered for it.
    pub fn rendered(&self, channel: Channel, file: FileEntry) -> Document {
        let mut doc = Document::rendered(
            self.index,
            self.line,
            &self.id,
            channel,
            self.locale.tag,
            file,
        );
        if channel == Channel::Pdf {
            doc.format = self.format;
            doc.postal = self.postal.clone();
        }
        doc
    }
}
