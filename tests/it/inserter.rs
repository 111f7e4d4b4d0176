//! The inserter's loop: selective inserts, weights and the Mail Run Data
//! File per print file; `reconcile` reading the inserter's results back,
//! recording every piece and reprinting exactly what did not make it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::print::read_code;

type Row = BTreeMap<String, String>;

/// The sample layouts with the welcome letter's print section given
/// inserts, envelope weights and a weight table; returns the layouts folder.
fn layouts_with_inserts(dir: &Path) -> PathBuf {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("welcome-letter/2/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let old = "  envelopes:\n    - {name: \"DL\", max_sheets: 5}\n    - {name: \"C4\", max_sheets: 50}\n    - {name: \"hand insert\"}\n";
    assert!(text.contains(old), "the sample's envelopes changed");
    let new = "  envelopes:\n    - {name: \"DL\", max_sheets: 5, weight: 5}\n    - {name: \"C4\", max_sheets: 50, weight: 15}\n    - {name: \"hand insert\", divert: true}\n  sheet_weight: 5\n  inserts:\n    - {code: PREM, name: Premier benefits guide, weight: 30, field: product, value: Premier Current Account}\n    - {code: ODL, name: Overdraft leaflet, weight: 4, field: overdraft_limit}\n  weight_classes:\n    - {name: letter, max: 20}\n    - {name: large letter, max: 100}\n    - {name: parcel}\n";
    std::fs::write(&yaml, text.replace(old, new)).unwrap();
    approve(&layouts, "welcome-letter@2");
    layouts
}

#[test]
fn inserts_and_weights_reach_the_mail_run_data_file_the_ticket_and_the_code() {
    let dir = scratch("inserts");
    let layouts = layouts_with_inserts(&dir);
    let out = dir.join("run");
    let data = root().join("fixtures/customers.csv");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    let customers: BTreeMap<String, Row> = csv_rows(&data)
        .into_iter()
        .map(|r| (r["customer_id"].clone(), r))
        .collect();
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let ticket = csv_rows(&out.join("print/job-ticket.csv"));
    let pieces: Vec<&Row> = ticket
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert!(mrdf.len() >= 30, "{} pieces", mrdf.len());
    assert_eq!(mrdf.len(), pieces.len(), "one MRDF row per piece");
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for (row, piece) in mrdf.iter().zip(&pieces) {
        // In sequence, named as the code names them.
        assert_eq!(row["sequence"], piece["sequence"]);
        assert_eq!(row["piece_id"], format!("{run_id}|{}", piece["sequence"]));
        assert_eq!(row["record_ids"], piece["record_id"]);
        // The inserts from the record, computed here from the data.
        let c = &customers[&row["record_ids"]];
        let premier = c["product"] == "Premier Current Account";
        let overdraft = c["overdraft_limit"].parse::<f64>().is_ok_and(|x| x != 0.0);
        let mut want = Vec::new();
        if premier {
            want.push("PREM");
        }
        if overdraft {
            want.push("ODL");
        }
        assert_eq!(row["inserts"], want.join("+"), "{row:?}");
        assert_eq!(piece["inserts"], row["inserts"]);
        // One sheet (5 g), a DL envelope (5 g), and the inserts.
        let grams = 10.0 + if premier { 30.0 } else { 0.0 } + if overdraft { 4.0 } else { 0.0 };
        assert_eq!(row["weight_g"], format!("{grams:.1}"));
        let class = if grams <= 20.0 {
            "letter"
        } else {
            "large letter"
        };
        assert_eq!(row["weight_class"], class);
        assert_eq!(
            (row["envelope"].as_str(), row["divert"].as_str()),
            ("DL", "0")
        );
        *classes.entry(class.to_owned()).or_default() += 1;
    }
    assert!(classes.len() == 2, "both classes occur: {classes:?}");
    // The ticket counts pieces per weight class and per insert.
    let total = |kind: &str, col: &str, name: &str| {
        ticket
            .iter()
            .find(|r| r["sequence"] == kind && r[col] == name)
            .map(|r| r["record_id"].clone())
    };
    for (class, n) in &classes {
        assert_eq!(
            total("WEIGHT", "weight_class", class),
            Some(format!("{n} pieces"))
        );
    }
    let with = |code: &str| mrdf.iter().filter(|r| r["inserts"].contains(code)).count();
    assert_eq!(
        total("INSERT", "inserts", "PREM"),
        Some(format!("{} pieces", with("PREM")))
    );
    assert_eq!(
        total("INSERT", "inserts", "ODL"),
        Some(format!("{} pieces", with("ODL")))
    );
    // The DataMatrix of a piece with inserts carries them.
    let both = mrdf
        .iter()
        .position(|r| r["inserts"] == "PREM+ODL")
        .or_else(|| mrdf.iter().position(|r| !r["inserts"].is_empty()))
        .unwrap();
    let piece = pieces[both];
    let page: usize = piece["first_page"].parse().unwrap();
    assert_eq!(
        read_code(&out.join("print/print-001.pdf"), page, &dir),
        format!(
            "{run_id}|{}|1/1|{}",
            piece["sequence"], mrdf[both]["inserts"]
        )
    );
    // The MRDF is part of the audit record.
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
    let file = out.join("print/print-001.mrdf.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen(",0,\n", ",1,\n", 1)).unwrap();
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{}", describe(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("altered: print/print-001.mrdf.csv"));
}

#[test]
fn a_layout_with_a_bad_insert_or_weight_table_is_refused() {
    let dir = scratch("inserts-bad");
    let layouts = layouts_with_inserts(&dir);
    let yaml = layouts.join("welcome-letter/2/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let text = text
        .replace("code: ODL", "code: \"O|DL\"")
        .replace("field: overdraft_limit", "field: overdraft")
        .replace("{name: letter, max: 20}", "{name: letter, max: 200}");
    std::fs::write(&yaml, text).unwrap();
    let res = letterpress_with_layouts(&layouts, &["layouts", "check"]);
    let err =
        String::from_utf8_lossy(&res.stderr).to_string() + &String::from_utf8_lossy(&res.stdout);
    assert_ne!(res.status.code(), Some(0), "{err}");
    assert!(
        err.contains("code `O|DL` must start with a letter or digit and hold only letters, digits"),
        "{err}"
    );
    assert!(err.contains("field `overdraft` is not declared"), "{err}");
    assert!(
        err.contains("print.weight_classes: list the classes lightest first"),
        "{err}"
    );
}

/// A statement run whose thick pieces (over 2 sheets) are hand inserts.
fn statement_run(dir: &Path) -> (PathBuf, String) {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("annual-statement/1/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let old = "    - {name: \"C5/6\", max_sheets: 5}\n";
    assert!(text.contains(old));
    let text = text.replace(
        old,
        "    - {name: \"C5/6\", max_sheets: 2}\n    - {name: \"by hand\", max_sheets: 5, divert: true}\n",
    );
    std::fs::write(&yaml, text).unwrap();
    approve(&layouts, "annual-statement@1");
    let out = dir.join("run");
    let data = root().join("fixtures/statements.jsonl");
    let res = run_layout_with(&layouts, "annual-statement", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    (out, run_id)
}

fn reconcile(out: &Path, file: &Path) -> (Option<i32>, serde_json::Value) {
    let res = letterpress(&[
        "reconcile",
        out.to_str().unwrap(),
        "--inserter",
        file.to_str().unwrap(),
        "--json",
    ]);
    let json = serde_json::from_slice(&res.stdout).unwrap_or_else(|_| panic!("{}", describe(&res)));
    (res.status.code(), json)
}

fn numbers(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn reconcile_records_every_piece_and_reprints_exactly_what_did_not_make_it() {
    let dir = scratch("reconcile");
    let (out, run_id) = statement_run(&dir);
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    assert_eq!(mrdf.len(), 20);
    let hand: Vec<&Row> = mrdf.iter().filter(|r| r["divert"] == "1").collect();
    assert!(
        !hand.is_empty(),
        "some statements are thick enough to go by hand"
    );
    let hand_piece: u32 = hand[0]["sequence"].parse().unwrap();
    // A machine piece diverted, one damaged, one never reported, one
    // reported twice; the planned hand insert diverted; a piece of another
    // run, one this run never made.
    let machine: Vec<u32> = mrdf
        .iter()
        .filter(|r| r["divert"] == "0")
        .map(|r| r["sequence"].parse().unwrap())
        .collect();
    let (diverted, damaged, missing, twice) = (machine[1], machine[3], machine[5], machine[7]);
    let mut csv = String::from("piece_id,outcome,station\n");
    for r in &mrdf {
        let n: u32 = r["sequence"].parse().unwrap();
        let outcome = match n {
            _ if n == missing => continue,
            _ if n == diverted || n == hand_piece => "diverted",
            _ if n == damaged => "DAMAGED",
            _ => "inserted",
        };
        csv.push_str(&format!("{},{outcome},line 2\n", r["piece_id"]));
    }
    csv.push_str(&format!("{run_id}|{twice},inserted,line 2\n"));
    csv.push_str("20991231T000000Z-000000000000|3,inserted,line 2\n");
    csv.push_str(&format!("{run_id}|999,inserted,line 2\n"));
    let result = dir.join("result.csv");
    std::fs::write(&result, &csv).unwrap();
    let (code, r) = reconcile(&out, &result);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["expected"], 20);
    assert_eq!(numbers(&r["outcomes"]["missing"]), [missing as u64]);
    assert_eq!(numbers(&r["outcomes"]["damaged"]), [damaged as u64]);
    assert_eq!(numbers(&r["diverted_as_planned"]), [hand_piece as u64]);
    let problems: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains(&format!("piece {twice} (record"))
            && problems[0].contains("seen twice")
    );
    assert!(problems[1].contains("piece 3 of run 20991231T000000Z-000000000000, not of this run"));
    assert!(problems[2].contains("piece 999 was never made by this run"));
    // The reprint: exactly the diverted, damaged and missing machine pieces,
    // with their numbers and envelope classes, and its own MRDF.
    let mut want = [diverted, damaged, missing];
    want.sort();
    let reprint = &r["reprint"];
    assert_eq!(
        numbers(&reprint["pieces"]),
        want.iter().map(|n| *n as u64).collect::<Vec<_>>()
    );
    let again = csv_rows(&out.join("print/reprint-001-001.mrdf.csv"));
    let again_ids: Vec<&str> = again.iter().map(|r| r["piece_id"].as_str()).collect();
    let want_ids: Vec<String> = want.iter().map(|n| format!("{run_id}|{n}")).collect();
    assert_eq!(again_ids, want_ids);
    for row in &again {
        let original = mrdf
            .iter()
            .find(|o| o["piece_id"] == row["piece_id"])
            .unwrap();
        assert_eq!(row["envelope"], original["envelope"]);
        assert_eq!(row["sheets"], original["sheets"]);
    }
    // Every piece is in the journal once; reconciling the same file again
    // changes nothing.
    let journal = out.join("print/pieces.jsonl");
    let before = std::fs::read(&journal).unwrap();
    assert_eq!(before.iter().filter(|b| **b == b'\n').count(), 20);
    let (code, r) = reconcile(&out, &result);
    assert_eq!(code, Some(1), "three pieces wait for their reprint: {r}");
    assert_eq!(r["already_reconciled"], true);
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    assert!(!out.join("print/reprint-002-001.pdf").exists());
    // The reprint's own result, as a camera's list of sheet codes, closes
    // them.
    let scans: Vec<String> = again
        .iter()
        .flat_map(|r| {
            let sheets: usize = r["sheets"].parse().unwrap();
            (1..=sheets).map(move |s| format!("{}|{s}/{sheets}", r["piece_id"]))
        })
        .collect();
    let result2 = dir.join("reprint-result.txt");
    std::fs::write(&result2, scans.join("\n") + "\n").unwrap();
    let (code, r) = reconcile(&out, &result2);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["expected"], 3);
    assert_eq!(numbers(&r["outcomes"]["inserted"]).len(), 3);
    assert_eq!(r["open"].as_array().unwrap().len(), 0);
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("Mail pieces: 19 of 20 inserted"),
        "the hand insert is diverted as planned"
    );
    // verify accepts the journal and catches an edit to it.
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, text.replacen("\"piece\":", "\"piece\":9", 1)).unwrap();
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{}", describe(&v));
    let said = String::from_utf8_lossy(&v.stdout);
    assert!(
        said.contains("altered: print/pieces.jsonl line 2: does not follow line 1"),
        "{said}"
    );
}

#[test]
fn a_scan_with_a_sheet_missing_is_a_damaged_piece_and_is_reprinted() {
    let dir = scratch("reconcile-scan");
    let (out, _) = statement_run(&dir);
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let thick = mrdf
        .iter()
        .find(|r| r["sheets"] == "2" && r["divert"] == "0")
        .unwrap();
    let mut lines = Vec::new();
    for r in &mrdf {
        let sheets: usize = r["sheets"].parse().unwrap();
        for s in 1..=sheets {
            if r["piece_id"] == thick["piece_id"] && s == 2 {
                continue;
            }
            lines.push(format!("{}|{s}/{sheets}", r["piece_id"]));
        }
    }
    let result = dir.join("scans.txt");
    std::fs::write(&result, lines.join("\n") + "\n").unwrap();
    let (code, r) = reconcile(&out, &result);
    assert_eq!(code, Some(1), "{r}");
    let n: u64 = thick["sequence"].parse().unwrap();
    assert_eq!(numbers(&r["outcomes"]["damaged"]), [n]);
    assert_eq!(numbers(&r["reprint"]["pieces"]), [n]);
    assert_eq!(r["problems"].as_array().unwrap().len(), 0);
}

/// A statement run split into print files of at most 6 sheets.
fn small_files_run(dir: &Path) -> (PathBuf, Vec<String>) {
    let layouts = layouts_edited(
        dir,
        "annual-statement/1/layout.yaml",
        &[("max_sheets_per_file: 1000", "max_sheets_per_file: 6")],
    );
    let out = dir.join("run");
    let data = root().join("fixtures/statements.jsonl");
    let res = run_layout_with(&layouts, "annual-statement", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let mut mrdfs: Vec<String> = std::fs::read_dir(out.join("print"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".mrdf.csv"))
        .collect();
    mrdfs.sort();
    (out, mrdfs)
}

/// One result file per print file, all reconciled at once: each file's
/// first piece damaged. They take turns on the run's lock; every reprint
/// has its own number and files, and every damaged piece is in one.
#[test]
fn many_reconciles_at_once_take_turns_and_number_their_reprints_apart() {
    let dir = scratch("reconcile-many");
    let (out, mrdfs) = small_files_run(&dir);
    assert!(mrdfs.len() >= 6, "{mrdfs:?}");
    let mut damaged = Vec::new();
    let mut results = Vec::new();
    for (i, mrdf) in mrdfs.iter().enumerate() {
        let rows = csv_rows(Path::new(mrdf));
        let mut csv = String::from("piece_id,outcome\n");
        for (j, r) in rows.iter().enumerate() {
            let outcome = if j == 0 { "damaged" } else { "inserted" };
            if j == 0 {
                damaged.push(r["sequence"].parse::<u64>().unwrap());
            }
            csv.push_str(&format!("{},{outcome}\n", r["piece_id"]));
        }
        let file = dir.join(format!("result-{i}.csv"));
        std::fs::write(&file, csv).unwrap();
        results.push(file);
    }
    let children: Vec<std::process::Child> = results
        .iter()
        .map(|f| {
            std::process::Command::new(bin())
                .current_dir(root())
                .args(["reconcile", out.to_str().unwrap(), "--inserter"])
                .arg(f)
                .args(["--lock-wait", "120", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut numbers_seen = Vec::new();
    for c in children {
        let res = c.wait_with_output().unwrap();
        assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
        let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
        numbers_seen.push(r["reprint"]["reprint"].as_u64().unwrap());
    }
    numbers_seen.sort();
    let want: Vec<u64> = (1..=mrdfs.len() as u64).collect();
    assert_eq!(numbers_seen, want, "each reprint its own number");
    let reprints: Vec<serde_json::Value> =
        std::fs::read_to_string(out.join("print/reprints.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let mut pieces: Vec<u64> = reprints
        .iter()
        .flat_map(|r| numbers(&r["pieces"]))
        .collect();
    pieces.sort();
    damaged.sort();
    assert_eq!(
        pieces, damaged,
        "every damaged piece is in exactly one reprint"
    );
    for r in &reprints {
        for f in r["files"].as_array().unwrap() {
            let path = out.join(f["path"].as_str().unwrap());
            assert_eq!(sha256_file(&path), f["sha256"].as_str().unwrap(), "{f}");
        }
    }
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
    // Without a wait, a reconcile that finds the lock held is refused whole.
    let lock = serde_json::json!({"id": "x", "pid": 1, "host": "inserter-pc", "what": "reconcile",
        "pid_space": "other", "started": "2026-12-06T00:00:00Z",
        "renewed": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "lease": 120});
    std::fs::write(out.join(".run.lock"), lock.to_string()).unwrap();
    let before = std::fs::read(out.join("print/pieces.jsonl")).unwrap();
    let res = letterpress(&[
        "reconcile",
        out.to_str().unwrap(),
        "--inserter",
        results[0].to_str().unwrap(),
    ]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("another reconcile is working"));
    assert_eq!(
        std::fs::read(out.join("print/pieces.jsonl")).unwrap(),
        before
    );
}

/// The run's own record says how many sheets a piece has; a camera list
/// cannot close a piece with codes that disagree, and a result file cut off
/// in the middle is refused rather than turning the rest into reprints.
#[test]
fn a_camera_list_cannot_close_a_piece_with_the_wrong_sheets_and_a_cut_file_is_refused() {
    let dir = scratch("reconcile-sheets");
    let (out, run_id) = statement_run(&dir);
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let thick: Vec<&Row> = mrdf
        .iter()
        .filter(|r| r["sheets"].parse::<u32>().unwrap() >= 2 && r["divert"] == "0")
        .collect();
    let (a, b, c) = (thick[0], thick[1], thick[2]);
    let mut lines = Vec::new();
    for r in &mrdf {
        let id = &r["piece_id"];
        let sheets: usize = r["sheets"].parse().unwrap();
        if id == &a["piece_id"] {
            lines.push(format!("{id}|1/1")); // a 2-or-more-sheet piece as 1/1
        } else if id == &b["piece_id"] {
            lines.push(format!("{id}|0/0"));
        } else if id == &c["piece_id"] {
            lines.push(id.to_string()); // a bare piece id
        } else {
            lines.extend((1..=sheets).map(|s| format!("{id}|{s}/{sheets}")));
        }
    }
    let scans = dir.join("scans.txt");
    std::fs::write(&scans, lines.join("\n") + "\n").unwrap();
    let (code, r) = reconcile(&out, &scans);
    assert_eq!(code, Some(1), "{r}");
    let seq = |r: &Row| r["sequence"].parse::<u64>().unwrap();
    let inserted = numbers(&r["outcomes"]["inserted"]);
    for p in [a, b, c] {
        assert!(
            !inserted.contains(&seq(p)),
            "piece {} not closed: {r}",
            seq(p)
        );
        assert!(numbers(&r["reprint"]["pieces"]).contains(&seq(p)), "{r}");
    }
    let problems = r["problems"].to_string();
    assert!(
        problems.contains(&format!("says sheet 1/1, but piece {} has", seq(a))),
        "{problems}"
    );
    assert!(
        problems.contains(&format!("piece {} without a sheet", seq(c))),
        "{problems}"
    );
    assert!(
        problems.contains(&format!("`{run_id}|{}|0/0`", seq(b))),
        "{problems}"
    );

    // A result file cut off in the middle of a line: refused, nothing
    // recorded; accepted once the operator says it is whole.
    let dir2 = scratch("reconcile-cut");
    let (out2, _) = statement_run(&dir2);
    let mut csv = String::from("piece_id,outcome\n");
    for r in csv_rows(&out2.join("print/print-001.mrdf.csv"))
        .iter()
        .take(12)
    {
        csv.push_str(&format!("{},inserted\n", r["piece_id"]));
    }
    let cut = dir2.join("cut.csv");
    std::fs::write(&cut, &csv[..csv.len() - 9]).unwrap();
    let res = letterpress(&[
        "reconcile",
        out2.to_str().unwrap(),
        "--inserter",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("line 13") && err.contains("--complete"),
        "{err}"
    );
    assert!(
        !out2.join("print/pieces.jsonl").exists(),
        "nothing recorded"
    );
    assert!(!out2.join("print/reprints.jsonl").exists(), "no reprint");
}

/// A camera at the envelopes reads each finished piece's Mailmark through
/// the window (the sample welcome-pack prints barcode C): a piece read is
/// inserted whole, one never read is missing and reprinted, a Mailmark of
/// no piece of the run is a problem.
#[test]
fn a_camera_reading_the_mailmark_closes_whole_pieces() {
    let dir = scratch("reconcile-mailmark");
    let out = dir.join("run");
    let res = run_layout(
        "welcome-pack",
        &root().join("fixtures/welcome-pack.csv"),
        &out,
        &["--print", "--household", "--as-of", "2026-12-06"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    assert_eq!(mrdf.len(), 8);
    // Every piece but the last read, as the scanner gives it (trailing
    // spaces of a short postcode trimmed).
    let mut scans: Vec<String> = mrdf[..7]
        .iter()
        .map(|r| r["barcode"].trim_end().to_owned())
        .collect();
    scans.push("1121299999999SW194HE9Z".into());
    let file = dir.join("camera.txt");
    std::fs::write(&file, scans.join("\n") + "\n").unwrap();
    let (code, r) = reconcile(&out, &file);
    assert_eq!(code, Some(1), "{r}");
    let last: u64 = mrdf[7]["sequence"].parse().unwrap();
    assert_eq!(numbers(&r["outcomes"]["missing"]), [last], "{r}");
    assert_eq!(numbers(&r["outcomes"]["inserted"]).len(), 7, "{r}");
    assert!(r["problems"].to_string().contains("line 8"), "{r}");
    assert!(
        r["problems"].to_string().contains("no piece of this run"),
        "{r}"
    );
}
