//! Runs across machines: N shard processes render disjoint parts of one
//! input into one folder, and `manifest merge` combines them into the
//! manifest a single machine's run would have written; shards that do not
//! belong together are refused with the reason.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

fn run_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let data = "fixtures/customers.csv";
    // The version with large print and web letters: every kind of
    // document a run makes is split and merged.
    let fixed = ["--as-of", "2026-11-28", "--jobs", "1"];
    let mut args = run_cmd("welcome-letter@4", data, out.to_str().unwrap(), &fixed);
    args.extend_from_slice(extra);
    args
}

fn merge(args: &[&str]) -> std::process::Output {
    let mut all = vec!["manifest", "merge"];
    all.extend_from_slice(args);
    letterpress(&all)
}

#[test]
fn three_shards_merge_into_the_single_machine_manifest() {
    let dir = scratch("shards");
    let single = dir.join("single");
    let res = letterpress(&run_args(&single, &[]));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));

    // Three processes at once, as three machines on one shared volume.
    let out = dir.join("sharded");
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let shard = format!("{k}/3");
            Command::new(env!("CARGO_BIN_EXE_letterpress"))
                .current_dir(root())
                .env("LETTERPRESS_LAYOUTS", root().join("layouts"))
                .env("LETTERPRESS_TRUST", trust_list())
                .args(run_args(&out, &["--shard", &shard]))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sizes = Vec::new();
    for (k, child) in children.into_iter().enumerate() {
        let res = child.wait_with_output().unwrap();
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let m = manifest(&out.join(format!("shard-{}-of-3", k + 1)));
        assert_eq!(m["shard"]["index"], k + 1);
        sizes.push(m["totals"]["records"].as_u64().unwrap());
    }
    assert_eq!(sizes.iter().sum::<u64>(), 56, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n > 5), "a fair split: {sizes:?}");

    // Unfinished or incomplete sets are refused, naming what is wrong.
    let res = merge(&[out.join("shard-1-of-3").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("shard 2/3, 3/3 missing"),
        "{}",
        describe(&res)
    );

    let res = merge(&[out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        std::fs::read(out.join("documents.jsonl")).unwrap()
            == std::fs::read(single.join("documents.jsonl")).unwrap(),
        "the merged journal is the single run's, byte for byte"
    );
    assert_eq!(stable_manifest(&out), stable_manifest(&single));
    // Each shard's manifest and journal, and its copy of the approval.
    let listed = manifest(&out)["shards"].as_array().unwrap().clone();
    let approval = |f: &&serde_json::Value| f["path"].as_str().unwrap().contains("/approval/");
    assert_eq!(
        listed.iter().filter(|f| !approval(f)).count(),
        6,
        "{listed:?}"
    );
    assert_eq!(listed.iter().filter(approval).count(), 3 * 5, "{listed:?}");
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for k in 1..=3 {
        let shard = out.join(format!("shard-{k}-of-3"));
        let res = letterpress(&["verify", shard.to_str().unwrap()]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let res = merge(&[out.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(2),
        "merging twice: {}",
        describe(&res)
    );
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("merged already"),
        "{}",
        describe(&res)
    );
}

#[test]
fn shards_that_do_not_belong_together_are_refused() {
    let dir = scratch("shards-refused");
    let out = dir.join("run");
    for (k, extra) in [("1/2", None), ("2/2", Some("2026-11-29"))] {
        let mut args = run_args(&out, &["--shard", k]);
        if let Some(date) = extra {
            let i = args.iter().position(|a| *a == "2026-11-28").unwrap();
            args[i] = date;
        }
        let res = letterpress(&args);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let res = merge(&[out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(err.contains("used another as-of date"), "{err}");

    // Overlap: shard 1's manifest passed off as shard 2 (re-sealed, so only
    // the overlap gives it away).
    std::fs::remove_dir_all(out.join("shard-2-of-2")).unwrap();
    copy_tree(&out.join("shard-1-of-2"), &out.join("shard-2-of-2"));
    let f = out.join("shard-2-of-2/manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    m["shard"]["index"] = 2.into();
    m["manifest_digest"] = letterpress::model::manifest::content_digest(&m).into();
    std::fs::write(&f, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let res = merge(&[out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(err.contains("the shards overlap"), "{err}");
    assert!(!out.join("manifest.json").exists());
    assert!(!out.join("documents.jsonl").exists());

    // A shard whose run did not finish.
    std::fs::remove_file(&f).unwrap();
    let res = merge(&[out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("has not finished"));
    // --print needs the whole batch.
    let res = letterpress(&run_args(&dir.join("p"), &["--shard", "1/2", "--print"]));
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
}
