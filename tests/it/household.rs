//! Householding: letters for one household in one mail piece, only where a
//! customer may share an envelope, with the piece's sheets, marks, ticket,
//! MRDF and manifest computed for the whole piece.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::print::{grey, read_code};

/// Statements with households: 0 and 1 at one address written two ways,
/// both consenting; 2 and 3 at another, 3 not consenting; 4 and 5 at a
/// third, not consenting but the same account holder. The layout declares
/// the consent and holder fields and prints a DataMatrix too.
fn setup(dir: &Path) -> (PathBuf, PathBuf, Vec<Value>) {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("annual-statement/1/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let text = text
        .replace(
            "  - {name: customer_id, type: string, required: true}\n",
            "  - {name: customer_id, type: string, required: true}\n  - {name: holder, type: string}\n  - {name: household_consent, type: bool}\n",
        )
        .replace(
            "  omr: {",
            "  household: {customer_field: holder, consent_field: household_consent}\n  datamatrix: {left: 5, top: 255, module: 0.5}\n  omr: {",
        );
    std::fs::write(&yaml, text).unwrap();
    approve(&layouts, "annual-statement@1");
    let text = std::fs::read_to_string(root().join("fixtures/statements.jsonl")).unwrap();
    let mut records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let address = |line1: &str, postcode: &str| json!({"line1": line1, "postcode": postcode, "city": "London"});
    let set = |r: &mut Value, a: Value, consent: bool, holder: Option<&str>| {
        r["address"] = a;
        r["household_consent"] = json!(consent);
        if let Some(h) = holder {
            r["holder"] = json!(h);
        }
    };
    set(
        &mut records[0],
        address("Flat 2, 10 Elm Road", "N1 7AA"),
        true,
        None,
    );
    set(
        &mut records[1],
        address("flat 2 10 ELM ROAD.", "n17aa"),
        true,
        None,
    );
    set(&mut records[2], address("5 Oak Lane", "E2 8BB"), true, None);
    set(
        &mut records[3],
        address("5 Oak Lane", "E2 8BB"),
        false,
        None,
    );
    set(
        &mut records[4],
        address("9 Ash Court", "SE1 9CC"),
        false,
        Some("H-1"),
    );
    set(
        &mut records[5],
        address("9 Ash Court", "SE1 9CC"),
        false,
        Some("H-1"),
    );
    let data = dir.join("households.jsonl");
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    (layouts, data, records)
}

fn id(r: &Value) -> String {
    r["customer_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_household_gets_one_piece_and_no_customer_shares_an_envelope_without_consent() {
    let dir = scratch("household");
    let (layouts, data, records) = setup(&dir);
    let single = dir.join("single");
    let res = run_layout_with(&layouts, "annual-statement", &data, &single, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let out = dir.join("run");
    let res = run_layout_with(
        &layouts,
        "annual-statement",
        &data,
        &out,
        &["--print", "--household", "--json"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let summary: Value = serde_json::from_slice(&res.stdout).unwrap();
    let letters = records.len();
    assert_eq!(
        summary["print"]["household"],
        json!({"letters": letters, "pieces": letters - 2, "saved": 2})
    );
    let ticket = csv_rows(&out.join("print/job-ticket.csv"));
    let pieces: Vec<_> = ticket
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert_eq!(pieces.len(), letters - 2);
    let single_ticket = csv_rows(&single.join("print/job-ticket.csv"));
    let sheets_alone = |rid: &str| -> usize {
        single_ticket
            .iter()
            .find(|r| r["record_id"] == rid)
            .unwrap()["sheets"]
            .parse()
            .unwrap()
    };
    let piece_of = |rid: &str| {
        pieces
            .iter()
            .find(|p| p["record_id"].split('+').any(|r| r == rid))
            .unwrap()
    };
    // Consent on both sides, or the same holder: one piece of both letters,
    // every letter starting on a new sheet.
    for (a, b) in [(0, 1), (4, 5)] {
        let (a, b) = (id(&records[a]), id(&records[b]));
        let p = piece_of(&a);
        let ids: Vec<&str> = p["record_id"].split('+').collect();
        assert_eq!(ids.len(), 2, "{p:?}");
        assert!(
            ids.contains(&a.as_str()) && ids.contains(&b.as_str()),
            "{p:?}"
        );
        let sheets: usize = p["sheets"].parse().unwrap();
        assert_eq!(sheets, sheets_alone(&a) + sheets_alone(&b), "{p:?}");
    }
    // Without consent, never combined.
    for i in [2, 3] {
        assert_eq!(piece_of(&id(&records[i]))["record_id"], id(&records[i]));
    }
    // The MRDF and the manifest agree; both letters of a piece point at it.
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let p = piece_of(&id(&records[0]));
    let row = mrdf
        .iter()
        .find(|r| r["sequence"] == p["sequence"])
        .unwrap();
    assert_eq!(row["record_ids"], p["record_id"]);
    let m = manifest(&out);
    let docs: Vec<&Value> = m["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["piece"]["sequence"].as_u64() == p["sequence"].parse().ok())
        .collect();
    assert_eq!(docs.len(), 2);
    let listed: Vec<&str> = docs[0]["piece"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(listed.join("+"), p["record_id"]);
    // Marks for the whole piece: the DataMatrix counts its sheets, and the
    // OMR end-of-set bar is on its last sheet only.
    let file = out.join("print/print-001.pdf");
    let run_id = m["run_id"].as_str().unwrap();
    let (first, sheets): (usize, usize) = (
        p["first_page"].parse().unwrap(),
        p["sheets"].parse().unwrap(),
    );
    let dpi = 100;
    let px = |mm: f64| (mm * dpi as f64 / 25.4).round() as usize;
    for s in 0..sheets {
        let page = first + 2 * s;
        assert_eq!(
            read_code(&file, page, &dir),
            format!("{run_id}|{}|{}/{sheets}", p["sequence"], s + 1)
        );
        let (w, _, img) = grey(&file, page, dpi, &dir);
        let (x, y) = (px(9.0), px(124.0));
        let end_of_set = (y - 1..=y + 1).any(|yy| img[yy * w + x] < 100);
        assert_eq!(end_of_set, s + 1 == sheets, "sheet {} of {sheets}", s + 1);
    }
    // The report says what was saved; verify is clean; a reprint of the
    // piece has both letters.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains(&format!(
        "Householding: {letters} letters in {} pieces, 2 pieces and their postage saved",
        letters - 2
    )));
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
    let res = letterpress(&["reprint", out.to_str().unwrap(), "--pieces", &p["sequence"]]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let again = csv_rows(&out.join("print/reprint-001-ticket.csv"));
    assert_eq!(again[0]["record_id"], p["record_id"]);
    assert_eq!(again[0]["pages"], p["pages"]);
    // The reprint carries the piece's own codes, for the inserter's camera.
    let reprinted = out.join("print/reprint-001-001.pdf");
    for s in 0..sheets {
        assert_eq!(
            read_code(&reprinted, 1 + 2 * s, &dir),
            format!("{run_id}|{}|{}/{sheets}", p["sequence"], s + 1)
        );
    }
}

#[test]
fn household_needs_the_layout_to_say_who_may_share() {
    let dir = scratch("household-undeclared");
    let out = dir.join("run");
    let res = run_layout(
        "annual-statement",
        &root().join("fixtures/statements.jsonl"),
        &out,
        &["--print", "--household"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("no print.household section"));
}
