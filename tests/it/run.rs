//! End-to-end tests of `letterpress run` on the bundled samples: the real
//! binary, real PDFs opened with poppler and qpdf, real hashes.

use crate::common::*;

#[test]
fn every_customer_gets_a_letter_with_their_name_and_the_manifest_reconciles() {
    let out = scratch("customers");
    let data = root().join("fixtures/customers.csv");
    let res = run_layout("welcome-letter@1", &data, &out, &["--json"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("56 records; pdf: 56 rendered, 0 failed, 0 suppressed, 0 routed elsewhere"),
        "{stderr}"
    );

    let summary: serde_json::Value =
        serde_json::from_slice(&res.stdout).expect("--json prints JSON");
    assert_eq!(summary["totals"]["rendered"], 56);
    assert_eq!(summary["exit_code"], 0);

    let m = manifest(&out);
    let rows = csv_rows(&data);
    let docs = m["documents"].as_array().unwrap();
    assert_eq!(docs.len(), rows.len());
    assert_eq!(m["input"]["records"], 56);
    assert_eq!(m["input"]["sha256"], sha256_file(&data));
    assert_eq!(m["layout"]["name"], "welcome-letter");
    assert_eq!(m["layout"]["version"], 1);
    assert_eq!(m["layout"]["digest"].as_str().unwrap().len(), 64);
    assert_eq!(m["as_of"], "2026-11-22");

    let (mut pages, mut bytes) = (0, 0);
    for (i, (doc, row)) in docs.iter().zip(&rows).enumerate() {
        assert_eq!(doc["index"], i);
        assert_eq!(doc["status"], "rendered");
        assert_eq!(doc["record_id"], row["customer_id"].as_str());
        let file = out.join(doc["path"].as_str().unwrap());
        assert_eq!(
            doc["sha256"],
            sha256_file(&file),
            "hash of {}",
            file.display()
        );
        assert_eq!(doc["bytes"], std::fs::metadata(&file).unwrap().len());
        pages += doc["pages"].as_u64().unwrap();
        bytes += doc["bytes"].as_u64().unwrap();

        let text = squash(&pdftotext(&file));
        for field in ["first_name", "last_name"] {
            let want = squash(&row[field]);
            // poppler writes right-to-left runs in visual order.
            let rtl = row[field]
                .chars()
                .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c));
            let found = text.contains(&want)
                || (rtl && text.contains(&want.chars().rev().collect::<String>()));
            assert!(
                found,
                "{} of {} ({}) not in its letter's text:\n{text}",
                field, row["customer_id"], row[field]
            );
        }
        assert!(text.contains(&squash(&row["account_number"])));
    }
    let totals = &m["totals"];
    assert_eq!(totals["records"], 56);
    assert_eq!(
        totals["rendered"].as_u64().unwrap() + totals["failed"].as_u64().unwrap(),
        56
    );
    assert_eq!(totals["pages"], pages);
    assert_eq!(totals["bytes"], bytes);

    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(out.join("pdf"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".pdf"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn letters_are_sound_tagged_a4_pdfs_with_metadata() {
    let out = render_ok(
        "welcome-letter@1",
        "fixtures/customers.csv",
        "metadata",
        &[],
    );
    let pdf = out.join("pdf/C-01001.pdf");
    let check = qpdf_check(&pdf);
    assert!(check.status.success(), "{}", describe(&check));
    let info = pdfinfo(&pdf);
    assert!(
        info.contains("Title:           Welcome to Northwind Bank"),
        "{info}"
    );
    assert!(
        info.contains("Author:          Northwind Bank plc"),
        "{info}"
    );
    assert!(info.contains("Tagged:          yes"), "{info}");
    assert!(info.contains("Pages:           1"), "{info}");
    assert!(info.contains("595.276 x 841.89 pts (A4)"), "{info}");
    assert!(
        info.contains("Keywords:        layout:welcome-letter@1, record:C-01001"),
        "{info}"
    );
    // The as-of date, not the clock, is the document date and the letter's date.
    assert!(
        info.contains("CreationDate:    Sun Nov 22 00:00:00 2026"),
        "{info}"
    );
    assert!(pdftotext(&pdf).contains("22 November 2026"));
}

#[test]
fn same_inputs_give_the_same_bytes() {
    let (a, b) = (scratch("repro-a"), scratch("repro-b"));
    let data = root().join("fixtures/customers.csv");
    assert_eq!(
        run_layout("welcome-letter@1", &data, &a, &["--jobs", "2"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run_layout("welcome-letter@1", &data, &b, &["--jobs", "1"])
            .status
            .code(),
        Some(0)
    );
    let (ma, mb) = (manifest(&a), manifest(&b));
    assert_ne!(ma["run_id"], mb["run_id"]);
    for (da, db) in ma["documents"]
        .as_array()
        .unwrap()
        .iter()
        .zip(mb["documents"].as_array().unwrap())
    {
        assert_eq!(da["sha256"], db["sha256"]);
        let path = da["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(a.join(path)).unwrap(),
            std::fs::read(b.join(path)).unwrap(),
            "{path}"
        );
    }
    // A different as-of date changes the letters.
    let c = scratch("repro-c");
    let res = run_layout("welcome-letter@1", &data, &c, &["--as-of", "2026-12-01"]);
    assert_eq!(res.status.code(), Some(0));
    assert_ne!(
        manifest(&c)["documents"][0]["sha256"],
        ma["documents"][0]["sha256"]
    );
    assert!(pdftotext(&c.join("pdf/C-01001.pdf")).contains("1 December 2026"));
}

const HOSTILE: &[&str] = &[
    "#set text(red)",
    "]",
    "{{x}}",
    "<script>alert(1)</script>",
    "*bold* _it_ $x^2$ @ref <lbl> // c",
    "\\\" \\u{41}",
];

#[test]
fn record_values_print_literally_and_never_run_as_code() {
    let dir = scratch("hostile");
    let data = dir.join("hostile.csv");
    let mut w = csv::Writer::from_path(&data).unwrap();
    w.write_record([
        "customer_id",
        "first_name",
        "last_name",
        "address.line1",
        "address.postcode",
        "address.city",
        "product",
        "account_number",
        "opened_on",
    ])
    .unwrap();
    for (i, h) in HOSTILE.iter().enumerate() {
        w.write_record([
            &format!("H-{i}"),
            *h,
            "Smith",
            *h,
            "E1 1AA",
            "London",
            "Saver",
            "12345678",
            "2026-01-02",
        ])
        .unwrap();
    }
    // An id full of path and shell characters.
    w.write_record([
        "../../etc/passwd",
        "Eve",
        "Smith",
        "1 Road",
        "E1 1AA",
        "London",
        "Saver",
        "1",
        "2026-01-02",
    ])
    .unwrap();
    w.flush().unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter@1", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    for (i, h) in HOSTILE.iter().enumerate() {
        let doc = &m["documents"][i];
        let text = pdftotext(&out.join(doc["path"].as_str().unwrap()));
        assert!(
            text.contains(&format!("Dear {h} Smith,")),
            "{h:?} not printed literally:\n{text}"
        );
    }
    let odd = &m["documents"][HOSTILE.len()];
    assert_eq!(odd["record_id"], "../../etc/passwd");
    let path = odd["path"].as_str().unwrap();
    assert!(
        path.starts_with("pdf/") && !path[4..].contains('/') && !path.contains(".."),
        "{path}"
    );
    assert!(out.join(path).is_file());
}

#[test]
fn a_bad_record_fails_alone_with_its_field_and_line() {
    let dir = scratch("bad-record");
    let text = std::fs::read_to_string(root().join("fixtures/customers.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 3: blank the last name (required). Line 5: an impossible date.
    let mut cells: Vec<String> = lines[2].split(',').map(str::to_owned).collect();
    cells[3] = String::new();
    lines[2] = cells.join(",");
    lines[4] = lines[4].replace("2026-04-10", "2026-02-30");
    // A duplicate id at the end.
    lines.push(lines[1].clone());
    std::fs::write(dir.join("data.csv"), lines.join("\n")).unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter@1", &dir.join("data.csv"), &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let m = manifest(&out);
    assert_eq!(m["totals"]["records"], 57);
    assert_eq!(m["totals"]["failed"], 3);
    assert_eq!(m["totals"]["rendered"], 54);
    let d = &m["documents"];
    assert_eq!(d[1]["status"], "failed");
    assert_eq!(
        d[1]["error"],
        "record C-01008 (line 3): field `last_name`: required but missing"
    );
    assert!(d[1]["path"].is_null());
    let e3 = d[3]["error"].as_str().unwrap();
    assert!(
        e3.contains("line 5") && e3.contains("field `opened_on`") && e3.contains("2026-02-30"),
        "{e3}"
    );
    assert_eq!(
        d[56]["error"],
        "record C-01001 (line 58): duplicate record id (first used at line 2)"
    );
    assert_eq!(d[0]["status"], "rendered");
    assert!(out.join("pdf/C-01001.pdf").is_file());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("field `last_name`"), "{stderr}");
}

#[test]
fn a_statement_table_breaks_across_pages_with_its_header_repeated() {
    let out = render_ok(
        "annual-statement",
        "fixtures/statements.jsonl",
        "statements",
        &[],
    );
    let m = manifest(&out);
    assert_eq!(m["input"]["format"], "jsonl");
    let docs = m["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 20);
    // Record 8 has 200 transactions; record 1 has none.
    let big = &docs[7];
    let pages = big["pages"].as_u64().unwrap();
    assert!(
        pages >= 4,
        "200 transactions should take several pages, got {pages}"
    );
    let text = pdftotext(&out.join(big["path"].as_str().unwrap()));
    let page_texts: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(page_texts.len() as u64, pages);
    for (i, p) in page_texts.iter().enumerate() {
        assert!(
            p.contains(&format!("Page {} of {pages}", i + 1)),
            "page {} lacks its number:\n{p}",
            i + 1
        );
        assert!(
            p.contains("Money out") && p.contains("Balance (GBP)"),
            "page {} lacks the table header",
            i + 1
        );
    }
    let empty = pdftotext(&out.join(docs[0]["path"].as_str().unwrap()));
    assert!(empty.contains("There were no transactions"), "{empty}");
}

#[test]
fn json_array_input_renders_like_jsonl() {
    let dir = scratch("json-array");
    let lines = std::fs::read_to_string(root().join("fixtures/statements.jsonl")).unwrap();
    let items: Vec<&str> = lines.lines().take(3).collect();
    std::fs::write(dir.join("s.json"), format!("[\n{}\n]\n", items.join(",\n"))).unwrap();
    let out = dir.join("out");
    let res = run_layout("annual-statement", &dir.join("s.json"), &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(manifest(&out)["totals"]["rendered"], 3);
}

#[test]
fn both_payment_reminder_versions_render_their_own_wording() {
    let data = root().join("fixtures/reminders.csv");
    let (v1, v2) = (scratch("reminder-1"), scratch("reminder-2"));
    assert_eq!(
        run_layout("payment-reminder@1", &data, &v1, &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run_layout("payment-reminder@2", &data, &v2, &[])
            .status
            .code(),
        Some(0)
    );
    let v3 = scratch("reminder-3");
    assert_eq!(
        run_layout("payment-reminder", &data, &v3, &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        manifest(&v3)["layout"]["version"],
        3,
        "the highest approved version is the default"
    );
    let t1 = pdftotext(&v1.join("pdf/C-01001.pdf"));
    let t2 = pdftotext(&v2.join("pdf/C-01001.pdf"));
    assert!(t1.contains("We kindly request"), "{t1}");
    assert!(
        t2.contains("What you need to do") && !t2.contains("We kindly request"),
        "{t2}"
    );
}

#[test]
fn a_character_no_font_covers_fails_the_record_naming_it() {
    let dir = scratch("tofu");
    let data = dir.join("d.jsonl");
    let rec = serde_json::json!({"customer_id": "T-1", "first_name": "Ramesses 𓀀", "last_name": "Khan",
        "address": {"line1": "1 Nile St", "postcode": "1", "city": "Luxor"},
        "product": "Saver", "account_number": "1", "opened_on": "2026-01-01"});
    let ok = serde_json::json!({"customer_id": "T-2", "first_name": "Ana", "last_name": "Khan",
        "address": {"line1": "1 Nile St", "postcode": "1", "city": "Luxor"},
        "product": "Saver", "account_number": "1", "opened_on": "2026-01-01"});
    std::fs::write(&data, format!("{rec}\n{ok}\n")).unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter@1", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let err = manifest(&out)["documents"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(err.contains("U+13000") && err.contains("T-1"), "{err}");
    assert!(!out.join("pdf/T-1.pdf").exists());
    assert!(out.join("pdf/T-2.pdf").is_file());
}

#[test]
fn a_value_the_template_cannot_handle_fails_that_record_alone() {
    // The template parses `opened_on` as a date. Declare it a string in a
    // copy of the layout, so a record can reach the template with text that
    // is not a date: that record fails with the template line, the others
    // render. The layout's sample.json keeps the preflight realistic.
    let dir = scratch("data-error");
    let layouts = dir.join("layouts/welcome-letter/1");
    copy_tree(&root().join("layouts/welcome-letter/1"), &layouts);
    let yaml = layouts.join("layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        text.replace(
            "{name: opened_on, type: date",
            "{name: opened_on, type: string",
        ),
    )
    .unwrap();
    let sample = serde_json::json!({"customer_id": "X", "first_name": "A", "last_name": "B",
        "address": {"line1": "1", "postcode": "1", "city": "C"}, "product": "P",
        "account_number": "1", "opened_on": "2026-01-01"});
    std::fs::write(layouts.join("sample.json"), sample.to_string()).unwrap();
    let data = dir.join("d.csv");
    std::fs::write(
        &data,
        "customer_id,first_name,last_name,address.line1,address.postcode,address.city,product,account_number,opened_on\n\
         A-1,Ann,Lee,1 Road,E1,London,Saver,1,2026-01-02\n\
         A-2,Bob,Lee,1 Road,E1,London,Saver,1,next tuesday\n",
    )
    .unwrap();
    let out = dir.join("out");
    approve(&dir.join("layouts"), "welcome-letter@1");
    let res = run_layout_with(&dir.join("layouts"), "welcome-letter@1", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let m = manifest(&out);
    assert_eq!(m["documents"][0]["status"], "rendered");
    let err = m["documents"][1]["error"].as_str().unwrap();
    assert!(
        err.starts_with("record A-2 (line 3): ") && err.contains("format.typ:"),
        "{err}"
    );
}

#[test]
fn pdf_a_2b_is_offered() {
    let out = scratch("pdfa");
    let data = root().join("fixtures/reminders.csv");
    let res = run_layout(
        "payment-reminder@2",
        &data,
        &out,
        &["--pdf-standard", "a-2b"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let pdf = out.join("pdf/C-01001.pdf");
    let raw = std::fs::read(&pdf).unwrap();
    let has = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"pdfaid:part") || has(b"pdfaid"),
        "no PDF/A identification in the XMP metadata"
    );
    assert!(qpdf_check(&pdf).status.success());
    assert_eq!(manifest(&out)["options"]["pdf_standards"][0], "a-2b");

    // PDF/UA-1, alone and with PDF/A-2b.
    let ua = scratch("pdfua");
    let args = ["--pdf-standard", "ua-1", "--pdf-standard", "a-2b"];
    let res = run_layout(
        "annual-statement",
        &root().join("fixtures/statements.jsonl"),
        &ua,
        &args,
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let pdf = ua.join(manifest(&ua)["documents"][7]["path"].as_str().unwrap());
    let raw = std::fs::read(&pdf).unwrap();
    assert!(
        raw.windows(9).any(|w| w == b"pdfuaid:p"),
        "no PDF/UA identification"
    );
    assert!(pdfinfo(&pdf).contains("Tagged:          yes"));
}
