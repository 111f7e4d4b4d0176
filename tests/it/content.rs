//! Content a bank would sign, read back from the real output: amounts in
//! each currency's own decimals, names and address blocks as each country
//! writes them (the same in the letter and the email), and the sample
//! layouts' own wording fixed where it was wrong.

use std::path::Path;

use crate::common::*;
use mail_parser::MessageParser;

/// The address block of a letter: the text inside the DIN 5008 form B
/// window (20 mm from the left, 45 mm from the top, 85 × 45 mm), without
/// the return line at its top.
fn window_lines(pdf: &Path) -> Vec<String> {
    let pt = |mm: f64| format!("{}", (mm / 25.4 * 72.0).round());
    let out = std::process::Command::new("pdftotext")
        .args(["-f", "1", "-l", "1", "-x", &pt(20.0), "-y", &pt(58.0)])
        .args(["-W", &pt(85.0), "-H", &pt(32.0), "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The plain-text part of an email.
fn email_text(eml: &Path) -> String {
    let raw = std::fs::read(eml).unwrap();
    MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned()
}

/// Renders welcome-letter@3 for these records (both channels).
fn welcome(name: &str, records: &[serde_json::Value]) -> std::path::PathBuf {
    let dir = scratch(name);
    let data = dir.join("d.jsonl");
    write_jsonl(&data, records);
    let out = dir.join("out");
    let res = run_layout("welcome-letter@3", &data, &out, &["--as-of", "2026-11-28"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    out
}

fn person(
    id: &str,
    title: &str,
    first: &str,
    last: &str,
    address: serde_json::Value,
) -> serde_json::Value {
    customer(
        id,
        serde_json::json!({"title": title, "first_name": first, "last_name": last,
            "address": address, "contact_preference": "both", "email": format!("{id}@example.com")}),
    )
}

#[test]
fn a_uk_address_has_its_post_town_and_postcode_on_separate_lines() {
    let out = welcome(
        "addr-gb",
        &[person(
            "GB-1",
            "Mr",
            "James",
            "Whitfield",
            serde_json::json!(
            {"line1": "14 Elm Grove", "postcode": "SW19 4HE", "city": "London"}),
        )],
    );
    assert_eq!(
        window_lines(&out.join("pdf/GB-1.pdf")),
        ["Mr James Whitfield", "14 Elm Grove", "LONDON", "SW19 4HE"]
    );
    assert!(email_text(&out.join("email/GB-1.eml")).contains("Dear Mr James Whitfield,"));
}

#[test]
fn a_german_address_writes_plz_ort_and_the_country_last() {
    let out = welcome(
        "addr-de",
        &[person(
            "DE-1",
            "Herr",
            "Björn",
            "Müller",
            serde_json::json!(
            {"line1": "Königsallee 92a", "postcode": "40212", "city": "Düsseldorf", "country": "DE"}),
        )],
    );
    assert_eq!(
        window_lines(&out.join("pdf/DE-1.pdf")),
        [
            "Herr Björn Müller",
            "Königsallee 92a",
            "40212 Düsseldorf",
            "GERMANY"
        ]
    );
}

#[test]
fn a_us_address_writes_city_state_and_zip_on_one_line() {
    let out = welcome(
        "addr-us",
        &[person(
            "US-1",
            "Ms",
            "Susan",
            "Clarke",
            serde_json::json!(
            {"line1": "1600 Main St", "line2": "Apt 4", "city": "Springfield", "state": "IL", "postcode": "62701", "country": "United States"}),
        )],
    );
    assert_eq!(
        window_lines(&out.join("pdf/US-1.pdf")),
        [
            "Ms Susan Clarke",
            "1600 Main St",
            "Apt 4",
            "Springfield, IL 62701",
            "UNITED STATES"
        ]
    );
}

#[test]
fn chinese_japanese_and_korean_names_are_written_family_name_first() {
    let london =
        serde_json::json!({"line1": "18 Gerrard Street", "postcode": "W1D 6JE", "city": "London"});
    let out = welcome(
        "names-cjk",
        &[
            person("CN-1", "", "小明", "王", london.clone()),
            person("KR-1", "", "민준", "김", london.clone()),
            person(
                "JP-1",
                "",
                "太郎",
                "山田",
                serde_json::json!(
                {"line1": "丸の内1-1-1", "postcode": "100-0005", "city": "東京", "country": "Japan"}),
            ),
            person("MX-1", "", "Hiroshi", "渡辺", london),
        ],
    );
    for (id, name) in [
        ("CN-1", "王小明"),
        ("KR-1", "김민준"),
        ("JP-1", "山田太郎"),
        ("MX-1", "Hiroshi 渡辺"),
    ] {
        let text = pdftotext(&out.join(format!("pdf/{id}.pdf")));
        assert!(text.contains(&format!("Dear {name},")), "{id}: {text}");
        let email = email_text(&out.join(format!("email/{id}.eml")));
        assert!(email.contains(&format!("Dear {name},")), "{id}: {email}");
    }
    assert_eq!(window_lines(&out.join("pdf/CN-1.pdf"))[0], "王小明");
    // A Japanese address in Japanese: postcode, city, street, then the
    // name, and the country for the post office abroad.
    let jp: Vec<String> = window_lines(&out.join("pdf/JP-1.pdf"))
        .iter()
        .map(|l| squash(l))
        .collect();
    assert_eq!(jp, ["100-0005", "東京", "丸の内1-1-1", "山田太郎", "JAPAN"]);
}

/// A payment reminder record (payment-reminder@4) in a currency.
fn reminder(id: &str, currency: &str, amount: f64, due: &str) -> serde_json::Value {
    serde_json::json!({"customer_id": id, "first_name": "Ann", "last_name": "Lee",
        "address": {"line1": "1 Road", "postcode": "E1 1AA", "city": "London"},
        "card_number_last4": "1234", "currency": currency, "amount_due": amount,
        "due_date": due, "email": format!("{id}@example.com"), "contact_preference": "both",
        "days_overdue": 999})
}

#[test]
fn amounts_have_their_currencys_decimals_and_unknown_codes_fail_naming_the_field() {
    let dir = scratch("money");
    let data = dir.join("d.jsonl");
    write_jsonl(
        &data,
        &[
            reminder("M-JPY", "JPY", 123456.5, "2026-10-01"),
            reminder("M-KRW", "KRW", 98765.4, "2026-10-01"),
            reminder("M-BHD", "BHD", 1234.5675, "2026-10-01"),
            reminder("M-KWD", "KWD", 12.5, "2026-10-01"),
            reminder("M-GBP", "GBP", 1362.32, "2026-10-01"),
            reminder("M-low", "eur", 10.0, "2026-10-01"),
            reminder("M-bad", "XYZ", 10.0, "2026-10-01"),
        ],
    );
    let out = dir.join("out");
    let res = run_layout(
        "payment-reminder@4",
        &data,
        &out,
        &["--as-of", "2026-11-28"],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    for (id, want) in [
        ("M-JPY", "JP¥123,457"),
        ("M-KRW", "₩98,765"),
        ("M-BHD", "BHD 1,234.568"),
        ("M-KWD", "KWD 12.500"),
        ("M-GBP", "£1,362.32"),
    ] {
        let letter = pdftotext(&out.join(format!("pdf/{id}.pdf"))).replace('\u{a0}', " ");
        assert!(letter.contains(want), "{id}: {want} in {letter}");
        let email = email_text(&out.join(format!("email/{id}.eml"))).replace('\u{a0}', " ");
        assert!(email.contains(want), "{id}: {want} in {email}");
    }
    let e = entries(&manifest(&out));
    for (id, why) in [
        (
            "M-low",
            "field `currency`: `eur` is not an ISO 4217 currency code: write it in capitals",
        ),
        (
            "M-bad",
            "field `currency`: `XYZ` is not an ISO 4217 currency code",
        ),
    ] {
        for ch in ["pdf", "email"] {
            let d = &e[&(id.to_owned(), ch.to_owned())];
            assert_eq!(d["status"], "failed");
            assert!(d["error"].as_str().unwrap().contains(why), "{d}");
        }
    }
}

#[test]
fn the_reminder_counts_days_overdue_from_its_date() {
    let dir = scratch("overdue");
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &[reminder("O-1", "GBP", 100.0, "2026-10-01")]);
    for (as_of, days) in [("2026-11-28", 58), ("2026-12-15", 75)] {
        let out = dir.join(as_of);
        let res = run_layout("payment-reminder@4", &data, &out, &["--as-of", as_of]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let want = format!("The payment is {days} days late.");
        let letter = squash(&pdftotext(&out.join("pdf/O-1.pdf")));
        assert!(letter.contains(&squash(&want)), "{as_of}: {want}");
        assert!(
            email_text(&out.join("email/O-1.eml")).contains(&want),
            "{as_of}"
        );
    }
}

#[test]
fn an_overdraft_of_zero_or_less_is_not_announced() {
    let london = serde_json::json!({"line1": "1 Road", "postcode": "E1 1AA", "city": "London"});
    let with = |id: &str, limit: f64| {
        let mut r = person(id, "", "Ann", "Lee", london.clone());
        r["overdraft_limit"] = limit.into();
        r
    };
    let out = welcome(
        "overdraft",
        &[
            with("OD-0", 0.0),
            with("OD-neg", -100.0),
            with("OD-500", 500.0),
        ],
    );
    let arranged = "We have arranged an overdraft";
    for (id, shown) in [("OD-0", false), ("OD-neg", false), ("OD-500", true)] {
        let letter = squash(&pdftotext(&out.join(format!("pdf/{id}.pdf"))));
        assert_eq!(letter.contains(&squash(arranged)), shown, "{id} letter");
        let email = email_text(&out.join(format!("email/{id}.eml")));
        assert_eq!(email.contains(arranged), shown, "{id} email");
    }
}

#[test]
fn the_scaffolds_english_letter_starts_with_a_capital_after_the_salutation() {
    let dir = scratch("scaffold-capital");
    let layouts = dir.join("layouts");
    std::fs::create_dir_all(&layouts).unwrap();
    let res = letterpress_with_layouts(&layouts, &["layouts", "new", "account-note"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // Approved for the test, so no DRAFT mark runs through the text.
    approve(&layouts, "account-note@1");
    let out = dir.join("out");
    let res = run_layout_with(
        &layouts,
        "account-note@1",
        &layouts.join("account-note/sample-data.csv"),
        &out,
        &[],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let text = pdftotext(&out.join("pdf/C-1.pdf"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let at = lines.iter().position(|l| *l == "Dear Ann Lee,").unwrap();
    assert!(lines[at + 1].starts_with("Your balance"), "{lines:?}");
    // German letters go on in lower case, but the formal Ihr is a capital.
    let de = pdftotext(&out.join("pdf/C-2.pdf"));
    assert!(de.contains("Ihr Kontostand"), "{de}");
}

#[test]
fn a_proof_shows_one_record_per_writing_system_in_the_data() {
    let dir = scratch("proof-scripts");
    let pdf = dir.join("proof.pdf");
    let res = letterpress(&[
        "proof",
        "--layout",
        "welcome-letter@2",
        "--data",
        root().join("fixtures/customers.csv").to_str().unwrap(),
        "--out",
        pdf.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
        "--sample",
        "0",
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let mut by_script = std::collections::BTreeMap::new();
    for p in r["picks"].as_array().unwrap() {
        for reason in p["reasons"].as_array().unwrap() {
            if let Some(script) = reason.as_str().unwrap().strip_prefix("script: ") {
                by_script.insert(
                    script.to_owned(),
                    p["record_id"].as_str().unwrap().to_owned(),
                );
            }
        }
    }
    // Every locale of the sample is Latin or English; the scripts are in the names.
    for script in ["Latin", "Greek", "Cyrillic", "Arabic", "Han", "Hangul"] {
        assert!(
            by_script.contains_key(script),
            "no {script} record in {by_script:?}"
        );
    }
    assert_eq!(by_script["Greek"], "C-01071", "the first Greek record");
    assert_eq!(by_script["Arabic"], "C-01106");
}

/// A layout `notice` with two versions whose letters say `old` and `new`
/// under an address block; version 2 writes the town in capitals.
fn notice_versions(dir: &Path, old: &str, new: &str) -> std::path::PathBuf {
    let layouts = dir.join("layouts");
    for (v, text, town) in [(1, old, "r.town"), (2, new, "upper(r.town)")] {
        let folder = layouts.join(format!("notice/{v}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("layout.yaml"),
            format!(
                "name: notice\nversion: {v}\ntitle: Notice\nstatus: draft\nid_field: id\npage: {{format: a4}}\n\
                 fields:\n  - {{name: id, type: string, required: true}}\n  - {{name: name, type: string}}\n\
                 \x20 - {{name: street, type: string}}\n  - {{name: town, type: string}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            folder.join("letter.typ"),
            format!(
                "#let r = json(\"/record.json\")\n#set text(font: \"Libertinus Serif\")\n\
                 #r.name \\ #r.street \\ #{town}\n\n{text}\n"
            ),
        )
        .unwrap();
    }
    layouts
}

#[test]
fn diff_counts_the_banks_sentences_not_the_address_nor_abbreviations() {
    let dir = scratch("diff-sentences");
    // Version 2 changes one sentence that holds abbreviations in three
    // languages, and writes the town of the address in capitals: that
    // line is the record's own, not a sentence of the bank.
    let layouts = notice_versions(
        &dir,
        "Dr. Smith will call Sr. García about flat кв. 5 on Monday. Thank you.",
        "Dr. Jones will call Sr. García about flat кв. 5 on Monday. Thank you.",
    );
    let data = dir.join("d.jsonl");
    write_jsonl(
        &data,
        &[
            serde_json::json!({"id": "N-1", "name": "Ann Lee", "street": "14 Elm Grove", "town": "London"}),
            serde_json::json!({"id": "N-2", "name": "Bo Li", "street": "2 Mill Lane", "town": "Leeds"}),
        ],
    );
    let res = letterpress_with_layouts(
        &layouts,
        &[
            "diff",
            "notice@1",
            "notice@2",
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(r["changed"], 2);
    assert_eq!(
        r["disappearing"],
        serde_json::json!([[
            "Dr. Smith will call Sr. García about flat кв. 5 on Monday.",
            2
        ]])
    );
    assert_eq!(
        r["appearing"],
        serde_json::json!([[
            "Dr. Jones will call Sr. García about flat кв. 5 on Monday.",
            2
        ]])
    );
}

#[test]
fn man_writes_a_page_for_every_command() {
    let dir = scratch("man-pages");
    let res = letterpress(&["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for (page, flag) in [
        ("letterpress", "completions"),
        ("letterpress-run", "resume"),
        ("letterpress-validate", "suppress"),
        ("letterpress-send", "dry\\-run"),
        ("letterpress-verify", "rerender"),
        ("letterpress-layouts-approve", "key"),
        ("letterpress-manifest-merge", "json"),
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(text.contains(&format!(".TH {page} 1")), "{page}: {text}");
        assert!(text.contains(flag), "{page} documents {flag}");
    }
}
