//! The book's reference pages are the program's own word: the command-line
//! reference is every command's `--help`, and the JSON Schemas come from
//! the serde types that write the files and summaries. Both are generated
//! again here and compared with the committed pages (`LETTERPRESS_BLESS=1`
//! writes them instead, see "Publishing this book"); the sample runs' files
//! and `--json` summaries are validated against the schemas; every link
//! between the book's pages, and every anchor, leads somewhere; and mdBook
//! builds the book.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// `letterpress ARGS` with no `LETTERPRESS_*` variable set, whose values
/// clap would show in `--help`.
fn clean(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.current_dir(root()).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LETTERPRESS_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

fn bless() -> bool {
    std::env::var_os("LETTERPRESS_BLESS").is_some()
}

#[test]
fn the_cli_reference_is_the_programs_help() {
    let res = clean(&["reference", "cli"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let page = root().join("docs/src/reference/cli.md");
    if bless() {
        std::fs::write(&page, &res.stdout).unwrap();
    }
    let committed = std::fs::read_to_string(&page).unwrap();
    let generated = String::from_utf8(res.stdout).unwrap();
    assert!(
        committed == generated,
        "docs/src/reference/cli.md is not what `letterpress reference cli` prints: run LETTERPRESS_BLESS=1 cargo test --release --test it reference"
    );
    // Every command is in it.
    for command in [
        "run",
        "validate",
        "send",
        "verify",
        "purge",
        "reconcile",
        "feedback import",
        "key new",
    ] {
        assert!(
            committed.contains(&format!("## `letterpress {command}`")),
            "{command}"
        );
    }
}

/// The committed schemas, by file name.
fn committed_schemas() -> BTreeMap<String, serde_json::Value> {
    let dir = root().join("docs/src/reference/schemas");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_owned();
            (
                name,
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_json_schemas_are_the_programs() {
    let dir = scratch("reference-schemas");
    let out = if bless() {
        root().join("docs/src/reference/schemas")
    } else {
        dir.join("schemas")
    };
    let res = clean(&["reference", "schemas", "--out", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let committed = root().join("docs/src/reference/schemas").join(name);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&committed).unwrap_or_default(),
            "{} differs from what the program generates: run LETTERPRESS_BLESS=1 cargo test --release --test it reference",
            committed.display()
        );
    }
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        committed_schemas().len(),
        "no committed schema the program no longer writes"
    );
}

/// Checks `instance` against the committed schema `name`; the problems.
fn problems(
    schemas: &BTreeMap<String, serde_json::Value>,
    name: &str,
    instance: &serde_json::Value,
) -> Vec<String> {
    let validator =
        jsonschema::validator_for(&schemas[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{name}: {e} at {}", e.instance_path))
        .collect()
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `letterpress ARGS --json`: its summary.
fn summary(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let res = letterpress(&all);
    serde_json::from_slice(&res.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&res)))
}

#[test]
fn sample_runs_match_the_schemas() {
    let schemas = committed_schemas();
    let dir = scratch("reference-samples");
    let data = root().join("fixtures/customers.csv");
    let mut wrong = Vec::new();
    let mut check =
        |name: &str, value: &serde_json::Value| wrong.extend(problems(&schemas, name, value));
    // A print run with every channel, sent to a sink, reprinted,
    // reconciled, verified and purged; a validate and a feedback import.
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let mut args = run_cmd(
        "welcome-letter",
        data.to_str().unwrap(),
        o,
        &["--print", "--as-of", "2026-11-28"],
    );
    args.push("--json");
    let res = letterpress(&args);
    check("summary-run", &serde_json::from_slice(&res.stdout).unwrap());
    check(
        "summary-validate",
        &summary(&[
            "validate",
            "--layout",
            "welcome-letter",
            "--data",
            data.to_str().unwrap(),
            "--suppress",
            "fixtures/do-not-contact.txt",
        ]),
    );
    let sink = crate::send::Sink::start(&dir, "plain");
    let db = dir.join("contacts.db");
    check(
        "summary-send",
        &summary(&[
            "send",
            "--run",
            o,
            "--smtp",
            &sink.url(),
            "--rate",
            "500/s",
            "--contacts",
            db.to_str().unwrap(),
        ]),
    );
    check(
        "summary-feedback-import",
        &summary(&[
            "feedback",
            "import",
            "--contacts",
            db.to_str().unwrap(),
            "fixtures/esp-events.csv",
        ]),
    );
    check(
        "summary-reprint",
        &summary(&["reprint", o, "--pieces", "1,2"]),
    );
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let mut result = String::from("piece_id,outcome\n");
    for (i, r) in mrdf.iter().enumerate() {
        result.push_str(&format!(
            "{},{}\n",
            r["piece_id"],
            if i == 0 { "damaged" } else { "inserted" }
        ));
    }
    std::fs::write(dir.join("result.csv"), result).unwrap();
    check(
        "summary-reconcile",
        &summary(&[
            "reconcile",
            o,
            "--inserter",
            dir.join("result.csv").to_str().unwrap(),
        ]),
    );
    check("summary-verify", &summary(&["verify", o]));
    let value =
        |p: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
    check("manifest", &value(&out.join("manifest.json")));
    for (log, name) in [
        ("documents.jsonl", "documents-line"),
        ("delivery.jsonl", "delivery-line"),
        ("print/reprints.jsonl", "reprints-line"),
        ("print/pieces.jsonl", "pieces-line"),
    ] {
        let lines = json_lines(&out.join(log));
        assert!(!lines.is_empty(), "{log}");
        for line in &lines {
            check(name, line);
        }
    }
    check(
        "summary-purge",
        &summary(&["purge", o, "--documents", "--retention-days", "0"]),
    );
    check("purged", &value(&out.join("purged.json")));
    check("manifest", &value(&out.join("manifest.json")));
    check(
        "summary-error",
        &summary(&["verify", dir.join("none").to_str().unwrap()]),
    );
    // The other sample layouts' runs.
    for (layout, fixture) in [
        ("annual-statement", "fixtures/statements.jsonl"),
        ("payment-reminder", "fixtures/reminders.csv"),
    ] {
        let out = dir.join(layout);
        let mut args = run_cmd(
            layout,
            fixture,
            out.to_str().unwrap(),
            &["--as-of", "2026-12-06"],
        );
        args.push("--json");
        let res = letterpress(&args);
        check("summary-run", &serde_json::from_slice(&res.stdout).unwrap());
        check("manifest", &value(&out.join("manifest.json")));
        for line in json_lines(&out.join("documents.jsonl")) {
            check("documents-line", &line);
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // A value of the wrong type, or a missing field, fails (the schemas
    // can fail).
    let mut m = value(&out.join("manifest.json"));
    m["totals"]["records"] = "56".into();
    assert!(!problems(&schemas, "manifest", &m).is_empty());
    let mut line = json_lines(&out.join("delivery.jsonl")).remove(0);
    line.as_object_mut().unwrap().remove("prev");
    assert!(!problems(&schemas, "delivery-line", &line).is_empty());
}

/// The `#` ids mdBook gives a page's headings: lower case, spaces to `-`,
/// other punctuation left out; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fence) else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        let id: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        out.push(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the Markdown links of `text` that are not web addresses.
fn local_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        }
        if fence {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = &after[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_owned());
            }
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_link_of_the_book_and_the_readme_leads_somewhere() {
    let mut pages: Vec<PathBuf> = walkdir::WalkDir::new(root().join("docs/src"))
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_path_buf())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.push(root().join("README.md"));
    let mut broken = Vec::new();
    let mut links = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in local_links(&text) {
            links += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = match file {
                "" => page.clone(),
                f => page.parent().unwrap().join(f),
            };
            let rel = page.strip_prefix(root()).unwrap().display().to_string();
            if !target.exists() {
                broken.push(format!("{rel}: {link}: no such file"));
            } else if !anchor.is_empty()
                && !anchors(&std::fs::read_to_string(&target).unwrap()).contains(&anchor.to_owned())
            {
                broken.push(format!("{rel}: {link}: no such heading"));
            }
        }
    }
    assert!(links > 50, "{links} links");
    assert!(broken.is_empty(), "{broken:#?}");
    // The check finds a broken link (a negative control).
    assert_eq!(
        anchors("# A title\n## Exit codes, JSON\n## Exit codes, JSON"),
        ["a-title", "exit-codes-json", "exit-codes-json-1"]
    );
    assert_eq!(
        local_links("see [x](a.md#b) and [y](https://e.x) `[z](c.md)`"),
        ["a.md#b", "c.md"]
    );
}

/// mdBook builds the book (CI installs it; without it the test says so and,
/// where the whole suite must run, fails).
#[test]
fn the_book_builds() {
    let version = Command::new("mdbook").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("LETTERPRESS_REQUIRE_SLURM").is_none(),
            "mdbook must be installed where the whole suite runs (.ci/run installs it)"
        );
        eprintln!("SKIPPED: mdbook is not installed (cargo install mdbook --locked)");
        return;
    }
    let out = scratch("reference-book").join("book");
    let res = Command::new("mdbook")
        .args(["build", "docs", "--dest-dir"])
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", describe(&res));
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(!said.contains("WARN") && !said.contains("ERROR"), "{said}");
    assert!(out.join("index.html").is_file() && out.join("reference/cli.html").is_file());
}
