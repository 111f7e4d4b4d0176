//! What a new layout version changes for real customers.
//!
//! A review tool beside the data path. `letterpress diff NAME@A NAME@B
//! --data FILE` renders every record with both versions (in memory, any
//! status: a draft is what one wants to compare), extracts each letter's
//! text line by line from the compiled document, and reports per record the
//! lines that disappear and appear and the change in page count, with a
//! summary: how many records change, and which sentences appear or
//! disappear in how many letters. The summary counts the bank's sentences:
//! lines made only of the record's own values (the address block) are left
//! out of it, and a full stop after an abbreviation (`Sr.`, `Dr.`, `кв.`)
//! does not end a sentence. `--out diff.html` writes the same as a
//! self-contained page a reviewer can read without knowing what a diff is.
//! A record that fails in one version and not the other is reported too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::check::record::{id_of, record_locale};
use crate::check::schema::{check_record, Origin};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::layout::catalog::{Catalog, Layout};
use crate::model::decision::DiffEvidence;
use crate::model::layout::LayoutRef;
use crate::model::vocab::Format;
use crate::ops::run::load_texts;
use crate::render::pdf::Renderer;
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;
use crate::util::fs::write_atomic;

/// `diff.json`, what `layouts approve --diff` reads: the new version, and
/// what the comparison with the old one found.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DiffFile {
    /// The format of this file (1).
    pub letterpress_diff: u32,
    /// The new version (`NAME@B`).
    pub new: String,
    /// Its layout digest.
    pub new_digest: String,
    /// The comparison (its `files` are the HTML page beside it).
    pub diff: DiffEvidence,
}

/// What `diff` is asked to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The folder holding the layouts.
    pub layouts_dir: PathBuf,
    /// The old version (`NAME@A`).
    pub old: LayoutRef,
    /// The new version (`NAME@B`).
    pub new: LayoutRef,
    /// The records to render.
    pub data: PathBuf,
    /// Their format, when not taken from the extension.
    pub format: Option<Format>,
    /// The query whose rows are the records, when `data` is a
    /// `postgresql://` URL.
    pub query: Option<String>,
    /// The templates' date.
    pub as_of: Date,
}

impl DiffOptions {
    /// Compares `old` with `new` on the records in `data`, as of today
    /// (UTC), layouts from `layouts`.
    pub fn new(old: LayoutRef, new: LayoutRef, data: impl Into<PathBuf>) -> DiffOptions {
        DiffOptions {
            layouts_dir: PathBuf::from("layouts"),
            old,
            new,
            data: data.into(),
            format: None,
            query: None,
            as_of: Date::today_utc(),
        }
    }
}

/// One record's change.
#[derive(Debug, Serialize)]
pub struct RecordDiff {
    /// The record id (or its line).
    pub record: String,
    /// Pages in the old and the new version (0 when it failed).
    pub pages: (usize, usize),
    /// Lines only in the old version.
    pub removed: Vec<String>,
    /// Lines only in the new version.
    pub added: Vec<String>,
    /// The whole diff, each line prefixed with `-`, `+` or a space.
    pub lines: Vec<String>,
    /// A failure in either version.
    pub error: Option<String>,
}

/// The outcome of `diff`.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// `NAME@A`.
    pub old: String,
    /// `NAME@B`.
    pub new: String,
    /// The layout digests of the old and the new version.
    pub digests: (String, String),
    /// SHA-256 of the data file.
    pub data_sha256: String,
    /// The as-of date both rendered with.
    pub as_of: String,
    /// Records compared.
    pub records: usize,
    /// Records whose letter changes (text, pages or failure).
    pub changed: usize,
    /// Sentences (of the letters' text, lines joined) that disappear, with
    /// the number of letters; where only numbers differ between letters,
    /// they are shown as `#`.
    pub disappearing: Vec<(String, usize)>,
    /// Sentences that appear, with the number of letters.
    pub appearing: Vec<(String, usize)>,
    /// The records that change.
    pub diffs: Vec<RecordDiff>,
}

struct Side {
    layout: Layout,
    digest: String,
    renderer: Renderer,
    texts: crate::layout::texts::Texts,
}

fn side(catalog: &Catalog, r: &LayoutRef, as_of: Date) -> Result<Side> {
    if r.version.is_none() {
        return Err(Error::Usage(format!("name both versions: {}@N", r.name)));
    }
    let layout = catalog.resolve(r, as_of)?.clone();
    let files = layout.read_files()?;
    let texts = load_texts(&layout, &files)?;
    let digest = files.digest.clone();
    let renderer = Renderer::new(&layout, files, &texts, as_of, &[], None)?;
    Ok(Side {
        layout,
        digest,
        renderer,
        texts,
    })
}

/// Renders `data` with both versions and compares the letters.
pub fn diff(opts: &DiffOptions) -> Result<DiffReport> {
    let catalog = Catalog::discover(&opts.layouts_dir)?;
    let old = side(&catalog, &opts.old, opts.as_of)?;
    let new = side(&catalog, &opts.new, opts.as_of)?;
    let input = Input::new(
        &opts.data,
        opts.format,
        opts.query.as_deref(),
        &new.layout.meta,
    )?;
    let data_sha256 = input.scan()?.sha256;
    let origin = if input.format.typed() {
        Origin::Json
    } else {
        Origin::Text
    };
    // Typst needs a deep stack for some layouts: compare on a worker thread.
    let report = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, || compare(&old, &new, &input, origin))
            .map_err(|e| Error::Output(format!("cannot start a thread: {e}")))?
            .join()
            .expect("the diff thread does not panic")
    })?;
    Ok(DiffReport {
        old: old.layout.id(),
        new: new.layout.id(),
        digests: (old.digest.clone(), new.digest.clone()),
        data_sha256,
        as_of: opts.as_of.to_string(),
        ..report
    })
}

fn render(
    side: &Side,
    raw: &serde_json::Map<String, Value>,
    origin: Origin,
) -> std::result::Result<(usize, Vec<String>), String> {
    let record =
        check_record(raw.clone(), &side.layout.meta.fields, origin).map_err(|p| p.join("; "))?;
    let id = id_of(&record, &side.layout.meta.id_field).unwrap_or_default();
    let locale = record_locale(&side.layout.meta, &side.texts, &record);
    let r = side.renderer.text_lines(&id, &record, locale)?;
    // Isolation marks around a name are invisible: not a change to report.
    let visible = |l: String| l.replace(['\u{2068}', '\u{2069}'], "");
    Ok((
        r.pages,
        r.lines.into_iter().flatten().map(visible).collect(),
    ))
}

fn compare(old: &Side, new: &Side, input: &Input, origin: Origin) -> Result<DiffReport> {
    let mut report = DiffReport {
        old: String::new(),
        new: String::new(),
        digests: Default::default(),
        data_sha256: String::new(),
        as_of: String::new(),
        records: 0,
        changed: 0,
        disappearing: Vec::new(),
        appearing: Vec::new(),
        diffs: Vec::new(),
    };
    let mut gone = Tally::default();
    let mut came = Tally::default();
    for raw in input.records()? {
        let raw = raw?;
        report.records += 1;
        let name = match &raw.data {
            Ok(r) => {
                id_of(r, &old.layout.meta.id_field).unwrap_or_else(|| format!("line {}", raw.line))
            }
            Err(_) => format!("line {}", raw.line),
        };
        let data = match raw.data {
            Ok(d) => d,
            Err(why) => {
                report.changed += 1;
                report.diffs.push(RecordDiff {
                    record: name,
                    pages: (0, 0),
                    removed: Vec::new(),
                    added: Vec::new(),
                    lines: Vec::new(),
                    error: Some(format!("unreadable in both versions: {why}")),
                });
                continue;
            }
        };
        let values = record_values(&data);
        let (pa, la, ea) = rendered(render(old, &data, origin));
        let (pb, lb, eb) = rendered(render(new, &data, origin));
        let d = line_diff(name, (pa, pb), &la, &lb, both_errors(ea, eb));
        if d.removed.is_empty() && d.added.is_empty() && pa == pb && d.error.is_none() {
            continue;
        }
        // The summary counts sentences, not wrapped lines, and leaves out
        // lines made only of the record's values (the address block, a
        // table of the customer's transactions): how they are laid out is
        // seen letter by letter, and they are not the bank's sentences.
        let prose = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| !only_values(l, &values))
                .cloned()
                .collect()
        };
        let (sa, sb) = (sentences(&prose(&la)), sentences(&prose(&lb)));
        for s in sa.difference(&sb) {
            gone.add(s);
        }
        for s in sb.difference(&sa) {
            came.add(s);
        }
        report.changed += 1;
        report.diffs.push(d);
    }
    report.disappearing = gone.ranked();
    report.appearing = came.ranked();
    Ok(report)
}

/// A rendering's pages and lines, or none and its error.
fn rendered(
    r: std::result::Result<(usize, Vec<String>), String>,
) -> (usize, Vec<String>, Option<String>) {
    match r {
        Ok((p, l)) => (p, l, None),
        Err(e) => (0, Vec::new(), Some(e)),
    }
}

/// What the two versions' failures say about a record, if either failed.
fn both_errors(old: Option<String>, new: Option<String>) -> Option<String> {
    match (old, new) {
        (None, None) => None,
        (Some(a), None) => Some(format!("fails in the old version only: {a}")),
        (None, Some(b)) => Some(format!("fails in the new version only: {b}")),
        (Some(a), Some(b)) if a == b => Some(format!("fails in both versions: {a}")),
        (Some(a), Some(b)) => Some(format!("fails in both versions: old: {a}; new: {b}")),
    }
}

/// One record's lines compared, old against new.
fn line_diff(
    record: String,
    pages: (usize, usize),
    old: &[String],
    new: &[String],
    error: Option<String>,
) -> RecordDiff {
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    let new_refs: Vec<&str> = new.iter().map(String::as_str).collect();
    let mut d = RecordDiff {
        record,
        pages,
        removed: Vec::new(),
        added: Vec::new(),
        lines: Vec::new(),
        error,
    };
    for change in TextDiff::from_slices(&old_refs, &new_refs).iter_all_changes() {
        let line = change.value().to_string();
        match change.tag() {
            ChangeTag::Delete => {
                d.lines.push(format!("-{line}"));
                d.removed.push(line);
            }
            ChangeTag::Insert => {
                d.lines.push(format!("+{line}"));
                d.added.push(line);
            }
            ChangeTag::Equal => d.lines.push(format!(" {line}")),
        }
    }
    d
}

/// Sentences counted by their shape: numbers are replaced by `#`, so "It
/// is now 29 days overdue." and "... 30 days ..." count as one sentence.
#[derive(Default)]
struct Tally {
    /// Shape → letters, one example, and whether the letters' sentences differ.
    shapes: BTreeMap<String, (usize, String, bool)>,
}

impl Tally {
    fn add(&mut self, sentence: &str) {
        let mut shape = String::with_capacity(sentence.len());
        let mut in_number = false;
        for c in sentence.chars() {
            if c.is_ascii_digit() {
                if !in_number {
                    shape.push('#');
                }
                in_number = true;
            } else {
                in_number = false;
                shape.push(c);
            }
        }
        let e = self
            .shapes
            .entry(shape)
            .or_insert_with(|| (0, sentence.to_owned(), false));
        e.0 += 1;
        e.2 |= e.1 != sentence;
    }

    /// Most frequent first; a sentence whose numbers vary is shown by shape.
    fn ranked(self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .shapes
            .into_iter()
            .map(|(shape, (n, example, varies))| (if varies { shape } else { example }, n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// Every text value of a record (and number, as written), lower-cased,
/// longest first: what a line made only of record values consists of.
fn record_values(record: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut walk: Vec<&Value> = record.values().collect();
    while let Some(v) = walk.pop() {
        match v {
            Value::String(s) if !s.trim().is_empty() => {
                out.extend(s.lines().map(|l| l.trim().to_lowercase()))
            }
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => walk.extend(items),
            Value::Object(m) => walk.extend(m.values()),
            _ => {}
        }
    }
    out.retain(|v| !v.is_empty());
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// Whether a line of a letter holds nothing but record values (any case),
/// punctuation and space.
fn only_values(line: &str, values: &[String]) -> bool {
    let mut rest = line.to_lowercase();
    for v in values {
        if rest.contains(v.as_str()) {
            rest = rest.replace(v.as_str(), " ");
        }
    }
    !rest.chars().any(char::is_alphanumeric)
}

/// Words after which a full stop does not end a sentence: forms of address
/// and common abbreviations of the languages the engine writes.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "sra", "srta", "st", "mt", "no", "nr", "hr", "fr",
    "mme", "mlle", "dott", "ing", "jr", "etc", "vs", "ca", "bzw", "str", "tel", "nos", "av", "c",
    "kv", "кв", "ул", "д", "г", "пр", "т", "др", "проф", "св",
];

/// The sentences of a letter's text: its lines joined, split after `!`,
/// `?` or `.` followed by a space, but not after an abbreviation (`Sr.`,
/// `Dr.`, `кв.`), an initial (`J. Smith`), or before a word that does not
/// start with a capital (`кв. 12`, `z. B. morgen`). A line much shorter
/// than the letter's longest (under 60 %) ends what it is part of: a
/// heading, a salutation, the last line of a paragraph, a line of the
/// signature; lines of running text are nearly full.
fn sentences(lines: &[String]) -> std::collections::BTreeSet<String> {
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = std::collections::BTreeSet::new();
    let mut block: Vec<&str> = Vec::new();
    for line in lines {
        block.push(line);
        if line.chars().count() * 10 < widest * 6 {
            out.extend(split_sentences(&block.join(" ")));
            block.clear();
        }
    }
    out.extend(split_sentences(&block.join(" ")));
    out
}

/// The sentences of one block of running text (see [`sentences`]).
fn split_sentences(text: &str) -> std::collections::BTreeSet<String> {
    let text = crate::check::wording::normalize(text);
    let mut out = std::collections::BTreeSet::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let last = k + 1 == chars.len();
        let mut end = matches!(c, '.' | '!' | '?') && chars.get(k + 1).is_some_and(|n| n.1 == ' ');
        if end && c == '.' {
            let word: String = text[start..i]
                .rsplit(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap_or("")
                .to_lowercase();
            let next = chars.get(k + 2).map(|n| n.1);
            let initial = word.chars().count() == 1;
            end = !initial
                && !ABBREVIATIONS.contains(&word.as_str())
                && next.is_some_and(|n| n.is_uppercase() || !n.is_alphanumeric());
        }
        if end || last {
            let stop = i + c.len_utf8();
            let s = text[start..stop].trim();
            if !s.is_empty() {
                out.insert(s.to_owned());
            }
            start = stop;
        }
    }
    out
}

use crate::util::html::{escape_html as esc, page};

impl DiffReport {
    /// The report as one self-contained HTML page.
    /// Writes the report as a page to `html` and, beside it, the `.json`
    /// that `layouts approve --diff` records (see [`DiffFile`]); returns
    /// the `.json`'s path.
    pub fn write(&self, html: &Path) -> Result<PathBuf> {
        let page = self.html();
        write_atomic(html, page.as_bytes(), true).map_err(|e| Error::io(html, e))?;
        let name = html
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = DiffFile {
            letterpress_diff: 1,
            new: self.new.clone(),
            new_digest: self.digests.1.clone(),
            diff: DiffEvidence {
                files: [(name, sha256_hex(page.as_bytes()))].into(),
                against: self.old.clone(),
                against_digest: self.digests.0.clone(),
                data_sha256: self.data_sha256.clone(),
                records: self.records,
                changed: self.changed,
                appearing: self.appearing.clone(),
                disappearing: self.disappearing.clone(),
            },
        };
        let path = html.with_extension("json");
        let mut json = serde_json::to_vec_pretty(&file).expect("serializes");
        json.push(b'\n');
        write_atomic(&path, &json, true).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// The report as a self-contained page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<h1>What changes from {old} to {new}</h1><p>{records} records rendered with both versions; <strong>{changed}</strong> letters change.</p>",
            old = esc(&self.old),
            new = esc(&self.new),
            records = self.records,
            changed = self.changed
        );
        for (title, list, class) in [
            ("Sentences that disappear", &self.disappearing, "del"),
            ("Sentences that appear", &self.appearing, "ins"),
        ] {
            let _ = write!(h, "<h2>{title}</h2>");
            if list.is_empty() {
                h.push_str("<p>None.</p>");
                continue;
            }
            h.push_str("<table class=\"rows\"><tr><th>Letters</th><th>Text</th></tr>");
            for (line, n) in list.iter().take(50) {
                let _ = write!(
                    h,
                    "<tr><td>{n}</td><td class=\"{class}\">{}</td></tr>",
                    esc(line)
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Letter by letter</h2>");
        for d in &self.diffs {
            let pages = if d.pages.0 == d.pages.1 {
                format!("{} pages", d.pages.0)
            } else {
                format!("pages {} → {}", d.pages.0, d.pages.1)
            };
            let _ = write!(
                h,
                "<details><summary><strong>{}</strong>: {} lines removed, {} added, {pages}</summary>",
                esc(&d.record),
                d.removed.len(),
                d.added.len()
            );
            if let Some(e) = &d.error {
                let _ = write!(h, "<p class=\"err\">{}</p>", esc(e));
            }
            h.push_str("<pre>");
            for l in &d.lines {
                let (class, text) = match l.split_at(1) {
                    ("-", t) => ("del", format!("− {t}")),
                    ("+", t) => ("ins", format!("+ {t}")),
                    (_, t) => ("same", format!("  {t}")),
                };
                let _ = writeln!(h, "<span class=\"{class}\">{}</span>", esc(&text));
            }
            h.push_str("</pre></details>");
        }
        page(
            &format!("What changes from {} to {}", self.old, self.new),
            &h,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        sentences(&[text.to_owned()]).into_iter().collect()
    }

    #[test]
    fn sentences_end_where_a_reader_ends_them() {
        assert_eq!(
            split("Dear Sr. García, we wrote to Dr. Jones. Call J. Smith on Mon. Thanks!"),
            [
                "Call J. Smith on Mon.",
                "Dear Sr. García, we wrote to Dr. Jones.",
                "Thanks!"
            ]
        );
        assert_eq!(
            split("Адрес: ул. Ленина, д. 5, кв. 12. Мы позвоним."),
            ["Адрес: ул. Ленина, д. 5, кв. 12.", "Мы позвоним."]
        );
    }

    #[test]
    fn lines_of_record_values_are_told_from_prose() {
        let rec: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"name": "James Whitfield", "address": {"line1": "14 Elm Grove", "postcode": "SW19 4HE", "city": "London"}, "amount": 12.5}"#,
        )
        .unwrap();
        let values = record_values(&rec);
        for line in [
            "14 Elm Grove",
            "LONDON",
            "SW19 4HE",
            "London SW19 4HE",
            "James Whitfield,",
        ] {
            assert!(only_values(line, &values), "{line}");
        }
        for line in ["Dear James Whitfield,", "You owe 12.5 today", "Page 1 of 2"] {
            assert!(!only_values(line, &values), "{line}");
        }
    }
}
