//! The library as a scheduler written in Rust uses it: no binary, no
//! flags, only `letterpress::run` and the other `ops` functions with their
//! options' defaults.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use letterpress::model::layout::LayoutRef;
use letterpress::ops::run::Observer;
use letterpress::ops::verify::{verify, VerifyOptions};
use letterpress::util::clock::Date;
use letterpress::{run, Error, RunOptions};

use crate::common::*;

fn options(out: &std::path::Path) -> RunOptions {
    let layout: LayoutRef = "welcome-letter@2".parse().unwrap();
    let mut opts = RunOptions::new(layout, root().join("fixtures/customers.csv"), out);
    opts.layouts_dir = root().join("layouts");
    opts.as_of = Date::parse("2026-11-22");
    opts
}

#[test]
fn a_run_through_the_library_writes_what_the_manifest_says() {
    let dir = scratch("library-run");
    let out = dir.join("out");
    let mut opts = options(&out);
    let reports = Arc::new(AtomicUsize::new(0));
    let seen = reports.clone();
    let last = Arc::new(std::sync::Mutex::new(None));
    let last_seen = last.clone();
    opts.observer = Observer::new(move |p| {
        seen.fetch_add(1, Ordering::SeqCst);
        *last_seen.lock().unwrap() = Some(p);
    });
    let report = run(&opts).unwrap();

    // The report and the manifest on disk agree, and the files are there
    // with the hashes the journal records.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report.manifest_path).unwrap()).unwrap();
    assert_eq!(on_disk["run_id"], report.manifest.run_id.as_str());
    let records = report.manifest.totals.records;
    assert_eq!(records, 56, "{:?}", report.manifest.totals);
    assert_eq!(on_disk["totals"]["records"], records);
    assert_eq!(
        report.exit_code(),
        if report.manifest.totals.failed == 0 {
            0
        } else {
            1
        }
    );
    let journal = std::fs::read_to_string(out.join("documents.jsonl")).unwrap();
    let mut rendered = 0;
    for line in journal.lines() {
        let d: serde_json::Value = serde_json::from_str(line).unwrap();
        if d["status"] == "rendered" {
            let file = out.join(d["path"].as_str().unwrap());
            assert_eq!(sha256_file(&file), d["sha256"].as_str().unwrap(), "{line}");
            rendered += 1;
        }
    }
    assert_eq!(rendered, report.manifest.totals.rendered);
    assert!(rendered > 50, "{rendered}");

    // The observer heard of the run and its end.
    assert!(reports.load(Ordering::SeqCst) >= 1);
    let last = last.lock().unwrap().expect("told at least once");
    assert!(last.finished, "{last:?}");
    assert_eq!(last.done, records);

    // verify, also a library call, finds the run intact.
    let mut check = VerifyOptions::new(&out);
    check.layouts_dir = Some(root().join("layouts"));
    check.rerender = 2;
    let verified = verify(&check).unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    assert_eq!(verified.rerendered, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_asked_for_before_the_run_ends_it_cleanly_and_resume_finishes_it() {
    let dir = scratch("library-stop");
    let out = dir.join("out");
    let opts = options(&out);
    opts.stop.request(15);
    let err = run(&opts).unwrap_err();
    assert!(matches!(err, Error::Stopped { .. }), "{err}");
    assert_eq!(err.exit_code(), 143);
    assert!(!out.join("manifest.json").exists());

    let mut again = options(&out);
    again.resume = true;
    let report = run(&again).unwrap();
    assert_eq!(report.manifest.totals.records, 56);
    assert!(report.resumed.is_some());
    assert!(out.join("manifest.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
