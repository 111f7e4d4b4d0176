//! `letterpress verify`: a finished run checked against its manifest.

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::verify::{verify, VerifyOptions};
use letterpress::util::text::count;

use super::args::Json;
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The folder of a finished run (holding manifest.json).
    #[arg(value_name = "RUN_DIR", required_unless_present_any = ["run", "served"])]
    run_dir: Option<std::path::PathBuf>,
    /// The same as RUN_DIR.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
    run: Option<std::path::PathBuf>,
    /// Instead of a run: a day's folder of `serve`'s on-demand journal
    /// (STATE/on-demand/YYYY-MM-DD): its chain and layout versions checked.
    #[arg(long, value_name = "DAY_DIR", conflicts_with_all = ["run_dir", "run", "rerender"])]
    served: Option<std::path::PathBuf>,
    /// With --served: a document a customer presents, found in the journal
    /// by its SHA-256 (repeat).
    #[arg(long, value_name = "FILE", requires = "served")]
    document: Vec<std::path::PathBuf>,
    /// Also render K records again (a seeded choice) from the recorded input
    /// and layout version and compare the bytes.
    #[arg(long, value_name = "K", default_value_t = 0)]
    rerender: usize,
    /// The seed of the choice of records to render again.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// With --rerender: the run's input file, where it is now (default: the
    /// path the run recorded, from the folder it ran in). The layouts come
    /// from --layouts, or the folder the run recorded.
    #[arg(long, value_name = "FILE")]
    input: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    if let Some(day) = &args.served {
        return served(day, &args.document, cx);
    }
    let run = args
        .run_dir
        .or(args.run)
        .expect("clap requires one of them");
    let mut opts = VerifyOptions::new(run);
    opts.rerender = args.rerender;
    opts.seed = args.seed;
    opts.layouts_dir = cx.layouts_given.then(|| cx.layouts.clone());
    opts.input = args.input;
    let report = verify(&opts)?;
    let out = &cx.out;
    for p in &report.problems {
        out.print(format!("problem: {p}"));
    }
    for c in &report.cannot_check {
        out.print(format!("cannot check: {c}"));
    }
    // A check that could not be made is not a run that was tampered with.
    let code = match (report.problems.is_empty(), report.cannot_check.is_empty()) {
        (false, _) => EXIT_PARTIAL,
        (true, false) => letterpress::error::EXIT_ERROR,
        (true, true) => EXIT_OK,
    };
    out.info(
        "verified",
        &format!(
            "verify {}: {} checked{}, {} rendered again: {}",
            opts.run.display(),
            count(report.files_checked, "file", "files"),
            match &report.purged_at {
                Some(at) => format!(
                    " ({} purged on {at} after their retention time)",
                    report.purged
                ),
                None => String::new(),
            },
            count(report.rerendered, "record", "records"),
            match code {
                EXIT_OK => "intact".to_string(),
                EXIT_PARTIAL => count(report.problems.len(), "problem", "problems"),
                _ => format!(
                    "no problem in its files, but the re-rendering could not be made ({})",
                    report.cannot_check.join("; ")
                ),
            }
        ),
        serde_json::json!({
            "files_checked": report.files_checked,
            "rerendered": report.rerendered,
            "problems": report.problems.len(),
        }),
    );
    Ok(out.summary(code, &report))
}

/// `verify --served`: a day's on-demand journal and the documents given.
fn served(
    day: &std::path::Path,
    documents: &[std::path::PathBuf],
    cx: &Context,
) -> Result<i32, Error> {
    let report = letterpress::ops::verify::served::served(day, &cx.layouts, documents)?;
    let out = &cx.out;
    for p in &report.problems {
        out.print(format!("problem: {p}"));
    }
    for d in &report.documents {
        if let Some(s) = &d.served {
            out.print(format!(
                "{}: served at {} to {} (line {}): record {}, {}, {} for {}",
                d.file,
                s.served_at,
                s.client,
                s.line,
                s.record_id.as_deref().unwrap_or("?"),
                s.channel,
                s.layout,
                s.as_of
            ));
        }
    }
    let code = if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    out.info(
        "verified",
        &format!(
            "verify --served {}: {}: {}",
            day.display(),
            count(report.entries, "entry", "entries"),
            match code {
                EXIT_OK => "intact".to_string(),
                _ => count(report.problems.len(), "problem", "problems"),
            }
        ),
        serde_json::json!({"entries": report.entries, "problems": report.problems.len()}),
    );
    Ok(out.summary(code, &report))
}
