//! Operator experience: the run report's numbers, structured logs, plain
//! logs off a terminal, completions and man page, and a new layout that
//! renders at once.

use std::collections::BTreeMap;

use crate::common::*;

/// The numbers in a report's table rows, by row label.
fn table_rows(html: &str) -> BTreeMap<String, Vec<u64>> {
    let mut rows = BTreeMap::new();
    for row in html.split("<tr>").skip(1) {
        let row = row.split("</tr>").next().unwrap();
        let cells: Vec<String> = row
            .split(['<', '>'])
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, t)| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some((label, rest)) = cells.split_first() {
            let nums: Vec<u64> = rest.iter().filter_map(|c| c.parse().ok()).collect();
            rows.insert(label.clone(), nums);
        }
    }
    rows
}

#[test]
fn the_report_agrees_with_the_manifest_and_stands_alone() {
    let dir = scratch("report");
    // Some records fail: no last name, or no opening date.
    let text = std::fs::read_to_string(root().join("fixtures/customers.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (i, line) in lines.iter_mut().enumerate().skip(1) {
        let mut cells: Vec<&str> = line.split(',').collect();
        if i % 9 == 4 {
            cells[3] = ""; // last_name
        } else if i % 13 == 6 {
            cells[13] = "2026-02-30"; // opened_on
        }
        *line = cells.join(",");
    }
    let data = dir.join("customers.csv");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter@2", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let m = manifest(&out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();

    // Totals per channel and overall, as in the manifest.
    let rows = table_rows(&html);
    for (name, c) in m["totals"]["channels"].as_object().unwrap() {
        let want: Vec<u64> = [
            "records",
            "rendered",
            "failed",
            "suppressed",
            "routed_elsewhere",
            "held",
            "pages",
        ]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .collect();
        assert_eq!(rows[name.as_str()][..7], want[..], "{name}: {html}");
    }
    let t = &m["totals"];
    assert_eq!(
        rows["All"][..7],
        [
            "documents",
            "rendered",
            "failed",
            "suppressed",
            "routed_elsewhere",
            "held",
            "pages"
        ]
        .map(|k| t[k].as_u64().unwrap())[..]
    );
    // Failures grouped by reason, with every failed record's id.
    let docs = m["documents"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = docs.iter().filter(|d| d["status"] == "failed").collect();
    assert!(!failed.is_empty());
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &failed {
        let e = d["error"].as_str().unwrap();
        let reason = e.split_once("): ").unwrap().1.to_owned();
        let id = d["record_id"].as_str().unwrap().to_owned();
        let ids = by_reason.entry(reason).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    for (reason, ids) in &by_reason {
        // Escaped, and what the reason quotes between backticks set as code.
        let esc = reason
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .split('`')
            .enumerate()
            .map(|(i, p)| match i % 2 {
                0 => p.to_owned(),
                _ => format!("<code>{p}</code>"),
            })
            .collect::<String>();
        let row = html
            .split("<tr>")
            .find(|r| r.contains(&esc))
            .unwrap_or_else(|| panic!("no row for {reason}"));
        assert!(
            row.contains(&format!("<td class=\"n\">{}</td>", ids.len())),
            "{row}"
        );
        for id in ids {
            assert!(row.contains(id.as_str()), "{id} in {row}");
        }
    }
    // Pages per letter: the histogram's counts add up to the letters.
    let letters = docs
        .iter()
        .filter(|d| d["channel"] == "pdf" && d["status"] == "rendered")
        .count();
    assert!(html.contains(&format!("1 pages: {letters}.")), "{html}");
    // Layout and approval; links to documents that exist.
    assert!(
        html.contains("approved by Priya Natarajan (demo) as compliance on 2026-11-22 for letters from 2026-11-22; submitted by Sam Okoro (demo) on 2026-11-22"),
        "{html}"
    );
    assert!(
        html.contains("the DEMO list: its approvals prove nothing"),
        "{html}"
    );
    let mut links = 0;
    for part in html.split("href=\"").skip(1) {
        let target = part.split('"').next().unwrap();
        assert!(out.join(target).is_file(), "{target}");
        links += 1;
    }
    assert!(links >= 5, "{links}");
    // Self-contained: nothing from the network, no script.
    for bad in ["<script", "http://", "https://", "<link", "@import", "url("] {
        assert!(!html.contains(bad), "{bad}");
    }
    // verify does not count the report as an extra file.
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn logs_are_plain_off_a_terminal_and_json_when_asked() {
    let dir = scratch("logs");
    let data = root().join("fixtures/reminders.csv");
    // Not a terminal: no bar, no control characters.
    let res = run_layout("payment-reminder", &data, &dir.join("plain"), &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    // The sample's demo trust list is named first, then the summary.
    assert!(
        err.lines().next().unwrap().contains("the trust list")
            && err.lines().next().unwrap().contains("is the DEMO list")
            && err
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("letterpress: payment-reminder@3: 24 records"),
        "{err}"
    );

    // JSON: one object a line, the summary's totals equal the manifest's.
    let out = dir.join("json");
    let json_lines = [
        "--as-of",
        "2026-11-22",
        "--progress",
        "lines",
        "--log-format",
        "json",
    ];
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let res = letterpress(&run_cmd("payment-reminder", d, o, &json_lines));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&res.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let finished = events.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["level"], "info");
    assert_eq!(finished["totals"], manifest(&out)["totals"]);
    assert_eq!(finished["exit_code"], 0);

    let res = letterpress(&[
        "--log-format",
        "json",
        "run",
        "--layout",
        "nope",
        "--data",
        "x.csv",
        "--out",
        "o",
    ]);
    assert_eq!(res.status.code(), Some(2));
    let e: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&res.stderr).trim()).unwrap();
    assert_eq!(e["level"], "error");
    assert_eq!(e["exit_code"], 2);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("no layout named `nope`"));
}

#[test]
fn completions_and_man_page_come_from_the_flags() {
    let res = letterpress(&["completions", "bash"]);
    assert_eq!(res.status.code(), Some(0));
    let bash = String::from_utf8_lossy(&res.stdout);
    for flag in [
        "--resume",
        "--shard",
        "--doc-timeout",
        "--log-format",
        "merge",
    ] {
        assert!(bash.contains(flag), "{flag}");
    }
    let res = letterpress(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&res.stdout).contains("#compdef letterpress"));
    let res = letterpress(&["man"]);
    let man = String::from_utf8_lossy(&res.stdout);
    assert!(man.contains(".TH letterpress 1"), "{man}");
    assert!(man.contains("completions"));
}

#[test]
fn a_new_layout_renders_at_once_and_can_be_approved() {
    let dir = scratch("new-layout");
    let layouts = dir.join("layouts");
    std::fs::create_dir_all(&layouts).unwrap();
    let res = letterpress_with_layouts(&layouts, &["layouts", "new", "account-statement"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("--allow-draft"));
    let data = layouts.join("account-statement/sample-data.csv");
    let out = dir.join("draft");
    let res = run_layout_with(
        &layouts,
        "account-statement@1",
        &data,
        &out,
        &["--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    assert_eq!(m["totals"]["failed"], 0);
    assert_eq!(m["totals"]["channels"]["email"]["rendered"], 2);
    let text = squash(&pdftotext(&out.join("pdf/C-2.pdf")));
    assert!(text.contains(&squash("Guten Tag Jürgen Weiß,")), "{text}");
    assert!(text.contains(&squash("-42,10 £")), "{text}");
    let text = squash(&pdftotext(&out.join("pdf/C-3.pdf")));
    assert!(
        text.contains(&squash("Dear Bo #set text(red) ],")),
        "{text}"
    );
    // Not approved: a customer run is refused; approved, it runs.
    let res = run_layout_with(&layouts, "account-statement@1", &data, &dir.join("no"), &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    approve(&layouts, "account-statement@1");
    let res = run_layout_with(
        &layouts,
        "account-statement@1",
        &data,
        &dir.join("yes"),
        &[],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // An existing name or a bad one is refused.
    let res = letterpress_with_layouts(&layouts, &["layouts", "new", "account-statement"]);
    assert_eq!(res.status.code(), Some(2));
    let res = letterpress_with_layouts(&layouts, &["layouts", "new", "Bad Name"]);
    assert_eq!(res.status.code(), Some(2));
}

/// Every `--json` summary carries `summary_version` and the exit code the
/// process returned (the book's "Exit codes, JSON summaries and logs").
#[test]
fn json_summaries_carry_their_version_and_exit_code() {
    let dir = scratch("json-summaries");
    let out = dir.join("run");
    let proof = dir.join("proof.pdf").to_str().unwrap().to_owned();
    let data = root().join("fixtures/customers.csv");
    let d = data.to_str().unwrap();
    let o = out.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        run_cmd("welcome-letter", d, o, &["--as-of", "2026-11-22", "--json"]),
        vec![
            "validate",
            "--layout",
            "welcome-letter",
            "--data",
            d,
            "--json",
        ],
        vec!["verify", o, "--json"],
        run_cmd("welcome-letter", d, o, &["--json"]),
        vec![
            "proof",
            "--layout",
            "welcome-letter@2",
            "--data",
            d,
            "--out",
            &proof,
            "--as-of",
            "2026-11-22",
            "--json",
        ],
        vec![
            "diff",
            "welcome-letter@1",
            "welcome-letter@2",
            "--data",
            d,
            "--as-of",
            "2026-11-22",
            "--json",
        ],
        vec!["layouts", "list", "--json"],
        vec!["layouts", "check", "--json"],
        vec!["manifest", "merge", o, "--json"],
    ];
    for args in runs {
        // With --log-format json, stderr is JSON lines too, whatever the
        // command: a log collector never meets a sentence.
        let args: Vec<&str> = ["--log-format", "json"].into_iter().chain(args).collect();
        let res = letterpress(&args);
        let doc: serde_json::Value = serde_json::from_slice(&res.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", describe(&res)));
        assert_eq!(doc["summary_version"], 1, "{args:?}");
        assert_eq!(
            doc["exit_code"],
            res.status.code().unwrap(),
            "{args:?}: {doc}"
        );
        for line in String::from_utf8_lossy(&res.stderr).lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?}: stderr line not JSON ({e}): {line}"));
            assert!(
                event["level"].is_string() && event["message"].is_string(),
                "{line}"
            );
        }
    }
}
