//! `letterpress verify`: a finished run checked against its manifest.

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::verify::{verify, VerifyOptions};

use super::args::{Json, RunFolder};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunFolder,
    /// Also render K records again (a seeded choice) from the recorded input
    /// and layout version and compare the bytes.
    #[arg(long, value_name = "K", default_value_t = 0)]
    rerender: usize,
    /// The seed of the choice of records to render again.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let mut opts = VerifyOptions::new(args.run.path());
    opts.rerender = args.rerender;
    opts.seed = args.seed;
    opts.layouts_dir = cx.layouts.clone();
    let report = verify(&opts)?;
    let out = &cx.out;
    for p in &report.problems {
        out.print(format!("problem: {p}"));
    }
    let code = if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    out.info(
        "verified",
        &format!(
            "verify {}: {} files checked{}, {} records rendered again: {}",
            opts.run.display(),
            report.files_checked,
            match &report.purged_at {
                Some(at) => format!(
                    " ({} purged on {at} after their retention time)",
                    report.purged
                ),
                None => String::new(),
            },
            report.rerendered,
            if code == EXIT_OK {
                "intact".to_string()
            } else {
                format!("{} problems", report.problems.len())
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
