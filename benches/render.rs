//! End-to-end benchmark: renders letters and statements with the library's
//! `run` (files and manifest written) and reports per case documents/s,
//! pages/s, CPU ms per document and per page (user + system of the case's
//! process), KB per document and peak RSS.
//!
//!     cargo bench                             # 2,000 letters
//!     LP_BENCH_RECORDS=20000 cargo bench      # the memory targets at 20,000
//!
//!     LP_BENCH_DIR=/dev/shm cargo bench       # write the output to tmpfs
//!
//! Each case runs in a process of its own (the binary re-runs itself with
//! `LP_BENCH_CASE`), so its peak RSS and caches are its own.
//!
//! Targets on the 2-core development machine (2 workers, output on tmpfs):
//! welcome letters at 1,000/s or more, statements at 400 pages/s or more
//! with a peak RSS of at most 200 MB at 20,000 statements.
//!
//! Runs, each on its own synthetic records:
//! - the sample `welcome-letter` as PDF only (a realistic letter: two fonts,
//!   logo, footer, address window);
//! - the sample `annual-statement` as PDF only (0 to 60 transactions a
//!   statement in a table that breaks across pages, 1.7 pages on average);
//! - the same layout as email only (HTML + text + `.eml` written; it must
//!   not get slower), on ten times as many records;
//! - both channels at once (target: no slower than the PDF run plus 10%);
//! - `benches/layouts/minimal` (one page of text in an embedded font), which
//!   shows the engine's own cost per letter apart from what a template costs;
//! - the welcome letter with `--print`: the letters, then the print files
//!   in mailing order with their ticket and MRDF (bytes a letter in the
//!   print files; peak RSS must stay flat, `LP_BENCH_RECORDS=100000`).

// As the CLI does (see src/main.rs).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use letterpress::model::vocab::Channel;
use letterpress::ops::synth::{statement_record, welcome_record};
use letterpress::util::rng::Rng;
use letterpress::{run, RunOptions};

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Renders `records` synthetic records with `layout` from `layouts` on
/// `channels`, prints one result line and returns the seconds taken.
fn bench(
    layouts: PathBuf,
    layout: &str,
    channels: &[Channel],
    records: usize,
    jobs: usize,
    print: bool,
) -> f64 {
    let names: Vec<&str> = channels.iter().map(|c| c.name()).collect();
    let label = format!(
        "{layout} [{}]{}",
        names.join("+"),
        if print { " --print" } else { "" }
    );
    let base = std::env::var_os("LP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!(
        "letterpress-bench-{}-{layout}-{}{}",
        std::process::id(),
        names.join("-"),
        if print { "-print" } else { "" }
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("records.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
    let mut rng = Rng::new(42);
    for i in 0..records {
        let record = match layout.starts_with("annual-statement") {
            true => statement_record(i, &mut rng, 60),
            false => welcome_record(i, &mut rng),
        };
        writeln!(w, "{record}").unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let mut opts = RunOptions::new(layout.parse().unwrap(), data, dir.join("out"));
    opts.layouts_dir = layouts;
    opts.as_of = letterpress::util::clock::Date::parse("2026-12-04");
    opts.jobs = jobs;
    opts.command = vec!["bench".into()];
    opts.channels = Some(channels.to_vec());
    opts.print = print;
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let report = run(&opts).expect("the benchmark run succeeds");
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let t = &report.manifest.totals;
    assert_eq!(
        t.rendered,
        records * channels.len(),
        "every document renders"
    );
    let in_print = report.manifest.print.as_ref().map_or(String::new(), |p| {
        let bytes: u64 = p.files.iter().map(|f| f.file.bytes).sum();
        format!(
            ", {:.1} KB/letter in {} print file(s)",
            bytes as f64 / records as f64 / 1024.0,
            p.files.len()
        )
    });
    let pages = if t.pages > 0 {
        format!(
            ", {} pages, {:.0} pages/s, {:.2} ms CPU/page",
            t.pages,
            t.pages as f64 / secs,
            cpu * 1e3 / t.pages as f64
        )
    } else {
        String::new()
    };
    // A record on two channels is two documents.
    let documents = t.rendered as f64;
    println!(
        "{label}: {records} records, {jobs} workers: {secs:.2} s, {:.0} documents/s, {:.2} ms CPU/document{pages}, {:.1} KB/document{in_print}, peak RSS {:.0} MB",
        documents / secs,
        cpu * 1e3 / documents,
        t.bytes as f64 / documents / 1024.0,
        peak_rss_mb()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    secs
}

/// One benchmark case, run in a process of its own so that each measures
/// what a real `letterpress run` does (fresh caches, its own peak RSS).
struct Case {
    layouts: &'static str,
    layout: &'static str,
    channels: &'static str,
    /// Records as a multiple of `LP_BENCH_RECORDS`.
    scale: usize,
    /// Also print files (`run --print`).
    print: bool,
}

const CASES: &[Case] = &[
    Case {
        layouts: "layouts",
        layout: "welcome-letter@2",
        channels: "pdf",
        scale: 1,
        print: false,
    },
    Case {
        layouts: "layouts",
        layout: "annual-statement@3",
        channels: "pdf",
        scale: 1,
        print: false,
    },
    Case {
        layouts: "layouts",
        layout: "welcome-letter@2",
        channels: "email",
        scale: 10,
        print: false,
    },
    Case {
        layouts: "layouts",
        layout: "welcome-letter@2",
        channels: "pdf,email",
        scale: 1,
        print: false,
    },
    Case {
        layouts: "benches/layouts",
        layout: "minimal",
        channels: "pdf",
        scale: 1,
        print: false,
    },
    Case {
        layouts: "layouts",
        layout: "welcome-letter@2",
        channels: "pdf",
        scale: 1,
        print: true,
    },
];

fn main() {
    #[cfg(feature = "mimalloc")]
    letterpress::util::mem::no_transparent_huge_pages();
    let records: usize = std::env::var("LP_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Ok(i) = std::env::var("LP_BENCH_CASE") {
        // As the CLI does before its workers start.
        letterpress::util::mem::cap_malloc_arenas(jobs);
        let case = &CASES[i.parse::<usize>().expect("a case number")];
        let channels: Vec<Channel> = case
            .channels
            .split(',')
            .map(|c| {
                if c == "pdf" {
                    Channel::Pdf
                } else {
                    Channel::Email
                }
            })
            .collect();
        let secs = bench(
            root.join(case.layouts),
            case.layout,
            &channels,
            records * case.scale,
            jobs,
            case.print,
        );
        println!("SECONDS {secs}");
        return;
    }
    let exe = std::env::current_exe().expect("the bench binary");
    let mut seconds = Vec::new();
    for i in 0..CASES.len() {
        let out = std::process::Command::new(&exe)
            .env("LP_BENCH_CASE", i.to_string())
            .output()
            .expect("the bench re-runs itself");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            match line.strip_prefix("SECONDS ") {
                Some(s) => seconds.push(s.parse::<f64>().unwrap()),
                None => println!("{line}"),
            }
        }
    }
    println!(
        "mixed run (pdf+email) against the PDF channel alone: {:+.1}%",
        (seconds[3] / seconds[0] - 1.0) * 100.0
    );
}
