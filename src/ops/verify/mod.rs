//! Verify a finished run: every file is there and unchanged, nothing was
//! added, the totals reconcile, the manifest was not edited, and (with
//! `--rerender K`) the same inputs still give the same bytes.
//!
//! After stage 5. `letterpress verify RUN_DIR` reads the manifest and checks:
//!
//! - the manifest's own content digest (`manifest_digest`), so an edited
//!   number or path is caught (this detects edits, it is not a signature:
//!   whoever can rewrite the manifest can recompute it);
//! - every file the manifest lists (PDFs, `.eml`, `.html`, `.txt`): present,
//!   of the recorded size and SHA-256;
//! - no file in the run folder that the manifest does not list (a left-over
//!   temporary file counts too); `manifest.json` and the delivery journal
//!   are expected;
//! - the totals: recomputed from the entries, they equal the recorded ones,
//!   and every channel accounts for every input record once;
//! - the approval (see [`approval`]): the copies of the trust list and of
//!   the signed decisions in `approval/` are the recorded ones and still
//!   check, and the layout's chain of decisions still holds what the run
//!   saw of it.
//!
//! `--rerender K` picks K rendered records (a seeded choice, `--seed`),
//! checks that the recorded input and layout version are unchanged, renders
//! those records again with the recorded options into a temporary folder
//! and compares every file byte for byte.

mod approval;
pub mod served;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::journal::{Tally, DOCUMENTS_FILE};
use crate::model::file::FileEntry;
use crate::model::layout::LayoutRef;
use crate::model::manifest::{Document, Manifest, Totals, APPROVAL_DIR, MANIFEST_FILE, TRUST_COPY};
use crate::model::print::{PieceEvent, PIECES_FILE};
use crate::model::vocab::{DocStatus, Named};
use crate::ops::run::{run, RunOptions};
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;
use crate::util::fs::FileProblem;

/// What `verify` is asked to do.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Records to render again (0: none).
    pub rerender: usize,
    /// The seed of the choice of records.
    pub seed: u64,
    /// Where the layouts are (for `rerender`); `None`: the folder the run
    /// recorded, resolved from the folder it ran in.
    pub layouts_dir: Option<PathBuf>,
    /// Where the run's input file is now (for `rerender`); `None`: the path
    /// the run recorded, resolved from the folder it ran in.
    pub input: Option<PathBuf>,
}

impl VerifyOptions {
    /// Verifies the run in `run`: files and totals only, nothing rendered
    /// again (`rerender` 0, seed 1, the layouts and input the run recorded).
    pub fn new(run: impl Into<PathBuf>) -> VerifyOptions {
        VerifyOptions {
            run: run.into(),
            rerender: 0,
            seed: 1,
            layouts_dir: None,
            input: None,
        }
    }
}

/// The outcome of `verify`.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    /// Files whose hash was checked.
    pub files_checked: usize,
    /// Records rendered again.
    pub rerendered: usize,
    /// Every problem found, one line each; empty when the run is intact.
    pub problems: Vec<String>,
    /// Checks that could not be made (the re-rendering's input or layout
    /// is not where the run recorded it, or changed): not a problem of the
    /// run, but not a check either.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cannot_check: Vec<String>,
    /// Files deleted by `purge` after their retention time, as its record
    /// lists them (not problems).
    pub purged: usize,
    /// When they were purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<String>,
}

/// Verifies a run folder; see the module docs. Errors (exit 2) are for a
/// folder without a readable manifest; everything else is a problem in the
/// report.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport> {
    let path = opts.run.join(MANIFEST_FILE);
    let (manifest, intact) = crate::manifest::read_checked(&path, "verify")?;
    let mut report = VerifyReport::default();
    if !intact {
        report.problems.push(
            "manifest.json was edited after the run: its content does not match its manifest_digest"
                .into(),
        );
    }
    // A shard's files are in the run folder above its own.
    let root = match manifest.shard {
        Some(_) => opts.run.parent().unwrap_or(&opts.run).to_path_buf(),
        None => opts.run.clone(),
    };
    let purged = crate::ops::purge::purged(&opts.run)?;
    report.purged_at = purged.as_ref().map(|p| p.purged_at.clone());
    let mut files = Files {
        purged: purged.map(|p| p.files).unwrap_or_default(),
        root,
        listed: [
            MANIFEST_FILE,
            crate::output::delivery::JOURNAL_FILE,
            DOCUMENTS_FILE,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(
            report
                .purged_at
                .as_ref()
                .map(|_| crate::ops::purge::PURGED_FILE.to_string()),
        )
        .collect(),
        report: &mut report,
    };
    let tally = check_documents(opts, &manifest, &mut files)?;
    check_other_files(opts, &manifest, &mut files);
    approval::check(
        &opts.run,
        &manifest,
        &chain_layouts(opts, &manifest),
        &mut files,
    );
    check_release(&opts.run, &mut files);
    let listed = std::mem::take(&mut files.listed);
    check_nothing_else(opts, &listed, &mut report)?;
    check_totals(&manifest, tally.totals, &mut report);
    if opts.rerender > 0 {
        let documents = crate::manifest::journal::read_all(&opts.run)?;
        rerender(opts, &manifest, &documents, &mut report)?;
    }
    Ok(report)
}

/// Every document's files as the journal records them (streaming the
/// entries), and the journal against the manifest; returns the counts.
fn check_documents(opts: &VerifyOptions, manifest: &Manifest, files: &mut Files) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut entries = crate::manifest::journal::documents(&opts.run)?;
    let mut broken = None;
    for d in entries.by_ref() {
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                broken = Some(e.to_string());
                break;
            }
        };
        tally.add(&d);
        let who = format!(
            "record {} ({})",
            d.record_id.as_deref().unwrap_or("?"),
            d.channel
        );
        for f in d.all_files() {
            files.check(&f, &who, "the manifest");
        }
    }
    if let Some(e) = broken {
        files
            .report
            .problems
            .push(format!("{DOCUMENTS_FILE} cannot be read to its end: {e}"));
    } else if entries.sha256() != manifest.documents.sha256 {
        files.report.problems.push(format!(
            "{DOCUMENTS_FILE} was altered: its SHA-256 differs from the one in the manifest"
        ));
    }
    Ok(tally)
}

/// The shards' manifests and journals, the print files and job ticket, and
/// the reprints made since, as recorded.
fn check_other_files(opts: &VerifyOptions, manifest: &Manifest, files: &mut Files) {
    for f in &manifest.shards {
        files.check(f, "shard", "the manifest");
    }
    if let Some(print) = &manifest.print {
        let pdfs = print.files.iter().map(|f| &f.file);
        let mrdfs = print.files.iter().filter_map(|f| f.mrdf.as_ref());
        let profile = print.print_shop.iter().map(|s| &s.kept);
        for f in pdfs.chain(mrdfs).chain(&print.tickets).chain(profile) {
            files.check(f, "print", "the manifest");
        }
    }
    let reprints: Vec<crate::ops::reprint::Reprint> = files.chained(
        &opts.run,
        crate::ops::reprint::REPRINTS_FILE,
        &manifest.run_id,
    );
    for r in &reprints {
        let who = format!("reprint {}", r.reprint);
        for f in &r.files {
            files.check(f, &who, "the reprint record");
        }
    }
    check_pieces(opts, &manifest.run_id, reprints.len(), files);
    // The delivery journal: every line linked to the one before.
    let _: Vec<serde::de::IgnoredAny> = files.chained(
        &opts.run,
        crate::output::delivery::JOURNAL_FILE,
        &manifest.run_id,
    );
}

/// The pieces journal: every line linked to the one before, naming a piece
/// of the run and, for a reprint, one that was made.
fn check_pieces(opts: &VerifyOptions, run_id: &str, reprints: usize, files: &mut Files) {
    let events: Vec<PieceEvent> = files.chained(&opts.run, PIECES_FILE, run_id);
    if events.is_empty() {
        return;
    }
    let pieces: HashSet<u32> = crate::manifest::journal::read_all(&opts.run)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.piece.as_ref().map(|p| p.sequence))
        .collect();
    for (i, e) in events.iter().enumerate() {
        let problem = match e {
            e if !pieces.contains(&e.piece) => {
                Some(format!("piece {} is not a piece of this run", e.piece))
            }
            e if e.reprint.is_some_and(|r| r == 0 || r > reprints) => Some(format!(
                "piece {} names reprint {}, which is not recorded",
                e.piece,
                e.reprint.unwrap_or(0)
            )),
            _ => None,
        };
        if let Some(why) = problem {
            files
                .report
                .problems
                .push(format!("{PIECES_FILE} line {}: {why}", i + 1));
        }
    }
}

/// A release record (`release.json`, see [`crate::ops::release`]) is part
/// of the run folder when there is one, and must check.
fn check_release(run: &std::path::Path, files: &mut Files) {
    use crate::model::release::{ReleaseKind, RELEASE_FILE};
    if std::fs::symlink_metadata(run.join(RELEASE_FILE)).is_err() {
        return;
    }
    files.listed.insert(RELEASE_FILE.to_owned());
    files.listed.insert(format!("{RELEASE_FILE}.sig"));
    use crate::ops::release::{released_tickets, Run, Standing};
    let opened = Run::open(run);
    let standing = opened.as_ref().map(|r| r.standing());
    let why = match standing {
        Ok(Standing::Invalid(why)) => why,
        Ok(Standing::NotRequired) => "the run's layout needs no release".into(),
        Err(e) => e.to_string(),
        Ok(Standing::Decided(r)) if r.decision == ReleaseKind::Released => {
            // The print shop's tickets, copied from the held ones.
            let run_folder = opened.expect("opened");
            for (held, ticket) in released_tickets(&run_folder) {
                let same =
                    std::fs::read(run.join(&held)).ok() == std::fs::read(run.join(&ticket)).ok();
                match same {
                    true => files.listed.insert(ticket),
                    false => {
                        files.report.problems.push(format!(
                            "{ticket}: not the copy of {held} the release makes"
                        ));
                        true
                    }
                };
            }
            return;
        }
        Ok(_) => return,
    };
    files.report.problems.push(format!("{RELEASE_FILE}: {why}"));
}

/// Nothing in the folder that the records do not list (the run report
/// aside: a summary for people, not part of the audit record).
fn check_nothing_else(
    opts: &VerifyOptions,
    listed: &HashSet<String>,
    report: &mut VerifyReport,
) -> Result<()> {
    for entry in walkdir::WalkDir::new(&opts.run)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| Error::Input(format!("{}: {e}", opts.run.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&opts.run)
            .expect("inside the run")
            .to_string_lossy()
            .replace('\\', "/");
        if !listed.contains(&rel) && entry.file_name() != crate::manifest::report::REPORT_FILE {
            let what = if entry
                .file_name()
                .to_string_lossy()
                .starts_with(crate::util::fs::TEMP_PREFIX)
            {
                "a temporary file left by an interrupted run"
            } else {
                "not in the manifest"
            };
            report.problems.push(format!("extra: {rel} ({what})"));
        }
    }
    Ok(())
}

/// The manifest's totals against the counted entries, and every channel
/// accounting for every record of the input.
fn check_totals(manifest: &Manifest, totals: Totals, report: &mut VerifyReport) {
    if totals != manifest.totals {
        let recorded = serde_json::to_value(&manifest.totals).expect("serializes");
        let counted = serde_json::to_value(&totals).expect("serializes");
        let mut diffs = Vec::new();
        differences(&recorded, &counted, "totals", &mut diffs);
        report.problems.push(format!(
            "the totals do not reconcile with the entries: {}",
            diffs.join(", ")
        ));
    }
    for (name, c) in &totals.channels {
        if c.records != manifest.input.records && manifest.shard.is_none() {
            report.problems.push(format!(
                "channel {name} accounts for {} records, the input had {}",
                c.records, manifest.input.records
            ));
        }
    }
}

/// Checks files against what was recorded of them, and remembers them as
/// expected in the run folder.
struct Files<'a> {
    root: PathBuf,
    /// Files a purge deleted, with their SHA-256.
    purged: std::collections::BTreeMap<String, String>,
    listed: HashSet<String>,
    report: &'a mut VerifyReport,
}

impl Files<'_> {
    /// The values of the chained log `name` in `run` (see
    /// [`crate::util::jsonl`]), expected in the folder; a broken chain is a
    /// problem, and then none are returned.
    fn chained<T: serde::de::DeserializeOwned>(
        &mut self,
        run: &Path,
        name: &str,
        run_id: &str,
    ) -> Vec<T> {
        let path = run.join(name);
        if !path.exists() {
            return Vec::new();
        }
        self.listed.insert(name.to_owned());
        let origin = crate::util::jsonl::origin(name, run_id);
        let problem = match crate::util::jsonl::read_links(&path, &origin) {
            Ok(Ok(values)) => return values,
            Ok(Err(broken)) => format!("altered: {name} {broken}"),
            Err(e) => format!("{name} cannot be read: {e}"),
        };
        self.report.problems.push(problem);
        Vec::new()
    }

    /// Checks `rel` against its recorded SHA-256 and size; `who` names the
    /// document, `record` where the hash was recorded.
    fn check(&mut self, f: &FileEntry, who: &str, record: &str) {
        let rel = &f.path;
        self.listed.insert(rel.to_owned());
        self.report.files_checked += 1;
        match f.check(&self.root) {
            Ok(()) => {}
            Err(FileProblem::Unreadable(_)) if self.purged.get(rel) == Some(&f.sha256) => {
                self.report.purged += 1;
            }
            Err(FileProblem::Unreadable(_)) => {
                self.report.problems.push(format!("missing: {rel} ({who})"))
            }
            Err(FileProblem::Differs) => self.report.problems.push(format!(
                "altered: {rel} ({who}): its SHA-256 or size differs from {record}"
            )),
        }
    }
}

/// The leaves where two JSON values differ, as `path: recorded A, counted B`.
fn differences(a: &serde_json::Value, b: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = serde_json::Value::Null;
                differences(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: recorded {a}, counted {b}")),
        _ => {}
    }
}

/// Renders the chosen records again from the recorded input and layout
/// version, as the run did, and compares the bytes.
fn rerender(
    opts: &VerifyOptions,
    m: &Manifest,
    documents: &[Document],
    report: &mut VerifyReport,
) -> Result<()> {
    let Some((layout_ref, as_of)) = same_inputs(opts, m, report)? else {
        return Ok(());
    };
    let chosen = choose(documents, opts.rerender, opts.seed);
    let out = std::env::temp_dir().join(format!("letterpress-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut again = rerun_options(m, layout_ref, as_of, &out)?;
    again.data = match &m.input.query {
        Some(_) => std::path::PathBuf::from(&m.input.path),
        None => opts
            .input
            .clone()
            .unwrap_or_else(|| recorded(m, &m.input.path)),
    };
    again.layouts_dir = layouts_of(opts, m);
    // The decisions are checked against the trust list the run used, as
    // the run kept it (verify checked the copy against the manifest).
    let trust = opts.run.join(APPROVAL_DIR).join(TRUST_COPY);
    again.trust = trust.is_file().then_some(trust);
    again.only = Some(chosen.clone());
    let again = match run(&again).and_then(|_| crate::manifest::journal::read_all(&out)) {
        Ok(docs) => docs,
        Err(e) => {
            report.cannot_check.push(format!("cannot re-render: {e}"));
            return Ok(());
        }
    };
    compare(documents, &again, &chosen, report);
    report.rerendered = chosen.len();
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// The layout version and as-of date to render with, if the input file and
/// the layout's files are still the ones the run used (else a problem).
fn same_inputs(
    opts: &VerifyOptions,
    m: &Manifest,
    report: &mut VerifyReport,
) -> Result<Option<(LayoutRef, Date)>> {
    let input = opts
        .input
        .clone()
        .unwrap_or_else(|| recorded(m, &m.input.path));
    let problem = match std::fs::read(&input) {
        // A database is read again as it is now: rows changed since the
        // run render differently, and the comparison reports them.
        _ if m.input.query.is_some() => None,
        Ok(b) if sha256_hex(&b) == m.input.sha256 => None,
        Ok(_) => Some(format!(
            "the input file {} is not the one the run read (its SHA-256 differs); give the run's input with --input",
            input.display()
        )),
        Err(e) => Some(format!(
            "the input file {} cannot be read ({e}); give the run's input with --input",
            input.display()
        )),
    };
    if let Some(p) = problem {
        report.cannot_check.push(format!("cannot re-render: {p}"));
        return Ok(None);
    }
    let id = format!("{}@{}", m.layout.name, m.layout.version);
    let layout_ref: LayoutRef = id.parse().map_err(Error::Usage)?;
    let as_of = Date::parse(&m.as_of)
        .ok_or_else(|| Error::Input(format!("manifest as_of `{}` is not a date", m.as_of)))?;
    let layouts = layouts_of(opts, m);
    let why = match crate::ops::run::find_layout(&layouts, None, &layout_ref, as_of)
        .and_then(|l| l.read_files())
    {
        Ok(files) if files.digest == m.layout.digest => return Ok(Some((layout_ref, as_of))),
        Ok(_) => format!(
            "the files of layout {id} in {} are not the ones the run used (its digest differs; `letterpress layouts check` names them); give the layouts folder the run used with --layouts",
            layouts.display()
        ),
        Err(e) => format!("{e}; give the layouts folder the run used with --layouts"),
    };
    report.cannot_check.push(format!("cannot re-render: {why}"));
    Ok(None)
}

/// A path the run recorded, as it was given: relative ones from the folder
/// the run ran in, when the manifest records it.
fn recorded(m: &Manifest, path: &str) -> PathBuf {
    match &m.options.working_dir {
        Some(dir) => Path::new(dir).join(path),
        None => PathBuf::from(path),
    }
}

/// The layouts folder whose chains of decisions are compared with what the
/// run saw: the one the run recorded, where it still is (the question is
/// whether that folder's decisions were rewritten), else the one asked for.
fn chain_layouts(opts: &VerifyOptions, m: &Manifest) -> PathBuf {
    match m.options.layouts.as_deref().map(|dir| recorded(m, dir)) {
        Some(dir) if dir.is_dir() => dir,
        _ => layouts_of(opts, m),
    }
}

/// The layouts folder to render with: the one asked for, else the one the
/// run recorded, else `layouts`.
fn layouts_of(opts: &VerifyOptions, m: &Manifest) -> PathBuf {
    match (&opts.layouts_dir, &m.options.layouts) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => recorded(m, dir),
        (None, None) => recorded(m, "layouts"),
    }
}

/// A seeded choice of `n` records among those that rendered something.
fn choose(documents: &[Document], n: usize, seed: u64) -> BTreeSet<usize> {
    let mut candidates: Vec<usize> = documents
        .iter()
        .filter(|d| d.status == DocStatus::Rendered)
        .map(|d| d.index)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = crate::util::rng::Rng::new(seed);
    let mut chosen = BTreeSet::new();
    while chosen.len() < n && !candidates.is_empty() {
        let i = rng.below(candidates.len() as u64) as usize;
        chosen.insert(candidates.swap_remove(i));
    }
    chosen
}

/// The options of the recorded run, into `out`.
fn rerun_options(m: &Manifest, layout: LayoutRef, as_of: Date, out: &Path) -> Result<RunOptions> {
    fn names<T: Named>(names: &[String], what: &str) -> Result<Vec<T>> {
        names
            .iter()
            .map(|n| {
                T::parse_named(n).map_err(|e| Error::Input(format!("{what} in the manifest: {e}")))
            })
            .collect()
    }
    let mut again = RunOptions::new(layout, &m.input.path, out);
    match &m.input.query {
        // A database is read again with the recorded query (rows changed
        // since then render differently, and are reported so).
        Some(query) => again.query = Some(query.clone()),
        None => {
            again.format = Some(names(std::slice::from_ref(&m.input.format), "input format")?[0]);
        }
    }
    again.as_of = Some(as_of);
    again.jobs = 2;
    again.standards = names(&m.options.pdf_standards, "PDF standard")?;
    again.command = vec!["verify --rerender".into()];
    again.channels = Some(names(&m.options.channels, "channel")?);
    again.suppress = m.options.suppress.as_ref().map(|s| recorded(m, &s.path));
    again.allow_draft = m.draft;
    // The same mailing order, so templates see the same piece numbers.
    again.print = m.options.print;
    again.sequence = m.options.sequence.as_ref().map(|s| recorded(m, s));
    again.household = m.options.household;
    if m.options.doc_timeout_seconds > 0.0 {
        again.doc_timeout = std::time::Duration::from_secs_f64(m.options.doc_timeout_seconds);
    }
    Ok(again)
}

/// The chosen records' entries of the run against those rendered again.
fn compare(
    documents: &[Document],
    again: &[Document],
    chosen: &BTreeSet<usize>,
    report: &mut VerifyReport,
) {
    for d in documents.iter().filter(|d| chosen.contains(&d.index)) {
        let Some(new) = again
            .iter()
            .find(|n| n.index == d.index && n.channel == d.channel)
        else {
            report.problems.push(format!(
                "re-render: record at index {} gave no {} entry",
                d.index, d.channel
            ));
            continue;
        };
        let who = d.record_id.as_deref().unwrap_or("?");
        if new.status != d.status || new.sha256 != d.sha256 {
            report.problems.push(format!(
                "re-render: record {who} ({}) does not give the same bytes as in the run ({})",
                d.channel,
                d.path.as_deref().unwrap_or("no file")
            ));
        }
        for (a, b) in d.files.iter().zip(&new.files) {
            if a.sha256 != b.sha256 {
                report.problems.push(format!(
                    "re-render: {} of record {who} does not give the same bytes",
                    a.path
                ));
            }
        }
    }
}
