//! `letterpress reprint`: named pieces of a print run again.

use letterpress::error::{Error, EXIT_OK};
use letterpress::ops::reprint::reprint;

use super::args::{Json, LockLease, RunFolder};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunFolder,
    /// Piece (sequence) numbers, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pieces: Vec<u32>,
    /// Record ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    records: Vec<String>,
    #[command(flatten)]
    lease: LockLease,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let run = args.run.path();
    let r = reprint(&run, &args.pieces, &args.records, args.lease.terms())?;
    let out = &cx.out;
    for f in &r.files {
        out.print(run.join(&f.path).display());
    }
    let pieces: Vec<String> = r.pieces.iter().map(u32::to_string).collect();
    out.info(
        "reprinted",
        &format!(
            "reprint {} of {}: pieces {}",
            r.reprint,
            run.display(),
            pieces.join(", ")
        ),
        serde_json::json!({"reprint": r.reprint, "pieces": r.pieces}),
    );
    Ok(out.summary(EXIT_OK, &r))
}
