//! Compliance: approval records that catch any change, draft review runs
//! that are visibly marked, and effective dates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A scratch copy of the repository's layouts.
fn layouts_copy(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    (dir, layouts)
}

fn edit(file: &Path, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, f(&text)).unwrap();
}

#[test]
fn any_change_to_an_approved_version_is_caught_and_stops_the_run() {
    let (dir, layouts) = layouts_copy("drift");
    let check = letterpress_with_layouts(&layouts, &["layouts", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", describe(&check));

    // One byte of a template, an asset, a new file, a removed file.
    let v1 = layouts.join("welcome-letter/1");
    edit(&v1.join("letter.typ"), |t| t.replacen("Dear", "Deer", 1));
    let logo = layouts.join("payment-reminder/2/assets/logo.svg");
    let mut bytes = std::fs::read(&logo).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&logo, bytes).unwrap();
    std::fs::write(layouts.join("annual-statement/1/assets/extra.txt"), "x").unwrap();
    std::fs::remove_file(layouts.join("payment-reminder/1/fonts/OFL.txt")).unwrap();
    // Retiring a version changes its layout.yaml, but it never runs again:
    // no problem.
    edit(&layouts.join("payment-reminder/3/layout.yaml"), |t| {
        t.replace("status: approved", "status: retired")
    });

    let check = letterpress_with_layouts(&layouts, &["layouts", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", describe(&check));
    let text = String::from_utf8_lossy(&check.stdout);
    for (id, want) in [
        ("welcome-letter@1", "letter.typ changed"),
        ("payment-reminder@2", "assets/logo.svg changed"),
        ("annual-statement@1", "assets/extra.txt added"),
        ("payment-reminder@1", "fonts/OFL.txt removed"),
    ] {
        let line = text.lines().find(|l| l.starts_with(id)).unwrap();
        assert!(line.contains("PROBLEM") && line.contains(want), "{line}");
    }
    let retired = text
        .lines()
        .find(|l| l.starts_with("payment-reminder@3"))
        .unwrap();
    assert!(
        retired.contains("retired, it never runs") && !retired.contains("PROBLEM"),
        "{retired}"
    );
    let fine = text
        .lines()
        .find(|l| l.starts_with("welcome-letter@2"))
        .unwrap();
    assert!(!fine.contains("PROBLEM"), "{fine}");

    // The run refuses the changed version, names it and the file, writes nothing.
    let out = dir.join("out");
    let data = root().join("fixtures/customers.csv");
    let res = run_layout_with(&layouts, "welcome-letter@1", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("welcome-letter@1") && err.contains("letter.typ changed"),
        "{err}"
    );
    assert!(!out.exists());

    // A retired version does not run either; `payment-reminder` now resolves
    // to version 2, which has drifted.
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &root().join("fixtures/reminders.csv"),
        &out,
        &[],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("it is retired"));

    // Re-approving records the new state; the run goes ahead.
    approve(&layouts, "welcome-letter@1");
    let res = run_layout_with(&layouts, "welcome-letter@1", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    assert_eq!(m["draft"], false);
    let approval = &m["layout"]["approval"];
    assert_eq!(approval["approvals"][0]["by"], "Priya Natarajan (demo)");
    assert_eq!(approval["approvals"][0]["at"], "2026-11-22T00:20:00Z");
    assert_eq!(approval["submitted"]["by"], "Sam Okoro (demo)");
    assert_eq!(m["layout"]["approval"]["files_match"], true);
    assert_eq!(m["layout"]["approval"]["digest"], m["layout"]["digest"]);
}

#[test]
fn a_draft_run_marks_every_page_and_every_subject() {
    let (dir, layouts) = layouts_copy("draft");
    let v2 = layouts.join("welcome-letter/2");
    edit(&v2.join("texts.yaml"), |t| {
        t.replace(
            "We look forward to working with you.",
            "We really look forward to working with you.",
        )
    });
    let data = root().join("fixtures/customers.csv");
    let out = dir.join("out");
    let res = run_layout_with(&layouts, "welcome-letter@2", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("texts.yaml changed"));

    let res = run_layout_with(
        &layouts,
        "welcome-letter@2",
        &data,
        &out,
        &["--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("draft run"));
    let m = manifest(&out);
    assert_eq!(m["draft"], true);
    assert_eq!(m["layout"]["approval"]["files_match"], false);
    let mut letters = 0;
    let mut emails = 0;
    for d in m["documents"].as_array().unwrap() {
        if d["status"] != "rendered" {
            continue;
        }
        let path = out.join(d["path"].as_str().unwrap());
        if d["channel"] == "pdf" {
            // Rotated text comes out scattered in layout mode; raw mode keeps
            // the order in which the page draws it.
            let raw = Command::new("pdftotext")
                .args(["-raw", path.to_str().unwrap(), "-"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&raw.stdout).into_owned();
            let pages: Vec<&str> = text
                .split('\u{c}')
                .filter(|p| !p.trim().is_empty())
                .collect();
            assert!(!pages.is_empty());
            for p in pages {
                assert!(
                    squash(p).contains("DRAFT-NOTAPPROVED"),
                    "a page without the mark:\n{p}"
                );
            }
            if d["locale"].as_str().unwrap().starts_with("en") {
                assert!(
                    squash(&text).contains("Wereallylookforward"),
                    "the draft's wording"
                );
            }
            letters += 1;
        } else {
            assert!(
                d["subject"].as_str().unwrap().starts_with("[DRAFT] "),
                "{d}"
            );
            emails += 1;
        }
    }
    assert!(
        letters > 30 && emails > 30,
        "{letters} letters, {emails} emails"
    );
    // The picture shows it too: red over the middle of the page, where the
    // approved letter has none.
    let red = |pdf: &Path| {
        let prefix = dir.join("picture");
        let res = Command::new("pdftoppm")
            .args(["-r", "40", "-f", "1", "-l", "1", pdf.to_str().unwrap()])
            .arg(&prefix)
            .output()
            .unwrap();
        assert!(res.status.success());
        let ppm = std::fs::read(dir.join("picture-1.ppm")).unwrap();
        // P6 header: magic, width, height, maximum, then RGB bytes.
        let mut fields = 0;
        let mut start = 0;
        for (i, &b) in ppm.iter().enumerate() {
            if b.is_ascii_whitespace() && i > 0 && !ppm[i - 1].is_ascii_whitespace() {
                fields += 1;
                if fields == 4 {
                    start = i + 1;
                    break;
                }
            }
        }
        ppm[start..]
            .chunks(3)
            .filter(|p| p[0] as i32 - p[1] as i32 > 40 && p[0] as i32 - p[2] as i32 > 40)
            .count()
    };
    let marked = red(&out.join("pdf/C-01001.pdf"));
    let clean_out = dir.join("clean");
    let res = run_layout("welcome-letter@2", &data, &clean_out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let clean = red(&clean_out.join("pdf/C-01001.pdf"));
    assert!(
        marked > 200 && clean < 10,
        "red pixels: draft {marked}, approved {clean}"
    );
    assert!(qpdf_check(&out.join("pdf/C-01001.pdf")).status.success());

    // Marking a version a draft changes its layout.yaml: it is no longer
    // the approved version, and needs --allow-draft as well.
    edit(&layouts.join("payment-reminder/3/layout.yaml"), |t| {
        t.replace("status: approved", "status: draft")
    });
    let out2 = dir.join("out2");
    let reminders = root().join("fixtures/reminders.csv");
    let res = run_layout_with(&layouts, "payment-reminder@3", &reminders, &out2, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains(
            "its files changed since it was submitted (layout.yaml changed): submit it again for review"
        ),
        "{}",
        describe(&res)
    );
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &reminders,
        &out2,
        &["--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn the_version_in_effect_on_the_as_of_date_is_used() {
    let (dir, layouts) = layouts_copy("effective");
    // Each version approved before it takes effect.
    let set = |v: u32, lines: &str, approved: &str| {
        edit(
            &layouts.join(format!("payment-reminder/{v}/layout.yaml")),
            |t| {
                t.replacen(
                    "status: approved\n",
                    &format!("status: approved\n{lines}"),
                    1,
                )
            },
        );
        approve_on(&layouts, &format!("payment-reminder@{v}"), approved);
    };
    set(1, "effective_until: 2026-03-31\n", "2026-01-05");
    set(
        2,
        "effective_from: 2026-04-01\neffective_until: 2026-09-30\n",
        "2026-03-20",
    );
    set(3, "effective_from: 2026-11-01\n", "2026-10-20");
    let data = root().join("fixtures/reminders.csv");
    for (as_of, want) in [
        ("2026-03-31", 1),
        ("2026-04-01", 2),
        ("2026-09-30", 2),
        ("2026-11-01", 3),
    ] {
        let out = dir.join(format!("out-{as_of}"));
        let res = run_layout_with(
            &layouts,
            "payment-reminder",
            &data,
            &out,
            &["--as-of", as_of],
        );
        assert_eq!(res.status.code(), Some(0), "{as_of}: {}", describe(&res));
        assert_eq!(manifest(&out)["layout"]["version"], want, "{as_of}");
        let effective = manifest(&out)["layout"]["effective"].clone();
        assert!(effective.as_str().unwrap().contains("2026-"), "{effective}");
        let show = letterpress_with_layouts(
            &layouts,
            &["layouts", "show", "payment-reminder", "--as-of", as_of],
        );
        let text = String::from_utf8_lossy(&show.stdout);
        assert!(
            text.contains(&format!("layout:      payment-reminder@{want}"))
                && text.contains("approved by Priya Natarajan (demo) as compliance on 2026-")
                && text.contains(&format!("(in effect on {as_of})")),
            "{text}"
        );
    }
    // October falls between versions 2 and 3: nothing is in effect.
    let out = dir.join("out-gap");
    let res = run_layout_with(
        &layouts,
        "payment-reminder",
        &data,
        &out,
        &["--as-of", "2026-10-15"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("no approved version in effect on 2026-10-15")
            && err.contains(
                "2 (approved for letters from 2026-04-01, from 2026-04-01 until 2026-09-30)"
            )
            && err.contains("3 (approved for letters from 2026-11-01, from 2026-11-01)"),
        "{err}"
    );
    assert!(!out.exists());
    // Naming a version outside its dates is refused too, unless for review.
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &data,
        &out,
        &["--as-of", "2026-10-15"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    // Its approval counts from the day it takes effect.
    assert!(
        String::from_utf8_lossy(&res.stderr)
            .contains("it is approved for letters from 2026-11-01 only"),
        "{}",
        describe(&res)
    );
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &data,
        &out,
        &["--as-of", "2026-10-15", "--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(manifest(&out)["draft"], true);
}

#[test]
fn required_and_forbidden_wording_fail_the_document_naming_the_rule() {
    let (dir, layouts) = layouts_copy("wording");
    let rec = |id: &str, product: &str, locale: &str| {
        serde_json::json!({"customer_id": id, "first_name": "Ann", "last_name": "Lee",
            "address": {"line1": "1 Road", "postcode": "E1 1AA", "city": "London"},
            "email": format!("{id}@example.com"), "locale": locale, "product": product,
            "account_number": "1", "opened_on": "2026-01-02", "contact_preference": "both"})
        .to_string()
    };
    let data = dir.join("d.jsonl");
    std::fs::write(
        &data,
        [
            rec("W-1", "Saver", "en-GB"),
            rec("W-2", "TODO", "en-GB"),
            rec("W-3", "Sparkonto", "de-DE"),
            rec("W-4", "Nullify Saver", "en-GB"),
        ]
        .join("\n"),
    )
    .unwrap();
    let entries = |out: &Path| -> Vec<(String, String, String)> {
        manifest(out)["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    format!(
                        "{} {}",
                        d["record_id"].as_str().unwrap(),
                        d["channel"].as_str().unwrap()
                    ),
                    d["status"].as_str().unwrap().to_owned(),
                    d["error"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let out = dir.join("out");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    for (who, status, error) in entries(&out) {
        if who.starts_with("W-2") {
            // Forbidden text in the data fails the record before rendering,
            // naming the field.
            assert_eq!(status, "failed", "{who}");
            assert!(
                error.contains("field `product`: holds the forbidden text \"TODO\""),
                "{who}: {error}"
            );
        } else {
            assert_eq!(status, "rendered", "{who}: {error}");
        }
    }
    assert!(!out.join("pdf/W-2.pdf").exists() && !out.join("email/W-2.eml").exists());

    // The German disclosure loses the scheme's name: German documents fail.
    edit(&layouts.join("welcome-letter/2/texts.yaml"), |t| {
        t.replace(
            "sind durch das Financial Services Compensation Scheme bis zu",
            "sind bis zu",
        )
    });
    approve(&layouts, "welcome-letter@2");
    let out = dir.join("out2");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    for (who, status, error) in entries(&out) {
        if who.starts_with("W-3") {
            assert_eq!(status, "failed", "{who}");
            assert!(
                error.contains(
                    "required text missing: \"durch das Financial Services Compensation Scheme\""
                ),
                "{who}: {error}"
            );
        } else if who.starts_with("W-1") || who.starts_with("W-4") {
            assert_eq!(status, "rendered", "{who}: {error}");
        }
    }

    // Forbidden text that the template itself writes fails the document,
    // with the words around it (in a sentence for customers without an
    // advisor, so the sample record, which has one, still renders).
    edit(&layouts.join("welcome-letter/2/texts.yaml"), |t| {
        t.replace(
            "or write to us at the address below.",
            "or write to us at the address below. TODO",
        )
    });
    approve(&layouts, "welcome-letter@2");
    let out = dir.join("out3");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    for (who, status, error) in entries(&out) {
        if who.starts_with("W-1") {
            assert_eq!(status, "failed", "{who}");
            assert!(
                error.contains("forbidden text \"TODO\" found")
                    && error.contains("address below. TODO"),
                "{who}: {error}"
            );
        }
    }
}

#[test]
fn diff_reports_what_a_new_version_changes_for_each_customer() {
    let dir = scratch("diff");
    let html = dir.join("diff.html");
    let data = root().join("fixtures/reminders.csv");
    let res = letterpress(&[
        "diff",
        "payment-reminder@1",
        "payment-reminder@2",
        "--data",
        data.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
        "--out",
        html.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(r["records"], 24);
    assert_eq!(r["changed"], 24);
    let has = |key: &str, sentence: &str, n: u64| {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e[0] == sentence && e[1] == n)
    };
    assert!(has(
        "disappearing",
        "We kindly request that you settle the outstanding amount at your earliest convenience.",
        24
    ));
    assert!(has(
        "appearing",
        "If you have paid in the last few days, thank you, and please ignore this letter.",
        24
    ));
    let first = &r["diffs"][0];
    assert_eq!(first["record"], "C-01001");
    assert!(first["removed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("We kindly request")));
    assert!(
        first["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with(' ')),
        "unchanged lines are kept for context"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("24</strong> letters change") && page.contains("Sentences that disappear")
    );
    assert!(page.contains("We kindly request") && !page.contains("<script"));

    // The same version against itself changes nothing.
    let res = letterpress(&[
        "diff",
        "payment-reminder@2",
        "payment-reminder@2",
        "--data",
        data.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stdout).contains("24 records, 0 letters change"));
}

#[test]
fn a_proof_set_shows_the_variety_with_reasons_on_its_cover() {
    let dir = scratch("proof");
    let pdf = dir.join("proof.pdf");
    let res = letterpress(&[
        "proof",
        "--layout",
        "annual-statement@1",
        "--data",
        root().join("fixtures/statements.jsonl").to_str().unwrap(),
        "--out",
        pdf.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
        "--sample",
        "2",
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let picks = r["picks"].as_array().unwrap();
    let reasons: Vec<String> = picks
        .iter()
        .flat_map(|p| {
            p["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
        })
        .collect();
    for want in [
        "shortest letter",
        "longest letter",
        "most transactions (200)",
        "fewest transactions (0)",
        "random sample (seed 1)",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(want)),
            "no {want:?} in {reasons:?}"
        );
    }
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("random sample"))
            .count(),
        2
    );
    assert!(qpdf_check(&pdf).status.success());
    // Cover + every picked letter, every page marked.
    let raw = std::process::Command::new("pdftotext")
        .args(["-raw", pdf.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&raw.stdout).into_owned();
    let pages: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(pages.len() as u64, r["pages"].as_u64().unwrap());
    assert!(pdfinfo(&pdf).contains(&format!("Pages:           {}", pages.len())));
    for (i, p) in pages.iter().enumerate() {
        // Rotated letters may come out one per line: compare without white space.
        assert!(squash(p).contains("PROOF"), "page {} is not marked", i + 1);
    }
    let cover = squash(pages[0]);
    assert!(cover.contains("Proof:annual-statement@1") && cover.contains("Digest"));
    for p in picks {
        assert!(
            cover.contains(&squash(p["record_id"].as_str().unwrap())),
            "cover lacks {}",
            p["record_id"]
        );
        for reason in p["reasons"].as_array().unwrap() {
            assert!(
                cover.contains(&squash(reason.as_str().unwrap())),
                "cover lacks {reason}"
            );
        }
        // The letter is on the proof pages the cover gives.
        let first: usize = p["proof_pages"]
            .as_str()
            .unwrap()
            .split('–')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let holder = r["picks"]
            .as_array()
            .unwrap()
            .iter()
            .position(|q| q == p)
            .unwrap();
        let _ = holder;
        assert!(
            squash(pages[first - 1]).contains("Statement")
                || squash(pages[first - 1]).contains("statement"),
            "page {first}"
        );
    }
}

#[test]
fn a_draft_can_be_proofed_and_its_emails_go_into_one_page() {
    let (dir, layouts) = layouts_copy("proof-draft");
    edit(&layouts.join("welcome-letter/2/texts.yaml"), |t| {
        t.replace("We look forward", "We so look forward")
    });
    let pdf = dir.join("p.pdf");
    let res = letterpress_with_layouts(
        &layouts,
        &[
            "proof",
            "--layout",
            "welcome-letter@2",
            "--data",
            root().join("fixtures/customers.csv").to_str().unwrap(),
            "--out",
            pdf.to_str().unwrap(),
            "--as-of",
            "2026-11-22",
            "--json",
        ],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let r: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let cover = squash(pdftotext(&pdf).split('\u{c}').next().unwrap());
    assert!(
        cover.contains("changedsinceitwassubmitted") && cover.contains("texts.yamlchanged"),
        "{cover}"
    );
    for want in [
        "locale: de-DE",
        "locale: fr-FR",
        "locale: es-ES",
        "locale: en-US",
        "channels: email",
        "channels: pdf (fallback)",
        "longest name",
    ] {
        assert!(
            r["picks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["reasons"].to_string().contains(want)),
            "no pick for {want}"
        );
    }
    let html = std::fs::read_to_string(dir.join("p.html")).unwrap();
    let emailed: Vec<&serde_json::Value> = r["picks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["email"] == true)
        .collect();
    assert!(emailed.len() >= 3, "{}", emailed.len());
    assert_eq!(html.matches("<iframe sandbox").count(), emailed.len());
    assert_eq!(
        html.matches("<strong>Subject:</strong>").count(),
        emailed.len()
    );
    for p in emailed {
        assert!(html.contains(&format!("<h2>{} <span", p["record_id"].as_str().unwrap())));
    }
    assert!(html.contains("Welcome to Northwind Bank") && html.contains("PROOF"));
    assert!(!html.contains("<script"), "the page runs nothing");
}

#[test]
fn a_version_is_in_effect_only_from_its_approval_and_every_decision_is_kept() {
    let (dir, layouts) = layouts_copy("approval-dates");
    let data = root().join("fixtures/reminders.csv");
    let show = |args: &[&str]| {
        let mut all = vec!["layouts", "show"];
        all.extend_from_slice(args);
        letterpress_with_layouts(&layouts, &all)
    };
    // The sample versions were approved in November: none was in effect
    // in March, whatever its dates say.
    let res = show(&["payment-reminder", "--as-of", "2026-03-01"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("no approved version in effect on 2026-03-01")
            && err.contains("3 (approved for letters from 2026-11-22, always)"),
        "{err}"
    );
    let out = dir.join("march");
    let res = run_layout_with(
        &layouts,
        "payment-reminder",
        &data,
        &out,
        &["--as-of", "2026-03-01"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &data,
        &out,
        &["--as-of", "2026-03-01"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains(
            "it is approved for letters from 2026-11-22 only, and a letter dated 2026-03-01 cannot use wording approved later"
        ),
        "{}",
        describe(&res)
    );
    assert!(!out.exists());
    // A review copy of it may still be made.
    let res = run_layout_with(
        &layouts,
        "payment-reminder@3",
        &data,
        &out,
        &["--as-of", "2026-03-01", "--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(manifest(&out)["draft"], true);

    // A change and its new review: the earlier decisions about other files
    // stay in the chain, and the version is in effect from the new approval.
    let before = std::fs::read_dir(layouts.join("payment-reminder/decisions"))
        .unwrap()
        .count();
    edit(&layouts.join("payment-reminder/3/texts.yaml"), |t| {
        t.replace("Credit Card Services", "Card Services")
    });
    approve_on(&layouts, "payment-reminder@3", "2026-11-25");
    let after = std::fs::read_dir(layouts.join("payment-reminder/decisions"))
        .unwrap()
        .count();
    assert_eq!(
        after,
        before + 4,
        "a submission and an approval, each signed"
    );
    let res = show(&["payment-reminder@3"]);
    let text = squash(&String::from_utf8_lossy(&res.stdout));
    assert!(
        text.contains(&squash("approves payment-reminder@3 (layout digest"))
            && text.matches("approvespayment-reminder@3").count() == 2
            && text.contains("forusewithcustomersfrom2026-11-22")
            && text.contains("forusewithcustomersfrom2026-11-25"),
        "both approvals are listed: {text}"
    );
    let res = show(&["payment-reminder", "--as-of", "2026-11-24"]);
    assert!(String::from_utf8_lossy(&res.stdout).contains("payment-reminder@2"));
    let res = show(&["payment-reminder", "--as-of", "2026-11-25"]);
    assert!(String::from_utf8_lossy(&res.stdout).contains("payment-reminder@3"));

    // A typed name approves nothing any more.
    let res = letterpress_with_layouts(
        &layouts,
        &[
            "layouts",
            "approve",
            "payment-reminder@3",
            "--by",
            "Jane Doe",
        ],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("a typed name is not an approval"),
        "{}",
        describe(&res)
    );
    let after_by = std::fs::read_dir(layouts.join("payment-reminder/decisions"))
        .unwrap()
        .count();
    assert_eq!(after_by, after, "a refused approval changes nothing");
}
