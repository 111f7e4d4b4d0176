//! Generates large synthetic inputs for benchmarks and scale tests.
//!
//!     cargo run --release --example gen-data -- --records 100000 --out big.jsonl
//!
//! Records fit the `welcome-letter` layout (or `annual-statement` with
//! `--layout annual-statement`); `.csv` output is for `welcome-letter`.
//! Output is deterministic for a given `--seed`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Parser;
use letterpress::ops::synth::{statement_record, welcome_record};
use letterpress::util::rng::Rng;

#[derive(Parser)]
struct Args {
    /// Number of records.
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// Output file (`.csv` or `.jsonl`); standard output (JSONL) when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which sample layout the records are for.
    #[arg(long, default_value = "welcome-letter")]
    layout: String,
    /// Seed of the pseudo-random generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The CSV columns of a welcome-letter record, as JSON pointers.
const CSV_COLUMNS: [(&str, &str); 10] = [
    ("customer_id", "/customer_id"),
    ("first_name", "/first_name"),
    ("last_name", "/last_name"),
    ("address.line1", "/address/line1"),
    ("address.postcode", "/address/postcode"),
    ("address.city", "/address/city"),
    ("product", "/product"),
    ("account_number", "/account_number"),
    ("opened_on", "/opened_on"),
    ("overdraft_limit", "/overdraft_limit"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut rng = Rng::new(args.seed);
    let csv = args
        .out
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e == "csv"));
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::fs::File::create(p)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    if csv {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_COLUMNS.map(|(name, _)| name))?;
        for i in 0..args.records {
            let rec = welcome_record(i, &mut rng);
            w.write_record(CSV_COLUMNS.map(|(_, ptr)| match rec.pointer(ptr) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            }))?;
        }
        w.flush()?;
        return Ok(());
    }
    for i in 0..args.records {
        let rec = if args.layout == "annual-statement" {
            statement_record(i, &mut rng, 60)
        } else {
            welcome_record(i, &mut rng)
        };
        writeln!(out, "{rec}")?;
    }
    out.flush()?;
    Ok(())
}
