//! Trust at the edges, round 2, on the real binary: what a command reads
//! back from a run folder (journals, reprint and purge records) may have
//! been edited by someone who wants a retention job to delete other files,
//! or simply by a tired operator; links from record data; two writers at
//! once; personal data kept after a purge.

use std::path::Path;

use crate::common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What an attacker who can write the run folder does after editing the
/// journal: records its new SHA-256 in the manifest and seals the manifest
/// again (the digest's recipe is documented), so that only the path rules
/// stand between the edit and the files it names.
pub fn reseal(out: &Path) {
    let journal = std::fs::read(out.join("documents.jsonl")).unwrap();
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["documents"]["sha256"] = sha256_bytes(&journal).into();
    m["documents"]["bytes"] = journal.len().into();
    let mut copy = m.clone();
    copy.as_object_mut()
        .unwrap()
        .shift_remove("manifest_digest");
    m["manifest_digest"] = sha256_bytes(&serde_json::to_vec(&copy).unwrap()).into();
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn purge(out: &Path) -> std::process::Output {
    letterpress(&[
        "purge",
        out.to_str().unwrap(),
        "--documents",
        "--retention-days",
        "0",
    ])
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    all.sort();
    all
}

#[test]
fn purge_deletes_nothing_outside_the_run_folder_whatever_its_records_say() {
    let dir = scratch("edges-purge-paths");
    let source = render_ok(
        "welcome-letter",
        "fixtures/customers.csv",
        "edges-purge-paths-run",
        &[],
    );
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let fresh = |name: &str| {
        let out = dir.join(name);
        copy_tree(&source, &out);
        out
    };
    let journal_with = |out: &Path, from: &str, to: &str| {
        let path = out.join("documents.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from));
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    let line_of = |out: &Path, what: &str| {
        let text = std::fs::read_to_string(out.join("documents.jsonl")).unwrap();
        text.lines().position(|l| l.contains(what)).unwrap() + 1
    };
    let refused = |out: &Path, want: &[&str]| {
        let before = files_under(out);
        let res = purge(out);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
        for w in want {
            assert!(err.contains(w), "want {w:?} in {err}");
        }
        assert_eq!(files_under(out), before, "nothing deleted in the run");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    };
    // The runs are folders of `dir`, beside the victim.
    let rel = "../victim.txt".to_owned();
    // A journal edited after the run is not the one the manifest sealed.
    let out = fresh("edited");
    journal_with(&out, "\"status\":\"rendered\"", "\"status\":\"failed\"");
    refused(&out, &["documents.jsonl does not match the SHA-256"]);
    // A path that leaves the folder, with the manifest sealed again or
    // not: the path rule names the line.
    for (name, path, sealed) in [
        ("climbs", rel.clone(), false),
        ("climbs-sealed", rel.clone(), true),
        ("absolute-sealed", victim.display().to_string(), true),
    ] {
        let out = fresh(name);
        journal_with(&out, "\"pdf/C-01001.pdf\"", &format!("\"{path}\""));
        if sealed {
            reseal(&out);
        }
        let line = line_of(&out, &path);
        refused(&out, &[&format!("documents.jsonl line {line}:"), "outside"]);
    }
    // A letter swapped for a symbolic link to the victim, and a folder
    // swapped for a link to another folder: never followed.
    let out = fresh("file-link");
    std::fs::remove_file(out.join("pdf/C-01001.pdf")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("pdf/C-01001.pdf")).unwrap();
    refused(&out, &["symbolic link"]);
    let out = fresh("folder-link");
    let elsewhere = dir.join("elsewhere");
    copy_tree(&out.join("email"), &elsewhere);
    std::fs::remove_dir_all(out.join("email")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("email")).unwrap();
    let kept = files_under(&elsewhere);
    refused(&out, &["symbolic link"]);
    assert_eq!(
        files_under(&elsewhere),
        kept,
        "the other folder is untouched"
    );
    // The untouched copy purges.
    let res = purge(&fresh("clean"));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn a_link_from_record_data_follows_one_rule_on_every_channel() {
    let dir = scratch("edges-links");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let v = layouts.join("welcome-letter/4");
    let edit = |file: &str, from: &str, to: &str| {
        let path = v.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    // The template links to the customer's portal, taken from the data; the
    // email writes the same value into an href without the url helper.
    edit(
        "layout.yaml",
        "  - {name: email, type: string,",
        "  - {name: portal, type: string}\n  - {name: email, type: string,",
    );
    edit(
        "letter.typ",
        "#t(\"cards\")",
        "#t(\"cards\") #link(r.portal)[Your portal]",
    );
    edit(
        "email.html.hbs",
        "<p>{{t \"cards\"}}</p>",
        "<p>{{t \"cards\"}} <a href=\"{{portal}}\">Your portal</a></p>",
    );
    let sample = customer(
        "C-0",
        serde_json::json!({"portal": "https://portal.northwind.example"}),
    );
    std::fs::write(v.join("sample.json"), sample.to_string()).unwrap();
    approve(&layouts, "welcome-letter@4");
    let portals = [
        ("C-1", "https://portal.northwind.example/letters"),
        ("C-2", "javascript:alert(document.cookie)"),
        (
            "C-3",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        ),
        ("C-4", "JaVaScRiPt:alert(1)"),
        ("C-5", "http://portal.northwind.example"),
        ("C-6", "file:///etc/passwd"),
    ];
    let records: Vec<serde_json::Value> = portals
        .iter()
        .map(|(id, url)| {
            customer(
                id,
                serde_json::json!({"portal": url, "contact_preference": "both"}),
            )
        })
        .collect();
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &records);
    let out = dir.join("out");
    let res = run_layout_with(
        &layouts,
        "welcome-letter@4",
        &data,
        &out,
        &["--as-of", "2026-11-28", "--channels", "pdf,email,web"],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let e = entries(&manifest(&out));
    for ch in ["pdf", "email", "web"] {
        let ok = &e[&("C-1".to_owned(), ch.to_owned())];
        assert_eq!(ok["status"], "rendered", "{ch}: {ok}");
        for (id, url) in &portals[1..] {
            let d = &e[&(id.to_string(), ch.to_owned())];
            assert_eq!(d["status"], "failed", "{id} {ch}: {d}");
            let why = d["error"].as_str().unwrap();
            assert!(
                why.contains("links may only go to https:, mailto: or tel:"),
                "{id} {ch}: {why}"
            );
            let scheme = url.split(':').next().unwrap();
            assert!(
                why.contains(&format!("uses `{scheme}:`")),
                "{id} {ch}: {why}"
            );
        }
    }
    // The https link is in the letter's link annotation, the web letter's
    // href and the email, as written.
    let pdf = out.join("pdf/C-1.pdf");
    let json = std::process::Command::new("qpdf")
        .args(["--json", "--json-key=qpdf"])
        .arg(&pdf)
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(
        json.contains(&format!("\"/URI\": \"u:{}\"", portals[0].1)),
        "{json}"
    );
    let web = std::fs::read_to_string(out.join("web/C-1.html")).unwrap();
    assert!(web.contains(&format!("href=\"{}\"", portals[0].1)), "{web}");
    assert!(!out.join("web/C-2.html").exists() && !out.join("pdf/C-2.pdf").exists());
}

/// The personal data of the sample customers that the kept files of a run
/// could hold: email addresses, postcodes, and the subjects (with first
/// names) of their emails.
fn personal_data(out: &Path) -> Vec<String> {
    let mut found: Vec<String> = csv_rows(&root().join("fixtures/customers.csv"))
        .iter()
        .flat_map(|r| [r["email"].clone(), r["address.postcode"].clone()])
        // Postcodes of digits only would be found in hashes and record ids.
        .filter(|v| v.len() > 4 && !v.chars().all(|c| c.is_ascii_digit()))
        .collect();
    for d in manifest(out)["documents"].as_array().unwrap() {
        if let Some(s) = d["subject"].as_str() {
            found.push(s.to_owned());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Which of `values` the files in `dir` hold, as `file: value`.
fn holding(dir: &Path, values: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for rel in files_under(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(dir.join(&rel)).unwrap()).into_owned();
        for v in values {
            let escaped = v.replace('/', "\\/");
            if text.contains(v.as_str()) || text.contains(&escaped) {
                hits.push(format!("{rel}: {v}"));
            }
        }
    }
    hits
}

#[test]
fn a_purge_waits_for_send_and_keeps_no_personal_data() {
    let dir = scratch("edges-purge-data");
    let out = dir.join("run");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &out,
        &["--as-of", "2026-11-28", "--print"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let res = letterpress(&["reprint", out.to_str().unwrap(), "--pieces", "1,2"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let values = personal_data(&out);
    assert!(values.len() > 60, "{values:?}");

    // A slow send is delivering: purge waits for nobody and deletes nothing.
    let sink = crate::send::Sink::start(&dir, "plain");
    let sending = std::process::Command::new(bin())
        .current_dir(root())
        .args([
            "send",
            "--run",
            out.to_str().unwrap(),
            "--smtp",
            &sink.url(),
        ])
        .args(["--rate", "4/s", "--connections", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let journal = out.join("delivery.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 2 {
        assert!(start.elapsed().as_secs() < 60, "send does not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = files_under(&out);
    let res = purge(&out);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("another send is working"),
        "{}",
        stderr(&res)
    );
    // The send is stopped half-way (SIGTERM); its lock is released.
    unsafe { libc::kill(sending.id() as i32, libc::SIGTERM) };
    let res = sending.wait_with_output().unwrap();
    assert_eq!(res.status.code(), Some(143), "{}", describe(&res));
    for f in &before {
        assert!(
            out.join(f).exists() || f.starts_with('.'),
            "{f} kept while sending"
        );
    }
    // Before the purge the kept files hold the customers' data ...
    let kept = ["documents.jsonl", "delivery.jsonl", "print/job-ticket.csv"];
    let held = holding(&out, &values);
    for f in kept {
        assert!(
            held.iter().any(|h| h.starts_with(f)),
            "{f} holds personal data before the purge"
        );
    }
    // ... and after it, no file of the run does, and it still verifies.
    let res = purge(&out);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(holding(&out, &values), Vec::<String>::new());
    for f in kept {
        assert!(out.join(f).exists(), "{f} is kept");
    }
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // A second purge changes nothing.
    let manifest_before = std::fs::read(out.join("manifest.json")).unwrap();
    let res = purge(&out);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        std::fs::read(out.join("manifest.json")).unwrap(),
        manifest_before
    );
    // send says which emails were purged, not that it cannot read them.
    let res = letterpress(&[
        "send",
        "--run",
        out.to_str().unwrap(),
        "--smtp",
        &sink.url(),
        "--dry-run",
    ]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(
        said.contains("was purged on") && !said.contains("cannot read"),
        "{said}"
    );
    assert!(sink.received().len() < 34, "some were never sent");
}

/// The unkeyed hash earlier versions gave a postal address: anyone with an
/// address list could compute it.
fn unkeyed_postal(address: &serde_json::Value) -> String {
    let mut parts: Vec<String> = address
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|t| (k, t)))
        .map(|(k, t)| {
            format!(
                "{k}={}",
                t.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            )
        })
        .filter(|p| !p.ends_with('='))
        .collect();
    parts.sort();
    format!("post:{}", &sha256_bytes(parts.join("\n").as_bytes())[..24])
}

#[test]
fn postal_addresses_are_hashed_with_the_deployments_key() {
    let dir = scratch("edges-address-key");
    let records = vec![customer(
        "C-1",
        serde_json::json!({"contact_preference": "print"}),
    )];
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &records);
    let postal = |name: &str, db: &str, key: Option<&Path>| {
        let out = dir.join(name);
        let mut cmd = std::process::Command::new(bin());
        cmd.current_dir(root())
            .env("LETTERPRESS_LAYOUTS", root().join("layouts"))
            .env_remove("LETTERPRESS_ADDRESS_KEY_FILE")
            .args(run_cmd(
                "welcome-letter",
                data.to_str().unwrap(),
                out.to_str().unwrap(),
                &[],
            ))
            .args([
                "--as-of",
                "2026-11-22",
                "--contacts",
                dir.join(db).to_str().unwrap(),
            ]);
        if let Some(k) = key {
            cmd.arg("--address-key").arg(k);
        }
        let res = cmd.output().unwrap();
        let postal = std::fs::read_to_string(out.join("documents.jsonl"))
            .ok()
            .and_then(|j| {
                j.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .find_map(|d| d["postal"].as_str().map(str::to_owned))
            });
        (res, postal)
    };
    let (res, _) = postal("no-key", "a.db", None);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("address key") && stderr(&res).contains("letterpress key new"),
        "{}",
        stderr(&res)
    );
    let (key_a, key_b) = (dir.join("a.key"), dir.join("b.key"));
    for k in [&key_a, &key_b] {
        let res = letterpress(&["key", "new", k.to_str().unwrap()]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let (res, a1) = postal("a1", "a.db", Some(&key_a));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let (_, a2) = postal("a2", "a.db", Some(&key_a));
    let (_, b) = postal("b", "b.db", Some(&key_b));
    let a1 = a1.expect("the letter's postal key is journaled");
    assert_eq!(Some(a1.clone()), a2, "the same key, the same hash");
    assert_ne!(Some(a1.clone()), b, "another key, another hash");
    assert_ne!(
        a1,
        unkeyed_postal(&records[0]["address"]),
        "not the unkeyed SHA-256"
    );
    assert!(!std::fs::read_to_string(dir.join("a1/manifest.json"))
        .unwrap()
        .contains(&std::fs::read_to_string(&key_a).unwrap().trim().to_string()));
    // The history keyed with A refuses B.
    let (res, _) = postal("a-with-b", "a.db", Some(&key_b));
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(stderr(&res).contains("not with k-"), "{}", stderr(&res));
}

#[test]
fn tickets_and_inserter_files_open_in_a_spreadsheet_without_running_formulas() {
    let dir = scratch("edges-csv");
    let records = vec![
        customer(
            "=HYPERLINK(\"https://evil.example\";\"click\")",
            serde_json::json!({"contact_preference": "print",
                "address": {"line1": "1 Road", "postcode": "+44 1632 960000", "city": "London"}}),
        ),
        customer(
            "@SUM(1+1)",
            serde_json::json!({"contact_preference": "print",
                "address": {"line1": "2 Road", "postcode": "-12345", "city": "London"}}),
        ),
        customer("C-3", serde_json::json!({"contact_preference": "print"})),
    ];
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &records);
    let out = dir.join("out");
    let res = run_layout("welcome-letter", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let formula = |c: &str| c.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut seen = 0;
    for file in ["print/job-ticket.csv", "print/print-001.mrdf.csv"] {
        for row in csv_rows(&out.join(file)) {
            for (column, cell) in &row {
                assert!(!formula(cell), "{file} {column}: {cell}");
                if cell.starts_with("'=")
                    || cell.starts_with("'@")
                    || cell.starts_with("'+")
                    || cell.starts_with("'-")
                {
                    seen += 1;
                }
            }
        }
    }
    assert!(
        seen >= 5,
        "the ids and postcodes are there, neutralised: {seen}"
    );
    // What the inserter acts on is as the run made it.
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    for r in &mrdf {
        assert!(r["piece_id"].starts_with(&run_id), "{r:?}");
        assert!(r["sheets"].parse::<u32>().is_ok() && ["0", "1"].contains(&r["divert"].as_str()));
    }
    // The JSON ticket is not a spreadsheet file: the values stay as they are.
    let json = std::fs::read_to_string(out.join("print/job-ticket.json")).unwrap();
    assert!(json.contains("\"postcode\": \"+44 1632 960000\""), "{json}");

    // A layout may not name an envelope so that a spreadsheet runs it.
    let layouts = layouts_edited(
        &dir,
        "welcome-letter/4/layout.yaml",
        &[("{name: \"DL\"", "{name: \"=DL\"")],
    );
    let res = letterpress_with_layouts(&layouts, &["layouts", "show", "welcome-letter@4"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("print.envelopes: `=DL` may not begin with ="),
        "{}",
        stderr(&res)
    );
}

#[test]
fn messages_and_the_report_count_in_words_and_agree_on_time() {
    let dir = scratch("edges-words");
    let mut bad = customer("C-2", serde_json::json!({"contact_preference": "print"}));
    bad["last_name"] = "".into();
    let records = vec![
        customer("C-1", serde_json::json!({"contact_preference": "print"})),
        bad,
    ];
    let data = dir.join("d.jsonl");
    write_jsonl(&data, &records);
    let out = dir.join("out");
    let res = run_layout("welcome-letter", &data, &out, &["--channels", "pdf"]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let said = stderr(&res);
    let summary = said.lines().find(|l| l.contains("manifest ")).unwrap();
    assert!(
        summary.contains(": 2 records; ") && summary.contains("; 1 page, "),
        "{summary}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("Failures: 1 document of 1 record"),
        "{report}"
    );
    assert!(report.contains("<code>last_name</code>"), "{report}");
    assert!(!report.contains('`'), "no Markdown backticks in the report");
    // The summary's time and rate are the report's.
    let seconds = summary
        .split(" in ")
        .nth(1)
        .unwrap()
        .split(" s (")
        .next()
        .unwrap();
    assert!(
        report.contains(&format!("2 documents in {seconds} s")),
        "{seconds} s in {summary} and the report:\n{report}"
    );
    // verify counts its problems in words too.
    std::fs::write(out.join("pdf/C-1.pdf"), b"not a letter").unwrap();
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert!(stderr(&res).contains(": 1 problem\n"), "{}", stderr(&res));
}

/// A purge killed after it listed its renames, with some made: the next
/// purge makes the rest, and the run ends as one purge uninterrupted.
#[test]
fn a_purge_killed_while_it_renames_is_finished_by_the_next() {
    let dir = scratch("edges-purge-killed");
    let source = render_ok(
        "welcome-letter",
        "fixtures/customers.csv",
        "edges-purge-killed-run",
        &["--print"],
    );
    // The whole purge, for what the files must become.
    let done = dir.join("done");
    copy_tree(&source, &done);
    let res = purge(&done);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // The state a kill leaves: documents deleted, every new file under its
    // temporary name, the renames listed; the journal and the delivery
    // log already renamed, the tickets, manifest and record not yet.
    let killed = dir.join("killed");
    copy_tree(&source, &killed);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(done.join("purged.json")).unwrap()).unwrap();
    for f in record["files"].as_object().unwrap().keys() {
        let _ = std::fs::remove_file(killed.join(f));
    }
    let temp = |rel: &str| {
        let (d, n) = rel.rsplit_once('/').map_or(("", rel), |(d, n)| (d, n));
        let name = format!(".lp-tmp-purge-{n}");
        if d.is_empty() {
            name
        } else {
            format!("{d}/{name}")
        }
    };
    let mut renames = Vec::new();
    for rel in [
        "documents.jsonl",
        "print/job-ticket.csv",
        "print/job-ticket.json",
        "manifest.json",
        "purged.json",
    ] {
        std::fs::copy(done.join(rel), killed.join(temp(rel))).unwrap();
        renames.push(serde_json::json!([temp(rel), rel]));
    }
    std::fs::rename(
        killed.join(temp("documents.jsonl")),
        killed.join("documents.jsonl"),
    )
    .unwrap();
    let mut finishing = record.clone();
    finishing["finishing"] = renames.into();
    std::fs::write(
        killed.join("purged.json"),
        serde_json::to_vec_pretty(&finishing).unwrap(),
    )
    .unwrap();
    let res = letterpress(&["verify", killed.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "half a purge is not intact: {}",
        describe(&res)
    );
    let res = purge(&killed);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for rel in [
        "documents.jsonl",
        "print/job-ticket.csv",
        "print/job-ticket.json",
        "manifest.json",
        "purged.json",
    ] {
        assert_eq!(
            std::fs::read(killed.join(rel)).unwrap(),
            std::fs::read(done.join(rel)).unwrap(),
            "{rel}"
        );
    }
    let res = letterpress(&["verify", killed.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        !files_under(&killed).iter().any(|f| f.contains(".lp-tmp-")),
        "{:?}",
        files_under(&killed)
    );
}
