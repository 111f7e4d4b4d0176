//! `letterpress purge`: a finished run's documents deleted after their
//! retention time, its audit record kept.

use letterpress::error::{Error, EXIT_OK};
use letterpress::ops::purge::{purge, PurgeOptions};
use letterpress::util::clock::Date;
use letterpress::util::text::count;

use super::args::{Json, LockLease, RunFolder};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunFolder,
    /// Delete the documents (letters, emails, web letters, print files);
    /// the manifest, journals, report and tickets stay.
    #[arg(long, required = true)]
    documents: bool,
    /// The retention time in days, counted from the day the run finished;
    /// a run still within it is refused (exit 2).
    #[arg(long, value_name = "DAYS")]
    retention_days: u32,
    #[command(flatten)]
    lease: LockLease,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let run = args.run.path();
    let report = purge(&PurgeOptions {
        run: run.clone(),
        retention_days: args.retention_days,
        today: Date::today_utc(),
        lock: args.lease.terms(),
    })?;
    cx.out.info(
        "purged",
        &format!(
            "purge {}: {} deleted ({:.1} MB), {} recorded as purged in purged.json; {} kept without personal data (the manifest, journals and tickets), which `verify` still checks",
            run.display(),
            count(report.deleted, "file", "files"),
            report.bytes as f64 / 1e6,
            count(report.purged, "file", "files"),
            count(report.masked, "file", "files"),
        ),
        serde_json::json!({"deleted": report.deleted, "purged": report.purged}),
    );
    Ok(cx.out.summary(EXIT_OK, &report))
}
