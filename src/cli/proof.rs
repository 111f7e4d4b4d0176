//! `letterpress proof`: the records a reviewer must see, in one PDF.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK};
use letterpress::model::layout::LayoutRef;
use letterpress::ops::proof::{proof, ProofOptions};
use letterpress::util::text::count;

use super::args::{AsOf, Json, Records};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Layout to proof: NAME@VERSION (any status) or NAME.
    #[arg(long)]
    layout: LayoutRef,
    #[command(flatten)]
    records: Records,
    /// The proof PDF to write; the emails go next to it as .html, the web
    /// letters as -web.html.
    #[arg(long)]
    out: PathBuf,
    /// Random records on top of the chosen ones.
    #[arg(long, default_value_t = 3)]
    sample: usize,
    /// The seed of the random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    as_of: AsOf,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let query = args.records.query()?;
    let mut opts = ProofOptions::new(args.layout, args.records.data, args.out);
    opts.layouts_dir = cx.layouts.clone();
    opts.trust = cx.trust.clone();
    opts.format = args.records.format;
    opts.query = query;
    opts.as_of = args.as_of.day();
    opts.sample = args.sample;
    opts.seed = args.seed;
    let report = proof(&opts)?;
    let out = &cx.out;
    for p in &report.picks {
        out.print(format!(
            "{:<20} pages {:<7} {}",
            p.record_id,
            p.proof_pages,
            p.reasons.join("; ")
        ));
    }
    out.info(
        "proofed",
        &format!(
            "proof of {}: {} read, {} not proofed, {} picked; {} ({}){}",
            report.layout,
            count(report.records, "record", "records"),
            report.invalid,
            report.picks.len(),
            report.pdf.display(),
            count(report.pages, "page", "pages"),
            [&report.html, &report.web]
                .iter()
                .filter_map(|h| h.as_ref())
                .map(|h| format!(" and {}", h.display()))
                .collect::<String>()
        ),
        serde_json::json!({"pdf": report.pdf, "html": report.html, "web": report.web, "pages": report.pages}),
    );
    Ok(out.summary(EXIT_OK, &report))
}
