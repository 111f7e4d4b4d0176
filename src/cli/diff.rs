//! `letterpress diff`: what changes for each customer between two versions.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK};
use letterpress::model::layout::LayoutRef;
use letterpress::ops::diff::{diff, DiffOptions};
use letterpress::util::text::count;

use super::args::{AsOf, Json, Records};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The old version, NAME@A.
    old: LayoutRef,
    /// The new version, NAME@B.
    new: LayoutRef,
    #[command(flatten)]
    records: Records,
    #[command(flatten)]
    as_of: AsOf,
    /// Also write the report as a self-contained HTML page, with a .json
    /// beside it that `layouts approve --diff` records as evidence.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let query = args.records.query()?;
    let mut opts = DiffOptions::new(args.old, args.new, args.records.data);
    opts.layouts_dir = cx.layouts.clone();
    opts.format = args.records.format;
    opts.query = query;
    opts.as_of = args.as_of.day();
    let report = diff(&opts)?;
    if let Some(path) = &args.out {
        report.write(path)?;
    }
    let out = &cx.out;
    out.print(format!(
        "{} -> {}: {}, {} {}",
        report.old,
        report.new,
        count(report.records, "record", "records"),
        count(report.changed, "letter", "letters"),
        if report.changed == 1 {
            "changes"
        } else {
            "change"
        }
    ));
    for (line, n) in report.disappearing.iter().take(10) {
        out.print(format!("  - in {n:>5} letters: {line}"));
    }
    for (line, n) in report.appearing.iter().take(10) {
        out.print(format!("  + in {n:>5} letters: {line}"));
    }
    for d in report.diffs.iter().filter(|d| d.error.is_some()) {
        out.print(format!(
            "  ! {}: {}",
            d.record,
            d.error.as_deref().unwrap_or("")
        ));
    }
    Ok(out.summary(EXIT_OK, &report))
}
