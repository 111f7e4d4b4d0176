//! Bad input, named and survived: one table of broken data files and broken
//! layouts. For each case, the exit code, the words a person reads, and that
//! no other record was lost: every good record of the file still renders,
//! and every record is in the manifest once.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;

const LAYOUT_YAML: &str = r#"name: robust
version: 1
title: Robustness test letter
status: approved
id_field: customer_id
page:
  format: a4
  max_pages: 5
fields:
  - {name: customer_id, type: string, required: true}
  - {name: name, type: string, required: true, max_length: 200}
  - {name: amount, type: number, required: true}
  - {name: divisor, type: number}
  - {name: due, type: date}
  - {name: pages, type: integer}
  - {name: spin, type: bool}
  - {name: slow, type: bool}
"#;

const LETTER: &str = r#"#let r = json("/record.json")
#set page(paper: "a4")
#set text(font: "Libertinus Serif")
#let opt(key) = r.at(key, default: none)
Dear #r.name, you owe #r.amount.
#if opt("divisor") != none [ Per month: #(r.amount / r.divisor). ]
#if opt("due") != none [ Due: #r.due. ]
#if opt("pages") != none { for i in range(r.pages) { pagebreak() } }
#if opt("spin") == true { let i = 0; while i >= 0 { i += 1 } }
#if opt("slow") == true { for i in range(100000) { for j in range(100000) { } } }
"#;

/// A scratch layouts folder with the `robust@1` layout, approved, after
/// `edit(file name, text)` changed its files.
/// The `robust` layout, approved, as it is (for other tests).
pub fn robust_layouts(dir: &Path) -> PathBuf {
    layouts(dir, &|_, t| Some(t))
}

fn layouts(dir: &Path, edit: &Edit) -> PathBuf {
    let layouts = dir.join("layouts");
    let v = layouts.join("robust/1");
    std::fs::create_dir_all(&v).unwrap();
    // The engine's sample record would fill every optional field (spin and
    // all); a realistic one keeps the record-level cases record-level.
    let sample = r#"{"customer_id": "S-1", "name": "Sample", "amount": 1}"#;
    for (name, text) in [
        ("layout.yaml", LAYOUT_YAML),
        ("letter.typ", LETTER),
        ("sample.json", sample),
    ] {
        if let Some(text) = edit(name, text.to_owned()) {
            std::fs::write(v.join(name), text).unwrap();
        }
    }
    approve(&layouts, "robust@1");
    layouts
}

const HEADER: &str = "customer_id,name,amount,divisor,due,pages,spin,slow\n";
const GOOD_CSV: [&str; 3] = [
    "G-1,Ann <b>Lee</b>,10.5,,2026-12-01,,,\n",
    "G-2,\"Bo #set text(red) ] {{x}}\",20,4,,,,\n",
    "G-3,Cy,30,,,2,false,\n",
];

fn good_jsonl() -> String {
    [
        r#"{"customer_id":"G-1","name":"Ann <script>","amount":10.5}"#,
        r#"{"customer_id":"G-2","name":"Bo ]","amount":20,"divisor":4}"#,
        r#"{"customer_id":"G-3","name":"Cy","amount":30,"pages":2}"#,
    ]
    .map(|l| format!("{l}\n"))
    .concat()
}

/// What a case expects.
enum Want {
    /// The whole run refused: exit 2, nothing written, stderr saying this.
    Refused(&'static str),
    /// The run finished with these records failed, each reason containing
    /// the words given; every other record rendered.
    Failed(Vec<(&'static str, &'static str)>),
}

/// Changes a layout file's text (`None`: the file is left out).
type Edit = dyn Fn(&str, String) -> Option<String>;

struct Case {
    name: &'static str,
    file: &'static str,
    data: Box<dyn Fn(&Path)>,
    layout_edit: Box<Edit>,
    want: Want,
}

fn data_case(
    name: &'static str,
    file: &'static str,
    content: impl Fn() -> Vec<u8> + 'static,
    want: Want,
) -> Case {
    Case {
        name,
        file,
        data: Box::new(move |p: &Path| std::fs::write(p, content()).unwrap()),
        layout_edit: Box::new(|_, t| Some(t)),
        want,
    }
}

fn csv(rows: &[&str]) -> Vec<u8> {
    let mut s = HEADER.to_owned();
    for r in GOOD_CSV.iter().chain(rows) {
        s.push_str(r);
    }
    s.into_bytes()
}

fn jsonl(lines: &[&str]) -> Vec<u8> {
    let mut s = good_jsonl();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.into_bytes()
}

fn layout_case(
    name: &'static str,
    edit: impl Fn(&str, String) -> Option<String> + 'static,
    want: &'static str,
) -> Case {
    Case {
        name,
        file: "data.csv",
        data: Box::new(|p: &Path| std::fs::write(p, csv(&[])).unwrap()),
        layout_edit: Box::new(edit),
        want: Want::Refused(want),
    }
}

fn cases() -> Vec<Case> {
    use Want::*;
    vec![
        data_case(
            "empty file",
            "data.csv",
            Vec::new,
            Refused("the file is empty"),
        ),
        data_case(
            "header only",
            "data.csv",
            || HEADER.as_bytes().to_vec(),
            Refused("has no records (only a header row)"),
        ),
        data_case(
            "unbalanced quotes",
            "data.csv",
            || csv(&["B-1,\"Open quote,5,,,,,\n", "B-2,x,1,,,,,\n"]),
            Failed(vec![("line 5", "unbalanced quotes or a wrong delimiter?")]),
        ),
        data_case(
            "wrong delimiter",
            "data.csv",
            || b"customer_id;name;amount\nG-1;Ann;10\n".to_vec(),
            Refused("the header seems to be separated by `;`"),
        ),
        data_case(
            "byte order mark",
            "data.csv",
            || {
                let mut b = vec![0xEF, 0xBB, 0xBF];
                b.extend(csv(&[]));
                b
            },
            Failed(vec![]),
        ),
        data_case(
            "invalid UTF-8 in a row",
            "data.csv",
            || {
                let mut b = csv(&[]);
                b.extend_from_slice(b"B-1,Caf\xe9,5,,,,,\n");
                b
            },
            Failed(vec![("line 5", "not valid UTF-8")]),
        ),
        data_case(
            "a 10 MB field",
            "data.jsonl",
            || {
                let name = "A".repeat(10 << 20);
                jsonl(&[&format!(
                    r#"{{"customer_id":"B-1","name":"{name}","amount":1}}"#
                )])
            },
            Failed(vec![(
                "B-1 (line 4)",
                "field `name`: 10485760 characters, more than its max_length of 200",
            )]),
        ),
        data_case(
            "JSON syntax error in one line",
            "data.jsonl",
            || {
                jsonl(&[
                    r#"{"customer_id":"B-1","name":"x","amount":1"#,
                    r#"{"customer_id":"G-4","name":"Di","amount":4}"#,
                ])
            },
            Failed(vec![("line 4", "invalid JSON: EOF while parsing")]),
        ),
        data_case(
            "deeply nested JSON",
            "data.jsonl",
            || {
                jsonl(&[&format!(
                    r#"{{"customer_id":"B-1","name":{}1{},"amount":1}}"#,
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                )])
            },
            Failed(vec![("line 4", "recursion limit exceeded")]),
        ),
        data_case(
            "duplicate ids",
            "data.csv",
            || csv(&["G-2,Again,1,,,,,\n"]),
            Failed(vec![(
                "G-2 (line 5)",
                "duplicate record id (first used at line 3)",
            )]),
        ),
        data_case(
            "a number out of range",
            "data.jsonl",
            || jsonl(&[r#"{"customer_id":"B-1","name":"x","amount":1e400}"#]),
            Failed(vec![("line 4", "number out of range")]),
        ),
        data_case(
            "a date out of range",
            "data.csv",
            || csv(&["B-1,x,1,,2026-13-45,,,\n"]),
            Failed(vec![("B-1 (line 5)", "field `due`")]),
        ),
        data_case(
            "a value the template divides by",
            "data.csv",
            || csv(&["B-1,x,1,0,,,,\n"]),
            Failed(vec![("B-1 (line 5)", "cannot divide by zero")]),
        ),
        data_case(
            "a template loop that never ends",
            "data.csv",
            || csv(&["B-1,x,1,,,,true,\n"]),
            Failed(vec![("B-1 (line 5)", "loop seems to be infinite")]),
        ),
        data_case(
            "a template that is slow for one record's data",
            "data.csv",
            || csv(&["B-1,x,1,,,,,true\n", "G-4,Di,4,,,,,\n"]),
            Failed(vec![(
                "B-1 (line 5)",
                "rendering took longer than the limit of 3 s (--doc-timeout)",
            )]),
        ),
        data_case(
            "thousands of pages",
            "data.csv",
            || csv(&["B-1,x,1,,,5000,,\n"]),
            Failed(vec![(
                "B-1 (line 5)",
                "has 5001 pages, more than the layout's limit of 5",
            )]),
        ),
        layout_case(
            "a missing layout file",
            |name, t| (name != "letter.typ").then_some(t),
            "letter.typ",
        ),
        layout_case(
            "a YAML syntax error",
            |name, t| {
                Some(if name == "layout.yaml" {
                    t.replace("title: Robustness", "title: [Robustness")
                } else {
                    t
                })
            },
            "layout.yaml",
        ),
        layout_case(
            "a Typst syntax error",
            |name, t| {
                Some(if name == "letter.typ" {
                    t.replace("you owe #r.amount.", "you owe #(r.amount.")
                } else {
                    t
                })
            },
            "letter.typ:5",
        ),
    ]
}

#[test]
fn every_kind_of_bad_input_is_named_and_survived() {
    let dir = scratch("bad-input");
    for (n, case) in cases().into_iter().enumerate() {
        let case_dir = dir.join(format!("{n:02}"));
        std::fs::create_dir_all(&case_dir).unwrap();
        let layouts = layouts(&case_dir, &*case.layout_edit);
        let data = case_dir.join(case.file);
        (case.data)(&data);
        let out = case_dir.join("out");
        let res = run_layout_with(&layouts, "robust@1", &data, &out, &["--doc-timeout", "3"]);
        let what = format!("{}: {}", case.name, describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        match case.want {
            Want::Refused(words) => {
                assert_eq!(res.status.code(), Some(2), "{what}");
                assert!(err.contains(words), "{what}\nwant: {words}");
                assert!(!out.exists(), "{what}: nothing may be written");
            }
            Want::Failed(failures) => {
                let want_code = if failures.is_empty() { 0 } else { 1 };
                assert_eq!(res.status.code(), Some(want_code), "{what}");
                let m = manifest(&out);
                let docs = m["documents"].as_array().unwrap();
                assert_eq!(m["totals"]["records"], m["input"]["records"], "{what}");
                assert_eq!(docs.len(), m["input"]["records"].as_u64().unwrap() as usize);
                let failed: Vec<&str> = docs
                    .iter()
                    .filter(|d| d["status"] == "failed")
                    .map(|d| d["error"].as_str().unwrap())
                    .collect();
                assert_eq!(failed.len(), failures.len(), "{what}: {failed:#?}");
                for ((who, why), got) in failures.iter().zip(&failed) {
                    assert!(
                        got.contains(who) && got.contains(why),
                        "{what}\nwant {who:?} and {why:?} in {got:?}"
                    );
                }
                // Every good record rendered, its PDF readable.
                for id in ["G-1", "G-2", "G-3"] {
                    let d = docs
                        .iter()
                        .find(|d| d["record_id"] == id && d["status"] == "rendered")
                        .unwrap_or_else(|| panic!("{what}: {id} did not render"));
                    let text = pdftotext(&out.join(d["path"].as_str().unwrap()));
                    assert!(text.contains("you owe"), "{what}: {id}: {text}");
                }
            }
        }
    }
}

/// A line of 1 GB without a newline is not read whole: the record fails,
/// the records before it render, and the process stays small.
#[test]
fn a_gigabyte_line_fails_its_record_without_being_read_whole() {
    let dir = scratch("bad-input-1gb");
    let layouts = layouts(&dir, &|_, t| Some(t));
    let data = dir.join("data.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
    f.write_all(&good_jsonl().into_bytes()).unwrap();
    f.write_all(br#"{"customer_id":"B-1","name":""#).unwrap();
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..1024 {
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let out = dir.join("out");
    let res = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M"])
        .arg(env!("CARGO_BIN_EXE_letterpress"))
        .env("LETTERPRESS_LAYOUTS", &layouts)
        .args(["run", "--layout", "robust@1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--as-of", "2026-11-22"])
        .output()
        .expect("GNU time is installed (package time)");
    let _ = std::fs::remove_file(&data);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    let rss: u64 = err
        .split("maxrss_kb=")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap();
    assert!(rss < 300 * 1024, "peak RSS {rss} KB");
    let m = manifest(&out);
    assert_eq!(m["totals"]["rendered"], 3);
    let failed = m["documents"][3]["error"].as_str().unwrap();
    assert!(
        failed.contains("line 4") && failed.contains("larger than 64 MiB"),
        "{failed}"
    );
}
