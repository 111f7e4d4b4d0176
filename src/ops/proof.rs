//! Proof sets: the records a reviewer must see before signing a version off,
//! in one PDF and one HTML page.
//!
//! A review tool beside the data path. `letterpress proof --layout NAME@N
//! --data FILE --out proof.pdf [--sample K]` reads every record, renders each
//! valid one in memory to measure it, and picks real records that together
//! show the variety of the data:
//!
//! - the shortest and the longest letter (pages, then characters);
//! - the longest name and the longest address;
//! - one record per locale the letters are rendered in;
//! - one record per writing system in the data (Latin, Greek, Cyrillic,
//!   Arabic, Hebrew, Han, Hiragana, Hangul, ...), where a missing glyph, a
//!   line break or the text direction goes wrong first;
//! - one record per channel route (letter and email, letter only, email
//!   only, letter as the fallback for a missing address);
//! - one record per letter format (standard, large print) when the layout
//!   reads the customer's accessibility preference;
//! - one record per combination of optional fields present (fields that
//!   only route or localise the letter are covered by the picks above);
//! - for each list field, the record with the most and the fewest items
//!   (many transactions, none);
//! - K more at random, chosen with `--seed`.
//!
//! It renders them into ONE PDF: a cover page (layout, version, digest,
//! status, approval, as-of date, and for each picked record its proof pages
//! and why it was picked), then the letters, every page marked "PROOF". The
//! picked records' emails go into one HTML page next to it (`proof.html`),
//! each shown as it renders, with its subject, recipient and text part;
//! for a layout with the web channel, their web letters go into a third
//! page (`proof-web.html`), marked too.
//! Drafts can be proofed: that is what proofs are for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::check::record::{id_of, letter_format, record_locale};
use crate::check::route::{self, Decision};
use crate::check::schema::{check_record, Origin};
use crate::error::{Error, Result};
use crate::input::{Input, RawRecord};
use crate::layout::catalog::{Catalog, Layout};
use crate::layout::files::LayoutFiles;
use crate::layout::texts::Texts;
use crate::model::decision::{ProofEvidence, ProofPick};
use crate::model::layout::FieldType;
use crate::model::layout::{LayoutMeta, LayoutRef};
use crate::model::vocab::{Channel, Format, LetterFormat};
use crate::ops::run::load_texts;
use crate::render::email::EmailRenderer;
use crate::render::pdf::Renderer;
use crate::util::clock::Date;

/// The mark on every page of a proof.
pub const PROOF_MARK: &str = "PROOF";

/// What `proof` is asked to do.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// The folder holding the layouts.
    pub layouts_dir: PathBuf,
    /// The trust list the cover page's approval is checked against (as
    /// [`crate::ops::run::RunOptions::trust`]).
    pub trust: Option<PathBuf>,
    /// The layout version (any status).
    pub layout: LayoutRef,
    /// The records to pick from.
    pub data: PathBuf,
    /// Their format, when not taken from the extension.
    pub format: Option<Format>,
    /// The query whose rows are the records, when `data` is a
    /// `postgresql://` URL.
    pub query: Option<String>,
    /// The proof PDF to write; the emails go next to it as `.html`.
    pub out: PathBuf,
    /// The templates' date.
    pub as_of: Date,
    /// Random records on top of the chosen ones.
    pub sample: usize,
    /// The seed of the random choice.
    pub seed: u64,
    /// A folder to draw every picked letter's pages into as PNG images
    /// (`PICK-PAGE.png`, both from 1), for the review workspace.
    pub images: Option<PathBuf>,
}

impl ProofOptions {
    /// A proof of `layout` from the records in `data` into `out`, as of
    /// today (UTC), with 3 random records (seed 1) on top of the chosen
    /// ones, layouts from `layouts`.
    pub fn new(
        layout: LayoutRef,
        data: impl Into<PathBuf>,
        out: impl Into<PathBuf>,
    ) -> ProofOptions {
        ProofOptions {
            layouts_dir: PathBuf::from("layouts"),
            trust: None,
            layout,
            data: data.into(),
            format: None,
            query: None,
            out: out.into(),
            as_of: Date::today_utc(),
            sample: 3,
            seed: 1,
            images: None,
        }
    }
}

/// A picked record.
#[derive(Debug, Clone, Serialize)]
pub struct Pick {
    /// Position in the input.
    pub index: usize,
    /// The record id.
    pub record_id: String,
    /// Why it was picked.
    pub reasons: Vec<String>,
    /// Its pages in the proof PDF, e.g. `3–4`.
    pub proof_pages: String,
    /// Whether its email is in the HTML proof.
    pub email: bool,
    /// Its pages as PNG images, when asked for ([`ProofOptions::images`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PathBuf>,
}

/// The outcome of `proof`.
#[derive(Debug, Serialize)]
pub struct ProofReport {
    /// The layout version proofed.
    pub layout: String,
    /// Records read, valid, and failing to render.
    pub records: usize,
    /// Records that failed the schema or rendering (not proofed).
    pub invalid: usize,
    /// The picked records, in input order.
    pub picks: Vec<Pick>,
    /// The proof PDF.
    pub pdf: PathBuf,
    /// Its page count.
    pub pages: usize,
    /// The HTML proof of the emails, if the layout has an email channel.
    pub html: Option<PathBuf>,
    /// The HTML proof of the web letters, if the layout has the web channel.
    pub web: Option<PathBuf>,
    /// What a reviewer's decision records of the proof set
    /// (`layouts approve --proof`): `proof.json` beside the PDF.
    pub evidence: PathBuf,
}

/// `proof.json`, what `layouts approve --proof` reads: which version, which
/// files, which records and why, what the wording checks said.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProofFile {
    /// The format of this file (1).
    pub letterpress_proof: u32,
    /// The layout version proofed (`NAME@N`).
    pub layout: String,
    /// Its layout digest.
    pub digest: String,
    /// The proof set (its `files` are the PDF and HTML pages beside it).
    pub proof: ProofEvidence,
}

/// `proof.pdf` -> `proof.json`.
fn evidence_path(pdf: &std::path::Path) -> PathBuf {
    pdf.with_extension("json")
}

/// Writes the proof set's `proof.json` beside its PDF.
fn write_evidence(
    report: &ProofReport,
    layout: &Layout,
    digest: &str,
    data_sha256: &str,
    opts: &ProofOptions,
) -> Result<()> {
    let mut files = BTreeMap::new();
    let outputs = [Some(&report.pdf), report.html.as_ref(), report.web.as_ref()];
    for path in outputs.into_iter().flatten() {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(name, crate::util::digest::sha256_hex(&bytes));
    }
    let meta = &layout.meta;
    let rules = format!(
        "{} required and {} forbidden",
        meta.required_text.len(),
        meta.forbidden_text.len()
    );
    let mut wording = vec![format!(
        "all {} picked letters pass the layout's wording checks ({rules})",
        report.picks.len()
    )];
    if report.invalid > 0 {
        wording.push(format!(
            "{} of {} records fail the schema, rendering or the wording checks and were not proofed",
            report.invalid, report.records
        ));
    }
    let file = ProofFile {
        letterpress_proof: 1,
        layout: layout.id(),
        digest: digest.to_owned(),
        proof: ProofEvidence {
            files,
            data_sha256: data_sha256.to_owned(),
            as_of: opts.as_of.to_string(),
            records: report.records,
            picks: report
                .picks
                .iter()
                .map(|p| ProofPick {
                    record: p.record_id.clone(),
                    why: p.reasons.clone(),
                })
                .collect(),
            wording,
        },
    };
    let path = evidence_path(&report.pdf);
    let mut json = serde_json::to_vec_pretty(&file).expect("serializes");
    json.push(b'\n');
    crate::util::fs::write_atomic(&path, &json, true).map_err(|e| Error::io(&path, e))
}

/// What is measured of each valid record.
struct Measured {
    index: usize,
    id: String,
    /// The writing systems of its text (Latin, Greek, Arabic, Han, ...).
    scripts: BTreeSet<&'static str>,
    record: Map<String, Value>,
    locale: &'static crate::layout::locale::Rules,
    format: LetterFormat,
    pages: usize,
    chars: usize,
    name_len: usize,
    address_len: usize,
    route: String,
    to: Option<lettre::Address>,
    optional: Vec<String>,
    lists: Vec<(String, usize)>,
}

/// Picks, renders and writes a proof set; see the module docs.
pub fn proof(opts: &ProofOptions) -> Result<ProofReport> {
    let trust = crate::layout::trust::Trust::find(opts.trust.as_deref())?;
    let catalog = Catalog::load(&opts.layouts_dir, trust.as_ref())?;
    let layout = catalog.resolve(&opts.layout, opts.as_of)?.clone();
    let files = layout.read_files()?;
    let standing = crate::layout::decisions::standing(&layout, &files);
    let digest = files.digest.clone();
    let texts = load_texts(&layout, &files)?;
    let email = match &layout.meta.email {
        Some(settings) => Some(
            EmailRenderer::new(
                &layout,
                settings,
                |rel| files.get(rel).map(<[u8]>::to_vec),
                std::sync::Arc::new(texts.clone()),
                opts.as_of,
                &digest,
                false,
            )
            .map_err(|e| Error::Layout(format!("{}: {e}", layout.id())))?,
        ),
        None => None,
    };
    let measure = Renderer::new(&layout, files.clone(), &texts, opts.as_of, &[], None)?;
    let marked = Renderer::new(&layout, files, &texts, opts.as_of, &[], Some(PROOF_MARK))?;
    let input = Input::new(&opts.data, opts.format, opts.query.as_deref(), &layout.meta)?;
    let data_sha256 = input.scan()?.sha256;

    let work = || -> Result<ProofReport> {
        let (measured, records, invalid) = measure_all(&layout, &texts, &measure, &input)?;
        let mut picks = choose(&layout.meta, &measured, opts.sample, opts.seed);
        if picks.is_empty() {
            return Err(Error::Input(format!(
                "{}: no record renders with {}, nothing to proof",
                opts.data.display(),
                layout.id()
            )));
        }
        let set = Set {
            layout: &layout,
            standing: &standing,
            digest: &digest,
            opts,
            measured: &measured,
            records,
            invalid,
        };
        let pages = set.write_pdf(&marked, &mut picks)?;
        let html = match &email {
            Some(renderer) => Some(set.write_emails(renderer, &marked, &mut picks)?),
            None => None,
        };
        let web = match layout.meta.default_channels().contains(&Channel::Web) {
            true => Some(set.write_web(&marked, &picks)?),
            false => None,
        };
        let report = ProofReport {
            layout: layout.id(),
            records,
            invalid,
            pages,
            picks,
            pdf: opts.out.clone(),
            html,
            web,
            evidence: evidence_path(&opts.out),
        };
        write_evidence(&report, &layout, &digest, &data_sha256, opts)?;
        Ok(report)
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, work)
            .map_err(|e| Error::Output(format!("cannot start a thread: {e}")))?
            .join()
            .expect("the proof thread does not panic")
    })
}

/// Draws the pages of pick number `n` into `dir` as `n-PAGE.png`.
fn draw_pages(marked: &Renderer, m: &Measured, dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let images = marked
        .page_images(&m.record, m.locale)
        .map_err(|e| Error::Layout(format!("record {}: {e}", m.id)))?;
    let mut paths = Vec::new();
    for (i, png) in images.iter().enumerate() {
        let path = dir.join(format!("{n}-{}.png", i + 1));
        crate::util::fs::write_atomic(&path, png, false).map_err(|e| Error::io(&path, e))?;
        paths.push(path);
    }
    Ok(paths)
}

/// A proof set being written: the layout version and what was read.
struct Set<'a> {
    layout: &'a Layout,
    standing: &'a crate::layout::decisions::Standing,
    digest: &'a str,
    opts: &'a ProofOptions,
    measured: &'a [Measured],
    records: usize,
    invalid: usize,
}

impl Set<'_> {
    fn measured(&self, p: &Pick) -> &Measured {
        self.measured
            .iter()
            .find(|m| m.index == p.index)
            .expect("picked from measured")
    }

    /// Writes the proof PDF: a cover saying why each record was picked and
    /// on which pages it is, then the letters, every page marked. Sets each
    /// pick's pages; returns the page count.
    fn write_pdf(&self, marked: &Renderer, picks: &mut [Pick]) -> Result<usize> {
        let mut letters = Vec::new();
        for (n, p) in picks.iter_mut().enumerate() {
            let m = self.measured(p);
            let pdf = marked
                .render(&m.id, &m.record, m.locale)
                .map_err(|e| Error::Layout(format!("record {}: {e}", m.id)))?;
            letters.push(pdf);
            if let Some(dir) = &self.opts.images {
                p.images = draw_pages(marked, m, dir, n + 1)?;
            }
        }
        // The cover, twice: the second time with the proof pages of each
        // letter, which depend on the cover's own length.
        let first = self.cover(picks)?;
        let mut page = first.pages + 1;
        for (p, l) in picks.iter_mut().zip(&letters) {
            p.proof_pages = if l.pages == 1 {
                page.to_string()
            } else {
                format!("{page}–{}", page + l.pages - 1)
            };
            page += l.pages;
        }
        let cover = self.cover(picks)?;
        let mut parts = vec![(cover.pdf, cover.pages)];
        parts.extend(letters.into_iter().map(|l| (l.pdf, l.pages)));
        let title = format!("Proof: {}", self.layout.id());
        let pdf = crate::output::print::combine(&parts, Some(&title))
            .map_err(|e| Error::Output(format!("cannot assemble the proof PDF: {e}")))?;
        let out = &self.opts.out;
        crate::util::fs::write_atomic(out, &pdf, true).map_err(|e| Error::io(out, e))?;
        Ok(page - 1)
    }

    fn cover(&self, picks: &[Pick]) -> Result<crate::render::pdf::Rendered> {
        cover(
            self.layout,
            self.standing,
            self.digest,
            self.opts,
            self.records,
            self.invalid,
            picks,
        )
    }

    /// Writes the HTML page of the picked records' emails next to the PDF;
    /// marks the picks that have one. Returns the page's path.
    fn write_emails(
        &self,
        renderer: &EmailRenderer,
        marked: &Renderer,
        picks: &mut [Pick],
    ) -> Result<PathBuf> {
        let mut sections = Vec::new();
        for p in picks.iter_mut() {
            let m = self.measured(p);
            let Some(to) = &m.to else { continue };
            // The proof shows the email itself; the letter it would carry
            // is in the proof PDF.
            let letter = renderer
                .attaches_letter()
                .then(|| marked.render(&m.id, &m.record, m.locale).map(|r| r.pdf))
                .transpose()
                .map_err(|e| Error::Layout(format!("record {}: {e}", m.id)))?;
            match renderer.render(
                &m.id,
                &m.record,
                to,
                m.locale,
                self.opts.as_of,
                letter.as_deref(),
            ) {
                Ok(e) => {
                    p.email = true;
                    sections.push((p.clone(), Some(e), None));
                }
                Err(why) => sections.push((p.clone(), None, Some(why))),
            }
        }
        let path = self.opts.out.with_extension("html");
        let page = email_page(self.layout, self.digest, self.opts.as_of, &sections);
        crate::util::fs::write_atomic(&path, page.as_bytes(), true)
            .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

impl Set<'_> {
    /// Writes the HTML page of the picked records' web letters next to the
    /// PDF (`<name>-web.html`), each marked and shown as it renders.
    /// Returns the page's path.
    fn write_web(&self, marked: &Renderer, picks: &[Pick]) -> Result<PathBuf> {
        let sections: Vec<(&Pick, Option<std::result::Result<String, String>>)> = picks
            .iter()
            .map(|p| {
                let m = self.measured(p);
                let shown = marked.render_web(&m.record, m.locale).map(|web| {
                    format!(
                        "<iframe sandbox title=\"Web letter of {}\" srcdoc=\"{}\"></iframe>",
                        esc(&p.record_id),
                        esc(&web.html)
                    )
                });
                (p, Some(shown))
            })
            .collect();
        let stem = self
            .opts
            .out
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let path = self.opts.out.with_file_name(format!("{stem}-web.html"));
        let what = ("Web letter proof", "web letters", "web letter");
        let page = proof_page(what, self.layout, self.digest, self.opts.as_of, &sections);
        crate::util::fs::write_atomic(&path, page.as_bytes(), true)
            .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

/// Reads, checks and measures every record. Returns the valid ones, the
/// number read and the number that could not be proofed.
fn measure_all(
    layout: &Layout,
    texts: &Texts,
    measure: &Renderer,
    input: &Input,
) -> Result<(Vec<Measured>, usize, usize)> {
    let origin = if input.format.typed() {
        Origin::Json
    } else {
        Origin::Text
    };
    let (mut out, mut records, mut invalid) = (Vec::new(), 0, 0);
    for raw in input.records()? {
        let raw = raw?;
        records += 1;
        match measure_one(&layout.meta, texts, measure, origin, raw) {
            Some(m) => out.push(m),
            None => invalid += 1,
        }
    }
    Ok((out, records, invalid))
}

/// One record checked, rendered to text and measured; `None` if it cannot
/// be proofed (invalid, or it does not render).
fn measure_one(
    meta: &LayoutMeta,
    texts: &Texts,
    measure: &Renderer,
    origin: Origin,
    raw: RawRecord,
) -> Option<Measured> {
    let record = check_record(raw.data.ok()?, &meta.fields, origin).ok()?;
    let id = id_of(&record, &meta.id_field)?;
    let locale = record_locale(meta, texts, &record);
    let format = letter_format(meta.accessibility_field.as_deref(), &record).ok()?;
    let r = measure.text_lines(&id, &record, locale).ok()?;
    let chars = r.lines.iter().flatten().map(|l| l.chars().count()).sum();
    let text_len = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Object(o)) => o
            .values()
            .filter_map(Value::as_str)
            .map(|s| s.chars().count())
            .sum(),
        _ => 0,
    };
    let name_len = meta
        .fields
        .iter()
        .filter(|f| f.kind == FieldType::String && f.name.contains("name"))
        .map(|f| text_len(record.get(&f.name)))
        .sum();
    let (route, to) = routes_of(meta, &record);
    Some(Measured {
        index: raw.index,
        id,
        scripts: scripts_of(&Value::Object(record.clone())),
        locale,
        format,
        pages: r.pages,
        chars,
        name_len,
        address_len: text_len(record.get("address")),
        route,
        to,
        optional: optional_fields(meta, &record),
        lists: list_sizes(meta, &record),
        record,
    })
}

/// The channels a record goes to on the layout's channels, in words, and
/// its email address if it gets an email.
fn routes_of(meta: &LayoutMeta, record: &Map<String, Value>) -> (String, Option<lettre::Address>) {
    let routed = route::route(meta, record, &meta.default_channels(), None, None, None);
    let route = routed
        .decisions
        .iter()
        .filter_map(|(c, d)| match d {
            Decision::Render(Some(_)) => Some(format!("{} (fallback)", c.name())),
            Decision::Render(None) => Some(c.name().to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let to = routed
        .decisions
        .iter()
        .any(|(c, d)| *c == Channel::Email && matches!(d, Decision::Render(_)))
        .then(|| routed.to.clone())
        .flatten();
    match route.is_empty() {
        true => ("nothing (suppressed)".into(), to),
        false => (route, to),
    }
}

/// The optional fields the record fills in; fields that only route or
/// localise the letter have picks of their own and are left out.
fn optional_fields(meta: &LayoutMeta, record: &Map<String, Value>) -> Vec<String> {
    let present = |v: Option<&Value>| match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    };
    let routing = [
        meta.locale_field.as_deref(),
        meta.preference_field.as_deref(),
        meta.accessibility_field.as_deref(),
        meta.email.as_ref().map(|e| e.to_field.as_str()),
    ];
    meta.fields
        .iter()
        .filter(|f| !f.required && f.kind != FieldType::List && present(record.get(&f.name)))
        .filter(|f| !routing.contains(&Some(f.name.as_str())))
        .map(|f| f.name.clone())
        .collect()
}

/// The number of items in each list field of the record.
fn list_sizes(meta: &LayoutMeta, record: &Map<String, Value>) -> Vec<(String, usize)> {
    meta.fields
        .iter()
        .filter(|f| f.kind == FieldType::List)
        .map(|f| {
            let n = record
                .get(&f.name)
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (f.name.clone(), n)
        })
        .collect()
}

/// The writing systems (Unicode scripts) of every text value of a record;
/// characters common to all scripts (digits, punctuation) count for none.
fn scripts_of(v: &Value) -> BTreeSet<&'static str> {
    use unicode_script::{Script, UnicodeScript};
    let mut out = BTreeSet::new();
    let mut walk = vec![v];
    while let Some(v) = walk.pop() {
        match v {
            Value::String(s) => {
                for c in s.chars().filter(|c| c.is_alphabetic()) {
                    match c.script() {
                        Script::Common | Script::Inherited | Script::Unknown => {}
                        script => {
                            out.insert(script.full_name());
                        }
                    }
                }
            }
            Value::Array(items) => walk.extend(items),
            Value::Object(m) => walk.extend(m.values()),
            _ => {}
        }
    }
    out
}

/// Chooses the records of the proof set, each with its reasons.
fn choose(meta: &LayoutMeta, all: &[Measured], sample: usize, seed: u64) -> Vec<Pick> {
    let mut reasons: Reasons = BTreeMap::new();
    extremes(all, &mut reasons);
    firsts(meta, all, &mut reasons);
    list_extremes(meta, all, &mut reasons);
    // Seeded random ones among the rest.
    let mut rest: Vec<&Measured> = all
        .iter()
        .filter(|m| !reasons.contains_key(&m.index))
        .collect();
    let mut rng = crate::util::rng::Rng::new(seed);
    for _ in 0..sample.min(rest.len()) {
        let i = rng.below(rest.len() as u64) as usize;
        let m = rest.swap_remove(i);
        reasons
            .entry(m.index)
            .or_default()
            .push(format!("random sample (seed {seed})"));
    }
    reasons
        .into_iter()
        .map(|(index, reasons)| Pick {
            index,
            record_id: all
                .iter()
                .find(|m| m.index == index)
                .map(|m| m.id.clone())
                .unwrap_or_default(),
            reasons,
            proof_pages: String::new(),
            email: false,
            images: Vec::new(),
        })
        .collect()
}

/// Why each picked record (by input position) was picked.
type Reasons = BTreeMap<usize, Vec<String>>;

/// The most and fewest items of each list.
fn list_extremes(meta: &LayoutMeta, all: &[Measured], reasons: &mut Reasons) {
    let mut add = |m: &Measured, why: String| reasons.entry(m.index).or_default().push(why);
    for (i, f) in meta
        .fields
        .iter()
        .filter(|f| f.kind == FieldType::List)
        .enumerate()
    {
        let n = |m: &&Measured| m.lists[i].1;
        if let Some(m) = all.iter().rev().max_by_key(n) {
            add(m, format!("most {} ({})", f.name, m.lists[i].1));
        }
        if let Some(m) = all.iter().min_by_key(n) {
            add(m, format!("fewest {} ({})", f.name, m.lists[i].1));
        }
    }
}

/// The shortest and longest letter, the longest name and address.
fn extremes(all: &[Measured], reasons: &mut Reasons) {
    let mut add = |m: &Measured, why: String| reasons.entry(m.index).or_default().push(why);
    let size = |m: &&Measured| (m.pages, m.chars);
    if let Some(m) = all.iter().min_by_key(size) {
        add(
            m,
            format!(
                "shortest letter ({}, {})",
                count(m.pages, "page", "pages"),
                count(m.chars, "character", "characters")
            ),
        );
    }
    if let Some(m) = all.iter().rev().max_by_key(size) {
        add(
            m,
            format!(
                "longest letter ({}, {})",
                count(m.pages, "page", "pages"),
                count(m.chars, "character", "characters")
            ),
        );
    }
    let name: fn(&Measured) -> usize = |m| m.name_len;
    let address: fn(&Measured) -> usize = |m| m.address_len;
    for (what, len) in [("name", name), ("address", address)] {
        if let Some(m) = all
            .iter()
            .rev()
            .max_by_key(|m| len(m))
            .filter(|m| len(m) > 0)
        {
            add(m, format!("longest {what} ({} characters)", len(m)));
        }
    }
}

/// The first record of each writing system, locale, route and set of
/// optional fields present.
fn firsts(meta: &LayoutMeta, all: &[Measured], reasons: &mut Reasons) {
    let mut add = |m: &Measured, why: String| reasons.entry(m.index).or_default().push(why);
    // One record per writing system in the data: a font, a line break or a
    // direction that is wrong shows on such a record first.
    let mut seen_scripts = BTreeSet::new();
    for m in all {
        for script in &m.scripts {
            if seen_scripts.insert(*script) {
                add(m, format!("script: {script}"));
            }
        }
    }
    let mut firsts = |key: &dyn Fn(&Measured) -> String, label: &str| {
        let mut seen = BTreeSet::new();
        for m in all {
            let k = key(m);
            if seen.insert(k.clone()) {
                add(m, format!("{label}: {k}"));
            }
        }
    };
    firsts(&|m| m.locale.tag.to_string(), "locale");
    if meta.email.is_some() {
        firsts(&|m| m.route.clone(), "channels");
    }
    if meta.accessibility_field.is_some() {
        firsts(&|m| m.format.name().to_string(), "format");
    }
    firsts(
        &|m| {
            if m.optional.is_empty() {
                "none".into()
            } else {
                m.optional.join(", ")
            }
        },
        "optional fields present",
    );
}

/// The cover page's Typst source; its data comes in as the record.
const COVER: &str = r#"#let d = json("/record.json")
#set page(paper: d.paper, margin: 2cm)
#set text(font: "Libertinus Serif", size: 10pt)
#set document(title: "Proof: " + d.layout)
#text(size: 20pt, weight: "bold")[Proof: #d.layout]

#text(size: 12pt)[#d.title]

#table(
  columns: (auto, 1fr),
  stroke: 0.4pt + gray,
  [Layout version], [#d.layout],
  [Status], [#d.status],
  [Approval], [#d.approval],
  [Digest], text(size: 8pt, d.digest),
  [As-of date], [#d.as_of],
  [Data], [#d.data],
  [Records], [#d.records read, #d.invalid not proofed (invalid or failing), #d.picks.len() picked],
)

#text(size: 13pt, weight: "bold")[Picked records and why]

#table(
  columns: (auto, auto, 1fr),
  stroke: 0.4pt + gray,
  table.header([*Record*], [*Proof pages*], [*Why it was picked*]),
  ..d.picks.map(p => ([#p.record_id], [#p.proof_pages], p.reasons.map(r => [#r]).join(linebreak()))).flatten(),
)
"#;

fn cover(
    layout: &Layout,
    standing: &crate::layout::decisions::Standing,
    digest: &str,
    opts: &ProofOptions,
    records: usize,
    invalid: usize,
    picks: &[Pick],
) -> Result<crate::render::pdf::Rendered> {
    let yaml = format!(
        "name: proof-cover\nversion: 1\ntitle: Proof\nstatus: draft\nid_field: id\npage: {{format: {}, max_pages: 100}}\nfields: [{{name: id, type: string, required: true}}]\n",
        layout.meta.page.format.name()
    );
    let meta: LayoutMeta = serde_yaml::from_str(&yaml).expect("the cover metadata parses");
    let cover_layout = Layout {
        meta,
        dir: layout.dir.clone(),
        state: crate::layout::decisions::State::NoTrust,
        review: Default::default(),
    };
    let files = LayoutFiles {
        files: vec![("letter.typ".into(), COVER.as_bytes().to_vec())],
        digest: String::new(),
        hashes: BTreeMap::new(),
    };
    let renderer = Renderer::new(
        &cover_layout,
        files,
        &Texts::default(),
        opts.as_of,
        &[],
        Some(PROOF_MARK),
    )?;
    let data = json!({
        "id": "cover",
        "paper": layout.meta.page.format.name(),
        "layout": layout.id(),
        "title": layout.meta.title,
        "status": standing.state.short(),
        "approval": standing.describe(),
        "digest": digest,
        "as_of": opts.as_of.to_string(),
        "data": opts.data.display().to_string(),
        "records": records,
        "invalid": invalid,
        "picks": picks,
    });
    let rules = crate::layout::locale::rules("en-GB").expect("supported");
    renderer
        .render(
            "proof-cover",
            data.as_object().expect("the cover data is an object"),
            rules,
        )
        .map_err(|e| Error::Layout(format!("the proof cover: {e}")))
}

use crate::util::html::{escape_html as esc, page};
use crate::util::text::count;

/// The HTML proof of the picked records' emails: each shown as it renders
/// (in a sandboxed frame), with recipient, subject and text part.
fn email_page(
    layout: &Layout,
    digest: &str,
    as_of: Date,
    sections: &[(Pick, Option<crate::render::email::Email>, Option<String>)],
) -> String {
    let shown: Vec<(&Pick, Option<std::result::Result<String, String>>)> = sections
        .iter()
        .map(|(p, email, err)| {
            let shown = match (email, err) {
                (Some(e), _) => Some(Ok(format!(
                    "<p><strong>To:</strong> {} &nbsp; <strong>Subject:</strong> {}</p><iframe sandbox title=\"{}\" srcdoc=\"{}\"></iframe><details><summary>Text part</summary><pre class=\"text\">{}</pre></details>",
                    esc(&e.to),
                    esc(&e.subject),
                    esc(&e.subject),
                    esc(&e.html),
                    esc(&e.text)
                ))),
                (None, Some(why)) => Some(Err(why.clone())),
                (None, None) => None,
            };
            (p, shown)
        })
        .collect();
    proof_page(
        ("Email proof", "emails", "email"),
        layout,
        digest,
        as_of,
        &shown,
    )
}

/// An HTML proof page of `what` (its title, plural and singular): a
/// section per pick saying why it was picked, then how its document
/// renders or why it fails.
fn proof_page(
    (title, plural, one): (&str, &str, &str),
    layout: &Layout,
    digest: &str,
    as_of: Date,
    sections: &[(&Pick, Option<std::result::Result<String, String>>)],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<p class=\"mark\">PROOF</p><h1>{title}: {id}</h1><p>{name}. Digest <code>{digest}</code>. As of {as_of}. {n} {plural}.</p>",
        id = esc(&layout.id()),
        name = esc(&layout.meta.title),
        digest = esc(digest),
        n = sections.iter().filter(|s| matches!(s.1, Some(Ok(_)))).count()
    );
    for (p, shown) in sections {
        let _ = write!(
            h,
            "<section><h2>{} <span class=\"mark\">PROOF</span></h2><p>Why: {}</p>",
            esc(&p.record_id),
            esc(&p.reasons.join("; "))
        );
        match shown {
            Some(Ok(html)) => h.push_str(html),
            Some(Err(why)) => {
                let _ = write!(h, "<p class=\"err\">This {one} fails: {}</p>", esc(why));
            }
            None => {}
        }
        h.push_str("</section>");
    }
    page(&format!("{title}: {}", layout.id()), &h)
}
