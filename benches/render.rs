//! End-to-end benchmark: renders welcome letters with the library's `run`
//! (files and manifest written) and reports letters/s and peak memory.
//!
//!     cargo bench                             # 2,000 letters
//!     LP_BENCH_RECORDS=20000 cargo bench      # the 20,000-letter memory target
//!
//! Targets on the 2-core development machine: at least 800 one-page letters/s
//! and a peak RSS under 200 MB at 20,000 letters.
//!
//! Two layouts run: the sample `welcome-letter` (a realistic letter: two
//! fonts, logo, footer, address window) and `benches/layouts/minimal` (one
//! page of text in an embedded font), which shows the engine's own cost per
//! letter apart from what a template costs.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use letterpress::run::{run, RunOptions};
use letterpress::synth::{welcome_record, Rng};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Renders `records` synthetic letters with `layout` from `layouts` and
/// prints one result line.
fn bench(layouts: PathBuf, layout: &str, records: usize, jobs: usize) {
    let dir =
        std::env::temp_dir().join(format!("letterpress-bench-{}-{layout}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("records.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
    let mut rng = Rng::new(42);
    for i in 0..records {
        writeln!(w, "{}", welcome_record(i, &mut rng)).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let opts = RunOptions {
        layouts_dir: layouts,
        layout: layout.parse().unwrap(),
        data,
        format: None,
        out: dir.join("out"),
        as_of: letterpress::clock::Date::parse("2026-11-22"),
        jobs,
        standards: Vec::new(),
        command: vec!["bench".into()],
        channels: None,
        suppress: None,
    };
    let start = Instant::now();
    let report = run(&opts).expect("the benchmark run succeeds");
    let secs = start.elapsed().as_secs_f64();
    let t = &report.manifest.totals;
    assert_eq!(t.rendered, records, "every letter renders");
    println!(
        "{layout}: {records} letters, {jobs} workers: {secs:.2} s, {:.0} letters/s, {} pages, {:.1} KB/letter, peak RSS so far {:.0} MB",
        records as f64 / secs,
        t.pages,
        t.bytes as f64 / records as f64 / 1024.0,
        peak_rss_mb()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    let records: usize = std::env::var("LP_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The sample letter first, so the peak RSS it prints is its own.
    bench(root.join("layouts"), "welcome-letter", records, jobs);
    bench(root.join("benches/layouts"), "minimal", records, jobs);
}
