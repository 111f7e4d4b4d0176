//! The letter by email: a layout attaches the rendered PDF letter to the
//! email (multipart/mixed, reproducible, within a size limit, recorded in
//! the manifest with its hash and linked to the letter entry), optionally
//! protected with AES-256 by a password from the record that is never
//! written anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::common::*;

const AS_OF: &str = "2026-11-28";

/// A scratch folder with a copy of the layouts in which `welcome-letter@4`
/// has `settings` added to its `email:` section and `field` (if any) added
/// to its fields, approved again.
fn layouts_with(name: &str, settings: &str, field: Option<&str>) -> PathBuf {
    let dir = scratch(name);
    copy_tree(&root().join("layouts"), &dir.join("layouts"));
    let yaml = dir.join("layouts/welcome-letter/4/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let mut text = text.replacen("email:\n", &format!("email:\n{settings}"), 1);
    if let Some(field) = field {
        text = text.replacen("fields:\n", &format!("fields:\n{field}\n"), 1);
    }
    std::fs::write(&yaml, text).unwrap();
    approve_on(&dir.join("layouts"), "welcome-letter@4", AS_OF);
    dir
}

/// Runs the edited `welcome-letter@4` of `dir` on `records` with
/// `channels` into `dir/out`.
fn run_on(
    dir: &Path,
    records: &[serde_json::Value],
    channels: &str,
) -> (std::process::Output, PathBuf) {
    let (out, data) = (dir.join("out"), dir.join("data.jsonl"));
    write_jsonl(&data, records);
    (run(dir, &data, &out, channels), out)
}

/// Runs the edited `welcome-letter@4` of `dir` on `data` into `out`.
fn run(dir: &Path, data: &Path, out: &Path, channels: &str) -> std::process::Output {
    let extra = ["--as-of", AS_OF, "--channels", channels];
    run_layout_with(&dir.join("layouts"), "welcome-letter@4", data, out, &extra)
}

/// The attachments of an `.eml`: (file name, content type, bytes), and
/// whether the message is multipart/mixed around a multipart/alternative.
fn attachments(eml: &Path) -> (bool, Vec<(String, String, Vec<u8>)>) {
    let raw = std::fs::read(eml).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    let ct = msg.content_type().unwrap();
    let mixed = ct.ctype() == "multipart" && ct.subtype() == Some("mixed");
    let alternative = msg.parts.iter().any(|p| {
        p.content_type()
            .is_some_and(|c| c.ctype() == "multipart" && c.subtype() == Some("alternative"))
    });
    let found = msg
        .attachments()
        .map(|a| {
            let ct = a.content_type().unwrap();
            let bytes = match &a.body {
                PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
                other => panic!("an attachment of binary content, not {other:?}"),
            };
            (
                a.attachment_name().unwrap().to_owned(),
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")),
                bytes,
            )
        })
        .collect();
    (mixed && alternative, found)
}

#[test]
fn the_letter_goes_with_the_email_and_the_manifest_links_them() {
    let dir = layouts_with(
        "attach",
        "  attach: letter\n  attachment_name: 'Welcome letter {{customer_id}}.pdf'\n",
        None,
    );
    let data = root().join("fixtures/customers.csv");
    let mut runs = Vec::new();
    for name in ["a", "b"] {
        let out = dir.join(name);
        let res = run(&dir, &data, &out, "pdf,email");
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        runs.push(out);
    }
    let docs = entries(&manifest(&runs[0]));
    let mut both = 0;
    for ((id, channel), doc) in &docs {
        if channel != "email" || doc["status"] != "rendered" {
            continue;
        }
        let eml = runs[0].join(doc["path"].as_str().unwrap());
        let (mixed, found) = attachments(&eml);
        assert!(mixed, "{id}: multipart/mixed around the alternative part");
        assert_eq!(found.len(), 1, "{id}");
        let (name, ct, bytes) = &found[0];
        assert_eq!(name, &format!("Welcome letter {id}.pdf"));
        assert_eq!(ct, "application/pdf");
        let a = &doc["attachment"];
        assert_eq!(a["name"], name.as_str());
        assert_eq!(
            a["sha256"],
            sha256_bytes(bytes),
            "{id}: the manifest's hash"
        );
        assert_eq!(a["bytes"], bytes.len());
        assert_eq!(a["encrypted"], false);
        let letter = &docs[&(id.clone(), "pdf".into())];
        if letter["status"] == "rendered" {
            both += 1;
            assert_eq!(
                a["letter"], letter["path"],
                "{id}: linked to the letter entry"
            );
            assert_eq!(
                sha256_bytes(bytes),
                letter["sha256"],
                "{id}: the letter itself"
            );
        } else {
            assert!(a.get("letter").is_none(), "{id}: no letter entry to link");
            let pdf = dir.join(format!("{id}-attached.pdf"));
            std::fs::write(&pdf, bytes).unwrap();
            assert!(pdfinfo(&pdf).contains("Pages:"), "{id}: a PDF");
        }
        // Byte for byte the same in a second run.
        let again = runs[1].join(doc["path"].as_str().unwrap());
        assert_eq!(sha256_file(&eml), sha256_file(&again), "{id}: reproducible");
    }
    assert!(both > 10, "customers with a letter and an email: {both}");
    let verify = ["verify", runs[0].to_str().unwrap(), "--rerender", "5"];
    let res = letterpress_with_layouts(&dir.join("layouts"), &verify);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn an_email_over_the_size_limit_fails() {
    // A limit the layout's sample email stays under (about 37.5 KB), but not
    // an email whose letter embeds a Japanese font for the customer's name.
    let dir = layouts_with(
        "attach-size",
        "  attach: letter\n  max_bytes: 39500\n",
        None,
    );
    let name = serde_json::json!({"first_name": "太郎", "last_name": "山田",
        "address": {"line1": "千代田区丸の内一丁目九番二号 東京駅前ビル", "postcode": "100-0005", "city": "東京都"}});
    let records = [
        customer("M-1", name),
        customer("M-2", serde_json::json!({})),
    ];
    let (res, out) = run_on(&dir, &records, "email");
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let docs = entries(&manifest(&out));
    assert_eq!(docs[&("M-2".into(), "email".into())]["status"], "rendered");
    let doc = &docs[&("M-1".into(), "email".into())];
    assert_eq!(doc["status"], "failed");
    let why = doc["error"].as_str().unwrap();
    assert!(
        why.contains("with its attachment") && why.contains("email.max_bytes"),
        "{why}"
    );
}

#[test]
fn the_attached_letter_opens_with_the_customers_password_only() {
    let dir = layouts_with(
        "attach-encrypt",
        "  attach: letter\n  encrypt: {password_field: date_of_birth}\n",
        Some("  - {name: date_of_birth, type: date, description: \"Opens the attached letter\"}"),
    );
    let dob = "1979-03-14";
    // E-3's date of birth is not a date: its reason must not show it.
    let wrong = "1979-02-30";
    let records = [
        customer(
            "E-1",
            serde_json::json!({"date_of_birth": dob, "last_name": "Okonkwo"}),
        ),
        customer("E-2", serde_json::json!({})),
        customer("E-3", serde_json::json!({"date_of_birth": wrong})),
    ];
    let (res, out) = run_on(&dir, &records, "pdf,email");
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let docs = entries(&manifest(&out));
    let doc = &docs[&("E-1".into(), "email".into())];
    assert_eq!(doc["attachment"]["encrypted"], true);
    let (_, found) = attachments(&out.join(doc["path"].as_str().unwrap()));
    let pdf = dir.join("attached.pdf");
    std::fs::write(&pdf, &found[0].2).unwrap();

    // AES-256, revision 6, and it needs the password.
    let show = Command::new("qpdf")
        .args(["--show-encryption", &format!("--password={dob}")])
        .arg(&pdf)
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("R = 6") && show.contains("file encryption method: AESv3"),
        "{show}"
    );
    assert!(!show.contains("RC4"), "{show}");
    let without = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(!without.status.success(), "no text without the password");
    let with = Command::new("pdftotext")
        .args(["-upw", dob])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(with.status.success());
    assert!(String::from_utf8_lossy(&with.stdout).contains("Okonkwo"));
    let check = Command::new("qpdf")
        .args(["--check", &format!("--password={dob}")])
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // A customer without the field gets no unprotected letter.
    let e2 = &docs[&("E-2".into(), "email".into())];
    assert_eq!(e2["status"], "failed");
    let why = e2["error"].as_str().unwrap();
    assert!(why.contains("field `date_of_birth` is empty"), "{why}");

    // A secret field's invalid value: the reason names the field and rule.
    let e3 = &docs[&("E-3".into(), "email".into())];
    let why = e3["error"].as_str().unwrap();
    assert!(
        why.contains(
            "field `date_of_birth`: not a valid date (the value of a secret field is never shown)"
        ),
        "{why}"
    );

    // The password is nowhere in the run: not in the manifest, journal,
    // report, state or the email itself (nor on stderr), and neither is the
    // invalid one.
    for secret in [dob, wrong] {
        assert!(!String::from_utf8_lossy(&res.stderr).contains(secret));
        for entry in walkdir::WalkDir::new(&out) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() && entry.path().extension().is_none_or(|e| e != "pdf") {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the password {secret} is in {}",
                    entry.path().display()
                );
            }
        }
    }

    // `layouts check` warns that a date of birth is a weak password.
    let res = letterpress_with_layouts(&dir.join("layouts"), &["layouts", "check"]);
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(
        said.contains("warning: welcome-letter@")
            && said.contains("password is the date field `date_of_birth`"),
        "{said}"
    );
}
