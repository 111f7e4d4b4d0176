//! Benchmark of the review workspace's first view of a version: the proof
//! set of the sample welcome letter (19 records picked from the 56 of
//! `fixtures/customers.csv`, each page drawn as an image) and its diff
//! against the version in effect, as `ops::review::material` makes them
//! when a reviewer opens the version (later views reuse them).
//!
//!     cargo bench --bench review
//!
//! Prints the minimum, median and maximum of 5 runs in seconds, and the
//! CPU seconds (user + system) of the median run. Target (issue: a version
//! with 20 proof records and its diff on 2 cores): under one second.

use std::path::{Path, PathBuf};
use std::time::Instant;

use letterpress::model::layout::LayoutRef;
use letterpress::util::clock::Date;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn copy(src: &Path, dst: &Path) {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let to = dst.join(e.path().strip_prefix(src).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("letterpress-bench-review-{}", std::process::id()));
    let layouts = dir.join("layouts");
    copy(&root.join("layouts"), &layouts);
    // Version 5: version 4 with its closing sentence changed.
    let v5 = layouts.join("welcome-letter/5");
    copy(&layouts.join("welcome-letter/4"), &v5);
    let meta = std::fs::read_to_string(v5.join("layout.yaml")).unwrap();
    std::fs::write(
        v5.join("layout.yaml"),
        meta.replacen("version: 4", "version: 5", 1),
    )
    .unwrap();
    let texts = std::fs::read_to_string(v5.join("texts.yaml")).unwrap();
    std::fs::write(
        v5.join("texts.yaml"),
        texts.replacen("working with you.", "serving you.", 1),
    )
    .unwrap();
    let reference = LayoutRef {
        name: "welcome-letter".into(),
        version: Some(5),
    };
    let trust = root.join("trust.yaml");
    let data = root.join("fixtures/customers.csv");
    let day = Date::parse("2026-12-06").unwrap();
    let mut runs = Vec::new();
    for i in 0..5 {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let m = letterpress::ops::review::material(
            &layouts,
            Some(&trust),
            &reference,
            &data,
            &dir.join(format!("m{i}")),
            day,
        )
        .unwrap();
        runs.push((t0.elapsed().as_secs_f64(), cpu_seconds() - c0));
        assert!(m.diff.is_some() && !m.proof.picks.is_empty());
        if i == 0 {
            let pages: usize = m.proof.picks.iter().map(|p| p.images.len()).sum();
            println!(
                "{}: {} proof records, {pages} page images, diff against {} over {} records",
                m.id,
                m.proof.picks.len(),
                m.diff.as_ref().unwrap().old,
                m.diff.as_ref().unwrap().records
            );
        }
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "first view of a version (proof set with page images + diff): min {:.2} s, median {:.2} s, max {:.2} s; CPU of the median run {:.2} s",
        runs[0].0, runs[2].0, runs[4].0, runs[2].1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
