//! `letterpress run`: flags to [`RunOptions`], progress to the terminal or
//! the log, and the run's summary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use letterpress::error::Error;
use letterpress::manifest::report::REPORT_FILE;
use letterpress::model::manifest::Shard;
use letterpress::model::vocab::Standard;
use letterpress::ops::run::{self, Observer, RunOptions, RunReport};
use letterpress::util::text::count;

use super::args::{
    named, on_signals, parse_seconds, CheckArgs, ControlTotal, Json, LayoutArg, LockLease, Records,
};
use super::output::Out;
use super::progress::{Progress, ProgressMode};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    layout: LayoutArg,
    #[command(flatten)]
    records: Records,
    #[command(flatten)]
    total: ControlTotal,
    #[command(flatten)]
    pub json: Json,
    #[command(flatten)]
    check: CheckArgs,
    /// Output folder; must not hold another run (unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// The print shop's file (YAML: its output intent's ICC profile and
    /// condition, bleed, sheet and envelope settings): the print files
    /// become PDF/VT-1 on PDF/X-4 for that output condition.
    #[arg(long, value_name = "FILE", requires = "print")]
    print_shop: Option<PathBuf>,
    /// Continue the interrupted run in --out: keep every document whose
    /// journal entry and file agree, render the rest. Starts the run if
    /// there is none; does nothing if it finished. Schedulers should always
    /// pass it, so a retry continues instead of failing.
    #[arg(long)]
    resume: bool,
    /// Render only shard K of N (1 <= K <= N), chosen by a hash of the
    /// record id, so N machines share one batch; its manifest goes to
    /// <out>/shard-K-of-N/. Combine with `letterpress manifest merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Progress while the run goes: a bar on a terminal, log lines every
    /// 10 s otherwise (`auto`), or always `bar`, `lines`, or `none`.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// The longest one record may take to render, in seconds; a record
    /// that takes longer fails with that reason and the run goes on.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    doc_timeout: f64,
    /// Rendering workers; default: one per core; at most 4 per core (256 in
    /// all), more is a usage error before anything is written.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also conform to a PDF standard (repeatable). Letters are tagged PDF always.
    #[arg(long = "pdf-standard", value_parser = named::<Standard>())]
    pdf_standards: Vec<Standard>,
    #[command(flatten)]
    lease: LockLease,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let query = args.records.query()?;
    let mut opts = RunOptions::new(args.layout.layout, args.records.data, args.out);
    opts.layouts_dir = cx.layouts.clone();
    opts.trust = cx.trust.clone();
    opts.format = args.records.format;
    opts.query = query;
    opts.expect_records = args.total.expect_records;
    opts.as_of = args.check.as_of.as_of;
    if let Some(jobs) = args.jobs {
        opts.jobs = jobs;
    }
    // Before the workers start: see the function's measurements.
    letterpress::util::mem::cap_malloc_arenas(opts.jobs);
    opts.standards = args.pdf_standards;
    opts.command = std::env::args().collect();
    opts.channels = args.check.channels;
    opts.suppress = args.check.suppress;
    opts.address_key = args.check.contacts.key()?;
    opts.contacts = args.check.contacts.contacts;
    opts.allow_draft = args.check.allow_draft;
    opts.print = args.check.print;
    opts.sequence = args.check.sequence;
    opts.household = args.check.household;
    opts.print_shop = args.print_shop;
    opts.resume = args.resume;
    opts.shard = args.shard;
    opts.doc_timeout = std::time::Duration::from_secs_f64(args.doc_timeout);
    opts.observer = observer(args.progress, cx);
    opts.stop = on_signals()?;
    opts.lock = args.lease.terms();
    let report = run::run(&opts)?;
    tell(&report, &opts, cx);
    Ok(report.exit_code())
}

/// Draws the progress (see [`Progress`]) from the run's reports.
fn observer(mode: ProgressMode, cx: &Context) -> Observer {
    let out = cx.out;
    let shown: Arc<Mutex<Option<Progress>>> = Arc::default();
    Observer::new(move |p| {
        let mut shown = shown.lock().expect("no panics while locked");
        let bar = shown.get_or_insert_with(|| Progress::new(mode, out, p.total, p.kept));
        bar.update(p.done, p.failed);
        if p.finished {
            bar.finish();
        }
    })
}

/// Logs how the run went and prints the `--json` summary.
fn tell(report: &RunReport, opts: &RunOptions, cx: &Context) {
    let out = &cx.out;
    tell_before(report, opts, out);
    let report_path = report.manifest_path.with_file_name(REPORT_FILE);
    tell_finished(report, &report_path, out);
    tell_problems(report, out);
    out.summary(report.exit_code(), &RunSummary::of(report, report_path));
}

/// The `--json` summary of `run` (its JSON Schema is in the book).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct RunSummary {
    /// The manifest's run id.
    pub run_id: String,
    /// `NAME@VERSION`.
    pub layout: String,
    /// SHA-256 over the layout version's files.
    pub layout_digest: String,
    /// `YYYY-MM-DD`.
    pub as_of: String,
    /// As in the manifest.
    pub totals: letterpress::model::manifest::Totals,
    /// Wall-clock time of this attempt.
    pub seconds: f64,
    /// The path of `manifest.json`.
    pub manifest: PathBuf,
    /// The path of `report.html`.
    pub report: PathBuf,
    /// `K/N` for a shard run.
    pub shard: Option<String>,
    /// When this attempt resumed an interrupted run.
    pub resumed: Option<letterpress::model::manifest::Resumed>,
    /// `--resume` found the run finished and did nothing.
    pub already_finished: bool,
    /// Suppression list entries that matched no record (the first 100).
    pub unmatched_suppressions: UnmatchedSummary,
    /// The print files of a print run.
    pub print: Option<PrintSummary>,
}

/// How many entries of the suppression list matched nobody, and the first.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct UnmatchedSummary {
    /// How many.
    pub count: usize,
    /// The first 100.
    pub entries: Vec<letterpress::model::manifest::Unmatched>,
}

/// A print run's files in numbers.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct PrintSummary {
    /// Print files.
    pub files: usize,
    /// Mail pieces.
    pub pieces: usize,
    /// Sheets.
    pub sheets: usize,
    /// What householding saved, with `--household`.
    pub household: Option<letterpress::model::print::Householded>,
}

impl RunSummary {
    fn of(report: &RunReport, report_path: PathBuf) -> RunSummary {
        let m = &report.manifest;
        let unmatched = &m.unmatched_suppressions;
        RunSummary {
            run_id: m.run_id.clone(),
            layout: format!("{}@{}", m.layout.name, m.layout.version),
            layout_digest: m.layout.digest.clone(),
            as_of: m.as_of.clone(),
            totals: m.totals.clone(),
            seconds: report.seconds,
            manifest: report.manifest_path.clone(),
            report: report_path,
            shard: m.shard.map(|s| s.to_string()),
            resumed: report.resumed.clone(),
            already_finished: report.already_finished,
            unmatched_suppressions: UnmatchedSummary {
                count: unmatched.len(),
                entries: unmatched[..unmatched.len().min(100)].to_vec(),
            },
            print: m.print.as_ref().map(|p| PrintSummary {
                files: p.files.len(),
                pieces: p.files.iter().map(|f| f.pieces).sum(),
                sheets: p.files.iter().map(|f| f.sheets).sum(),
                household: p.household.clone(),
            }),
        }
    }
}

/// What happened before rendering: a finished run found, a resume, a lock
/// taken over, the layout's warnings.
fn tell_before(report: &RunReport, opts: &RunOptions, out: &Out) {
    if report.already_finished {
        out.info(
            "already_finished",
            &format!(
                "the run in {} had already finished; nothing to do",
                report.manifest_path.display()
            ),
            serde_json::json!({"manifest": report.manifest_path}),
        );
    }
    if let Some(r) = &report.resumed {
        out.info(
            "resumed",
            &format!(
                "resumed: kept {} done before{}",
                count(r.kept_records, "record", "records"),
                r.cut.as_ref().map_or(String::new(), |c| format!(
                    " (the journal was cut where {c})"
                ))
            ),
            serde_json::json!({"kept_records": r.kept_records, "cut": r.cut}),
        );
    }
    if let Some(w) = &report.lock_taken_over {
        out.log("warning", "lock_taken_over", w, serde_json::json!({}));
    }
    for warning in &report.warnings {
        out.log(
            "warning",
            "layout_warning",
            &format!("{}: {warning}", opts.layout),
            serde_json::json!({"layout": opts.layout.to_string()}),
        );
    }
}

/// `, N held` for a count of held letters, nothing for none (most runs
/// have no contact history to hold letters with).
pub(super) fn held(count: usize) -> String {
    match count {
        0 => String::new(),
        n => format!(", {n} held"),
    }
}

/// The totals, the rate and where the manifest and report are.
fn tell_finished(report: &RunReport, report_path: &Path, out: &Out) {
    let m = &report.manifest;
    let t = &m.totals;
    let per_channel: Vec<String> = t
        .channels
        .iter()
        .map(|(name, c)| {
            format!(
                "{name}: {} rendered, {} failed, {} suppressed, {} routed elsewhere{}",
                c.rendered,
                c.failed,
                c.suppressed,
                c.routed_elsewhere,
                held(c.held)
            )
        })
        .collect();
    // The rate of this attempt: what a resumed run kept is not counted.
    let kept = report.resumed.as_ref().map_or(0, |r| r.kept_records) * t.channels.len();
    let per_second = t.documents.saturating_sub(kept) as f64 / report.seconds.max(1e-9);
    let rate = if report.already_finished {
        String::new()
    } else {
        format!(" in {:.1} s ({per_second:.0} documents/s)", report.seconds)
    };
    out.info(
        "finished",
        &format!(
            "{}@{}: {}; {}; {}, {:.1} MB{rate}; manifest {}, report {}",
            m.layout.name,
            m.layout.version,
            count(t.records, "record", "records"),
            per_channel.join("; "),
            count(t.pages, "page", "pages"),
            t.bytes as f64 / 1e6,
            report.manifest_path.display(),
            report_path.display()
        ),
        serde_json::json!({
            "exit_code": report.exit_code(),
            "totals": t,
            "seconds": report.seconds,
            "documents_per_second": (per_second * 10.0).round() / 10.0,
            "manifest": report.manifest_path,
            "report": report_path,
        }),
    );
}

/// The first failures and the suppression entries that matched nobody.
fn tell_problems(report: &RunReport, out: &Out) {
    let t = &report.manifest.totals;
    for why in &report.failures {
        out.item("failed", "record_failed", why);
    }
    if t.failed > 10 {
        out.log(
            "warning",
            "more_failures",
            &format!(
                "... and {} more (see report.html or documents.jsonl)",
                count(t.failed - 10, "failure", "failures")
            ),
            serde_json::json!({"failed": t.failed}),
        );
    }
    let unmatched = &report.manifest.unmatched_suppressions;
    if !unmatched.is_empty() {
        let shown: Vec<String> = unmatched.iter().take(10).map(|u| u.to_string()).collect();
        out.log(
            "warning",
            "unmatched_suppressions",
            &format!(
                "{} of the suppression list matched nobody: {}{} (a typo leaves a customer contacted; all are in the manifest)",
                entries(unmatched.len()),
                shown.join(", "),
                if unmatched.len() > 10 { ", ..." } else { "" }
            ),
            serde_json::json!({"count": unmatched.len(), "entries": &unmatched[..unmatched.len().min(10)]}),
        );
    }
}

/// `1 entry`, `3 entries`.
pub fn entries(n: usize) -> String {
    count(n, "entry", "entries")
}
