//! `letterpress verify`: a clean run is intact; every kind of tampering is
//! caught and named; re-rendering proves the bytes are reproducible and says
//! when the recorded input or layout changed.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A way to tamper with a run folder.
type Tamper = Box<dyn Fn(&Path)>;

fn fresh_run(name: &str, layouts: Option<&Path>) -> PathBuf {
    let out = scratch(name).join("run");
    let data = root().join("fixtures/customers.csv");
    let res = match layouts {
        Some(l) => run_layout_with(l, "welcome-letter", &data, &out, &[]),
        None => run_layout("welcome-letter", &data, &out, &[]),
    };
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    out
}

fn verify(run: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", run.to_str().unwrap()];
    args.extend_from_slice(extra);
    let res = letterpress(&args);
    (
        res.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        ),
    )
}

#[test]
fn a_clean_run_is_intact_and_renders_again_to_the_same_bytes() {
    let run = fresh_run("verify-clean", None);
    let (code, text) = verify(&run, &["--rerender", "6", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("6 records rendered again: intact"), "{text}");
    assert!(text.contains("\"problems\":[]"), "{text}");
}

#[test]
fn every_kind_of_tampering_is_caught_and_named() {
    let run = fresh_run("verify-tamper", None);
    let mut cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "one byte of a PDF",
            Box::new(|r: &Path| {
                let f = r.join("pdf/C-01001.pdf");
                let mut b = std::fs::read(&f).unwrap();
                let mid = b.len() / 2;
                b[mid] ^= 1;
                std::fs::write(&f, b).unwrap();
            }),
            "altered: pdf/C-01001.pdf (record C-01001 (pdf))",
        ),
        (
            "an email part removed",
            Box::new(|r: &Path| std::fs::remove_file(r.join("email/C-01008.html")).unwrap()),
            "missing: email/C-01008.html (record C-01008 (email))",
        ),
        (
            "a file added",
            Box::new(|r: &Path| std::fs::write(r.join("pdf/C-99999.pdf"), b"%PDF-1.7").unwrap()),
            "extra: pdf/C-99999.pdf (not in the manifest)",
        ),
        (
            "a temporary file left over",
            Box::new(|r: &Path| std::fs::write(r.join("pdf/.lp-tmp-1-x.pdf"), b"").unwrap()),
            "a temporary file left by an interrupted run",
        ),
        (
            "a number in the manifest",
            Box::new(|r: &Path| {
                let f = r.join("manifest.json");
                let t = std::fs::read_to_string(&f).unwrap();
                let edited = t.replacen("\"status\": \"approved\"", "\"status\": \"draft\"", 1);
                assert_ne!(edited, t);
                std::fs::write(&f, edited).unwrap();
            }),
            "manifest.json was edited after the run",
        ),
        (
            "an entry in the journal",
            Box::new(|r: &Path| {
                let f = r.join("documents.jsonl");
                let t = std::fs::read_to_string(&f).unwrap();
                let edited = t.replacen("\"pages\":1,", "\"pages\":2,", 1);
                assert_ne!(edited, t);
                std::fs::write(&f, edited).unwrap();
            }),
            "documents.jsonl was altered",
        ),
        (
            "the journal cut short",
            Box::new(|r: &Path| {
                let f = r.join("documents.jsonl");
                let t = std::fs::read_to_string(&f).unwrap();
                let last = t.trim_end().rfind('\n').unwrap();
                std::fs::write(&f, &t[..=last]).unwrap();
            }),
            "documents.jsonl was altered",
        ),
    ];
    for (what, tamper, want) in cases.drain(..) {
        let copy = scratch(&format!("verify-{}", what.replace(' ', "-"))).join("run");
        copy_tree(&run, &copy);
        let (code, text) = verify(&copy, &[]);
        assert_eq!(code, Some(0), "{what}: the copy is intact first: {text}");
        tamper(&copy);
        let (code, text) = verify(&copy, &[]);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(text.contains(want), "{what}: want {want:?} in:\n{text}");
    }
    // A manifest whose totals were edited and re-sealed by hand still fails
    // on the reconciliation.
    let copy = scratch("verify-totals").join("run");
    copy_tree(&run, &copy);
    let f = copy.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    m["totals"]["channels"]["pdf"]["rendered"] = 41.into();
    let digest = letterpress::model::manifest::content_digest(&m);
    m["manifest_digest"] = digest.into();
    std::fs::write(&f, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (code, text) = verify(&copy, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("totals.channels.pdf.rendered: recorded 41, counted 42"),
        "{text}"
    );
    assert!(!text.contains("was edited"), "{text}");
}

#[test]
fn rerendering_says_when_the_layout_or_input_changed() {
    let dir = scratch("verify-changed");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let data = dir.join("customers.csv");
    std::fs::copy(root().join("fixtures/customers.csv"), &data).unwrap();
    let run = dir.join("run");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &run, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let check = |want: &str| {
        let res = letterpress_with_layouts(
            &layouts,
            &["verify", run.to_str().unwrap(), "--rerender", "3"],
        );
        let text = String::from_utf8_lossy(&res.stdout).into_owned();
        // Not a tampered run (exit 1): a check that could not be made.
        assert_eq!(res.status.code(), Some(2), "{text}");
        assert!(
            text.contains("cannot check: cannot re-render: ") && text.contains(want),
            "want {want:?} in:\n{text}"
        );
        assert!(!text.contains("problem:"), "{text}");
    };
    let texts = layouts.join("welcome-letter/2/texts.yaml");
    let original = std::fs::read_to_string(&texts).unwrap();
    std::fs::write(&texts, original.replace("Dear {name},", "Hello {name},")).unwrap();
    approve(&layouts, "welcome-letter@2");
    check("the files of layout welcome-letter@2 in");
    std::fs::write(&texts, &original).unwrap();
    approve(&layouts, "welcome-letter@2");
    let mut csv = std::fs::read_to_string(&data).unwrap();
    csv.push('\n');
    std::fs::write(&data, csv).unwrap();
    check("is not the one the run read (its SHA-256 differs); give the run's input with --input");
}

/// A run made with its own layouts folder and input, from another folder:
/// verify, run from anywhere, renders again with what the run recorded, or
/// with the input where it is now (--input).
#[test]
fn rerendering_finds_the_layouts_and_input_the_run_used() {
    let dir = scratch("verify-elsewhere");
    let layouts = dir.join("bank/layouts");
    copy_tree(&root().join("layouts"), &layouts);
    std::fs::copy(
        root().join("fixtures/customers.csv"),
        dir.join("bank/customers.csv"),
    )
    .unwrap();
    // Its trust list is its own (here the sample's).
    std::fs::copy(root().join("trust.yaml"), dir.join("bank/trust.yaml")).unwrap();
    // Run from the bank's folder with relative paths.
    let res = std::process::Command::new(bin())
        .current_dir(dir.join("bank"))
        .env_remove("LETTERPRESS_LAYOUTS")
        .args(["--layouts", "layouts", "run", "--layout", "welcome-letter"])
        .args([
            "--data",
            "customers.csv",
            "--out",
            "../run",
            "--as-of",
            "2026-11-22",
        ])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let run = dir.join("run");
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", run.to_str().unwrap(), "--rerender", "4"];
        args.extend_from_slice(extra);
        std::process::Command::new(bin())
            .current_dir(&dir)
            .env_remove("LETTERPRESS_LAYOUTS")
            .args(&args)
            .output()
            .unwrap()
    };
    let res = verify(&[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("4 records rendered again: intact"));
    // The input moved: cannot check (exit 2), until --input says where.
    std::fs::rename(dir.join("bank/customers.csv"), dir.join("archived.csv")).unwrap();
    let res = verify(&[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stdout).contains("cannot check:"),
        "{}",
        describe(&res)
    );
    let archived = dir.join("archived.csv");
    let res = verify(&["--input", archived.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn purged_documents_are_reported_as_purged_and_the_rest_still_verified() {
    let out = render_ok(
        "welcome-letter",
        "fixtures/customers.csv",
        "purge",
        &["--as-of", "2026-11-22"],
    );
    let run = out.to_str().unwrap();
    // Within its retention time: refused, nothing deleted.
    let res = letterpress(&["purge", run, "--documents", "--retention-days", "30"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("kept 30 more days"));
    assert!(out.join("pdf/C-01001.pdf").exists());

    let res = letterpress(&[
        "purge",
        run,
        "--documents",
        "--retention-days",
        "0",
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let m = manifest(&out);
    let files: usize = m["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "rendered")
        .map(|d| 1 + d["files"].as_array().map_or(0, |f| f.len()))
        .sum();
    assert_eq!(report["deleted"], files);
    for dir in ["pdf", "email"] {
        let left = std::fs::read_dir(out.join(dir)).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{dir}/ is empty");
    }
    let purged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("purged.json")).unwrap()).unwrap();
    assert_eq!(purged["files"].as_object().unwrap().len(), files);

    // verify: purged, not missing; everything else still checked.
    let res = letterpress(&["verify", run, "--rerender", "3"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(
        said.contains(&format!("{files} purged on")) && said.contains("3 records rendered again"),
        "{said}"
    );
    let journal = out.join("documents.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, text.replacen("C-01001", "C-01002", 1)).unwrap();
    let res = letterpress(&["verify", run]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "an edited journal is still caught: {}",
        describe(&res)
    );
}
