//! `validate` is a faithful pre-flight: over the same bad inputs and with
//! the same options, it finds exactly the records `run` fails before
//! rendering, with the same reasons and the file's own line numbers (a CRLF
//! CSV, as banks export them).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

const HEADER: &str = "customer_id,title,first_name,last_name,address.line1,address.postcode,address.city,email,locale,contact_preference,product,account_number,opened_on";

/// One CSV row of the welcome letter; `f` edits the default cells.
fn row(id: &str, f: impl Fn(&mut BTreeMap<&'static str, String>)) -> String {
    let mut cells: BTreeMap<&'static str, String> = [
        ("customer_id", id.to_owned()),
        ("title", String::new()),
        ("first_name", "Ann".into()),
        ("last_name", "Lee".into()),
        ("address.line1", "1 Main St".into()),
        ("address.postcode", "12345".into()),
        ("address.city", "Springfield".into()),
        ("email", format!("{}@example.com", id.to_lowercase())),
        ("locale", "en-US".into()),
        ("contact_preference", "both".into()),
        ("product", "Checking".into()),
        ("account_number", "1".into()),
        ("opened_on", "2026-01-02".into()),
    ]
    .into_iter()
    .collect();
    f(&mut cells);
    HEADER
        .split(',')
        .map(|h| {
            let v = &cells[h];
            if v.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A CRLF file of records with every kind of problem a run can see before
/// it renders. Its line numbers: the header is line 1, the row of `V-05`
/// has a quoted line break, so `V-06` is on line 8.
fn bad_input(dir: &Path) -> std::path::PathBuf {
    let rows = [
        row("V-01", |_| {}),
        row("V-02", |c| {
            c.insert("last_name", String::new());
        }),
        row("V-01", |_| {}),
        row("V-04", |c| {
            c.insert("contact_preference", "fax".into());
        }),
        row("V-05", |c| {
            c.insert("address.line1", "1 Main St\r\nFlat 2".into());
        }),
        row("V-06", |_| {}),
        row("V-07", |c| {
            c.insert("product", "TODO".into());
        }),
        row("V-08", |c| {
            c.insert("first_name", "Ann\u{7}".into());
        }),
        row("V-09", |c| {
            c.insert("locale", "xx-YY".into());
        }),
        row("V-10", |c| {
            c.insert("address.postcode", "1234".into());
        }),
        row("V-11", |c| {
            c.insert("opened_on", "2026-13-45".into());
        }),
        row("V-12", |c| {
            c.insert("email", String::new());
            c.insert("contact_preference", "email".into());
        }),
        "V-13,Mr,Too,Few".to_owned(),
        row("V-14", |c| {
            c.insert("title", "Mr\u{202e}".into());
        }),
        row("V-15", |c| {
            c.insert("email", "v15(at)example.com".into());
        }),
    ];
    let path = dir.join("bank-export.csv");
    let text = format!("{HEADER}\r\n{}\r\n", rows.join("\r\n"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The layouts, with a US Intelligent Mail barcode on the welcome letter's
/// pieces (a ZIP that is not 5, 9 or 11 digits fails the letter).
fn layouts(dir: &Path) -> std::path::PathBuf {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let meta = layouts.join("welcome-letter/2/layout.yaml");
    let yaml = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        yaml.replace(
            "  window: din-5008-b\n",
            "  window: din-5008-b\n  imb: {barcode_id: \"00\", service_type: \"270\", mailer_id: \"123456\"}\n",
        ),
    )
    .unwrap();
    approve(&layouts, "welcome-letter@2");
    layouts
}

/// Line → reason of the records `run` failed (its first failed entry).
fn run_verdicts(out: &Path) -> BTreeMap<u64, String> {
    let mut failed = BTreeMap::new();
    for d in manifest(out)["documents"].as_array().unwrap() {
        if d["status"] == "failed" {
            failed
                .entry(d["line"].as_u64().unwrap())
                .or_insert_with(|| d["error"].as_str().unwrap().to_owned());
        }
    }
    failed
}

/// Line → reason of the records `validate` finds invalid.
fn validate_verdicts(summary: &serde_json::Value) -> BTreeMap<u64, String> {
    summary["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn validate_finds_exactly_what_run_fails_before_rendering() {
    let dir = scratch("validate-faithful");
    let layouts = layouts(&dir);
    let data = bad_input(&dir);
    let list = dir.join("dnc.txt");
    std::fs::write(&list, "V-06  # asked by letter\nV-99\n").unwrap();
    let list = list.to_str().unwrap();
    let cases: [(&str, Vec<&str>); 2] = [
        ("print", vec!["--print", "--suppress", list]),
        ("email", vec!["--channels", "email", "--suppress", list]),
    ];
    for (name, flags) in cases {
        let mut common = vec!["--as-of", "2026-11-22"];
        common.extend(&flags);
        let mut args = vec![
            "validate",
            "--layout",
            "welcome-letter",
            "--data",
            data.to_str().unwrap(),
            "--json",
        ];
        args.extend(&common);
        let res = letterpress_with_layouts(&layouts, &args);
        assert_eq!(res.status.code(), Some(1), "{name}: {}", describe(&res));
        let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        let checked = validate_verdicts(&summary);
        assert_eq!(
            summary["unmatched_suppressions"],
            serde_json::json!([{"line": 2, "entry": "V-99"}])
        );

        let out = dir.join(format!("out-{name}"));
        let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &common);
        assert_eq!(res.status.code(), Some(1), "{name}: {}", describe(&res));
        let ran = run_verdicts(&out);
        assert_eq!(
            checked, ran,
            "{name}: validate and run agree record by record"
        );
        // How many the list withholds, as the run then counts them.
        let m = manifest(&out);
        let withheld = m["totals"]["channels"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["suppressed"].as_u64().unwrap())
            .max()
            .unwrap();
        assert_eq!(summary["suppressed"], withheld, "{name}");
        assert_eq!(withheld, 1, "{name}");
        args.retain(|a| *a != "--json");
        let text = letterpress_with_layouts(&layouts, &args);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("dnc.txt will withhold 1 record\n"),
            "{}",
            describe(&text)
        );

        // The file's own lines (CRLF, a quoted line break in V-05's row).
        let line_of = |reason: &str| {
            ran.iter()
                .find(|(_, why)| why.contains(reason))
                .map(|(line, _)| *line)
        };
        assert_eq!(line_of("record V-02 "), Some(3), "{ran:?}");
        assert_eq!(
            line_of("duplicate record id (first used at line 2)"),
            Some(4)
        );
        assert_eq!(line_of("record V-05 "), Some(6), "{ran:?}");
        assert_eq!(line_of("record V-07 "), Some(9), "{ran:?}");
        assert_eq!(line_of("row has 4 fields but the header has 13"), Some(15));
        assert!(ran
            .values()
            .any(|w| w.contains("`fax` is not a contact preference")));
        assert!(ran.values().any(|w| w.contains("U+0007 BELL")));
        assert!(ran.values().any(|w| w.contains("U+202E")));
        assert!(ran
            .values()
            .any(|w| w.contains("`2026-13-45` is not a valid date")));
        assert!(
            !ran.values().any(|w| w.contains("V-06")),
            "suppressed, not failed"
        );
        assert!(
            !ran.values().any(|w| w.contains("V-09")),
            "an unknown locale falls back"
        );
        match name {
            "print" => {
                assert!(ran.values().any(|w| w.contains("record V-10 ")), "{ran:?}");
                assert!(
                    !ran.values().any(|w| w.contains("V-12")),
                    "falls back to print"
                );
            }
            _ => {
                assert!(
                    !ran.values().any(|w| w.contains("V-10")),
                    "no print, no IMb"
                );
                assert!(ran.values().any(|w| w.contains("record V-12 ")), "{ran:?}");
                assert!(ran.values().any(|w| w.contains("record V-15 ")), "{ran:?}");
            }
        }
    }
}

/// `--expect-records`: a count other than the sender's control total stops
/// `validate` and `run` before anything is rendered or written (exit 2),
/// naming both figures; the right count runs.
#[test]
fn a_control_total_that_does_not_match_stops_before_anything_is_rendered() {
    let dir = crate::common::scratch("control-total");
    let data = crate::common::root().join("fixtures/customers.csv");
    let data = data.to_str().unwrap();
    let out = dir.join("out");
    for (command, extra) in [
        ("validate", vec![]),
        ("run", vec!["--out", out.to_str().unwrap()]),
    ] {
        let mut args = vec![
            command,
            "--layout",
            "welcome-letter",
            "--data",
            data,
            "--expect-records",
            "10000",
        ];
        args.extend(&extra);
        let refused = crate::common::letterpress(&args);
        let said = crate::common::describe(&refused);
        assert_eq!(refused.status.code(), Some(2), "{said}");
        assert!(
            said.contains("holds 56 records, but --expect-records says 10,000"),
            "{said}"
        );
        assert!(!out.exists(), "{command}: nothing may be written");
    }
    let ran = crate::common::letterpress(&[
        "run",
        "--layout",
        "welcome-letter",
        "--data",
        data,
        "--expect-records",
        "56",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", crate::common::describe(&ran));
    let m = crate::common::manifest(&out);
    assert_eq!(
        m["input"]["expected_records"], 56,
        "the control total checked is recorded"
    );
}
