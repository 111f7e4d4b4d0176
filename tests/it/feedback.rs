//! The contact history between runs: what `send` records, and bounces and
//! complaints imported from real formats (delivery status notifications
//! made with Python's `email` package, an mbox, an email service's CSV
//! export), into a real SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use crate::send::{rendered_run, send, Sink};

/// Writes a delivery status notification for `original` (an `.eml` we
/// sent), as an MTA reports a failure to deliver it to `recipient` with
/// `status` (e.g. `5.1.1`) and `reply`, using Python's `email` package.
fn dsn(original: &Path, recipient: &str, status: &str, reply: &str, out: &Path, id: &str) {
    let script = r#"
import sys
from email import message_from_bytes, policy
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
original, recipient, status, reply, out, msgid = sys.argv[1:]
orig = message_from_bytes(open(original, "rb").read(), policy=policy.compat32)
report = MIMEMultipart("report", report_type="delivery-status")
report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
report["To"] = orig["From"]
report["Subject"] = "Undelivered Mail Returned to Sender"
report["Date"] = formatdate(usegmt=True)
report["Message-ID"] = "<%s@mx.example.net>" % msgid
report.attach(MIMEText("I'm sorry to have to inform you that your message could not be delivered.\n"))
# message/delivery-status: a block per message, then one per recipient,
# each a set of header fields (RFC 3464), as Python's email models it.
status_part = MIMEBase("message", "delivery-status")
per_message, per_recipient = Message(), Message()
per_message["Reporting-MTA"] = "dns; mx.example.net"
per_message["Arrival-Date"] = formatdate(usegmt=True)
per_recipient["Final-Recipient"] = "rfc822; " + recipient
per_recipient["Action"] = "failed" if status.startswith("5") else "delayed"
per_recipient["Status"] = status
per_recipient["Diagnostic-Code"] = "smtp; " + reply
status_part.set_payload([per_message, per_recipient])
report.attach(status_part)
headers = MIMEBase("text", "rfc822-headers")
headers.set_payload("".join("%s: %s\n" % (k, v) for k, v in orig.items()))
report.attach(headers)
open(out, "wb").write(report.as_bytes())
"#;
    let res = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(original)
        .args([recipient, status, reply])
        .arg(out)
        .arg(id)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// An email of a run: record id, Message-ID, recipient, `.eml` path.
type Sent = (String, String, String, PathBuf);

/// A sent run whose send was recorded in `dir/contacts.db`: the run folder,
/// the database, its emails.
fn sent(dir: &Path) -> (PathBuf, PathBuf, Vec<Sent>) {
    let (run, _) = rendered_run(dir);
    let db = send_recorded(dir, &run);
    let emails = manifest(&run)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "email" && d["status"] == "rendered")
        .map(|d| {
            (
                d["record_id"].as_str().unwrap().to_owned(),
                d["message_id"].as_str().unwrap().to_owned(),
                d["to"].as_str().unwrap().to_owned(),
                run.join(d["path"].as_str().unwrap()),
            )
        })
        .collect();
    (run, db, emails)
}

fn feedback(args: &[&str]) -> std::process::Output {
    let mut all = vec!["feedback"];
    all.extend_from_slice(args);
    letterpress(&all)
}

/// `feedback import --json` of one file.
fn import_json(db: &str, file: &Path) -> std::process::Output {
    feedback(&["import", "--contacts", db, "--json", file.to_str().unwrap()])
}

/// The summary of `feedback import --json` of one file, which exits `code`.
fn imported(db: &str, file: &Path, code: i32) -> serde_json::Value {
    let res = import_json(db, file);
    assert_eq!(res.status.code(), Some(code), "{}", describe(&res));
    serde_json::from_slice(&res.stdout).unwrap()
}

fn events(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn bounces_and_complaints_are_imported_once_and_matched_to_customers() {
    let dir = scratch("feedback");
    let (_, db, emails) = sent(&dir);
    let db_arg = db.to_str().unwrap();
    assert_eq!(
        events(&db, "SELECT count(*) FROM events WHERE kind = 'accepted'"),
        emails.len() as i64
    );

    // A hard bounce as one .eml; a soft bounce and a report about a message
    // that is not ours in an mbox; a complaint and an unknown address in an
    // email service's export.
    let (hard, soft, complaint) = (&emails[0], &emails[1], &emails[2]);
    let hard_eml = dir.join("bounce-1.eml");
    dsn(
        &hard.3,
        &hard.2,
        "5.1.1",
        "550 5.1.1 <x>: Recipient address rejected: User unknown",
        &hard_eml,
        "b1",
    );
    let (soft_eml, stranger_eml) = (dir.join("b2.eml"), dir.join("b3.eml"));
    dsn(
        &soft.3,
        &soft.2,
        "4.2.2",
        "452 4.2.2 Mailbox full",
        &soft_eml,
        "b2",
    );
    let stranger = dir.join("stranger.eml");
    std::fs::write(&stranger, b"From: a@b.example\r\nTo: someone@else.example\r\nMessage-ID: <not-ours@b.example>\r\nSubject: x\r\n\r\nhello\r\n").unwrap();
    dsn(
        &stranger,
        "someone@else.example",
        "5.1.1",
        "550 no such user",
        &stranger_eml,
        "b3",
    );
    let mbox = dir.join("bounces.mbox");
    let mut text = Vec::new();
    for f in [&soft_eml, &stranger_eml] {
        text.extend_from_slice(b"From MAILER-DAEMON Sat Nov 28 10:00:00 2026\n");
        text.extend_from_slice(
            &std::fs::read(f)
                .unwrap()
                .iter()
                .copied()
                .filter(|&b| b != b'\r')
                .collect::<Vec<_>>(),
        );
        text.extend_from_slice(b"\n");
    }
    std::fs::write(&mbox, text).unwrap();
    let csv = dir.join("esp-events.csv");
    std::fs::write(
        &csv,
        format!(
            "message_id,email,event,time,reason\n<{}>,{},complaint,2026-11-28T09:00:00Z,user marked as spam\n,nobody@unknown.example,bounce,2026-11-28T09:01:00Z,550 5.1.1 unknown\n",
            complaint.1, complaint.2
        ),
    )
    .unwrap();

    let files = [
        hard_eml.to_str().unwrap(),
        mbox.to_str().unwrap(),
        csv.to_str().unwrap(),
    ];
    let mut args = vec!["import", "--contacts", db_arg, "--json"];
    args.extend_from_slice(&files);
    let res = feedback(&args);
    assert_eq!(
        res.status.code(),
        Some(1),
        "lines need a person: {}",
        describe(&res)
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 3, "{report}");
    let unmatched = report["unmatched"].to_string();
    assert!(
        unmatched.contains("not-ours@b.example") && unmatched.contains("bounces.mbox#2"),
        "{unmatched}"
    );
    assert!(
        unmatched.contains("nobody@unknown.example") && unmatched.contains("esp-events.csv:3"),
        "{unmatched}"
    );
    let kind_of = |id: &str| -> String {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT kind FROM events WHERE customer_id = ?1 AND kind NOT IN ('accepted') ORDER BY at",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(kind_of(&hard.0), "hard_bounce");
    assert_eq!(kind_of(&soft.0), "soft_bounce");
    assert_eq!(kind_of(&complaint.0), "complaint");

    // The same files again add nothing.
    let res = feedback(&args);
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 0);
    assert_eq!(report["already"], 3);

    // A customer's history.
    let res = feedback(&["show", &hard.0, "--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let shown = String::from_utf8_lossy(&res.stdout);
    assert!(
        shown.contains("accepted") && shown.contains("hard_bounce") && shown.contains("5.1.1"),
        "{shown}"
    );

    // The next run routes with the history: exactly the hard-bounced and
    // the complaining customers lose their email, saying why; one soft
    // bounce changes nothing.
    let data = root().join("fixtures/customers.csv");
    let (plain, with) = (dir.join("next-plain"), dir.join("next-with"));
    let res = run_layout("welcome-letter", &data, &plain, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let res = run_layout("welcome-letter", &data, &with, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let (a, b) = (entries(&manifest(&plain)), entries(&manifest(&with)));
    let changed: Vec<&(String, String)> = a
        .keys()
        .filter(|k| a[*k]["status"] != b[*k]["status"] || a[*k]["note"] != b[*k]["note"])
        .collect();
    let email_of = |id: &str| &b[&(id.to_owned(), "email".to_owned())];
    assert_eq!(email_of(&hard.0)["status"], "routed_elsewhere");
    let why = email_of(&hard.0)["error"].as_str().unwrap();
    assert!(
        why.contains("hard bounce") && why.contains("5.1.1") && why.contains("bounce-1.eml"),
        "{why}"
    );
    assert_eq!(email_of(&complaint.0)["status"], "suppressed");
    assert!(email_of(&complaint.0)["error"]
        .as_str()
        .unwrap()
        .contains("complained"));
    assert_eq!(email_of(&soft.0)["status"], "rendered");
    for key in &changed {
        assert!(
            key.0 == hard.0 || key.0 == complaint.0,
            "{key:?} changed: {} -> {}",
            a[*key],
            b[*key]
        );
    }
    for id in [&hard.0, &complaint.0] {
        let letter = &b[&(id.clone(), "pdf".to_owned())];
        assert_eq!(
            letter["status"], "rendered",
            "{id} gets the letter: {letter}"
        );
    }
    assert_eq!(manifest(&with)["options"]["contacts"], db_arg);
    let report = std::fs::read_to_string(with.join("report.html")).unwrap();
    assert!(report.contains("Routed by the contact history"), "{report}");
    assert!(report.contains("<td>hard bounce: letter instead of email</td><td class=\"n\">1</td>"));
    assert!(report.contains("<td>complaint: email suppressed</td><td class=\"n\">1</td>"));
    // validate says the same before a run.
    let res = letterpress(&[
        "validate",
        "--layout",
        "welcome-letter",
        "--data",
        data.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
        "--contacts",
        db_arg,
        "--json",
    ]);
    let said = String::from_utf8_lossy(&res.stdout);
    assert!(
        said.contains("hard bounce") && said.contains("complained"),
        "{}",
        describe(&res)
    );
    // Old events can be purged.
    let res = feedback(&["purge", "--before", "2100-01-01", "--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let total = events(&db, "SELECT count(*) FROM events");
    assert!(String::from_utf8_lossy(&res.stderr).contains("events before 2100-01-01 deleted"));
    assert_eq!(total, 0);
}

#[test]
fn imports_at_once_lose_nothing_and_a_killed_one_leaves_the_database_whole() {
    let dir = scratch("feedback-concurrent");
    let (_, db, emails) = sent(&dir);
    let db_arg = db.to_str().unwrap();
    // Two exports of 20,000 events each, about our customers' addresses.
    let export = |name: &str, event: &str| {
        let path = dir.join(name);
        let mut text = String::from("email,event,time,reason\n");
        for i in 0..20_000 {
            let e = &emails[i % emails.len()];
            // A second apart from the line before, from 2026-11-01.
            text.push_str(&format!(
                "{},{event},2026-11-{:02}T{:02}:{:02}:{:02}Z,{name}\n",
                e.2,
                1 + i / 86_400,
                i / 3600 % 24,
                i / 60 % 60,
                i % 60
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    };
    let (a, b) = (export("a.csv", "soft_bounce"), export("b.csv", "complaint"));
    let before = events(&db, "SELECT count(*) FROM events");
    let spawn = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_letterpress"))
            .args(["feedback", "import", "--contacts", db_arg])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    for p in [pa, pb] {
        let res = p.wait_with_output().unwrap();
        assert_eq!(
            res.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
    let after = events(&db, "SELECT count(*) FROM events");
    let distinct_a = events(
        &db,
        "SELECT count(*) FROM events WHERE source LIKE '%a.csv%'",
    );
    let distinct_b = events(
        &db,
        "SELECT count(*) FROM events WHERE source LIKE '%b.csv%'",
    );
    assert_eq!(after - before, distinct_a + distinct_b);
    assert!(
        distinct_a > 10_000 && distinct_b > 10_000,
        "{distinct_a} {distinct_b}"
    );

    // kill -9 in the middle of an import: all of it or none of it.
    let c = export("c.csv", "hard_bounce");
    let before = events(&db, "SELECT count(*) FROM events");
    let mut child = spawn(&c);
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let added = events(&db, "SELECT count(*) FROM events") - before;
    let whole = events(
        &db,
        "SELECT count(*) FROM events WHERE source LIKE '%c.csv%'",
    );
    assert!(
        added == 0 || added == whole && whole > 10_000,
        "a partial import: {added}"
    );
    // And the import done again completes it.
    let res = spawn(&c).wait_with_output().unwrap();
    assert_eq!(res.status.code(), Some(0));
    assert!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE source LIKE '%c.csv%'"
        ) > 10_000
    );
}

#[test]
fn a_resumed_run_routes_by_the_history_its_first_attempt_read() {
    let dir = scratch("feedback-resume");
    let (_, db, emails) = sent(&dir);
    let db_arg = db.to_str().unwrap();
    let (first, later) = (&emails[0], &emails[3]);
    let bounce = |e: &Sent, name: &str| {
        let path = dir.join(format!("{name}.eml"));
        dsn(&e.3, &e.2, "5.1.1", "550 5.1.1 user unknown", &path, name);
        let res = feedback(&["import", "--contacts", db_arg, path.to_str().unwrap()]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    };
    bounce(first, "first");
    let data = root().join("fixtures/customers.csv");
    let clean = dir.join("clean");
    let res = run_layout("welcome-letter", &data, &clean, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));

    // Killed as soon as it started writing; a bounce imported meanwhile;
    // the resumed run still routes as the first attempt read the history.
    let out = dir.join("killed");
    let args = run_cmd(
        "welcome-letter",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        &["--as-of", "2026-11-22", "--contacts", db_arg],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_letterpress"))
        .current_dir(root())
        .env("LETTERPRESS_LAYOUTS", root().join("layouts"))
        .env("LETTERPRESS_ADDRESS_KEY_FILE", address_key())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !out.join("run-state.json").exists() && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    bounce(later, "later");
    let mut resume = args.clone();
    resume.push("--resume");
    let res = letterpress(&resume);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        std::fs::read(out.join("documents.jsonl")).unwrap()
            == std::fs::read(clean.join("documents.jsonl")).unwrap(),
        "the same routes as the uninterrupted run"
    );
    // A new run sees the later bounce.
    let next = dir.join("next");
    let res = run_layout("welcome-letter", &data, &next, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let d = entries(&manifest(&next));
    assert_eq!(
        d[&(later.0.clone(), "email".to_owned())]["status"],
        "routed_elsewhere"
    );
}

#[test]
fn a_returned_letter_holds_that_address_until_it_changes() {
    let dir = scratch("feedback-returned");
    let db = dir.join("contacts.db");
    let db_arg = db.to_str().unwrap();
    let data = root().join("fixtures/customers.csv");
    let first = dir.join("november");
    let res = run_layout(
        "welcome-letter",
        &data,
        &first,
        &["--print", "--contacts", db_arg],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&first);
    let run_id = m["run_id"].as_str().unwrap().to_owned();
    let docs = entries(&m);
    let piece = |id: &str| {
        docs[&(id.to_owned(), "pdf".to_owned())]["piece"]["sequence"]
            .as_u64()
            .unwrap()
    };
    // C-01015 prefers print and has an email address; C-01022 has none.
    let (with_email, without) = ("C-01015", "C-01022");
    let scans = dir.join("returned.txt");
    std::fs::write(
        &scans,
        format!(
            "# returned mail, scanned 2026-12-01\n{run_id}|{}|1/1\n{run_id}/{}\n00040123456200800001987654321\nnot a code\n",
            piece(with_email),
            piece(without)
        ),
    )
    .unwrap();
    let res = import_json(db_arg, &scans);
    assert_eq!(
        res.status.code(),
        Some(1),
        "two lines need a person: {}",
        describe(&res)
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 2, "{report}");
    let unmatched = report["unmatched"].to_string();
    assert!(
        unmatched.contains("returned.txt:4") && unmatched.contains("postal barcode"),
        "{unmatched}"
    );
    let unusable = report["unusable"].to_string();
    assert!(unusable.contains("returned.txt:5"), "{unusable}");

    // The next run: no letter to those addresses; email where there is one.
    let next = dir.join("december");
    let res = run_layout("welcome-letter", &data, &next, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let d = entries(&manifest(&next));
    let doc = |id: &str, c: &str| &d[&(id.to_owned(), c.to_owned())];
    assert_eq!(doc(with_email, "pdf")["status"], "routed_elsewhere");
    assert!(doc(with_email, "pdf")["error"]
        .as_str()
        .unwrap()
        .contains(&format!("run {run_id}, piece {}", piece(with_email))));
    assert_eq!(doc(with_email, "email")["status"], "rendered");
    assert_eq!(doc(without, "pdf")["status"], "held");
    assert!(doc(without, "pdf")["error"]
        .as_str()
        .unwrap()
        .starts_with("a letter to this address came back undeliverable"));
    let totals = &manifest(&next)["totals"];
    assert_eq!(totals["held"], 1, "{totals}");
    assert_eq!(totals["channels"]["pdf"]["held"], 1, "{totals}");
    assert_eq!(
        totals["suppressed"], 0,
        "a hold is not a suppression: {totals}"
    );
    let untouched = d
        .iter()
        .filter(|(k, v)| k.1 == "pdf" && v["status"] == "rendered")
        .count();
    assert_eq!(
        untouched,
        docs.iter()
            .filter(|(k, v)| k.1 == "pdf" && v["status"] == "rendered")
            .count()
            - 2
    );

    let report = std::fs::read_to_string(next.join("report.html")).unwrap();
    assert!(report.contains("<td>returned letter: letter held</td><td class=\"n\">1</td>"));
    assert!(report
        .contains("<td>returned letter: email instead of the letter</td><td class=\"n\">1</td>"));
    assert!(
        report.contains("Held: letters to an address whose mail came back"),
        "the report lists held letters apart"
    );
    let verified = letterpress(&["verify", next.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));

    // A new address in the input clears the hold.
    let moved = dir.join("moved.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    let line = text.lines().find(|l| l.starts_with(without)).unwrap();
    let fields: Vec<&str> = line.split(',').collect();
    let changed = line.replacen(fields[4], "Neue Straße 1", 1);
    std::fs::write(&moved, text.replacen(line, &changed, 1)).unwrap();
    let after = dir.join("after-move");
    let res = run_layout("welcome-letter", &moved, &after, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        entries(&manifest(&after))[&(without.to_owned(), "pdf".to_owned())]["status"],
        "rendered"
    );

    // So does a correction at the desk, for the same address; and a
    // customer system's export, for the other customer's.
    let res = feedback(&[
        "correct",
        without,
        "--channel",
        "post",
        "--note",
        "address confirmed by phone",
        "--contacts",
        db_arg,
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let corrections = dir.join("corrections.csv");
    std::fs::write(
        &corrections,
        format!("customer_id,event,channel,time,reason\n{with_email},address_corrected,post,,new flat number\nC-09999,address_corrected,,2026-12-02T08:00:00Z,unknown customer\n"),
    )
    .unwrap();
    let res = import_json(db_arg, &corrections);
    assert_eq!(
        res.status.code(),
        Some(1),
        "one customer has nothing to correct: {}",
        describe(&res)
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 1, "{report}");
    assert!(
        report["unmatched"]
            .to_string()
            .contains("corrections.csv:3"),
        "{report}"
    );
    let res = import_json(db_arg, &corrections);
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(
        report["recorded"], 0,
        "imported again, nothing new: {report}"
    );
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'address_corrected' AND channel = 'post'"
        ),
        2
    );
    let corrected = dir.join("corrected");
    let res = run_layout("welcome-letter", &data, &corrected, &["--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let d = entries(&manifest(&corrected));
    for id in [with_email, without] {
        assert_eq!(
            d[&(id.to_owned(), "pdf".to_owned())]["status"],
            "rendered",
            "{id}"
        );
    }
    assert_eq!(manifest(&corrected)["totals"]["held"], 0);
}

#[test]
fn a_return_scanned_by_its_intelligent_mail_barcode_is_matched() {
    let dir = scratch("feedback-imb");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("welcome-letter/3/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        text.replace(
            "  window: din-5008-b\n",
            "  window: din-5008-b\n  imb: {barcode_id: \"00\", service_type: \"270\", mailer_id: \"123456\", serial_offset: 1000}\n",
        ),
    )
    .unwrap();
    approve(&layouts, "welcome-letter@3");
    let db = dir.join("contacts.db");
    let db_arg = db.to_str().unwrap();
    let data = dir.join("us.jsonl");
    let us = |id: &str, zip: &str| {
        let mut c = customer(id, serde_json::json!({"contact_preference": "print"}));
        c["address"] = serde_json::json!({"line1": "1 Main St", "postcode": zip, "city": "Springfield", "country": "US"});
        c
    };
    write_jsonl(&data, &[us("U-1", "12345"), us("U-2", "20260-1234")]);
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["--contacts", db_arg];
        args.extend_from_slice(extra);
        let res = run_layout_with(&layouts, "welcome-letter@3", &data, out, &args);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        entries(&manifest(out))
    };
    let docs = run(&dir.join("first"), &["--print"]);
    let barcode = docs[&("U-2".to_owned(), "pdf".to_owned())]["piece"]["barcode"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(barcode.starts_with("00270123456"), "{barcode}");
    // As a scanner reads it: the digits of tracking and routing code.
    let scans = dir.join("imb-returns.txt");
    std::fs::write(&scans, barcode.replace('-', "") + "\n").unwrap();
    let res = import_json(db_arg, &scans);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 1, "{report}");
    let d = run(&dir.join("next"), &[]);
    assert_eq!(
        d[&("U-1".to_owned(), "pdf".to_owned())]["status"],
        "rendered"
    );
    let held = &d[&("U-2".to_owned(), "pdf".to_owned())];
    assert_eq!(
        held["status"], "routed_elsewhere",
        "U-2 has an email address: {held}"
    );
    assert!(held["error"]
        .as_str()
        .unwrap()
        .contains("came back undeliverable"));
}

#[test]
fn a_return_scanned_by_its_mailmark_4_state_or_2d_is_matched() {
    let dir = scratch("feedback-mailmark");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("welcome-letter/3/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        text.replace(
            "  window: din-5008-b\n",
            "  window: din-5008-b\n  mailmark: {barcode: L, class: \"2\", supply_chain_id: \"123456\", item_id_offset: 7000}\n",
        ),
    )
    .unwrap();
    approve(&layouts, "welcome-letter@3");
    let db = dir.join("contacts.db");
    let db_arg = db.to_str().unwrap();
    let data = dir.join("uk.jsonl");
    let print = serde_json::json!({"contact_preference": "print"});
    let mut records: Vec<_> = (1..=3)
        .map(|i| customer(&format!("K-{i}"), print.clone()))
        .collect();
    records[1]["address"]["postcode"] = "EC1A 1BB".into();
    records[2]["address"]["postcode"] = "M1 1AE".into();
    write_jsonl(&data, &records);
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["--contacts", db_arg];
        args.extend_from_slice(extra);
        let res = run_layout_with(&layouts, "welcome-letter@3", &data, out, &args);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        entries(&manifest(out))
    };
    let docs = run(&dir.join("first"), &["--print"]);
    let content = |id: &str| {
        docs[&(id.to_owned(), "pdf".to_owned())]["piece"]["barcode"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (k2, k3) = (content("K-2"), content("K-3"));
    assert_eq!(k2.len(), 26, "{k2}");
    assert!(
        k2.starts_with("112123456000070") && k2.ends_with("EC1A1BB9Z"),
        "{k2}"
    );
    // K-2 scanned by its 4-state barcode; K-3 by a 2D code as a scanner
    // reads it (its supply chain id in 7 digits, its item id).
    let two_d = format!("JGB 012{:0>7}{}{}0       ", "123456", &k3[9..17], &k3[17..]);
    let scans = dir.join("mailmark-returns.txt");
    std::fs::write(
        &scans,
        format!("{k2}\n{two_d:<45}\nJGB 0120000000999999999XY11     0             \n"),
    )
    .unwrap();
    let res = import_json(db_arg, &scans);
    assert_eq!(
        res.status.code(),
        Some(1),
        "the third matches nothing: {}",
        describe(&res)
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["recorded"], 2, "{report}");
    assert!(
        report["unmatched"]
            .to_string()
            .contains("mailmark-returns.txt:3"),
        "{report}"
    );
    let d = run(&dir.join("next"), &[]);
    assert_eq!(
        d[&("K-1".to_owned(), "pdf".to_owned())]["status"],
        "rendered"
    );
    for id in ["K-2", "K-3"] {
        let held = &d[&(id.to_owned(), "pdf".to_owned())];
        assert_eq!(held["status"], "routed_elsewhere", "{id}: {held}");
    }
}

/// A run of `records` sent through a sink and recorded in `dir/contacts.db`.
fn sent_records(dir: &Path, records: &[serde_json::Value]) -> (PathBuf, PathBuf) {
    let data = dir.join("d.jsonl");
    write_jsonl(&data, records);
    let run = dir.join("run");
    let res = run_layout("welcome-letter", &data, &run, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let db = send_recorded(dir, &run);
    (run, db)
}

/// Sends the run in `run` through a sink, recording it in
/// `dir/contacts.db`, which it returns.
fn send_recorded(dir: &Path, run: &Path) -> PathBuf {
    let sink = Sink::start(dir, "plain");
    let db = dir.join("contacts.db");
    let res = send(
        run,
        &sink.url(),
        &["--rate", "500/s", "--contacts", db.to_str().unwrap()],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    db
}

/// The email entry of each record of a run with the contact history, as
/// `validate` would route it now: record id → status.
fn email_routes(
    dir: &Path,
    name: &str,
    records: &[serde_json::Value],
    db: &Path,
) -> Vec<(String, String)> {
    let data = dir.join(format!("{name}.jsonl"));
    write_jsonl(&data, records);
    let out = dir.join(name);
    let res = run_layout(
        "welcome-letter",
        &data,
        &out,
        &["--contacts", db.to_str().unwrap()],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let mut routes: Vec<(String, String)> = manifest(&out)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "email")
        .map(|d| {
            (
                d["record_id"].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    routes.sort();
    routes
}

#[test]
fn feedback_matches_only_what_is_ours_and_complaints_cover_the_whole_mailbox() {
    let dir = scratch("feedback-strict");
    let family = "family@example.com";
    let rec = |id: &str, email: &str| customer(id, serde_json::json!({"email": email}));
    let records = vec![
        rec("C-1", family),
        rec("C-2", family),
        rec("C-3", "solo@example.com"),
    ];
    let (run, db) = sent_records(&dir, &records);
    let db_arg = db.to_str().unwrap();
    let eml = |id: &str| {
        let d = &entries(&manifest(&run))[&(id.to_owned(), "email".to_owned())];
        (
            run.join(d["path"].as_str().unwrap()),
            d["message_id"].as_str().unwrap().to_owned(),
        )
    };

    // A bounce of another sender's message to solo@example.com (its
    // Message-ID is not ours): unmatched, not a hard bounce of C-3.
    let (c3, _) = eml("C-3");
    let foreign = dir.join("foreign.eml");
    let text = std::fs::read_to_string(&c3).unwrap();
    let at = text.find("Message-ID: <").unwrap();
    let theirs = format!(
        "{}Message-ID: <newsletter-77@shop.example>{}",
        &text[..at],
        &text[at + text[at..].find('\n').unwrap()..]
    );
    std::fs::write(&foreign, theirs).unwrap();
    let report = dir.join("foreign-dsn.eml");
    dsn(
        &foreign,
        "solo@example.com",
        "5.1.1",
        "550 5.1.1 user unknown",
        &report,
        "f1",
    );
    let summary = imported(db_arg, &report, 1);
    assert_eq!(summary["recorded"], 0, "{summary}");
    assert!(
        summary["unmatched"][0]
            .as_str()
            .unwrap()
            .contains("newsletter-77@shop.example"),
        "{summary}"
    );
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'hard_bounce'"
        ),
        0
    );

    // A complaint about C-1's message: the mailbox complained, so C-2 (and
    // anyone with that address later) is not emailed there either.
    let (_, id1) = eml("C-1");
    let csv = dir.join("complaints.csv");
    std::fs::write(
        &csv,
        format!("message_id,event,time\n{id1},complaint,2026-12-01T10:00:00Z\n"),
    )
    .unwrap();
    let res = import_json(db_arg, &csv);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        events(
            &db,
            "SELECT count(DISTINCT customer_id) FROM events WHERE kind = 'complaint'"
        ),
        2,
        "recorded for both customers at the address"
    );
    let later = vec![
        rec("C-1", family),
        rec("C-2", family),
        rec("C-3", "solo@example.com"),
        rec("C-4", family),
    ];
    let routes = email_routes(&dir, "after-complaint", &later, &db);
    let status = |id: &str| routes.iter().find(|(r, _)| r == id).unwrap().1.clone();
    for id in ["C-1", "C-2", "C-4"] {
        assert_eq!(status(id), "suppressed", "{id}: {routes:?}");
    }
    assert_eq!(status("C-3"), "rendered");

    // An export line without a Message-ID is matched by its address, and
    // said so.
    let csv = dir.join("by-address.csv");
    std::fs::write(&csv, "email,event,time,reason\nsolo@example.com,soft_bounce,2026-12-01T11:00:00Z,451 4.2.2 mailbox full\n").unwrap();
    let summary = imported(db_arg, &csv, 0);
    assert_eq!(summary["recorded"], 1);
    assert!(
        summary["by_address"][0]
            .as_str()
            .unwrap()
            .ends_with("by-address.csv:2: solo@example.com"),
        "{summary}"
    );
}

#[test]
fn export_times_are_parsed_lines_without_a_time_stay_apart_and_cut_files_are_not_taken() {
    let dir = scratch("feedback-times");
    let rec = |id: &str, email: &str| customer(id, serde_json::json!({"email": email}));
    let records = vec![rec("C-1", "one@example.com"), rec("C-2", "two@example.com")];
    let (_, db) = sent_records(&dir, &records);
    let db_arg = db.to_str().unwrap();
    // A time in a form nobody documented stops the import, naming the line.
    let csv = dir.join("odd.csv");
    std::fs::write(&csv, "email,event,time\none@example.com,hard_bounce,Mon 30 Nov 2026 09:30\ntwo@example.com,hard_bounce,last Tuesday\n").unwrap();
    let res = feedback(&["import", "--contacts", db_arg, csv.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr)
            .contains("odd.csv:2: the time `Mon 30 Nov 2026 09:30`"),
        "{}",
        describe(&res)
    );
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'hard_bounce'"
        ),
        0
    );
    // A hard bounce a week before the run's messages were accepted (RFC
    // 2822, with an offset) is older than them: the address works again.
    // Compared as text, "Mon, 30 Nov ..." would sort after "2026-12-..."
    // and keep the address blocked.
    let csv = dir.join("times.csv");
    std::fs::write(
        &csv,
        "email,event,time,reason\none@example.com,hard_bounce,\"Mon, 30 Nov 2026 09:30:00 +0100\",550 user unknown\n",
    )
    .unwrap();
    let res = import_json(db_arg, &csv);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE at = '2026-11-30T08:30:00Z'"
        ),
        1
    );
    let routes = email_routes(&dir, "after-old-bounce", &records, &db);
    assert_eq!(routes[0], ("C-1".into(), "rendered".into()), "{routes:?}");
    // Two soft bounces of one address in an export without times are two
    // events, not one.
    let csv = dir.join("no-time.csv");
    std::fs::write(&csv, "email,event,reason\ntwo@example.com,soft_bounce,452 full\ntwo@example.com,soft_bounce,452 full\n").unwrap();
    let res = import_json(db_arg, &csv);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'soft_bounce'"
        ),
        2
    );
    let res = import_json(db_arg, &csv);
    assert_eq!(
        events(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'soft_bounce'"
        ),
        2,
        "{}",
        describe(&res)
    );
}

#[test]
fn a_cut_mbox_message_a_newer_database_and_terminal_escapes_are_refused() {
    let dir = scratch("feedback-cut");
    let (_, db, emails) = sent(&dir);
    let db_arg = db.to_str().unwrap();
    // An mbox of two reports, copied while the second was being written.
    let mut mbox = Vec::new();
    for (i, e) in emails.iter().take(2).enumerate() {
        let path = dir.join(format!("r{i}.eml"));
        dsn(
            &e.3,
            &e.2,
            "5.1.1",
            "550 5.1.1 user unknown",
            &path,
            &format!("cut{i}"),
        );
        mbox.extend_from_slice(b"From MAILER-DAEMON Tue Dec  1 09:30:00 2026\n");
        mbox.extend(std::fs::read(&path).unwrap());
        mbox.push(b'\n');
    }
    let cut = dir.join("bounces.mbox");
    std::fs::write(&cut, &mbox[..mbox.len() - 300]).unwrap();
    let summary = imported(db_arg, &cut, 1);
    assert_eq!(summary["recorded"], 1, "{summary}");
    assert!(
        summary["unusable"][0]
            .as_str()
            .unwrap()
            .contains("bounces.mbox#2"),
        "{summary}"
    );
    assert!(
        summary["unusable"][0].as_str().unwrap().contains("cut off"),
        "{summary}"
    );

    // Imported text with terminal escapes is shown, not obeyed.
    let csv = dir.join("escapes.csv");
    let nasty = "550 \u{1b}[2J\u{1b}]0;owned\u{7}gone";
    std::fs::write(
        &csv,
        format!(
            "message_id,event,time,reason\n{},hard_bounce,2026-12-01T10:00:00Z,{nasty}\n",
            emails[3].1
        ),
    )
    .unwrap();
    let res = import_json(db_arg, &csv);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let res = feedback(&["show", &emails[3].0, "--contacts", db_arg]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        !res.stdout.contains(&0x1b) && !res.stdout.contains(&0x07),
        "{}",
        describe(&res)
    );
    assert!(
        String::from_utf8_lossy(&res.stdout).contains("550 \\u{1b}[2J"),
        "{}",
        describe(&res)
    );

    // A database of a newer letterpress: refused, and not changed at all.
    let newer = dir.join("newer.db");
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute_batch("CREATE TABLE events (key TEXT); PRAGMA user_version = 9;")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&newer).unwrap();
    let res = import_json(newer.to_str().unwrap(), &csv);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stdout).contains("schema version 9"),
        "{}",
        describe(&res)
    );
    assert_eq!(std::fs::read(&newer).unwrap(), before, "not a byte changed");
    assert!(!dir.join("newer.db-wal").exists());
}
