//! Trust at the edges, on the real binary: suppression lists as people
//! write them, suppressed kept apart from routed elsewhere, record values
//! that cannot change the bank's words (controls, bidi, line breaks,
//! encoded words in headers, duplicate JSON keys).

use crate::common::*;
use mail_parser::MessageParser;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Welcome records, one per id, with these emails.
fn records(ids_and_emails: &[(&str, &str)]) -> Vec<serde_json::Value> {
    ids_and_emails
        .iter()
        .map(|(id, email)| {
            customer(
                id,
                serde_json::json!({"email": email, "contact_preference": "both"}),
            )
        })
        .collect()
}

#[test]
fn suppression_lists_are_read_as_people_write_them() {
    let dir = scratch("suppress-read");
    let data = dir.join("d.jsonl");
    // "Ž-7" in the data is in NFC; the list writes it decomposed (NFD).
    let mut recs = records(&[
        ("C-1", "c1@example.com"),
        ("C-2", "c2@example.com"),
        ("C-3", "c3@example.com"),
        ("C-4", "c4@example.com"),
        ("C-5", "c5@example.com"),
        ("C-6", "Zoe.Six@Example.com"),
        ("\u{17d}-7", "c7@example.com"),
        ("C-8", "zo\u{eb}@example.com"),
        ("C-9", "c9@example.com"),
    ]);
    recs.push(customer(
        "C-10",
        serde_json::json!({"email": "c10@example.com", "contact_preference": "both"}),
    ));
    write_jsonl(&data, &recs);
    let list = dir.join("dnc.txt");
    std::fs::write(
        &list,
        "\u{feff}# Do not contact (compliance, updated weekly)\n\
         C-1  # asked by phone\n\
         C-2\tticket 4711\n\
         \"C-3\"\n\
         C-4,\n\
         \x20  C-5   \r\n\
         ZOE.SIX@EXAMPLE.COM\n\
         Z\u{30c}-7\n\
         zoe\u{308}@example.com ; complaint\n\
         C-0009\n\
         nobody@example.com\n",
    )
    .unwrap();
    let out = dir.join("out");
    let res = run_layout(
        "welcome-letter",
        &data,
        &out,
        &["--suppress", list.to_str().unwrap(), "--json"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    let e = entries(&m);
    for id in ["C-1", "C-2", "C-3", "C-4", "C-5", "C-6", "\u{17d}-7", "C-8"] {
        for ch in ["pdf", "email"] {
            let d = &e[&(id.to_owned(), ch.to_owned())];
            assert_eq!(d["status"], "suppressed", "{id} {ch}: {d}");
        }
    }
    for id in ["C-9", "C-10"] {
        assert_eq!(e[&(id.to_owned(), "pdf".to_owned())]["status"], "rendered");
    }
    // Two entries matched nobody (a typo of C-9, an unknown address): listed
    // in the manifest, the summary on stderr and in JSON, and the report.
    let unmatched = serde_json::json!([
        {"line": 10, "entry": "C-0009"},
        {"line": 11, "entry": "nobody@example.com"}
    ]);
    assert_eq!(m["unmatched_suppressions"], unmatched);
    assert_eq!(m["options"]["suppress"]["entries"], 10);
    let err = stderr(&res);
    assert!(
        err.contains("2 entries of the suppression list matched nobody: C-0009 (line 10), nobody@example.com (line 11)"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(summary["unmatched_suppressions"]["count"], 2);
    assert_eq!(summary["unmatched_suppressions"]["entries"], unmatched);
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("Suppression list entries that matched nobody: 2")
            && report.contains("<code>C-0009</code>")
            && report.contains("<code>nobody@example.com</code>"),
        "{report}"
    );
}

#[test]
fn a_suppression_list_that_cannot_be_read_stops_the_run() {
    let dir = scratch("suppress-bad");
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &records(&[("C-1", "c1@example.com")]));
    for (i, (text, line, what)) in [
        (&b"C-1\nC-2 C-3\n"[..], 2, "more than one value"),
        (b"# x\n\n\"C-1\n", 3, "quote is never closed"),
        (b"C-1\nann@\n", 2, "not an email address"),
        (b"C-1\x07\n", 1, "control character U+0007"),
        (b"C-1\n\xff\xfe\n", 2, "not valid UTF-8"),
    ]
    .into_iter()
    .enumerate()
    {
        let list = dir.join(format!("list{i}.txt"));
        std::fs::write(&list, text).unwrap();
        let out = dir.join(format!("out{i}"));
        for args in [
            vec!["--suppress", list.to_str().unwrap()],
            vec!["--suppress", list.to_str().unwrap(), "--channels", "pdf"],
        ] {
            let res = run_layout("welcome-letter", &data, &out, &args);
            let text = String::from_utf8_lossy(text);
            assert_eq!(res.status.code(), Some(2), "{text:?}: {}", describe(&res));
            let err = stderr(&res);
            assert!(
                err.contains(&format!("line {line}:")) && err.contains(what),
                "{text:?}: {err}"
            );
            assert!(!out.exists(), "nothing is written");
        }
    }
}

#[test]
fn suppressed_and_routed_elsewhere_are_told_apart() {
    // The sample: no suppression list at all, yet emails are not sent to
    // the customers who want letters or have no valid address.
    let out = render_ok("welcome-letter", "fixtures/customers.csv", "routed", &[]);
    let m = manifest(&out);
    let email = &m["totals"]["channels"]["email"];
    assert_eq!(email["suppressed"], 0, "{email}");
    assert_eq!(
        email["routed_elsewhere"].as_u64().unwrap() + email["rendered"].as_u64().unwrap(),
        56
    );
    let routed = email["routed_elsewhere"].as_u64().unwrap();
    assert!(routed > 0);
    let e = entries(&m);
    let to_print = e
        .values()
        .filter(|d| {
            d["channel"] == "email"
                && d["status"] == "routed_elsewhere"
                && d["error"].as_str().unwrap().contains("routed to print")
        })
        .count() as u64;
    assert_eq!(to_print, routed, "each says where the customer went");
    // The report: one table per kind, and the suppressed one is absent.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains(&format!(
        "Routed elsewhere: reached on another channel: {} documents",
        m["totals"]["routed_elsewhere"]
    )));
    assert!(!report.contains("Suppressed: withheld"), "{report}");
}

/// Runs welcome-letter on `records` (JSONL) into a fresh folder.
fn run_records(
    name: &str,
    recs: &[serde_json::Value],
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf) {
    let dir = scratch(name);
    let data = dir.join("d.jsonl");
    write_jsonl(&data, recs);
    let out = dir.join("out");
    (run_layout("welcome-letter", &data, &out, extra), out)
}

#[test]
fn control_and_bidi_characters_in_data_fail_the_record_naming_field_and_character() {
    let base = |id: &str, field: &str, value: &str| {
        let mut r = customer(id, serde_json::json!({"contact_preference": "both"}));
        if let Some(sub) = field.strip_prefix("address.") {
            r["address"][sub] = value.into();
        } else {
            r[field] = value.into();
        }
        r
    };
    let cases = [
        (
            "B-1",
            "title",
            "Mr\u{202e}",
            "U+202E RIGHT-TO-LEFT OVERRIDE",
        ),
        ("B-2", "last_name", "Lee\nBank of Fraud", "a line break"),
        ("B-3", "first_name", "Ann\u{7}", "U+0007 BELL"),
        (
            "B-4",
            "address.line1",
            "1\u{200b} Road",
            "U+200B ZERO WIDTH SPACE",
        ),
        (
            "B-5",
            "address.city",
            "Lon\u{2066}don",
            "U+2066 LEFT-TO-RIGHT ISOLATE",
        ),
        ("B-6", "first_name", "Ann\u{1b}[31m", "U+001B ESCAPE"),
        (
            "B-7",
            "address.line1",
            "1 Road\u{2028}2nd line",
            "U+2028 LINE SEPARATOR",
        ),
        ("B-8", "product", "Saver\u{0}", "U+0000 NULL"),
    ];
    let mut recs: Vec<serde_json::Value> = cases
        .iter()
        .map(|(id, field, value, _)| base(id, field, value))
        .collect();
    // Right-to-left and composed names are not controls: they render.
    recs.push(base("OK-1", "first_name", "محمد"));
    recs.push(customer(
        "OK-2",
        serde_json::json!({"first_name": "José\u{200d}María", "last_name": "Ní Bhraonáin", "contact_preference": "both"}),
    ));
    recs.push(customer(
        "OK-3",
        serde_json::json!({"first_name": "محمد", "last_name": "العلي", "contact_preference": "both"}),
    ));
    // A column the layout does not declare may hold lines and words the
    // letter never shows; it still holds no control character.
    recs.push(customer(
        "OK-4",
        serde_json::json!({"clerk_notes": "TODO: call back\nafter 5 pm", "contact_preference": "both"}),
    ));
    recs.push(customer(
        "B-9",
        serde_json::json!({"clerk_notes": "ok\u{1b}[2J", "contact_preference": "both"}),
    ));
    let (res, out) = run_records("controls", &recs, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let e = entries(&manifest(&out));
    for (id, field, _, what) in cases {
        for ch in ["pdf", "email"] {
            let d = &e[&(id.to_owned(), ch.to_owned())];
            assert_eq!(d["status"], "failed", "{id}: {d}");
            let why = d["error"].as_str().unwrap();
            assert!(
                why.contains(&format!("field `{field}`")) && why.contains(what),
                "{id}: {why}"
            );
        }
        assert!(!out.join(format!("pdf/{id}.pdf")).exists());
    }
    let b9 = e[&("B-9".to_owned(), "pdf".to_owned())]["error"].to_string();
    assert!(
        b9.contains("field `clerk_notes`") && b9.contains("U+001B"),
        "{b9}"
    );
    for id in ["OK-1", "OK-2", "OK-3", "OK-4"] {
        for ch in ["pdf", "email"] {
            let d = &e[&(id.to_owned(), ch.to_owned())];
            assert_eq!(d["status"], "rendered", "{id} {ch}: {d}");
        }
    }
    // A name in two right-to-left fields stays one right-to-left unit:
    // read from the right, first name then family name (محمد العلي), so
    // on the page the family name stands left of the first name.
    let text = pdftotext(&out.join("pdf/OK-3.pdf"));
    assert!(text.contains("Dear"), "{text}");
    let left_of = |a: &str, b: &str| {
        let xa = word_x(&out.join("pdf/OK-3.pdf"), a);
        let xb = word_x(&out.join("pdf/OK-3.pdf"), b);
        xa.iter().zip(&xb).all(|(a, b)| a < b) && !xa.is_empty() && xa.len() == xb.len()
    };
    assert!(
        left_of("العلي", "محمد"),
        "the family name is drawn left of the first name"
    );
}

/// The left edges of the words that are `word` on page 1 of a PDF (a
/// right-to-left word may come out with its letters in visual order).
fn word_x(pdf: &std::path::Path, word: &str) -> Vec<f64> {
    let out = std::process::Command::new("pdftotext")
        .args(["-f", "1", "-l", "1", "-bbox"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    let reversed: String = word.chars().rev().collect();
    html.lines()
        .filter_map(|l| {
            let x = l
                .split("xMin=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<f64>()
                .ok()?;
            let text = l.split('>').nth(1)?.split('<').next()?;
            let text: String = text.chars().filter(|c| c.is_alphabetic()).collect();
            (text == word || text == reversed).then_some(x)
        })
        .collect()
}

#[test]
fn a_field_may_allow_several_lines_when_the_schema_says_so() {
    let dir = scratch("multiline");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let meta = layouts.join("welcome-letter/2/layout.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        text.replace(
            "{name: line2, type: string}",
            "{name: line2, type: string, multiline: true}",
        ),
    )
    .unwrap();
    approve(&layouts, "welcome-letter@2");
    let data = dir.join("d.jsonl");
    let mut two = customer("M-1", serde_json::json!({"contact_preference": "print"}));
    two["address"]["line2"] = "Building 4\nFloor 3".into();
    let mut bad = customer("M-2", serde_json::json!({"contact_preference": "print"}));
    bad["address"]["line1"] = "1 Road\nFloor 3".into();
    write_jsonl(&data, &[two, bad]);
    let out = dir.join("out");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let e = entries(&manifest(&out));
    assert_eq!(e[&("M-1".into(), "pdf".into())]["status"], "rendered");
    let why = e[&("M-2".into(), "pdf".into())]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        why.contains("field `address.line1`") && why.contains("multiline: true"),
        "{why}"
    );
    let text = pdftotext(&out.join("pdf/M-1.pdf"));
    assert!(text.contains("Building 4\nFloor 3"), "{text}");
}

/// Every header line of a message, unfolded lines kept apart.
fn header_lines(eml: &[u8]) -> Vec<String> {
    let end = eml.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&eml[..end])
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

#[test]
fn email_headers_are_folded_and_encoded_words_in_data_stay_literal() {
    let long = "A".repeat(1500);
    let encoded = "=?utf-8?b?SGFja2Vk?=";
    let recs = [
        customer("H-1", serde_json::json!({"first_name": long})),
        customer("H-2", serde_json::json!({"first_name": encoded})),
        customer(
            "H-3",
            serde_json::json!({"first_name": format!("Ann {}", "Ö".repeat(400))}),
        ),
    ];
    let (res, out) = run_records("headers", &recs, &["--channels", "email"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for (id, first) in [
        ("H-1", long.clone()),
        ("H-2", encoded.to_owned()),
        ("H-3", format!("Ann {}", "Ö".repeat(400))),
    ] {
        let eml = std::fs::read(out.join(format!("email/{id}.eml"))).unwrap();
        for line in header_lines(&eml) {
            assert!(
                line.len() <= 78,
                "{id}: a header line of {} octets",
                line.len()
            );
        }
        let msg = MessageParser::default().parse(&eml).unwrap();
        assert_eq!(
            msg.subject().unwrap(),
            format!("Welcome to Northwind Bank, {first}"),
            "{id}: the subject decodes to exactly what was meant"
        );
    }
}

#[test]
fn a_json_record_with_a_key_twice_fails_naming_the_key() {
    let dir = scratch("dupkeys");
    let good = customer("D-1", serde_json::json!({})).to_string();
    let twice = good.replace("\"D-1\"", "\"D-2\"").replacen(
        "\"last_name\":\"Lee\"",
        "\"last_name\":\"Lee\",\"last_name\":\"Other\"",
        1,
    );
    let nested = good.replace("\"D-1\"", "\"D-3\"").replacen(
        "\"city\":\"London\"",
        "\"city\":\"London\",\"city\":\"Paris\"",
        1,
    );
    assert!(twice.contains("Other") && nested.contains("Paris"));
    for (ext, text, first) in [
        ("jsonl", format!("{good}\r\n{twice}\r\n{nested}\r\n"), 2),
        (
            "json",
            format!("[\r\n{good},\r\n{twice},\r\n{nested}\r\n]\r\n"),
            3,
        ),
    ] {
        let data = dir.join(format!("d.{ext}"));
        std::fs::write(&data, text).unwrap();
        let out = dir.join(format!("out-{ext}"));
        let res = run_layout("welcome-letter", &data, &out, &[]);
        assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
        let docs = manifest(&out)["documents"].as_array().unwrap().clone();
        let failed: Vec<(u64, String)> = docs
            .iter()
            .filter(|d| d["status"] == "failed" && d["channel"] == "pdf")
            .map(|d| {
                (
                    d["line"].as_u64().unwrap(),
                    d["error"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(failed.len(), 2, "{ext}: {failed:?}");
        assert_eq!(failed[0].0, first, "{ext}: {failed:?}");
        assert!(
            failed[0].1.contains("the key `last_name` occurs twice"),
            "{failed:?}"
        );
        assert_eq!(failed[1].0, first + 1, "{ext}: {failed:?}");
        assert!(
            failed[1].1.contains("the key `address.city` occurs twice"),
            "{failed:?}"
        );
        assert!(!out.join("pdf/D-2.pdf").exists());
    }
}
