//! The email channel end to end: the real binary, `.eml` files parsed with a
//! real MIME parser (mail-parser), letters opened with poppler, and routing
//! between the channels read back from the manifest.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use letterpress::layout::locale;
use letterpress::util::clock::Date;
use mail_parser::{MessageParser, MimeHeaders};

/// Text without whitespace (see `squash`), so PDF text, where lines break
/// anywhere, and email text compare.
fn plain(s: &str) -> String {
    let mut s = s.to_owned();
    for sp in locale::SPECIAL_SPACES {
        s = s.replace(sp, " ");
    }
    squash(&s)
}

fn parse_eml(path: &Path) -> (Vec<u8>, mail_parser::Message<'static>) {
    let raw = std::fs::read(path).unwrap();
    let msg = MessageParser::default()
        .parse(&raw)
        .expect("a parsable message")
        .into_owned();
    (raw, msg)
}

#[test]
fn the_letter_and_the_email_show_identical_formatted_strings() {
    let data = root().join("fixtures/reminders.csv");
    let out = scratch("one-voice");
    let res = run_layout("payment-reminder", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    let e = entries(&m);
    let mut rdr = csv::Reader::from_path(&data).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let mut both = 0;
    let mut locales = std::collections::BTreeSet::new();
    for row in rdr.records() {
        let row: BTreeMap<&str, String> = headers
            .iter()
            .zip(row.unwrap().iter().map(str::to_owned))
            .collect();
        let id = row["customer_id"].clone();
        let pdf = &e[&(id.clone(), "pdf".into())];
        let email = &e[&(id.clone(), "email".into())];
        if pdf["status"] != "rendered" || email["status"] != "rendered" {
            continue;
        }
        both += 1;
        let tag = pdf["locale"].as_str().unwrap();
        assert_eq!(email["locale"], tag);
        locales.insert(tag.to_owned());
        let rules = locale::rules(tag).unwrap();
        let amount = rules
            .money(row["amount_due"].parse().unwrap(), &row["currency"])
            .unwrap();
        let due = rules.long_date(Date::parse(&row["due_date"]).unwrap());
        let today = rules.long_date(Date::parse("2026-11-22").unwrap());
        let deadline = rules.long_date(Date::parse("2026-12-06").unwrap());
        let letter = plain(&pdftotext(&out.join(pdf["path"].as_str().unwrap())));
        let (_, msg) = parse_eml(&out.join(email["path"].as_str().unwrap()));
        let text = plain(&msg.body_text(0).unwrap());
        let html_text = plain(&msg.body_html(0).unwrap());
        for want in [&amount, &due, &today, &deadline] {
            let want = plain(want);
            assert!(
                letter.contains(&want),
                "{id}: {want:?} not in the letter:\n{letter}"
            );
            assert!(
                text.contains(&want),
                "{id}: {want:?} not in the email text:\n{text}"
            );
            assert!(html_text.contains(&want), "{id}: {want:?} not in the HTML");
        }
        assert!(
            msg.subject().unwrap().contains(&amount),
            "{id}: subject {:?} lacks {amount:?}",
            msg.subject()
        );
        if tag == "de-DE" {
            assert!(
                amount.ends_with("\u{a0}€") && amount.contains(','),
                "{amount}"
            );
            assert!(letter.contains("GutenTag") && text.contains("GutenTag"));
        }
        if tag == "en-US" {
            assert!(due.starts_with(char::is_alphabetic), "{due}");
        }
    }
    assert!(both >= 5, "only {both} records got both channels");
    assert!(
        locales.len() >= 3,
        "the fixture should cover several locales: {locales:?}"
    );
}

#[test]
fn the_typst_module_formats_exactly_like_the_engine() {
    // A layout whose letter prints a table of values formatted with the
    // engine's Typst module, one record per locale; every line must equal
    // what src/locale.rs gives for the same value.
    let dir = scratch("fmt-parity");
    let layout = dir.join("layouts/fmt/1");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("layout.yaml"),
        "name: fmt\nversion: 1\ntitle: Formats\nstatus: approved\nid_field: id\n\
         locale_field: locale\npage: {format: a4}\nfields:\n  - {name: id, type: string, required: true}\n\
         \x20 - {name: locale, type: string}\n  - {name: values, type: list, items: number}\n\
         \x20 - {name: dates, type: list, items: date}\n",
    )
    .unwrap();
    std::fs::write(
        layout.join("letter.typ"),
        "#import \"/letterpress/locale.typ\": *\n#let r = json(\"/record.json\")\n\
         #set page(margin: 1cm)\n#set text(size: 7pt, font: \"Libertinus Serif\")\n\
         #let cur = (\"EUR\", \"USD\", \"GBP\", \"JPY\", \"KRW\", \"BHD\", \"KWD\", \"CHF\")\n\
         #for x in r.values [#(\"N|\" + number(x) + \"|\" + number(x, decimals: 0) + cur.map(c => \"|\" + money(x, c)).join()) \\ ]\n\
         #for d in r.dates [#(\"D|\" + long-date(d) + \"|\" + short-date(d)) \\ ]\n",
    )
    .unwrap();
    let values = [
        0.0,
        0.004,
        0.005,
        -0.004,
        1.0,
        12.5,
        999.995,
        1000.0,
        1234.56,
        -1234.56,
        12345.678,
        123456.0,
        1234567.891,
        -0.5,
        2.675,
        100000000.0,
    ];
    let dates = ["2026-01-01", "2026-11-22", "2024-02-29", "1999-12-31"];
    let data = dir.join("d.jsonl");
    let mut lines = String::new();
    for r in locale::RULES {
        lines.push_str(
            &serde_json::json!({"id": r.tag, "locale": r.tag, "values": values, "dates": dates})
                .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&data, lines).unwrap();
    approve(&dir.join("layouts"), "fmt@1");
    let out = dir.join("out");
    let res = run_layout_with(&dir.join("layouts"), "fmt", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for r in locale::RULES {
        let text = pdftotext(&out.join(format!("pdf/{}.pdf", r.tag)));
        let got: Vec<String> = text
            .lines()
            .map(plain)
            .filter(|l| l.starts_with("N|") || l.starts_with("D|"))
            .collect();
        let mut want = Vec::new();
        for x in values {
            let money: String = ["EUR", "USD", "GBP", "JPY", "KRW", "BHD", "KWD", "CHF"]
                .iter()
                .map(|c| format!("|{}", r.money(x, c).unwrap()))
                .collect();
            want.push(plain(&format!(
                "N|{}|{}{money}",
                r.number(x, 2),
                r.number(x, 0),
            )));
        }
        for d in dates {
            let d = Date::parse(d).unwrap();
            want.push(plain(&format!("D|{}|{}", r.long_date(d), r.short_date(d))));
        }
        assert_eq!(got, want, "locale {}", r.tag);
    }
}

#[test]
fn emails_are_sound_mime_messages_and_reproducible() {
    let data = root().join("fixtures/customers.csv");
    let (a, b) = (scratch("eml-a"), scratch("eml-b"));
    for (out, jobs) in [(&a, "2"), (&b, "1")] {
        let res = run_layout("welcome-letter", &data, out, &["--jobs", jobs]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let m = manifest(&a);
    let emails: Vec<&serde_json::Value> = m["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "email" && d["status"] == "rendered")
        .collect();
    assert!(emails.len() >= 30, "{}", emails.len());
    let mut ids = std::collections::HashSet::new();
    for d in emails {
        let rel = d["path"].as_str().unwrap();
        let (raw, msg) = parse_eml(&a.join(rel));
        assert_eq!(
            raw,
            std::fs::read(b.join(rel)).unwrap(),
            "{rel} differs between runs"
        );
        assert_eq!(d["sha256"], sha256_file(&a.join(rel)));
        for f in d["files"].as_array().unwrap() {
            assert_eq!(
                f["sha256"],
                sha256_file(&a.join(f["path"].as_str().unwrap()))
            );
        }
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address().unwrap(), "hello@northwind.example");
        assert_eq!(from.name().unwrap(), "Northwind Bank");
        let to = msg
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_owned();
        assert_eq!(d["to"], to.as_str());
        assert_eq!(msg.subject().unwrap(), d["subject"].as_str().unwrap());
        assert_eq!(msg.message_id().unwrap(), d["message_id"].as_str().unwrap());
        assert!(
            ids.insert(msg.message_id().unwrap().to_owned()),
            "duplicate Message-ID"
        );
        assert_eq!(msg.date().unwrap().to_rfc3339(), "2026-11-22T00:00:00Z");
        assert_eq!(
            msg.reply_to().unwrap().first().unwrap().address().unwrap(),
            "service@northwind.example"
        );
        // multipart/alternative with the text part first and the HTML last.
        let ct = msg.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        assert_eq!((msg.text_body_count(), msg.html_body_count()), (1, 1));
        let kinds: Vec<String> = msg
            .parts
            .iter()
            .skip(1)
            .map(|p| {
                let ct = p.content_type().unwrap();
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
            })
            .collect();
        assert_eq!(kinds, ["text/plain", "text/html"]);
        let html = msg.body_html(0).unwrap();
        let tag = d["locale"].as_str().unwrap();
        assert!(html.contains(&format!("<html lang=\"{tag}\">")), "{rel}");
        assert!(html.contains("role=\"presentation\""));
        assert!(
            !html.contains("<style>p") && html.contains("style=\""),
            "CSS inlined"
        );
        assert!(html.contains("@media"), "@media rules kept");
        let body = std::fs::read_to_string(a.join(rel.replace(".eml", ".html"))).unwrap();
        assert_eq!(
            html.replace("\r\n", "\n").trim_end(),
            body.trim_end(),
            "the .html file is the HTML part"
        );
    }
}

#[test]
fn hostile_values_are_escaped_in_the_html_and_literal_in_the_text() {
    let hostile = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "{{x}}",
        "{{{raw}}} & co",
    ];
    let dir = scratch("email-hostile");
    let data = dir.join("h.jsonl");
    let mut lines = String::new();
    for (i, h) in hostile.iter().enumerate() {
        let rec = serde_json::json!({"customer_id": format!("H-{i}"), "first_name": h, "last_name": "Smith",
            "address": {"line1": h, "postcode": "E1 1AA", "city": "London"}, "email": format!("h{i}@example.com"),
            "product": h, "account_number": "12345678", "opened_on": "2026-01-02", "contact_preference": "both"});
        lines.push_str(&rec.to_string());
        lines.push('\n');
    }
    std::fs::write(&data, lines).unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let e = entries(&manifest(&out));
    for (i, h) in hostile.iter().enumerate() {
        // The letter, worded through texts.yaml, prints the value literally too.
        let pdf = &e[&(format!("H-{i}"), "pdf".to_owned())];
        let letter = pdftotext(&out.join(pdf["path"].as_str().unwrap()));
        assert!(
            letter.contains(&format!("Dear {h} Smith,")),
            "{h:?} not literal in:\n{letter}"
        );
        let d = &e[&(format!("H-{i}"), "email".to_owned())];
        assert_eq!(d["status"], "rendered", "{d}");
        let (_, msg) = parse_eml(&out.join(d["path"].as_str().unwrap()));
        let text = msg.body_text(0).unwrap();
        assert!(
            text.contains(&format!("Dear {h} Smith,")),
            "{h:?} not literal in:\n{text}"
        );
        assert_eq!(
            msg.subject().unwrap(),
            format!("Welcome to Northwind Bank, {h}")
        );
        let html = msg.body_html(0).unwrap();
        assert!(
            !html.contains("<script") && !html.contains("<img src=x"),
            "{html}"
        );
        if h.contains(['<', '>', '"', '&']) {
            assert!(!html.contains(h), "{h:?} unescaped in the HTML");
        }
        let escaped = h
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('=', "&#x3D;");
        assert!(
            html.contains(&format!("Dear {escaped} Smith,")),
            "{escaped:?} not in the HTML"
        );
    }
}

#[test]
fn routing_follows_preferences_falls_back_to_print_and_suppresses() {
    let dir = scratch("routing");
    let list = dir.join("suppress.txt");
    std::fs::write(&list, "# do not contact\nC-01001\nCUSTOMER13@example.com\n").unwrap();
    let out = dir.join("out");
    let data = root().join("fixtures/customers.csv");
    let res = run_layout(
        "welcome-letter",
        &data,
        &out,
        &["--suppress", list.to_str().unwrap(), "--json"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    assert_eq!(
        m["options"]["channels"],
        serde_json::json!(["pdf", "email"])
    );
    assert_eq!(m["options"]["suppress"]["entries"], 2);
    let e = entries(&m);
    let get = |id: &str, ch: &str| e[&(id.to_owned(), ch.to_owned())].clone();
    // Suppressed by id and by address (case-insensitive), on both channels.
    for (id, line) in [("C-01001", 2), ("C-01085", 3)] {
        for ch in ["pdf", "email"] {
            let d = get(id, ch);
            assert_eq!(d["status"], "suppressed", "{d}");
            let why = d["error"].as_str().unwrap();
            assert!(
                why.contains("suppression list") && why.contains(&format!("line {line}")),
                "{why}"
            );
            assert!(d["path"].is_null());
        }
        assert!(!out.join(format!("pdf/{id}.pdf")).exists());
        assert!(!out.join(format!("email/{id}.eml")).exists());
    }
    // An invalid address falls back to print, and says so.
    let fb = get("C-01204", "pdf");
    assert_eq!(fb["status"], "rendered");
    assert!(
        fb["note"].as_str().unwrap().contains("fallback to print"),
        "{fb}"
    );
    // Routed elsewhere is not suppressed: the customer gets the letter.
    let em = get("C-01204", "email");
    assert_eq!(em["status"], "routed_elsewhere");
    assert!(em["error"]
        .as_str()
        .unwrap()
        .contains("routed to print instead"));
    // Preference email: no letter; preference print: no email.
    assert_eq!(get("C-01225", "pdf")["status"], "routed_elsewhere");
    assert_eq!(
        get("C-01225", "pdf")["error"],
        "contact preference is email: routed to email"
    );
    assert_eq!(get("C-01225", "email")["status"], "rendered");
    assert_eq!(get("C-01351", "email")["status"], "routed_elsewhere");
    assert_eq!(
        get("C-01351", "email")["error"],
        "contact preference is print: routed to print"
    );
    // Every record exactly once per channel, and the totals reconcile.
    let t = &m["totals"];
    assert_eq!(t["records"], 56);
    assert_eq!(t["documents"], 112);
    for ch in ["pdf", "email"] {
        let c = &t["channels"][ch];
        let sum: u64 = ["rendered", "failed", "suppressed", "routed_elsewhere"]
            .iter()
            .map(|k| c[k].as_u64().unwrap())
            .sum();
        assert_eq!(sum, 56, "{ch}: {c}");
        let files = std::fs::read_dir(out.join(ch)).unwrap().count() as u64;
        let per_doc = if ch == "email" { 3 } else { 1 };
        assert_eq!(
            files,
            c["rendered"].as_u64().unwrap() * per_doc,
            "{ch} files"
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(summary["totals"], m["totals"]);

    // Email only: a record without an address has nothing to fall back to.
    let only = dir.join("only-email");
    let res = run_layout("welcome-letter", &data, &only, &["--channels", "email"]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let m = manifest(&only);
    assert_eq!(m["totals"]["documents"], 56);
    let e = entries(&m);
    let d = &e[&("C-01022".to_owned(), "email".to_owned())];
    assert_eq!(d["status"], "failed");
    assert!(
        d["error"].as_str().unwrap().contains("no pdf channel"),
        "{d}"
    );
    assert!(!only.join("pdf").exists());

    // A layout without an email channel cannot be asked for one.
    let res = run_layout(
        "welcome-letter@1",
        &data,
        &dir.join("no"),
        &["--channels", "email"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("has no email channel"));
}

/// Copies the repository's layouts, edits a file of welcome-letter@2, runs it
/// on `data` (JSONL lines) and returns the output and the output folder.
fn run_edited(
    name: &str,
    rel: &str,
    edit: impl Fn(&str) -> String,
    records: &[serde_json::Value],
) -> (std::process::Output, std::path::PathBuf) {
    let dir = scratch(name);
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let file = layouts.join("welcome-letter/2").join(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, edit(&text)).unwrap();
    approve(&layouts, "welcome-letter@2");
    let data = dir.join("d.jsonl");
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = dir.join("out");
    (
        run_layout_with(&layouts, "welcome-letter", &data, &out, &[]),
        out,
    )
}

#[test]
fn a_link_from_record_data_must_be_https() {
    // The schema gains a `website` field the email links with {{url}}.
    let (res, out) = run_edited(
        "email-url",
        "email.html.hbs",
        |t| {
            t.replace(
                "<p>{{t \"cards\"}}</p>",
                "{{#if website}}<p><a href=\"{{url website}}\">site</a></p>{{/if}}",
            )
        },
        &[
            customer("U-1", serde_json::json!({"website": "https://ann.example"})),
            customer("U-2", serde_json::json!({"website": "javascript:alert(1)"})),
        ],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let e = entries(&manifest(&out));
    assert_eq!(
        e[&("U-1".to_owned(), "email".to_owned())]["status"],
        "rendered"
    );
    let bad = &e[&("U-2".to_owned(), "email".to_owned())];
    assert_eq!(bad["status"], "failed");
    let why = bad["error"].as_str().unwrap();
    assert!(why.contains("U-2") && why.contains("https"), "{why}");
    assert!(!out.join("email/U-2.eml").exists());
}

#[test]
fn email_checks_stop_a_broken_template_before_anything_is_written() {
    for (name, edit, want) in [
        (
            "lang",
            Box::new(|t: &str| t.replace("lang=\"{{locale}}\"", "lang=\"en\""))
                as Box<dyn Fn(&str) -> String>,
            "does not match the record's locale",
        ),
        (
            "alt",
            Box::new(|t: &str| t.replace("<h1>", "<img src=\"https://x.example/a.png\"><h1>")),
            "alt",
        ),
        (
            "role",
            Box::new(|t: &str| t.replacen("<table role=\"presentation\"", "<table", 1)),
            "role",
        ),
        (
            "http",
            Box::new(|t: &str| {
                t.replace(
                    "https://northwind.example/login",
                    "http://northwind.example/login",
                )
            }),
            "https",
        ),
        (
            "placeholder",
            Box::new(|t: &str| t.replace("{{t \"cards\"}}", "\\{{cards}}")),
            "unresolved placeholder",
        ),
        (
            "typo",
            Box::new(|t: &str| t.replace("{{customer_id}}", "{{custmer_id}}")),
            "custmer_id",
        ),
        (
            "style",
            Box::new(|t: &str| t.replace("p { margin", "p { color: {{colour}}; margin")),
            "<style>",
        ),
    ] {
        let (res, out) = run_edited(
            &format!("check-{name}"),
            "email.html.hbs",
            edit,
            &[customer("A-1", serde_json::json!({}))],
        );
        assert_eq!(res.status.code(), Some(2), "{name}: {}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains("welcome-letter@2") && err.contains(want),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}: nothing may be written");
    }
}
