//! Whole-run errors: they exit 2, say what is wrong and where, and write
//! nothing. Also `validate` and the `layouts` commands.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Copies the repository's layouts into a scratch folder, applies `edit`
/// to the file `rel` of `welcome-letter/1` (empty `edit` result: unchanged),
/// and runs welcome-letter on the customers fixture. Returns the output and
/// the output folder.
fn run_broken(
    name: &str,
    rel: &str,
    edit: impl Fn(&str) -> String,
) -> (std::process::Output, PathBuf) {
    let dir = scratch(name);
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let file = layouts.join("welcome-letter/1").join(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, edit(&text)).unwrap();
    approve(&layouts, "welcome-letter@1");
    let out = dir.join("out");
    let data = root().join("fixtures/customers.csv");
    (
        run_layout_with(&layouts, "welcome-letter@1", &data, &out, &[]),
        out,
    )
}

/// Asserts a whole-run error: exit 2, nothing written, stderr containing
/// every one of `wants`.
fn assert_refused(res: &std::process::Output, out: &Path, wants: &[&str]) {
    assert_eq!(res.status.code(), Some(2), "{}", describe(res));
    let err = String::from_utf8_lossy(&res.stderr);
    for want in wants {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert!(
        !err.contains("--root"),
        "typst CLI hints do not apply: {err}"
    );
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn a_template_syntax_error_exits_2_and_writes_nothing() {
    let (res, out) = run_broken("broken-typ", "letter.typ", |t| {
        t.replacen("Dear #name,", "Dear #name(,", 1)
    });
    assert_refused(
        &res,
        &out,
        &["welcome-letter@1", "letter.typ:", "syntax error"],
    );
}

#[test]
fn a_template_that_fails_for_every_record_exits_2_and_writes_nothing() {
    // A field the schema does not have: fails whatever the data.
    let (res, out) = run_broken("runtime-typ", "letter.typ", |t| {
        t.replacen("Dear #name,", "Dear #r.frist_name,", 1)
    });
    assert_refused(
        &res,
        &out,
        &[
            "welcome-letter@1 cannot render",
            "letter.typ:",
            "frist_name",
        ],
    );
}

#[test]
fn a_mistyped_font_family_is_reported_as_a_warning() {
    let (res, out) = run_broken("font-typo", "lib/letterhead.typ", |t| {
        t.replacen("\"Noto Sans\",", "\"Noto Sanz\",", 1)
    });
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("letterpress: warning: welcome-letter@1: lib/letterhead.typ:")
            && err.contains("noto sanz"),
        "{err}"
    );
    assert!(out.join("manifest.json").is_file());
    let clean = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &scratch("no-warning"),
        &[],
    );
    // Only the warning that the sample's trust list is the demo one.
    assert!(
        !String::from_utf8_lossy(&clean.stderr)
            .lines()
            .any(|l| l.contains("letterpress: warning") && !l.contains("is the DEMO list")),
        "{}",
        describe(&clean)
    );
}

#[test]
fn a_yaml_error_exits_2_naming_the_file() {
    let (res, out) = run_broken("broken-yaml", "layout.yaml", |t| {
        t.replacen("status: approved", "status: [approved", 1)
    });
    assert_refused(&res, &out, &["welcome-letter/1/layout.yaml"]);
}

#[test]
fn a_package_import_fails_with_a_clear_reason() {
    let (res, out) = run_broken("package", "letter.typ", |t| {
        format!("#import \"@preview/cetz:0.3.0\": canvas\n{t}")
    });
    assert_refused(&res, &out, &["package imports are not available"]);
}

#[test]
fn a_template_cannot_read_outside_its_folder() {
    for (path, want) in [
        (
            "../../payment-reminder/1/layout.yaml",
            "would escape the project root",
        ),
        ("/etc/passwd", "is not in the layout folder"),
    ] {
        let (res, out) = run_broken("escape", "letter.typ", |t| {
            format!("{t}\n#read(\"{path}\")\n")
        });
        assert_refused(&res, &out, &["letter.typ:", want]);
    }
}

#[test]
fn usage_and_input_errors_exit_2_and_write_nothing() {
    let dir = scratch("usage");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let csv = root().join("fixtures/customers.csv");
    let c = csv.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--layout", "no-such", "--data", c, "--out", o],
            "no layout named `no-such`",
        ),
        (
            vec![
                "run",
                "--layout",
                "welcome-letter@9",
                "--data",
                c,
                "--out",
                o,
            ],
            "has no version 9",
        ),
        (
            vec![
                "run",
                "--layout",
                "welcome-letter",
                "--data",
                "missing.csv",
                "--out",
                o,
            ],
            "cannot open `missing.csv`",
        ),
        (
            vec![
                "run",
                "--layout",
                "welcome-letter",
                "--data",
                "README.md",
                "--out",
                o,
            ],
            "--format",
        ),
        (
            vec![
                "run",
                "--layout",
                "welcome-letter",
                "--data",
                c,
                "--out",
                o,
                "--as-of",
                "2026-02-30",
            ],
            "YYYY-MM-DD",
        ),
    ];
    for (args, want) in cases {
        let res = letterpress(&args);
        assert_eq!(res.status.code(), Some(2), "{args:?}: {}", describe(&res));
        assert!(
            String::from_utf8_lossy(&res.stderr).contains(want),
            "{args:?}: {}",
            describe(&res)
        );
        assert!(!out.exists(), "{args:?} wrote something");
    }
    // Structurally broken inputs.
    for (name, content, want) in [
        ("empty.csv", "", "the file is empty"),
        ("obj.json", "{\"a\": 1}", "must be an array"),
        (
            "open.json",
            "[{\"customer_id\": \"1\"},\n{\"customer_id\": \"2\"",
            "unexpected end of file",
        ),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, content).unwrap();
        let res = letterpress(&[
            "run",
            "--layout",
            "welcome-letter",
            "--data",
            f.to_str().unwrap(),
            "--out",
            o,
        ]);
        assert_eq!(res.status.code(), Some(2), "{name}: {}", describe(&res));
        assert!(
            String::from_utf8_lossy(&res.stderr).contains(want),
            "{name}: {}",
            describe(&res)
        );
        assert!(!out.exists());
    }
}

#[test]
fn json_summaries_are_printed_for_errors_too() {
    let out = scratch("json-error").join("out");
    let res = letterpress(&[
        "run",
        "--layout",
        "no-such",
        "--data",
        "fixtures/customers.csv",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let doc: serde_json::Value = serde_json::from_slice(&res.stdout).expect("stdout is JSON");
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("no layout named `no-such`"),
        "{doc}"
    );
    let res = letterpress(&[
        "validate",
        "--layout",
        "welcome-letter",
        "--data",
        "missing.csv",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&res.stdout).expect("stdout is JSON");
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"].as_str().unwrap().contains("missing.csv"),
        "{doc}"
    );
}

#[test]
fn an_out_folder_holding_another_run_is_refused() {
    let dir = scratch("reuse");
    let out = dir.join("out");
    let data = root().join("fixtures/reminders.csv");
    assert_eq!(
        run_layout("payment-reminder", &data, &out, &[])
            .status
            .code(),
        Some(0)
    );
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    let res = run_layout("payment-reminder", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("already holds the manifest"));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);
}

#[test]
fn validate_reports_every_invalid_record() {
    let dir = scratch("validate");
    let good = letterpress(&[
        "validate",
        "--layout",
        "welcome-letter",
        "--data",
        "fixtures/customers.csv",
    ]);
    assert_eq!(good.status.code(), Some(0), "{}", describe(&good));
    assert!(String::from_utf8_lossy(&good.stdout).contains("56 valid, 0 invalid"));

    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, concat!(
        "{\"customer_id\": \"A\", \"first_name\": \"Ann\", \"last_name\": \"Lee\", \"address\": {\"line1\": \"x\", \"postcode\": \"1\", \"city\": \"y\"}, \"product\": \"p\", \"account_number\": \"1\", \"opened_on\": \"2026-01-01\"}\n",
        "{\"customer_id\": \"B\", \"first_name\": \"Bo\", \"address\": {\"line1\": \"x\", \"city\": \"y\"}, \"product\": \"p\", \"account_number\": 1, \"opened_on\": \"2026-01-01\", \"overdraft_limit\": \"lots\"}\n",
        "{\"customer_id\": \"C\",\n",
    )).unwrap();
    let res = letterpress(&[
        "validate",
        "--layout",
        "welcome-letter",
        "--data",
        bad.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
    ]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let text = String::from_utf8_lossy(&res.stdout);
    for want in [
        "record B (line 2)",
        "field `last_name`: required but missing",
        "field `address.postcode`: required but missing",
        "field `account_number`: expected string, found a number",
        "field `overdraft_limit`: expected number",
        "record at line 3: invalid JSON",
        "3 records checked against welcome-letter@2: 1 valid, 2 invalid",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn layouts_list_and_show_describe_the_catalog() {
    let list = letterpress(&["layouts", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", describe(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].contains("TITLE")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("payment-reminder") && l.contains(" 4 ") && l.contains('*')),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("annual-statement") && l.contains("approved")),
        "{text}"
    );

    let show = letterpress(&["layouts", "show", "welcome-letter@1"]);
    assert_eq!(show.status.code(), Some(0), "{}", describe(&show));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("standing:    approved by Priya Natarajan (demo) as compliance")
            && text.contains("id field:    customer_id"),
        "{text}"
    );
    assert!(
        text.contains("    postcode"),
        "nested fields are indented: {text}"
    );
    let statement = letterpress(&["layouts", "show", "annual-statement"]);
    let st = String::from_utf8_lossy(&statement.stdout);
    assert!(
        st.lines().any(|l| l.contains("transactions")
            && l.contains("list of object")
            && l.contains("required")),
        "{st}"
    );
    assert!(
        st.lines()
            .any(|l| l.starts_with("    amount") && l.contains("number")),
        "{st}"
    );
    let digest = text
        .lines()
        .find(|l| l.starts_with("digest:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();

    // The digest covers every file: changing an asset changes it.
    let dir = scratch("digest");
    let layouts = dir.join("l/welcome-letter/1");
    copy_tree(&root().join("layouts/welcome-letter/1"), &layouts);
    let same = letterpress_with_layouts(&dir.join("l"), &["layouts", "show", "welcome-letter@1"]);
    assert!(
        String::from_utf8_lossy(&same.stdout).contains(&digest),
        "a copy has the same digest"
    );
    std::fs::write(
        layouts.join("assets/logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    let changed =
        letterpress_with_layouts(&dir.join("l"), &["layouts", "show", "welcome-letter@1"]);
    assert!(
        !String::from_utf8_lossy(&changed.stdout).contains(&digest),
        "a changed asset changes the digest"
    );
}

/// Each class of message a newcomer meets says what is wrong, where (file,
/// line, record id, field, option) and what to do.
#[test]
fn messages_say_what_where_and_what_to_do() {
    let dir = scratch("messages");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let csv = root().join("fixtures/customers.csv");
    let c = csv.to_str().unwrap();
    let semicolons = dir.join("export.csv");
    std::fs::write(&semicolons, "customer_id;first_name\nC-1;Ann\n").unwrap();
    let s = semicolons.to_str().unwrap();
    // (class, arguments, what, where, what to do)
    let cases: Vec<(&str, Vec<&str>, &str, &str, &str)> = vec![
        (
            "usage",
            run_cmd("welcome-letter", c, o, &["--shard", "0/4"]),
            "is not a shard",
            "`0/4`",
            "write K/N with 1 <= K <= N",
        ),
        (
            "unknown layout",
            run_cmd("welcom-letter", c, o, &[]),
            "no layout named",
            "`welcom-letter`",
            "known layouts: annual-statement, core-statement, monthly-statement, payment-reminder, welcome-letter, welcome-pack",
        ),
        (
            "missing data file",
            run_cmd("welcome-letter", "custmers.csv", o, &[]),
            "cannot open",
            "`custmers.csv`",
            "check the --data path",
        ),
        (
            "wrong delimiter",
            run_cmd("welcome-letter", s, o, &[]),
            "no `customer_id` column",
            "export.csv:1",
            "export the file with commas",
        ),
        (
            "print without letters",
            run_cmd("welcome-letter", c, o, &["--print", "--channels", "email"]),
            "--print needs the pdf channel",
            "--channels",
            "add pdf to --channels",
        ),
    ];
    for (class, args, what, place, todo) in cases {
        let res = letterpress(&args);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{class}: {err}");
        for part in [what, place, todo] {
            assert!(err.contains(part), "{class}: want {part:?} in {err}");
        }
        assert!(!out.exists(), "{class}: nothing written");
    }

    // A new layout: what (never submitted), where (NAME@N), what to do
    // (submit it, with the command).
    let layouts = dir.join("layouts");
    std::fs::create_dir_all(&layouts).unwrap();
    letterpress_with_layouts(&layouts, &["layouts", "new", "notice"]);
    let data = layouts.join("notice/sample-data.csv");
    let res = run_layout_with(&layouts, "notice@1", &data, &out, &[]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("notice@1 cannot run because it was never submitted for review")
            && err.contains("`letterpress layouts submit notice@1 --key KEY`")
            && err.contains("--allow-draft renders a marked review copy"),
        "{err}"
    );

    // A template error: the layout, the file and line, and what to do.
    let typ = layouts.join("notice/1/letter.typ");
    let text = std::fs::read_to_string(&typ).unwrap();
    std::fs::write(
        &typ,
        text.replace("#t(\"sign_off\")", "#t(\"sign_off\") #r.balanse"),
    )
    .unwrap();
    let res = run_layout_with(&layouts, "notice@1", &data, &out, &["--allow-draft"]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("notice@1 cannot render sample.json")
            && err.contains("letter.typ:")
            && err.contains("balanse")
            && err.contains("fix the template"),
        "{err}"
    );

    // Record level: record id, input line, field; the rest of the run goes on.
    let bad = dir.join("bad.csv");
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = rows.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen(",Mr,", ",Mr,,", 1);
    lines[3] = lines[3].replace("2026-", "2026-13-");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let res = run_layout("welcome-letter", &bad, &dir.join("records"), &[]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("failed: record C-"), "{err}");
    assert!(err.contains("(line 4): field `opened_on`"), "{err}");
}
