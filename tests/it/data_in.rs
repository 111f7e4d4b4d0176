//! Bank data in: XML mapped by paths, ISO 20022 camt.053 statements and
//! fixed-width EBCDIC files give the documents the same records give as CSV
//! or JSON; hostile XML and a file that does not match its trailer stop
//! cleanly, naming the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The rendered files of a run (pdf, web, email), path → SHA-256.
fn documents(out: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(out)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let p = e.path().strip_prefix(out).unwrap();
            ["pdf", "web", "email"].iter().any(|d| p.starts_with(d))
        })
        .map(|e| {
            let rel = e.path().strip_prefix(out).unwrap().display().to_string();
            (rel, sha256_file(e.path()))
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The CSV fixture's customers as XML: `<customers><customer>` with an
/// element per cell, dotted headers as nested elements; empty cells left out.
fn customers_xml(rows: &[BTreeMap<String, String>]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<customers>\n");
    for row in rows {
        xml.push_str("  <customer>\n");
        let mut nested: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (k, v) in row.iter().filter(|(_, v)| !v.is_empty()) {
            match k.split_once('.') {
                Some((obj, field)) => nested.entry(obj).or_default().push((field, v)),
                None => xml.push_str(&format!("    <{k}>{}</{k}>\n", xml_escape(v))),
            }
        }
        for (obj, fields) in nested {
            xml.push_str(&format!("    <{obj}>"));
            for (f, v) in fields {
                xml.push_str(&format!("<{f}>{}</{f}>", xml_escape(v)));
            }
            xml.push_str(&format!("</{obj}>\n"));
        }
        xml.push_str("  </customer>\n");
    }
    xml + "</customers>\n"
}

/// The sample layouts with welcome-letter@4 reading `<customers><customer>`.
fn xml_layouts(dir: &Path) -> PathBuf {
    layouts_edited(
        dir,
        "welcome-letter/4/layout.yaml",
        &[(
            "\nfields:\n",
            "\ninput:\n  xml:\n    record: customers/customer\nfields:\n",
        )],
    )
}

#[test]
fn customers_as_xml_give_the_documents_of_the_csv() {
    let dir = scratch("data-in-xml");
    let layouts = xml_layouts(&dir);
    let csv = root().join("fixtures/customers.csv");
    let rows = csv_rows(&csv);
    let xml = dir.join("customers.xml");
    std::fs::write(&xml, customers_xml(&rows)).unwrap();

    let run = |data: &Path, name: &str| {
        let out = dir.join(name);
        let res = run_layout_with(&layouts, "welcome-letter@4", data, &out, &[]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        out
    };
    let from_csv = documents(&run(&csv, "csv"));
    let out = run(&xml, "xml");
    assert!(from_csv.len() >= rows.len(), "{from_csv:?}");
    assert_eq!(
        documents(&out),
        from_csv,
        "the XML's documents are the CSV's, byte for byte"
    );
    let m = manifest(&out);
    assert_eq!(m["input"]["records"], rows.len(), "{}", m["input"]);

    // Negative control: one changed value in the XML is one changed letter.
    let mut changed = rows.clone();
    changed[0].insert("last_name".into(), "Whitfield-Smythe".into());
    let xml2 = dir.join("changed.xml");
    std::fs::write(&xml2, customers_xml(&changed)).unwrap();
    let differ: Vec<_> = {
        let other = documents(&run(&xml2, "changed"));
        from_csv
            .iter()
            .filter(|(k, v)| other.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert!(!differ.is_empty(), "a changed name changes its documents");
    assert!(
        differ.iter().all(|k| k.contains(&rows[0]["customer_id"])),
        "{differ:?}"
    );
}

/// `layouts check` finds a mapping that cannot work before data comes.
#[test]
fn a_broken_mapping_is_a_problem_of_its_version() {
    let dir = scratch("data-in-mapping");
    let layouts = layouts_edited(
        &dir,
        "welcome-letter/4/layout.yaml",
        &[(
            "\nfields:\n",
            "\ninput:\n  xml:\n    record: c:customers/customer\nfields:\n",
        )],
    );
    let res = letterpress_with_layouts(&layouts, &["layouts", "check"]);
    let said = describe(&res);
    assert_eq!(res.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the prefix `c` is not in input.xml.namespaces"),
        "{said}"
    );
    // Control: the same mapping with the prefix declared passes.
    let layouts = layouts_edited(
        &dir.join("ok"),
        "welcome-letter/4/layout.yaml",
        &[("\nfields:\n", "\ninput:\n  xml:\n    record: c:customers/customer\n    namespaces: {c: urn:x}\nfields:\n")],
    );
    let res = letterpress_with_layouts(&layouts, &["layouts", "check"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn xml_problems_name_the_record_line_and_field() {
    let dir = scratch("data-in-xml-validate");
    let layouts = xml_layouts(&dir);
    let xml = dir.join("bad.xml");
    let good = |id: &str| {
        format!("<customer><customer_id>{id}</customer_id><first_name>Ann</first_name><last_name>Lee</last_name><address><line1>1 Road</line1><postcode>E1 1AA</postcode><city>London</city></address><email>a@example.com</email><product>Saver</product><account_number>1</account_number><opened_on>2026-01-02</opened_on></customer>")
    };
    let text = format!(
        "<customers>\n{}\n\n{}\n{}\n</customers>\n",
        good("X-1"),
        good("X-2").replace("2026-01-02", "2026-13-40"),
        good("X-3").replace(
            "<last_name>Lee</last_name>",
            "<last_name>Lee</last_name><last_name>Li</last_name>"
        ),
    );
    std::fs::write(&xml, text).unwrap();
    let res = letterpress_with_layouts(
        &layouts,
        &[
            "validate",
            "--layout",
            "welcome-letter@4",
            "--data",
            xml.to_str().unwrap(),
            "--as-of",
            "2026-11-22",
            "--json",
        ],
    );
    let out = String::from_utf8_lossy(&res.stdout);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let failures = report["invalid"]
        .as_array()
        .expect("invalid records listed");
    let lines: Vec<_> = failures
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5], "{report}");
    let reasons = failures
        .iter()
        .map(|f| f["error"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(reasons.contains("opened_on"), "{reasons}");
    assert!(
        reasons.contains("`last_name`") && reasons.contains("2 times"),
        "{reasons}"
    );
}

/// Runs the welcome letter on `xml` and returns (exit code, stderr).
fn run_xml(layouts: &Path, dir: &Path, name: &str, xml: &Path) -> (Option<i32>, String) {
    let out = dir.join(name);
    let res = run_layout_with(layouts, "welcome-letter@4", xml, &out, &[]);
    assert!(!out.join("pdf").exists(), "{name}: nothing rendered");
    (
        res.status.code(),
        String::from_utf8_lossy(&res.stderr).into_owned(),
    )
}

#[test]
fn hostile_xml_stops_cleanly_with_its_line() {
    let dir = scratch("data-in-xml-hostile");
    let layouts = xml_layouts(&dir);
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET").unwrap();
    let cases = [
        (
            "xxe",
            format!("<?xml version=\"1.0\"?>\n<!DOCTYPE customers [<!ENTITY s SYSTEM \"file://{}\">]>\n<customers><customer><customer_id>&s;</customer_id></customer></customers>\n", secret.display()),
            ":2:1: the file has a <!DOCTYPE>",
        ),
        (
            "laughs",
            "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n<customers><customer><customer_id>&lol2;</customer_id></customer></customers>\n".into(),
            ":2:1: the file has a <!DOCTYPE>",
        ),
        (
            "entity",
            "<customers>\n<customer><customer_id>&s;</customer_id></customer></customers>\n".into(),
            ":2:",
        ),
        (
            "utf8",
            "<customers>\n<customer>\n<customer_id>C-\u{1}</customer_id></customer></customers>\n".replace('\u{1}', "\u{FFFF}"),
            "",
        ),
        (
            "unclosed",
            "<customers>\n<customer><customer_id>C-1</customer_id>\n<first_name>Ann</first_name>\n</customers>\n".into(),
            ":4:1: not well-formed XML: ill-formed document: expected `</customer>`, but `</customers>` was found (in the record starting at line 2)",
        ),
        (
            "truncated",
            "<customers>\n<customer><customer_id>C-1</customer_id>\n<first_name>An".into(),
            ":2:1: the file ends inside the record <customer>",
        ),
        (
            "encoding",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<customers/>\n".into(),
            ":1:1: the file declares encoding=\"ISO-8859-1\"",
        ),
    ];
    for (name, text, want) in cases {
        let xml = dir.join(format!("{name}.xml"));
        let mut bytes = text.into_bytes();
        if name == "utf8" {
            // An invalid UTF-8 byte in the record's text.
            let at = bytes
                .windows(3)
                .position(|w| w == "\u{FFFF}".as_bytes())
                .unwrap();
            bytes.splice(at..at + 3, [0xFF]);
        }
        std::fs::write(&xml, bytes).unwrap();
        let (code, err) = run_xml(&layouts, &dir, name, &xml);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: wants {want:?} in {err}");
        assert!(!err.contains("TOP-SECRET"), "{name}: {err}");
        if name == "utf8" {
            assert!(err.contains(":3:") && err.contains("UTF-8"), "{err}");
        }
    }
}

/// A record element with a 2 GB text node, streamed through a pipe: the
/// reader stops at the record limit (64 MiB), never holding the rest.
#[test]
fn a_two_gigabyte_text_node_stops_at_the_record_limit() {
    let dir = scratch("data-in-xml-huge");
    let layouts = xml_layouts(&dir);
    let fifo = dir.join("huge.xml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let _ = f.write_all(b"<customers>\n<customer>\n<first_name>");
            let chunk = vec![b'a'; 1 << 20];
            let mut sent = 0u64;
            while sent < 2 << 30 {
                if f.write_all(&chunk).is_err() {
                    return sent;
                }
                sent += chunk.len() as u64;
            }
            let _ = f.write_all(b"</first_name></customer></customers>\n");
            sent
        })
    };
    let started = std::time::Instant::now();
    let (code, err) = run_xml(&layouts, &dir, "huge", &fifo);
    let sent = writer.join().unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(":2:1: the record starting here is larger than 64 MiB"),
        "{err}"
    );
    assert!(
        sent < 1 << 30,
        "the reader stopped early: {sent} bytes sent"
    );
    eprintln!(
        "stopped after {} MiB in {:?}",
        sent >> 20,
        started.elapsed()
    );
}

#[test]
fn camt053_statements_render_with_balances_entries_and_currencies() {
    let dir = scratch("data-in-camt");
    let layouts = root().join("layouts");
    let data = root().join("fixtures/camt053/statements.xml");
    let out = dir.join("out");
    let res = run_layout_with(
        &layouts,
        "monthly-statement@1",
        &data,
        &out,
        &["--as-of", "2026-12-06"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    let pdfs: Vec<_> = m["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "pdf")
        .map(|d| {
            (
                d["record_id"].as_str().unwrap().to_owned(),
                out.join(d["path"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(pdfs.len(), 4, "one letter a Stmt: {}", m["documents"]);
    let text: BTreeMap<_, _> = pdfs
        .iter()
        .map(|(id, p)| (id.as_str(), squash(&pdftotext(p))))
        .collect();
    let gbp = &text["STMT-53464097-202512"];
    for want in [
        "GB29NWBK60161331926819",
        "GBP 1,520.40",
        "GBP 2,681.91",
        "Salary ACME Ltd December",
        "2,450.00",
        "1,200.00",
        "Direct Debit British Gas; Ref 88231",
        "(EUR 27.00)",
        "14 Elm Grove",
        "1 December 2025",
    ] {
        assert!(gbp.contains(&squash(want)), "{want:?} in {gbp}");
    }
    let eur = &text["STMT-62992312-202512"];
    for want in [
        "EUR 310.00",
        "EUR 1,060.00",
        "Loyer décembre & charges",
        "12 rue de la Paix",
        "75002 Paris",
        "−140.00",
    ] {
        assert!(eur.contains(&squash(want)), "{want:?} in {eur}");
    }
    let usd = &text["STMT-16480894-202512"];
    for want in [
        "USD −75.20",
        "USD 404.81",
        "Subscription Stream & Co",
        "Łukasz Żółkiewski",
    ] {
        assert!(usd.contains(&squash(want)), "{want:?} in {usd}");
    }
    let empty = &text["STMT-53464098-202512"];
    assert!(empty.contains(&squash("There were no entries")), "{empty}");

    // A statement that does not add up fails with that reason; the others go.
    let xml = std::fs::read_to_string(&data).unwrap().replacen(
        "<Amt Ccy=\"GBP\">2681.91</Amt>",
        "<Amt Ccy=\"GBP\">2681.19</Amt>",
        1,
    );
    let bad = dir.join("bad.xml");
    std::fs::write(&bad, xml).unwrap();
    let out = dir.join("bad");
    let res = run_layout_with(
        &layouts,
        "monthly-statement@1",
        &bad,
        &out,
        &["--as-of", "2026-12-06"],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let failed: Vec<_> = manifest(&out)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "failed")
        .map(|d| {
            (
                d["record_id"].as_str().unwrap().to_owned(),
                d["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|(id, e)| id == "STMT-53464097-202512" && e.contains("does not add up")),
        "{failed:?}"
    );
}

/// The records of the annual statement that cp037, cp273, cp500 and
/// cp1140 can write.
fn ebcdic_statements(dir: &Path) -> PathBuf {
    use letterpress::input::codepages::{CP037, CP1140, CP273, CP500};
    let src = root().join("fixtures/statements.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(src)
        .unwrap()
        .lines()
        .filter(|l| {
            l.chars().all(|c| {
                [&CP037, &CP273, &CP500, &CP1140]
                    .iter()
                    .all(|t| t.contains(&c))
            })
        })
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= 8, "{}", lines.len());
    let path = dir.join("statements.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn fixed_layouts(dir: &Path, codepage: &str) -> PathBuf {
    let mapping = format!(
        r#"
input:
  fixed:
    encoding: {codepage}
    record_length: 200
    type: {{start: 1, length: 2}}
    records:
      - code: HD
        role: header
        fields:
          - {{name: period_start, start: 3, length: 10}}
          - {{name: period_end, start: 13, length: 10}}
      - code: CU
        role: record
        fields:
          - {{name: customer_id, start: 3, length: 10}}
          - {{name: title, start: 13, length: 6}}
          - {{name: first_name, start: 19, length: 30}}
          - {{name: last_name, start: 49, length: 50}}
          - {{name: account_name, start: 99, length: 30}}
          - {{name: account_number, start: 129, length: 8}}
          - {{name: currency, start: 137, length: 3}}
          - {{name: opening_balance, start: 140, length: 7, type: packed, decimals: 2}}
          - {{name: accessibility, start: 147, length: 15}}
      - code: AD
        role: extra
        fields:
          - {{name: address.line1, start: 3, length: 60}}
          - {{name: address.line2, start: 63, length: 30}}
          - {{name: address.postcode, start: 93, length: 10}}
          - {{name: address.city, start: 103, length: 30}}
          - {{name: address.country, start: 133, length: 30}}
      - code: TX
        role: detail
        list: transactions
        fields:
          - {{name: date, start: 3, length: 10}}
          - {{name: description, start: 13, length: 40}}
          - {{name: amount, start: 53, length: 9, type: zoned, decimals: 2}}
      - code: TR
        role: trailer
        count: {{name: records, start: 3, length: 9, type: zoned}}
        sums:
          - {{name: transactions.amount, start: 12, length: 10, type: packed, decimals: 2}}
fields:
"#
    );
    layouts_edited(
        dir,
        "annual-statement/4/layout.yaml",
        &[("\nfields:\n", &mapping)],
    )
}

fn write_fixed(jsonl: &Path, out: &Path, codepage: &str, extra: &[&str]) {
    let script = root().join("tests/data_in/fixed_width.py");
    let res = Command::new("python3")
        .arg(script)
        .arg(jsonl)
        .arg(out)
        .arg(codepage)
        .args(extra)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", describe(&res));
}

#[test]
fn ebcdic_records_with_packed_amounts_give_the_documents_of_the_json() {
    let dir = scratch("data-in-fixed");
    let jsonl = ebcdic_statements(&dir);
    for codepage in ["cp037", "cp273", "cp500", "cp1140"] {
        let layouts = fixed_layouts(&dir.join(codepage), codepage);
        let data = dir.join(format!("{codepage}.dat"));
        write_fixed(&jsonl, &data, codepage, &[]);
        let bytes = std::fs::read(&data).unwrap();
        assert_eq!(bytes.len() % 200, 0);
        assert!(
            !bytes.windows(2).any(|w| w == b"CU"),
            "{codepage}: the file is not ASCII"
        );
        let run = |data: &Path, name: &str| {
            let out = dir.join(codepage).join(name);
            let res = run_layout_with(
                &layouts,
                "annual-statement@4",
                data,
                &out,
                &["--format", "fixed"],
            );
            assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
            out
        };
        let out = run(&data, "fixed");
        let json = run_layout_with(
            &layouts,
            "annual-statement@4",
            &jsonl,
            &dir.join(codepage).join("json"),
            &[],
        );
        assert_eq!(json.status.code(), Some(0), "{}", describe(&json));
        let from_json = documents(&dir.join(codepage).join("json"));
        assert!(!from_json.is_empty());
        assert_eq!(
            documents(&out),
            from_json,
            "{codepage}: the same documents as the JSON"
        );
    }
    // Negative control: one opening balance changed in the file changes
    // that customer's letter, and only it.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let id = first["customer_id"].as_str().unwrap().to_owned();
    let was = format!("\"opening_balance\": {}", first["opening_balance"]);
    assert!(text.contains(&was), "{was}");
    let changed = dir.join("changed.jsonl");
    std::fs::write(
        &changed,
        text.replacen(&was, "\"opening_balance\": 1.23", 1),
    )
    .unwrap();
    let data = dir.join("changed.dat");
    write_fixed(&changed, &data, "cp037", &[]);
    let layouts = fixed_layouts(&dir.join("cp037"), "cp037");
    let out = dir.join("changed");
    let res = run_layout_with(
        &layouts,
        "annual-statement@4",
        &data,
        &out,
        &["--format", "fixed"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let (now, before) = (documents(&out), documents(&dir.join("cp037").join("json")));
    let differ: Vec<_> = before
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        !differ.is_empty() && differ.iter().all(|k| k.contains(&id)),
        "{differ:?}"
    );
}

#[test]
fn a_trailer_that_does_not_match_stops_the_run_before_anything_is_rendered() {
    let dir = scratch("data-in-trailer");
    let jsonl = ebcdic_statements(&dir);
    let layouts = fixed_layouts(&dir, "cp037");
    let n = std::fs::read_to_string(&jsonl).unwrap().lines().count();
    for (name, extra, want) in [
        (
            "count",
            vec!["--count".to_owned(), (n + 2).to_string()],
            format!("the trailer says {} records, the file holds {n}", n + 2),
        ),
        (
            "sum",
            vec!["--sum".to_owned(), "1.00".into()],
            "the trailer's sum of `transactions.amount` is 1.00".to_owned(),
        ),
    ] {
        let data = dir.join(format!("{name}.dat"));
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        write_fixed(&jsonl, &data, "cp037", &extra);
        let out = dir.join(name);
        let res = run_layout_with(
            &layouts,
            "annual-statement@4",
            &data,
            &out,
            &["--format", "fixed"],
        );
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{name}: {}", describe(&res));
        assert!(err.contains(&want), "{name}: {want:?} in {err}");
        assert!(!out.join("pdf").exists(), "{name}: nothing rendered");
    }
    // A file cut short (its trailer gone) stops too.
    let data = dir.join("cut.dat");
    write_fixed(&jsonl, &data, "cp037", &[]);
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() - 200]).unwrap();
    let res = run_layout_with(
        &layouts,
        "annual-statement@4",
        &data,
        &dir.join("cut"),
        &["--format", "fixed"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("ends without its trailer"),
        "{}",
        describe(&res)
    );
}

/// Every byte of every EBCDIC table is the character Python's codec reads.
#[test]
fn code_pages_agree_with_python() {
    use letterpress::input::codepages::{CP037, CP1140, CP273, CP500};
    let python = |cp: &str| -> Vec<char> {
        let out = Command::new("python3")
            .args([
                "-c",
                &format!("import sys; sys.stdout.write(bytes(range(256)).decode('{cp}'))"),
            ])
            .env("PYTHONIOENCODING", "utf-8:surrogatepass")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().chars().collect()
    };
    let differ = |table: &[char; 256], cp: &str| -> Vec<usize> {
        let want = python(cp);
        assert_eq!(want.len(), 256);
        (0..256).filter(|&i| table[i] != want[i]).collect()
    };
    for (table, cp) in [
        (&CP037, "cp037"),
        (&CP273, "cp273"),
        (&CP500, "cp500"),
        (&CP1140, "cp1140"),
    ] {
        assert_eq!(differ(table, cp), Vec::<usize>::new(), "{cp}");
    }
    // Negative control: the comparison sees the bytes where two pages differ.
    assert!(differ(&CP037, "cp500").len() >= 7);
    assert_eq!(
        differ(&CP037, "cp1140"),
        [0x9F],
        "cp1140 is cp037 with the euro"
    );
}
