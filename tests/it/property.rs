//! Property: arbitrary strings in any text field of a record print
//! literally or fail that record with a reason; they never crash the run,
//! never reach Typst or HTML as code, and never lose a record.

use letterpress::util::rng::Rng;

use crate::common::*;

/// Pieces that mean something to Typst, Handlebars, HTML, CSV, JSON or the
/// PDF text layer, and characters from other scripts and planes.
const PIECES: &[&str] = &[
    "#",
    "#set text(red)",
    "]",
    "[",
    "}",
    "{",
    "{{x}}",
    "{{{y}}}",
    "$",
    "$x^2$",
    "*",
    "_",
    "`",
    "<script>alert(1)</script>",
    "<b>",
    "&amp;",
    "\"",
    "'",
    "\\",
    "//",
    "/*",
    "@ref",
    "=",
    "-",
    "+",
    "~",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\u{0}",
    "\u{7}",
    "\u{202e}",
    "\u{200b}",
    "é",
    "ß",
    "Ω",
    "日本",
    "עברית",
    "العربية",
    "😀",
    "\u{10FFFF}",
    "e\u{301}",
    "%PDF",
    ")",
    "(",
    "#(1/0)",
    "#import \"/etc/passwd\"",
    "#read(\"/record.json\")",
];

fn arbitrary(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..=rng.below(6) {
        if rng.below(3) == 0 {
            s.push(char::from(b'A' + rng.below(26) as u8));
        } else {
            s.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
        }
    }
    s
}

#[test]
fn arbitrary_strings_in_any_field_print_literally_or_fail_with_a_reason() {
    let dir = scratch("property");
    let mut rng = Rng::new(2026);
    let text_fields = [
        "title",
        "first_name",
        "last_name",
        "product",
        "account_number",
        "locale",
        "email",
        "contact_preference",
    ];
    let mut lines = String::new();
    let mut names = Vec::new();
    let mut raw = Vec::new();
    for i in 0..120 {
        let mut rec = serde_json::json!({
            "customer_id": format!("P-{i:03}"),
            "title": "Ms", "first_name": "Ann", "last_name": "Lee",
            "address": {"line1": "1 High St", "postcode": "AB1 2CD", "city": "Leeds"},
            "email": format!("p{i}@example.com"), "locale": "en-GB",
            "product": "Saver", "account_number": "123", "opened_on": "2026-01-01",
            "advisor": {"name": "Sam", "phone": "+44 1"},
        });
        // One or two fields get an arbitrary string, sometimes nested ones.
        for _ in 0..=rng.below(2) {
            let value = arbitrary(&mut rng);
            match rng.below(4) {
                0 => rec["address"]["line1"] = value.into(),
                1 => rec["advisor"]["name"] = value.into(),
                _ => {
                    let f = text_fields[rng.below(text_fields.len() as u64) as usize];
                    rec[f] = value.into();
                }
            }
        }
        names.push(rec["last_name"].as_str().unwrap().to_owned());
        raw.push(rec.to_string());
        lines.push_str(&rec.to_string());
        lines.push('\n');
    }
    let data = dir.join("arbitrary.jsonl");
    std::fs::write(&data, lines).unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter@2", &data, &out, &[]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        matches!(res.status.code(), Some(0 | 1)),
        "{}",
        describe(&res)
    );
    assert!(!err.contains("panicked"), "{err}");
    let m = manifest(&out);
    let docs = m["documents"].as_array().unwrap();
    assert_eq!(m["totals"]["records"], 120);
    assert_eq!(docs.len(), 240, "one entry per record and channel");
    let mut rendered = 0;
    for d in docs {
        let id = d["record_id"].as_str().unwrap();
        let i: usize = id[2..].parse().unwrap();
        match d["status"].as_str().unwrap() {
            "failed" | "suppressed" | "routed_elsewhere" => {
                let why = d["error"].as_str().unwrap();
                assert!(!why.trim().is_empty(), "{id}: a reason");
            }
            "rendered" if d["channel"] == "pdf" => {
                rendered += 1;
                let text = pdftotext(&out.join(d["path"].as_str().unwrap()));
                // A printable last name is on the letter exactly as given.
                let name = &names[i];
                if name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                    assert!(
                        squash(&text).contains(&squash(name)),
                        "{id}: {name:?} not printed literally in:\n{text}"
                    );
                }
            }
            "rendered" => {
                let html =
                    std::fs::read_to_string(out.join(d["files"][0]["path"].as_str().unwrap()))
                        .unwrap();
                assert!(!html.contains("<script>"), "{id}: HTML not escaped");
                // Braces left in the HTML come from the record (printed
                // literally), never from the template.
                assert!(
                    !html.contains("{{") || raw[i].contains("{{"),
                    "{id}: template syntax left"
                );
            }
            other => panic!("{id}: status {other}"),
        }
    }
    assert!(rendered > 60, "most records render: {rendered}");
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}
