//! `letterpress purge`: a finished run's documents deleted after their
//! retention time, its audit record kept.

use letterpress::error::{Error, EXIT_OK};
use letterpress::ops::purge::purge;
use letterpress::util::clock::Date;

use super::args::{Json, RunFolder};
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
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let run = args.run.path();
    let report = purge(&run, args.retention_days, Date::today_utc())?;
    cx.out.info(
        "purged",
        &format!(
            "purge {}: {} files deleted ({:.1} MB), {} recorded as purged in purged.json; the manifest and journals stay and `verify` still checks them",
            run.display(),
            report.deleted,
            report.bytes as f64 / 1e6,
            report.purged
        ),
        serde_json::json!({"deleted": report.deleted, "purged": report.purged}),
    );
    Ok(cx.out.summary(EXIT_OK, &report))
}
