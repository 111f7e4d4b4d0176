//! `report.html`: a run at a glance, for the people who do not read JSON.
//!
//! After stage 5. Every run writes `<out>/report.html` after its manifest:
//! one self-contained file (inline CSS and SVG, no JavaScript, no fonts or
//! images from anywhere) with the layout version and its approval, totals
//! per channel and status, failures grouped by reason with their record
//! ids, a histogram of pages per letter, throughput over the run, and links
//! to a few letters and emails. Everything in it comes from the manifest and
//! the journal, except the throughput samples, which the run takes as it
//! goes. It is not part of the audit record (the manifest is), so `verify`
//! does not check it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::manifest::journal;
use crate::model::manifest::Manifest;
use crate::model::print::{Outcome, Piece, PieceEvent};
use crate::model::vocab::DocStatus;

/// The report's file name in the run folder.
pub const REPORT_FILE: &str = "report.html";

/// Record ids shown per failure reason.
const IDS_SHOWN: usize = 20;

/// Unmatched suppression list entries shown (the manifest lists them all).
const UNMATCHED_SHOWN: usize = 50;

/// Sample documents linked per channel.
const SAMPLES: usize = 5;

/// Progress at one moment of a run: seconds since its start, documents done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the run started.
    pub seconds: f64,
    /// Documents done (rendered, failed or suppressed) by then.
    pub documents: usize,
}

/// What the report shows, gathered from the journal.
#[derive(Debug, Default)]
pub struct Summary {
    /// Failure reason (without the record prefix) -> the records failing so.
    pub failures: BTreeMap<String, Failure>,
    /// Suppression reason (the list and its line) -> documents withheld.
    pub suppressed: BTreeMap<String, usize>,
    /// Why a channel was not used (preference, fallback) -> documents.
    pub routed_elsewhere: BTreeMap<String, usize>,
    /// Why a letter was held (the return that holds its address) ->
    /// letters.
    pub held: BTreeMap<String, usize>,
    /// Pages per letter -> letters.
    pub pages: BTreeMap<usize, usize>,
    /// Letter format (`standard`, `large-print`) -> letters, for layouts
    /// that read the customer's accessibility preference.
    pub formats: BTreeMap<&'static str, usize>,
    /// What in the contact history took email away -> customers.
    pub history: BTreeMap<&'static str, usize>,
    /// A few rendered documents per channel: (channel, record id, path).
    pub samples: Vec<(String, String, String)>,
}

/// The records that failed for one reason.
#[derive(Debug, Default)]
pub struct Failure {
    /// How many.
    pub records: usize,
    /// The first record ids (up to 20), in input order.
    pub ids: Vec<String>,
    /// Input position of the last record counted (a record failing on two
    /// channels for the same reason counts once).
    last: Option<usize>,
}

/// Reads the journal in `folder` into a [`Summary`].
pub fn summarize(folder: &Path) -> Result<Summary> {
    let mut s = Summary::default();
    let mut per_channel: BTreeMap<String, usize> = BTreeMap::new();
    for d in journal::documents(folder)? {
        let d = d?;
        let id = || {
            d.record_id
                .clone()
                .unwrap_or_else(|| format!("line {}", d.line))
        };
        match d.status {
            DocStatus::Failed => {
                let why = d.reason().to_owned();
                let f = s.failures.entry(why).or_default();
                if f.last != Some(d.index) {
                    f.last = Some(d.index);
                    f.records += 1;
                    if f.ids.len() < IDS_SHOWN {
                        f.ids.push(id());
                    }
                }
            }
            DocStatus::Suppressed | DocStatus::RoutedElsewhere | DocStatus::Held => {
                let reason = d.error.as_deref().unwrap_or_default();
                if let Some(class) = history_class(d.status, &d.channel, reason) {
                    *s.history.entry(class).or_default() += 1;
                }
                let map = match d.status {
                    DocStatus::Suppressed => &mut s.suppressed,
                    DocStatus::Held => &mut s.held,
                    _ => &mut s.routed_elsewhere,
                };
                *map.entry(reason.to_owned()).or_default() += 1;
            }
            DocStatus::Rendered => {
                if d.channel == "pdf" {
                    *s.pages.entry(d.pages).or_default() += 1;
                    if let Some(format) = d.format {
                        *s.formats.entry(format.name()).or_default() += 1;
                    }
                }
                let shown = per_channel.entry(d.channel.clone()).or_default();
                if *shown < SAMPLES {
                    *shown += 1;
                    // An email is linked by its HTML part, which a browser shows.
                    let path = d
                        .files
                        .iter()
                        .find(|f| f.path.ends_with(".html"))
                        .map(|f| f.path.clone())
                        .or(d.path.clone())
                        .unwrap_or_default();
                    s.samples.push((d.channel.clone(), id(), path));
                }
            }
        }
    }
    Ok(s)
}

/// The kind of contact history that decided a route, from the entry's
/// status, channel and reason (one entry a customer: the email entry, or
/// the letter's for a returned letter).
fn history_class(status: DocStatus, channel: &str, reason: &str) -> Option<&'static str> {
    let returned = reason.contains("came back undeliverable");
    if status == DocStatus::Held {
        Some("returned letter: letter held")
    } else if returned && channel == "pdf" && status == DocStatus::RoutedElsewhere {
        Some("returned letter: email instead of the letter")
    } else if channel != "email" {
        None
    } else if reason.contains("the customer complained") {
        Some("complaint: email suppressed")
    } else if reason.contains("the contact history has a hard bounce") {
        Some("hard bounce: letter instead of email")
    } else if reason.contains("soft bounces in a row") {
        Some("soft bounces in a row: letter instead of email")
    } else {
        None
    }
}

/// Writes `<folder>/report.html` for a finished run; `links` is the path
/// from the report to the documents' root (`""`, or `"../"` for a shard).
pub fn write(
    folder: &Path,
    manifest: &Manifest,
    samples: &[Sample],
    links: &str,
) -> Result<std::path::PathBuf> {
    let summary = summarize(folder)?;
    let html = html(manifest, &summary, samples, links);
    let path = folder.join(REPORT_FILE);
    crate::util::fs::write_atomic(&path, html.as_bytes(), false)
        .map_err(|e| crate::error::Error::io(&path, e))?;
    Ok(path)
}

use crate::util::html::{escape_html as esc, page};
use crate::util::text::count;

/// A reason as HTML: escaped, with what it quotes between backticks (a
/// field's name, a value) set as code, as the terminal shows it quoted.
fn reason(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return esc(text); // an odd backtick: shown as it is
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| match i % 2 {
            0 => esc(p),
            _ => format!("<code>{}</code>", esc(p)),
        })
        .collect()
}

/// The report page: a section per question a reader has (did it work,
/// which version, how many, what failed and why, what was withheld, how
/// fast), each written by its own function.
pub fn html(m: &Manifest, s: &Summary, samples: &[Sample], links: &str) -> String {
    let mut h = String::with_capacity(16 << 10);
    head(&mut h, m);
    layout_section(&mut h, m);
    totals_section(&mut h, m);
    failures_section(&mut h, m, s);
    reason_table(
        &mut h,
        "Suppressed: withheld by the suppression list",
        &s.suppressed,
    );
    unmatched_section(&mut h, m);
    reason_table(
        &mut h,
        "Routed elsewhere: reached on another channel",
        &s.routed_elsewhere,
    );
    reason_table(
        &mut h,
        "Held: letters to an address whose mail came back",
        &s.held,
    );
    if !s.pages.is_empty() {
        h.push_str("<h2>Pages per letter</h2>\n");
        h.push_str(&histogram(&s.pages));
    }
    count_table(
        &mut h,
        "Routed by the contact history",
        ("Why", "Customers"),
        &s.history,
    );
    if !s.history.is_empty() {
        h.push_str("<p class=\"muted\">Each customer's reason, with the event's date and source, is in the tables above and in the manifest.</p>\n");
    }
    count_table(
        &mut h,
        "Letters by format",
        ("Format", "Letters"),
        &s.formats,
    );
    print_section(&mut h, m);
    h.push_str(PIECES_START);
    h.push_str(PIECES_END);
    h.push_str("<h2>Throughput</h2>\n");
    h.push_str(&throughput(samples));
    samples_section(&mut h, s, links);
    h.push_str("<p class=\"muted\">The audit record is <code>manifest.json</code> with <code>documents.jsonl</code>; <code>letterpress verify</code> checks every file. This page is a summary of them.</p>");
    page(
        &format!("{}@{} run {}", m.layout.name, m.layout.version, m.run_id),
        &h,
    )
}

/// The title, the run's dates and the verdict.
fn head(h: &mut String, m: &Manifest) {
    let t = &m.totals;
    let verdict = if t.failed == 0 {
        (
            "ok",
            "No document failed: every record was rendered, withheld by the suppression list, held for a returned letter, or routed to another channel.".to_string(),
        )
    } else {
        (
            "bad",
            format!(
                "{} document{} failed: see the reasons below; the run exits 1.",
                t.failed,
                if t.failed == 1 { "" } else { "s" }
            ),
        )
    };
    let _ = write!(
        h,
        r#"<h1>{layout} <span class="muted">run report</span></h1>
<p class="muted">Run <code>{run}</code>, as of {as_of}, started {started}, finished {finished}{shard}.</p>
<div class="verdict {vclass}" role="status">{vtext}</div>
"#,
        layout = esc(&format!(
            "{}@{}: {}",
            m.layout.name, m.layout.version, m.layout.title
        )),
        run = esc(&m.run_id),
        as_of = esc(&m.as_of),
        started = esc(&m.started_at),
        finished = esc(&m.finished_at),
        shard = m.shard.map_or(String::new(), |s| format!(", shard {s}")),
        vclass = verdict.0,
        vtext = esc(&verdict.1),
    );
    if m.draft {
        h.push_str(r#"<p class="draft"><strong>Draft run.</strong> This layout version may not go to customers; every page is marked DRAFT - NOT APPROVED.</p>"#);
    }
}

/// Which layout version, approved by whom, on which input.
fn layout_section(h: &mut String, m: &Manifest) {
    h.push_str("<h2>Layout version and approval</h2>\n<dl>\n");
    let approval = match &m.layout.approval {
        Some(a) if !a.approvals.is_empty() && a.files_match => {
            let by: Vec<String> = a
                .approvals
                .iter()
                .map(|d| format!("{} as {} on {}", d.by, d.role, d.at.get(..10).unwrap_or("")))
                .collect();
            let submitted = a
                .submitted
                .as_ref()
                .map(|d| {
                    format!(
                        "; submitted by {} on {}",
                        d.by,
                        d.at.get(..10).unwrap_or("")
                    )
                })
                .unwrap_or_default();
            format!(
                "approved by {} for letters from {}{submitted}; signed records in approval/",
                by.join(" and "),
                a.from.as_deref().unwrap_or("?")
            )
        }
        Some(a) => format!("not approved: {}", a.standing),
        None => "no approval record".into(),
    };
    let trust = m.layout.approval.as_ref().and_then(|a| a.trust.as_ref());
    let trust = match trust {
        Some(t) if t.demo => format!("{} (the DEMO list: its approvals prove nothing)", t.path),
        Some(t) => format!(
            "{} (SHA-256 {})",
            t.path,
            &t.sha256[..16.min(t.sha256.len())]
        ),
        None => "none".into(),
    };
    for (k, v) in [
        ("Layout", format!("{}@{}", m.layout.name, m.layout.version)),
        ("Status", m.layout.status.clone()),
        ("Approval", approval),
        ("Trust list", trust),
        ("In effect", m.layout.effective.clone()),
        ("Digest", m.layout.digest.clone()),
        (
            "Input",
            format!(
                "{} ({}, {} records, SHA-256 {})",
                m.input.path,
                m.input.format,
                m.input.records,
                &m.input.sha256[..16.min(m.input.sha256.len())]
            ),
        ),
        ("Channels", m.options.channels.join(", ")),
        ("Engine", format!("letterpress {}", m.engine.version)),
    ] {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    h.push_str("</dl>\n");
}

/// Documents per channel and in all.
fn totals_section(h: &mut String, m: &Manifest) {
    let t = &m.totals;
    h.push_str(
        "<h2>Totals</h2>\n<table>\n<thead><tr><th>Channel</th><th class=\"n\">Records</th><th class=\"n\">Rendered</th><th class=\"n\">Failed</th><th class=\"n\">Suppressed</th><th class=\"n\">Routed elsewhere</th><th class=\"n\">Held</th><th class=\"n\">Pages</th><th class=\"n\">MB</th></tr></thead>\n<tbody>\n",
    );
    for (name, c) in &t.channels {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td></tr>",
            esc(name),
            c.records,
            c.rendered,
            c.failed,
            c.suppressed,
            c.routed_elsewhere,
            c.held,
            c.pages,
            c.bytes as f64 / 1e6
        );
    }
    let _ = writeln!(
        h,
        "<tr><th>All</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{:.1}</th></tr>\n</tbody>\n</table>",
        t.documents, t.rendered, t.failed, t.suppressed, t.routed_elsewhere, t.held, t.pages, t.bytes as f64 / 1e6
    );
    h.push_str(
        "<p class=\"muted\">The All row counts documents (one per record and channel).</p>\n",
    );
}

/// The failures, grouped by reason.
fn failures_section(h: &mut String, m: &Manifest, s: &Summary) {
    let t = &m.totals;
    let failed_records: usize = s.failures.values().map(|f| f.records).sum();
    let _ = writeln!(
        h,
        "<h2>Failures: {} of {}</h2>",
        count(t.failed, "document", "documents"),
        count(failed_records, "record", "records")
    );
    if s.failures.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table>\n<thead><tr><th class=\"n\">Records</th><th>Reason</th><th>Record ids</th></tr></thead>\n<tbody>\n");
        let mut groups: Vec<(&String, &Failure)> = s.failures.iter().collect();
        groups.sort_by(|a, b| b.1.records.cmp(&a.1.records).then(a.0.cmp(b.0)));
        for (why, f) in groups {
            let mut shown: Vec<String> = f.ids.iter().map(|i| esc(i)).collect();
            if f.records > f.ids.len() {
                shown.push(format!("and {} more", f.records - f.ids.len()));
            }
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                f.records,
                reason(why),
                shown.join(", ")
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
}

/// The print files of a print run, and what householding saved.
fn print_section(h: &mut String, m: &Manifest) {
    let Some(p) = &m.print else {
        return;
    };
    let pieces: usize = p.files.iter().map(|f| f.pieces).sum();
    let sheets: usize = p.files.iter().map(|f| f.sheets).sum();
    let _ = writeln!(
        h,
        "<h2>Print</h2>\n<p>{}, {} in {}, in mailing order; the job ticket is <code>print/job-ticket.csv</code>.</p>",
        count(pieces, "mail piece", "mail pieces"),
        count(sheets, "sheet", "sheets"),
        count(p.files.len(), "print file", "print files")
    );
    if let Some(hh) = &p.household {
        let _ = writeln!(
            h,
            "<p>Householding: {} in {}, {} and their postage saved.</p>",
            count(hh.letters, "letter", "letters"),
            count(hh.pieces, "piece", "pieces"),
            count(hh.saved, "piece", "pieces")
        );
    }
}

/// Where the mail pieces' section stands in the report, rewritten by each
/// `reconcile`.
const PIECES_START: &str = "<!-- pieces -->\n";
const PIECES_END: &str = "<!-- /pieces -->\n";

/// How many open pieces the report lists by name.
const OPEN_SHOWN: usize = 50;

/// Rewrites the mail pieces' section of a print run's report from the
/// pieces journal: each piece's latest outcome, and the pieces still open
/// with their reprint. A report without the section (written before it
/// existed) is left as it is.
pub fn refresh_pieces(folder: &Path, pieces: &[&Piece], events: &[PieceEvent]) -> Result<()> {
    let path = folder.join(REPORT_FILE);
    let Ok(old) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let (Some(a), Some(b)) = (old.find(PIECES_START), old.find(PIECES_END)) else {
        return Ok(());
    };
    let mut h = String::new();
    h.push_str(&old[..a + PIECES_START.len()]);
    pieces_section(&mut h, pieces, events);
    h.push_str(&old[b..]);
    crate::util::fs::write_atomic(&path, h.as_bytes(), false)
        .map_err(|e| crate::error::Error::io(&path, e))
}

/// The latest outcome of every piece the journal names, counted, and the
/// open ones listed.
fn pieces_section(h: &mut String, pieces: &[&Piece], events: &[PieceEvent]) {
    let mut last: BTreeMap<u32, &PieceEvent> = BTreeMap::new();
    for e in events {
        last.insert(e.piece, e);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut open = Vec::new();
    for p in pieces {
        let word = match last.get(&p.sequence) {
            None => "not reported yet".to_string(),
            Some(e) if e.closes(p) && e.outcome == Outcome::Diverted => {
                "diverted as planned (hand insert)".into()
            }
            Some(e) if e.closes(p) => e.outcome.name().into(),
            Some(e) => {
                open.push((p, *e));
                format!("{}: to reprint", e.outcome.name())
            }
        };
        *counts.entry(word).or_default() += 1;
    }
    let _ = writeln!(
        h,
        "<h2>Mail pieces: {} of {} inserted</h2>\n<p>As the inserter reported them (<code>letterpress reconcile</code>; every report is in <code>print/pieces.jsonl</code>).</p>",
        counts.get("inserted").copied().unwrap_or(0),
        pieces.len()
    );
    h.push_str("<table>\n<thead><tr><th class=\"n\">Pieces</th><th>Latest outcome</th></tr></thead>\n<tbody>\n");
    for (word, n) in &counts {
        let _ = writeln!(h, "<tr><td class=\"n\">{n}</td><td>{}</td></tr>", esc(word));
    }
    h.push_str("</tbody>\n</table>\n");
    if !open.is_empty() {
        h.push_str("<table>\n<thead><tr><th class=\"n\">Piece</th><th>Record</th><th>Outcome</th><th>Reported in</th><th>Reprint</th></tr></thead>\n<tbody>\n");
        for (p, e) in open.iter().take(OPEN_SHOWN) {
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td><code>{}</code>{}</td><td>{}</td></tr>",
                p.sequence,
                esc(&p.record_id),
                e.outcome.name(),
                esc(&e.source),
                e.line.map_or_else(|| " (not named)".to_string(), |l| format!(" line {l}")),
                e.reprint.map_or_else(String::new, |r| format!("reprint {r}"))
            );
        }
        if open.len() > OPEN_SHOWN {
            let _ = writeln!(
                h,
                "<tr><td></td><td colspan=\"4\">and {} more</td></tr>",
                open.len() - OPEN_SHOWN
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
}

/// Entries of the suppression list that matched no record.
fn unmatched_section(h: &mut String, m: &Manifest) {
    if !m.unmatched_suppressions.is_empty() {
        let n = m.unmatched_suppressions.len();
        let _ = writeln!(
            h,
            "<h2>Suppression list entries that matched nobody: {n}</h2>\n<p>An entry that matches no record is often a typo that leaves a customer contacted: check {}.</p>\n<table>\n<thead><tr><th class=\"n\">Line</th><th>Entry</th></tr></thead>\n<tbody>",
            if n == 1 { "it" } else { "them" }
        );
        for u in m.unmatched_suppressions.iter().take(UNMATCHED_SHOWN) {
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
                u.line,
                esc(&u.entry)
            );
        }
        if n > UNMATCHED_SHOWN {
            let _ = writeln!(
                h,
                "<tr><td></td><td>and {} more (all in manifest.json)</td></tr>",
                n - UNMATCHED_SHOWN
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
}

/// Links to a few rendered documents of each channel.
fn samples_section(h: &mut String, s: &Summary, links: &str) {
    if !s.samples.is_empty() {
        h.push_str("<h2>Sample documents</h2>\n<ul>\n");
        for (channel, id, path) in &s.samples {
            let _ = writeln!(
                h,
                "<li>{} {}: <a href=\"{}\">{}</a></li>",
                esc(channel),
                esc(id),
                esc(&format!("{links}{path}")),
                esc(path)
            );
        }
        h.push_str("</ul>\n");
    }
}

/// A table of counts under `heading`, its two columns named `what` and
/// `unit` (nothing when there are none).
fn count_table(
    h: &mut String,
    heading: &str,
    (what, unit): (&str, &str),
    counts: &BTreeMap<&'static str, usize>,
) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>{heading}</h2>\n<table>\n<thead><tr><th>{what}</th><th class=\"n\">{unit}</th></tr></thead>\n<tbody>"
    );
    for (name, n) in counts {
        let _ = writeln!(h, "<tr><td>{name}</td><td class=\"n\">{n}</td></tr>");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// A table of documents per reason under a heading (nothing when empty).
fn reason_table(h: &mut String, heading: &str, reasons: &BTreeMap<String, usize>) {
    if reasons.is_empty() {
        return;
    }
    let total: usize = reasons.values().sum();
    let _ = writeln!(
        h,
        "<h2>{}: {}</h2>\n<table>\n<thead><tr><th class=\"n\">Documents</th><th>Why</th></tr></thead>\n<tbody>",
        esc(heading),
        count(total, "document", "documents")
    );
    for (why, n) in reasons {
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{n}</td><td>{}</td></tr>",
            reason(why)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// A bar chart of letters by page count, as inline SVG with a text table
/// for screen readers.
fn histogram(pages: &BTreeMap<usize, usize>) -> String {
    let max = pages.values().copied().max().unwrap_or(1).max(1);
    let bar_w = 36;
    let gap = 8;
    let height = 140;
    let width = pages.len() * (bar_w + gap) + 40;
    let mut svg = format!(
        "<svg role=\"img\" aria-labelledby=\"hist-title\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">\n<title id=\"hist-title\">Letters by number of pages</title>\n",
        height + 40,
        height + 40
    );
    for (i, (p, n)) in pages.iter().enumerate() {
        let h = (*n as f64 / max as f64 * height as f64).round().max(1.0) as usize;
        let x = 20 + i * (bar_w + gap);
        let y = 10 + height - h;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bar_w}\" height=\"{h}\" fill=\"#4a6fa5\"><title>{n} letters with {p} pages</title></rect>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{p} p.</text>\n",
            x + bar_w / 2,
            y.saturating_sub(3),
            x + bar_w / 2,
            height + 28
        );
    }
    svg.push_str("</svg>\n");
    let rows: Vec<String> = pages
        .iter()
        .map(|(p, n)| format!("{p} pages: {n}"))
        .collect();
    format!(
        "{svg}<p class=\"muted\">Letters by pages: {}.</p>\n",
        rows.join("; ")
    )
}

/// Documents per second over the run, as an inline SVG line.
fn throughput(samples: &[Sample]) -> String {
    if samples.len() < 3 || samples.last().is_some_and(|s| s.seconds < 2.0) {
        let (n, secs) = samples
            .last()
            .map_or((0, 0.0), |s| (s.documents, s.seconds));
        return format!(
            "<p>{} in {secs:.1} s: too short a run to chart.</p>\n",
            count(n, "document", "documents")
        );
    }
    let rates: Vec<(f64, f64)> = samples
        .windows(2)
        .filter(|w| w[1].seconds > w[0].seconds)
        .map(|w| {
            (
                w[1].seconds,
                (w[1].documents - w[0].documents) as f64 / (w[1].seconds - w[0].seconds),
            )
        })
        .collect();
    let end = samples.last().map_or(1.0, |s| s.seconds).max(1e-9);
    let peak = rates.iter().map(|r| r.1).fold(1.0, f64::max);
    let (w, h) = (640.0, 160.0);
    let points: Vec<String> = std::iter::once((samples[0].seconds, 0.0))
        .chain(rates.iter().copied())
        .map(|(t, r)| format!("{:.1},{:.1}", 50.0 + t / end * w, 10.0 + h - r / peak * h))
        .collect();
    let total = samples.last().map_or(0, |s| s.documents);
    let mean = total as f64 / end;
    format!(
        "<svg role=\"img\" aria-labelledby=\"tp-title\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">\n<title id=\"tp-title\">Documents per second over the run</title>\n<line x1=\"50\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#c5cad6\"/>\n<line x1=\"50\" y1=\"10\" x2=\"50\" y2=\"{y0}\" stroke=\"#c5cad6\"/>\n<text x=\"44\" y=\"14\" text-anchor=\"end\">{peak:.0}/s</text>\n<text x=\"44\" y=\"{y0}\" text-anchor=\"end\">0</text>\n<text x=\"{x1}\" y=\"{yl}\" text-anchor=\"end\">{end:.0} s</text>\n<polyline fill=\"none\" stroke=\"#4a6fa5\" stroke-width=\"2\" points=\"{}\"/>\n</svg>\n<p class=\"muted\">{total} documents in {end:.1} s: {mean:.0} per second on average, {peak:.0} at the fastest.</p>\n",
        w + 60.0,
        h + 40.0,
        w + 60.0,
        h + 40.0,
        points.join(" "),
        y0 = 10.0 + h,
        x1 = 50.0 + w,
        yl = h + 28.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::Document;

    #[test]
    fn failures_group_by_reason_with_or_without_a_record_id() {
        use crate::model::vocab::Channel;
        let dir = std::env::temp_dir().join(format!("lp-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lines = journal::Lines::create(dir.join(journal::DOCUMENTS_FILE)).unwrap();
        let missing = "field `x`: required but missing";
        for d in [
            Document::failed(0, 2, Some("C-1"), Channel::Pdf, missing),
            Document::failed(0, 2, Some("C-1"), Channel::Email, missing),
            Document::failed(1, 3, None, Channel::Pdf, missing),
            Document::failed(2, 4, None, Channel::Pdf, missing),
            // A reason that itself looks like a prefix stays whole.
            Document::failed(3, 5, None, Channel::Pdf, "record 7 (line 1): odd"),
        ] {
            lines.push(&d).unwrap();
        }
        lines.finish().unwrap();
        let s = summarize(&dir).unwrap();
        let grouped: Vec<(&str, usize, &[String])> = s
            .failures
            .iter()
            .map(|(why, f)| (why.as_str(), f.records, f.ids.as_slice()))
            .collect();
        assert_eq!(
            grouped,
            vec![
                (
                    missing,
                    3,
                    &["C-1".to_string(), "line 3".into(), "line 4".into()][..]
                ),
                ("record 7 (line 1): odd", 1, &["line 5".to_string()][..]),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
