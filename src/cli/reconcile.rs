//! `letterpress reconcile`: the inserter's results for a print run.

use std::path::PathBuf;

use letterpress::error::Error;
use letterpress::ops::reconcile::{list, reconcile, ReconcileOptions};
use letterpress::util::text::count;

use super::args::{Json, LockLease, RunFolder};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunFolder,
    /// The inserter's result file: a CSV with `piece_id` and `outcome`
    /// columns, or a list of scanned DataMatrix contents, one a line (see
    /// "Print files for the inserter" in the book).
    #[arg(long)]
    inserter: PathBuf,
    /// Record the outcomes but write no reprint.
    #[arg(long)]
    no_reprint: bool,
    /// The result file is whole although its last line has no line end
    /// (without this, such a file is refused as cut off).
    #[arg(long)]
    complete: bool,
    #[command(flatten)]
    lease: LockLease,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let run = args.run.path();
    let mut opts = ReconcileOptions::new(&run, &args.inserter);
    opts.reprint = !args.no_reprint;
    opts.complete = args.complete;
    opts.lock = args.lease.terms();
    let r = reconcile(&opts)?;
    let out = &cx.out;
    if r.already_reconciled {
        out.info(
            "already_reconciled",
            &format!(
                "{} was reconciled before (SHA-256 {}): nothing recorded again; {} waiting for a reprint",
                r.file,
                &r.sha256[..12],
                count(r.open.len(), "piece", "pieces")
            ),
            serde_json::json!({"file": r.file, "open": r.open.len()}),
        );
        return Ok(out.summary(r.exit_code(), &r));
    }
    for (outcome, pieces) in &r.outcomes {
        out.item(outcome, "piece_outcome", &list(pieces));
    }
    for p in &r.problems {
        out.log(
            "warning",
            "reconcile_problem",
            p,
            serde_json::json!({"problem": p}),
        );
    }
    if let Some(reprint) = &r.reprint {
        for f in &reprint.files {
            out.print(run.join(&f.path).display());
        }
    }
    let counts: Vec<String> = r
        .outcomes
        .iter()
        .map(|(o, p)| format!("{} {o}", p.len()))
        .collect();
    let reprint = r.reprint.as_ref().map_or(String::new(), |p| {
        format!("; reprint {} holds pieces {}", p.reprint, list(&p.pieces))
    });
    out.info(
        "reconciled",
        &format!(
            "{}: {} expected: {}{reprint}; {}; {} of the run waiting for a reprint, {} not reported yet",
            r.file,
            count(r.expected, "piece", "pieces"),
            if counts.is_empty() { "none".into() } else { counts.join(", ") },
            count(r.problems.len(), "problem", "problems"),
            count(r.open.len(), "piece", "pieces"),
            count(r.unreported, "piece", "pieces")
        ),
        serde_json::json!({"expected": r.expected, "problems": r.problems.len(), "open": r.open.len(),
            "reprint": r.reprint.as_ref().map(|p| p.reprint)}),
    );
    Ok(out.summary(r.exit_code(), &r))
}
