//! The examples of the README and of the book (`docs/src/`) run, so the
//! manual cannot drift from the tool: every fenced block whose language is
//! `console` is a sequence of commands (`$ ...`), each followed by the
//! output it shows (stdout and stderr together) and, when it is not 0, its
//! exit code (`? 2`). Shown output is compared line by line: `...` inside a
//! line stands for any text, a line that is only `...` for any number of
//! lines; a command that shows nothing is checked for its exit code only.
//!
//! The blocks of one page run in order, in a scratch folder of their own
//! holding a copy of the repository's `layouts/` and its `fixtures/`, with
//! `letterpress` on the `PATH` as this build's binary (and `cargo run
//! --release --` written as `letterpress`), through `sh -c`, so a page's
//! examples read as a session at a terminal. Other blocks (`sh`, `yaml`,
//! `text`, ...) are not run.
//!
//! Why not trycmd, the crate the field uses for this: its markdown cases
//! run in the page's own folder, or in a copy of a `<page>.in` folder beside
//! it; these examples need the sample layouts and data and write run
//! folders, which would mean committing a copy of both beside every page.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// One command of a `console` block.
#[derive(Debug)]
struct Step {
    /// Where it is: `file:line`.
    at: String,
    command: String,
    shown: Vec<String>,
    code: i32,
}

/// The commands of every `console` block of `text`, in order.
fn steps(file: &str, text: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut fence = "";
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if fence.is_empty() {
            if let Some(info) = trimmed.strip_prefix("```") {
                fence = "```";
                in_console = info.trim() == "console";
            }
            continue;
        }
        if trimmed.starts_with(fence) {
            fence = "";
            in_console = false;
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            out.push(Step {
                at: format!("{file}:{}", i + 1),
                command: command.to_owned(),
                shown: Vec::new(),
                code: 0,
            });
        } else if let (Some(code), Some(step)) = (line.strip_prefix("? "), out.last_mut()) {
            step.code = code.trim().parse().expect("`? CODE` is a number");
        } else if let Some(step) = out.last_mut() {
            step.shown.push(line.to_owned());
        } else {
            panic!("{file}:{}: a console block starts with `$ COMMAND`", i + 1);
        }
    }
    out
}

/// Whether `line` matches `pattern`, where `...` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the output `lines` are what `shown` shows (see the module docs).
fn output_matches(shown: &[String], lines: &[&str]) -> bool {
    match shown.split_first() {
        None => lines.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=lines.len()).any(|skip| output_matches(rest, &lines[skip..]))
        }
        Some((first, rest)) => {
            !lines.is_empty() && line_matches(first, lines[0]) && output_matches(rest, &lines[1..])
        }
    }
}

/// A scratch folder for a page: the layouts copied, the fixtures linked,
/// `bin/letterpress` this build's binary.
fn session(name: &str) -> PathBuf {
    let dir = scratch(&format!("examples-{name}"));
    copy_tree(&root().join("layouts"), &dir.join("layouts"));
    std::fs::copy(root().join("trust.yaml"), dir.join("trust.yaml")).unwrap();
    std::os::unix::fs::symlink(root().join("fixtures"), dir.join("fixtures")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(bin(), dir.join("bin/letterpress")).unwrap();
    dir
}

/// Runs the examples of the page `rel` (relative to the repository); the
/// failures, one message each.
fn run_page(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let steps = steps(rel, &text);
    if steps.is_empty() {
        return Vec::new();
    }
    let dir = session(&rel.replace(['/', '.'], "-"));
    // A page that sends to the local relay a reader would start gets one.
    let _relay = text.contains("127.0.0.1:2525").then(local_relay);
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for step in &steps {
        let command = match step.command.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("letterpress {rest}"),
            None => step.command.clone(),
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("exec 2>&1; {command}"))
            .current_dir(&dir)
            .env("PATH", &path)
            .env_remove("LETTERPRESS_LAYOUTS")
            .env_remove("LETTERPRESS_TRUST")
            .env_remove("LETTERPRESS_ADDRESS_KEY_FILE")
            .env_remove("LETTERPRESS_CONTACTS")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let code = out.status.code().unwrap_or(-1);
        let shown_ok = step.shown.is_empty() || output_matches(&step.shown, &lines);
        if code != step.code || !shown_ok {
            failures.push(format!(
                "{}: `{}` exited {code} (the page says {}){}\n--- it printed:\n{text}",
                step.at,
                step.command,
                step.code,
                match shown_ok {
                    true => String::new(),
                    false => format!("\n--- the page shows:\n{}", step.shown.join("\n")),
                }
            ));
        }
    }
    failures
}

/// Debian's aiosmtpd on 127.0.0.1:2525, as the book tells a reader to
/// start it, stopped when dropped.
struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn local_relay() -> Relay {
    let child = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            "127.0.0.1:2525",
            "-c",
            "aiosmtpd.handlers.Sink",
        ])
        .spawn()
        .expect("python3-aiosmtpd is installed (see .ci/run)");
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", 2525)).is_err() {
        assert!(
            start.elapsed().as_secs() < 20,
            "the local relay did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Relay(child)
}

/// The markdown pages of the book.
fn book_pages() -> Vec<String> {
    let mut pages: Vec<String> = walkdir::WalkDir::new(root().join("docs/src"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| e.path().strip_prefix(root()).unwrap().display().to_string())
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_example_of_the_readme_runs() {
    let failures = run_page("README.md");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_example_of_the_book_runs() {
    let pages = book_pages();
    assert!(pages.len() > 10, "{pages:?}");
    let failures: Vec<String> = std::thread::scope(|s| {
        let halves: Vec<_> = pages
            .chunks(pages.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || chunk.iter().flat_map(|p| run_page(p)).collect::<Vec<_>>())
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_example_checker_catches_what_it_should() {
    let shown = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
    assert!(output_matches(
        &shown("a ... c\n...\nend"),
        &["a b c", "x", "y", "end"]
    ));
    assert!(output_matches(&shown("{...}"), &["{\"a\":1}"]));
    assert!(!output_matches(&shown("a ... c"), &["a b d"]));
    assert!(
        !output_matches(&shown("one"), &["one", "two"]),
        "every line is accounted for"
    );
    assert!(!output_matches(&shown("... intact"), &["3 problems"]));
    let s = steps(
        "t.md",
        "text\n```console\n$ letterpress x\nout ...\n? 2\n$ ls\n```\n```sh\n$ not run\n```\n",
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].code, s[0].shown.len(), s[0].at.as_str()),
        (2, 1, "t.md:3")
    );
    // A page whose example shows the wrong output, or the wrong exit code,
    // fails (a negative control of the harness on the real binary).
    let dir = scratch("examples-control");
    let page = dir.join("page.md");
    std::fs::write(
        &page,
        "```console\n$ letterpress layouts check\nall fine\n$ letterpress nonsense\n```\n",
    )
    .unwrap();
    let rel = page.display().to_string();
    let failures = run_page_at(&rel);
    assert_eq!(failures.len(), 2, "{failures:#?}");
}

/// [`run_page`] of a page given by its absolute path.
fn run_page_at(abs: &str) -> Vec<String> {
    run_page(
        Path::new(abs)
            .strip_prefix(root())
            .map_or(abs, |p| p.to_str().unwrap()),
    )
}
