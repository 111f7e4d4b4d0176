//! Crash safety: a run killed with SIGKILL at any point resumes (`--resume`)
//! to exactly the manifest and files of an uninterrupted run; a second run
//! into the same folder is refused while the first holds it; a resume with
//! other inputs or options is refused, naming what changed.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const RECORDS: usize = 5000;

/// 5,000 records for the minimal benchmark layout; a few are invalid (no
/// last name) and one repeats an id, so failed entries are journaled too.
fn data(dir: &Path) -> PathBuf {
    let path = dir.join("records.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..RECORDS {
        let id = if i == 4000 {
            "C-00010".to_string()
        } else {
            format!("C-{i:05}")
        };
        let last = if i % 997 == 5 {
            serde_json::Value::Null
        } else {
            format!("Lee-{i} #set text(red) ]").into()
        };
        let rec = serde_json::json!({"customer_id": id, "first_name": "Ann", "last_name": last});
        writeln!(f, "{rec}").unwrap();
    }
    f.flush().unwrap();
    path
}

fn layouts() -> PathBuf {
    root().join("benches/layouts")
}

fn run_args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = run_cmd(
        "minimal@1",
        data,
        out,
        &["--as-of", "2026-11-22", "--jobs", "2"],
    );
    args.extend_from_slice(extra);
    args
}

fn spawn(data: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_letterpress"))
        .env("LETTERPRESS_LAYOUTS", layouts())
        .args(run_args(data, out, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn journal_lines(out: &Path) -> usize {
    std::fs::read(out.join("documents.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// The letters a run has written so far (its journal may lag behind: it
/// reaches the disk in batches).
fn letters_written(out: &Path) -> usize {
    std::fs::read_dir(out.join("pdf")).map_or(0, |dir| {
        dir.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pdf"))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Starts a run and kills it with SIGKILL once it has written `lines`
/// letters (0: as soon as it has started writing, when its state file is
/// there: on a busy machine a fixed delay could kill it before that).
/// Counting letters rather than journal lines kills it in the window where
/// files are on disk that the journal does not list yet, and near the end
/// before it finishes (the journal's last lines reach the disk only then).
fn kill_at(data: &Path, out: &Path, lines: usize, extra: &[&str]) {
    let mut child = spawn(data, out, extra);
    let start = Instant::now();
    if lines == 0 {
        while !out.join("run-state.json").exists() {
            assert!(child.try_wait().unwrap().is_none(), "the run ended first");
            assert!(start.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(1));
        }
    } else {
        while letters_written(out) < lines {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before it was killed at {lines}"
            );
            assert!(start.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !out.join("manifest.json").exists(),
        "the run finished before it was killed at {lines}"
    );
}

/// Everything a finished run must be, compared with an uninterrupted run.
fn assert_same_as_clean(out: &Path, clean: &Path, what: &str) {
    let journal = std::fs::read(out.join("documents.jsonl")).unwrap();
    assert!(
        journal == std::fs::read(clean.join("documents.jsonl")).unwrap(),
        "{what}: documents.jsonl differs from the uninterrupted run's"
    );
    assert_eq!(stable_manifest(out), stable_manifest(clean), "{what}");
    let m = manifest(out);
    let docs = m["documents"].as_array().unwrap();
    // Every record exactly once, in input order.
    assert_eq!(docs.len(), RECORDS, "{what}");
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["index"], i, "{what}");
    }
    // Every file there with the recorded hash, and nothing else.
    let mut files = HashSet::new();
    for d in docs.iter().filter(|d| d["status"] == "rendered") {
        let rel = d["path"].as_str().unwrap();
        assert!(files.insert(rel.to_owned()), "{what}: {rel} twice");
        assert_eq!(
            sha256_file(&out.join(rel)),
            d["sha256"].as_str().unwrap(),
            "{what}: {rel}"
        );
    }
    for entry in walkdir::WalkDir::new(out).min_depth(1) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(out).unwrap().to_string_lossy();
        assert!(
            files.contains(rel.as_ref())
                || ["manifest.json", "documents.jsonl", "report.html"].contains(&rel.as_ref())
                || rel.starts_with("approval/"),
            "{what}: unexpected file {rel} (temporary, state or lock file left?)"
        );
    }
    let res = letterpress_with_layouts(&layouts(), &["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{what}: {}", describe(&res));
}

fn resume(data: &Path, out: &Path) -> String {
    let res = letterpress_with_layouts(&layouts(), &run_args(data, out, &["--resume"]));
    // Some records are invalid: exit 1, as for the uninterrupted run.
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    String::from_utf8_lossy(&res.stderr).into_owned()
}

#[test]
fn runs_killed_at_any_point_resume_to_the_uninterrupted_result() {
    let dir = scratch("resume-kill");
    let data = data(&dir);
    let clean = dir.join("clean");
    let res = letterpress_with_layouts(&layouts(), &run_args(&data, &clean, &[]));
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert_eq!(manifest(&clean)["totals"]["failed"], 7);

    for at in [0, 400, 2500, 4900] {
        let out = dir.join(format!("killed-{at}"));
        kill_at(&data, &out, at, &[]);
        let said = resume(&data, &out);
        assert!(said.contains("resumed: kept"), "{said}");
        assert_same_as_clean(&out, &clean, &format!("killed at {at}"));
    }

    // Killed twice: once in the first attempt, once while resuming.
    let out = dir.join("killed-twice");
    kill_at(&data, &out, 1000, &[]);
    kill_at(&data, &out, 3000, &["--resume"]);
    resume(&data, &out);
    assert_same_as_clean(&out, &clean, "killed twice");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["resumed"].as_array().unwrap().len(), 2, "{m}");

    // As after a power cut: the journal's last line torn, a letter that the
    // journal lists lost its content, and a temporary file left behind.
    let out = dir.join("power-cut");
    kill_at(&data, &out, 3000, &[]);
    let journal = out.join("documents.jsonl");
    let bytes = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &bytes[..bytes.len() - 20]).unwrap();
    std::fs::write(out.join("pdf/C-00100.pdf"), b"").unwrap();
    std::fs::write(out.join("pdf/.lp-tmp-1-C-02999.pdf"), b"%PDF-half").unwrap();
    // ... one of the approval's copies too (killed while it copied them).
    std::fs::create_dir_all(out.join("approval")).unwrap();
    std::fs::write(out.join("approval/.lp-tmp-1-trust.yaml"), b"peop").unwrap();
    let said = resume(&data, &out);
    assert!(
        said.contains("pdf/C-00100.pdf differs from its journal entry"),
        "{said}"
    );
    assert_same_as_clean(&out, &clean, "power cut");

    // A journal edited by hand: a complete record's line copied to its
    // end. The copy is cut, not kept as a second entry of that record.
    let out = dir.join("duplicated");
    kill_at(&data, &out, 2000, &[]);
    let journal = out.join("documents.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    // Whole lines only (a kill may have cut the last one).
    text.truncate(text.rfind('\n').unwrap() + 1);
    let first = text.lines().next().unwrap().to_owned();
    std::fs::write(&journal, text + &first + "\n").unwrap();
    resume(&data, &out);
    let cut = manifest(&out)["resumed"][0]["cut"].to_string();
    assert!(cut.contains("twice"), "{cut}");
    assert_same_as_clean(&out, &clean, "a journal line duplicated");
}

#[test]
fn a_held_folder_and_a_changed_resume_are_refused_with_reasons() {
    let dir = scratch("resume-refuse");
    let data = data(&dir);
    let out = dir.join("out");

    // A second run into a folder a live run holds: exit 2, naming it.
    let mut first = spawn(&data, &out, &[]);
    let start = Instant::now();
    while journal_lines(&out) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    let res = letterpress_with_layouts(&layouts(), &run_args(&data, &out, &["--resume"]));
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("on host"),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();

    // Without --resume, an unfinished run is not overwritten.
    let res = letterpress_with_layouts(&layouts(), &run_args(&data, &out, &[]));
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("add --resume"));

    // Resuming with something else changed names it, and writes nothing.
    let before = std::fs::read(out.join("documents.jsonl")).unwrap();
    let refused = |args: Vec<&str>, layouts: &Path, want: &str| {
        let res = letterpress_with_layouts(layouts, &args);
        let err = String::from_utf8_lossy(&res.stderr).into_owned();
        assert_eq!(res.status.code(), Some(2), "{want}: {}", describe(&res));
        assert!(
            err.contains("cannot resume") && err.contains(want),
            "{want}: {err}"
        );
    };
    let mut other = std::fs::read(&data).unwrap();
    other
        .extend_from_slice(b"{\"customer_id\":\"X-1\",\"first_name\":\"A\",\"last_name\":\"B\"}\n");
    let other_data = dir.join("other.jsonl");
    std::fs::write(&other_data, other).unwrap();
    let mut args = run_args(&other_data, &out, &["--resume"]);
    refused(args.clone(), &layouts(), "the input file");
    args = run_args(&data, &out, &["--resume"]);
    let date = args.iter().position(|a| *a == "2026-11-22").unwrap();
    args[date] = "2026-11-23";
    refused(args, &layouts(), "--as-of (was 2026-11-22, now 2026-11-23)");
    refused(
        run_args(&data, &out, &["--resume", "--pdf-standard", "ua-1"]),
        &layouts(),
        "--pdf-standard",
    );
    let changed = dir.join("layouts");
    copy_tree(&layouts(), &changed);
    let letter = changed.join("minimal/1/letter.typ");
    let mut typ = std::fs::read_to_string(&letter).unwrap();
    typ.push_str("\n// reworded\n");
    std::fs::write(&letter, typ).unwrap();
    approve(&changed, "minimal@1");
    refused(
        run_args(&data, &out, &["--resume"]),
        &changed,
        "the layout's files",
    );
    assert_eq!(std::fs::read(out.join("documents.jsonl")).unwrap(), before);

    // The same command resumes, and once finished, resuming does nothing.
    resume(&data, &out);
    let manifest_before = std::fs::read(out.join("manifest.json")).unwrap();
    let said = resume(&data, &out);
    assert!(said.contains("had already finished"), "{said}");
    assert_eq!(
        std::fs::read(out.join("manifest.json")).unwrap(),
        manifest_before
    );
}

/// A print run killed while rendering resumes to the same print files and
/// job ticket: they are made after the last letter, from the journal, with
/// the pages of the letters rendered before the stop laid out again.
#[test]
fn a_killed_print_run_resumes_to_the_same_print_files() {
    let dir = scratch("resume-print");
    let full = data(&dir);
    let data = dir.join("first-2000.jsonl");
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.lines().take(2000).collect();
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let clean = dir.join("clean");
    let res = letterpress_with_layouts(&layouts(), &run_args(&data, &clean, &["--print"]));
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    // Killed while rendering, and at three moments of making the print
    // files; each resumed run ends as the clean one did.
    let out = dir.join("killed");
    kill_at(&data, &out, 800, &["--print"]);
    resume_print(&data, &out, &clean, ("killed while rendering", true));
    let mut in_print = 0;
    // The print files of 2,000 letters take a few hundred milliseconds
    // (their pages were kept when the letters were laid out).
    for delay in [0, 40, 100, 200] {
        let out = dir.join(format!("killed-in-print-{delay}"));
        let killed = kill_in_print(&data, &out, Duration::from_millis(delay));
        in_print += usize::from(killed);
        let what = format!("killed {delay} ms into the print files");
        resume_print(&data, &out, &clean, (&what, killed));
    }
    assert!(
        in_print >= 2,
        "killed while making print files {in_print} times"
    );
}

/// Starts a print run and kills it (SIGKILL) `delay` after it begins the
/// print files; false when it finished first.
fn kill_in_print(data: &Path, out: &Path, delay: Duration) -> bool {
    let mut child = spawn(data, out, &["--print"]);
    let start = Instant::now();
    while !out.join("print").exists() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    child.wait().unwrap();
    !out.join("manifest.json").exists()
}

/// Resumes a killed print run and compares it with the clean run: the
/// journal byte for byte, and every file of print/ byte for byte once the
/// run id (in the DataMatrix codes, the document parts and the MRDF: the
/// resumed run keeps its first attempt's id) is blanked out.
fn resume_print(data: &Path, out: &Path, clean: &Path, (what, killed): (&str, bool)) {
    let res = letterpress_with_layouts(&layouts(), &run_args(data, out, &["--print", "--resume"]));
    assert_eq!(res.status.code(), Some(1), "{what}: {}", describe(&res));
    // The records kept for the print files are gone once they are made.
    assert!(
        !out.join("print-records.jsonl").exists(),
        "{what}: spool left"
    );
    assert!(
        std::fs::read(out.join("documents.jsonl")).unwrap()
            == std::fs::read(clean.join("documents.jsonl")).unwrap(),
        "{what}: the journal, with every letter's piece"
    );
    // The clean run took every page from the letters' one layout; the
    // resumed one laid out again the letters its first attempt rendered,
    // and its print files are the same bytes all the same.
    let again = |dir: &Path| manifest(dir)["print"]["laid_out_again"].as_u64().unwrap();
    assert_eq!(again(clean), 0, "{what}");
    if killed {
        assert!(again(out) > 0, "{what}: {}", again(out));
    }
    let run_id = |dir: &Path| manifest(dir)["run_id"].as_str().unwrap().to_owned();
    let (clean_id, out_id) = (run_id(clean), run_id(out));
    assert_eq!(clean_id.len(), out_id.len());
    let blank = |bytes: Vec<u8>, id: &str| -> Vec<u8> {
        let mut b = bytes;
        let id = id.as_bytes();
        let mut i = 0;
        while i + id.len() <= b.len() {
            if &b[i..i + id.len()] == id {
                b[i..i + id.len()].fill(b'X');
                i += id.len();
            } else {
                i += 1;
            }
        }
        b
    };
    let mut files = 0;
    for entry in std::fs::read_dir(clean.join("print")).unwrap() {
        let name = entry.unwrap().file_name();
        files += 1;
        let read =
            |dir: &Path, id: &str| blank(std::fs::read(dir.join("print").join(&name)).unwrap(), id);
        assert!(
            read(out, &out_id) == read(clean, &clean_id),
            "{what}: {name:?} differs"
        );
    }
    assert!(files >= 4, "print files, MRDF and ticket: {files}");
    let names = |dir: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir.join("print"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(out),
        names(clean),
        "{what}: no temporary file is left"
    );
    let res = letterpress_with_layouts(&layouts(), &["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{what}: {}", describe(&res));
}

/// A lock left by a run of this host that no longer runs (killed, a power
/// cut) is taken over, and the operator is told whose it was; a live
/// holder's lock refuses the run and names it.
#[test]
fn a_stale_lock_is_taken_over_and_said_so_a_live_one_refuses() {
    let dir = scratch("stale-lock");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let data = root().join("fixtures/customers.csv");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["--log-format", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(
            run_cmd(
                "welcome-letter@2",
                data.to_str().unwrap(),
                out.to_str().unwrap(),
                extra,
            )
            .into_iter()
            .map(str::to_owned),
        );
        a
    };
    // Alive: this test's own process.
    std::fs::write(
        out.join(".run.lock"),
        format!("{} {host} 2026-01-01T00:00:00Z\n", std::process::id()),
    )
    .unwrap();
    let a = args(&["--as-of", "2026-11-22"]);
    let res = letterpress(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // Dead: a pid beyond pid_max.
    std::fs::write(
        out.join(".run.lock"),
        format!("4999999 {host} 2026-01-01T00:00:00Z\n"),
    )
    .unwrap();
    let res = letterpress(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let warning = String::from_utf8_lossy(&res.stderr)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "lock_taken_over")
        .unwrap_or_else(|| panic!("no lock_taken_over event: {}", describe(&res)));
    assert!(
        warning["message"].as_str().unwrap().contains("pid 4999999"),
        "{warning}"
    );
    assert!(!out.join(".run.lock").exists(), "released at the end");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run killed after sealing its manifest but before removing its state
/// file and writing its report: `--resume` tidies up, and verify is clean.
#[test]
fn a_run_killed_after_its_manifest_is_tidied_by_resume() {
    let dir = scratch("resume-tidy");
    let data = root().join("fixtures/customers.csv");
    let out = dir.join("out");
    let res = run_layout("welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // The state as a kill at that moment leaves it.
    std::fs::write(out.join("run-state.json"), b"{}").unwrap();
    std::fs::remove_file(out.join("report.html")).unwrap();
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{}", describe(&v));
    let res = run_layout("welcome-letter", &data, &out, &["--resume"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(!out.join("run-state.json").exists());
    assert!(out.join("report.html").exists());
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
}

#[test]
fn a_killed_run_with_web_letters_resumes_to_the_same_result() {
    // The benchmark layout, made to give a web letter too.
    let dir = scratch("resume-web");
    let layouts = dir.join("layouts");
    copy_tree(&self::layouts(), &layouts);
    let letter = layouts.join("minimal/1/letter.typ");
    let text = std::fs::read_to_string(&letter).unwrap().replace(
        "#set page(paper: \"a4\")",
        "#import \"/letterpress/format.typ\": web\n#set page(paper: \"a4\") if not web",
    );
    std::fs::write(&letter, text).unwrap();
    approve_on(&layouts, "minimal@1", "2026-11-22");
    let data = data(&dir);
    let run = |out: &Path, resume: bool| {
        let mut args = run_args(&data, out, &["--channels", "pdf,web"]);
        if resume {
            args.push("--resume");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_letterpress"));
        cmd.env("LETTERPRESS_LAYOUTS", &layouts).args(args);
        cmd
    };
    let clean = dir.join("clean");
    let res = run(&clean, false).output().unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert_eq!(
        manifest(&clean)["totals"]["channels"]["web"]["rendered"],
        4993
    );

    let out = dir.join("killed");
    let mut child = run(&out, false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let web_written = || std::fs::read_dir(out.join("web")).map_or(0, |d| d.count());
    while web_written() < 2000 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists(), "killed before the end");
    let res = run(&out, true).output().unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert!(
        std::fs::read(out.join("documents.jsonl")).unwrap()
            == std::fs::read(clean.join("documents.jsonl")).unwrap(),
        "the resumed journal is the uninterrupted run's"
    );
    let res = letterpress_with_layouts(&layouts, &["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

/// A print run whose records go partly by email only: those are rendered
/// first, in input order, then the letters in mailing order. Killed among
/// the letters, it resumes to the same journal and print files; the journal
/// lists the email-only records in input order, then the letters in the
/// ticket's order.
#[test]
fn a_print_run_with_email_only_records_resumes_in_mailing_order() {
    let dir = scratch("resume-print-mixed");
    let path = welcome_records(&dir.join("raw.jsonl"), 1200, 7);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            r["contact_preference"] = (if i % 3 == 0 { "email" } else { "print" }).into();
            r
        })
        .collect();
    let data = dir.join("records.jsonl");
    write_jsonl(&data, &records);
    let layouts = root().join("layouts");
    let args = |out: &Path, more: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--layout",
            "welcome-letter@4",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--as-of",
            "2026-12-06",
            "--jobs",
            "2",
            "--channels",
            "pdf,email",
            "--print",
        ]
        .map(str::to_owned)
        .to_vec();
        a.extend(more.iter().map(|s| s.to_string()));
        a
    };
    let run = |out: &Path, more: &[&'static str]| {
        let a = args(out, more);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        letterpress_with_layouts(&layouts, &a)
    };
    let clean = dir.join("clean");
    let res = run(&clean, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(clean.join("documents.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pdf: Vec<&serde_json::Value> = entries.iter().filter(|e| e["channel"] == "pdf").collect();
    let email_only = pdf.iter().filter(|e| e["status"] != "rendered").count();
    assert_eq!(email_only, 400);
    // Email-only records first, in input order; then the letters in the
    // order of their pieces.
    let index = |e: &serde_json::Value| e["index"].as_u64().unwrap();
    assert!(pdf[..email_only]
        .windows(2)
        .all(|w| index(w[0]) < index(w[1])));
    assert!(pdf[..email_only].iter().all(|e| e["status"] != "rendered"));
    let pieces: Vec<u64> = pdf[email_only..]
        .iter()
        .map(|e| e["piece"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(pieces, (1..=800).collect::<Vec<u64>>());
    // Negative control: mailing order is not input order here.
    assert!(pdf[email_only..]
        .windows(2)
        .any(|w| index(w[0]) > index(w[1])));

    // Killed once 300 letters are written: the email-only records and
    // some letters are done, out of input order.
    let out = dir.join("killed");
    let a = args(&out, &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_letterpress"))
        .env("LETTERPRESS_LAYOUTS", &layouts)
        .args(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while letters_written(&out) < 300 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists());
    let res = run(&out, &["--resume"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        std::fs::read(out.join("documents.jsonl")).unwrap()
            == std::fs::read(clean.join("documents.jsonl")).unwrap(),
        "the resumed journal differs"
    );
    let m = manifest(&out);
    assert!(!m["resumed"].as_array().unwrap().is_empty());
    assert!(m["print"]["laid_out_again"].as_u64().unwrap() > 0);
    assert_eq!(manifest(&clean)["print"]["laid_out_again"], 0);
    // The DataMatrix codes carry the run id, so the print files are
    // compared by their text and their fonts: the same subsets (named by
    // their glyphs) in the same objects only if the same letters were
    // exported together.
    let tool = |cmd: &str, dir: &Path| {
        let res = Command::new(cmd)
            .arg(dir.join("print/print-001.pdf"))
            .arg("-")
            .output()
            .unwrap();
        assert!(res.status.success(), "{cmd}: {}", describe(&res));
        res.stdout
    };
    assert!(tool("pdftotext", &out) == tool("pdftotext", &clean));
    let fonts = |dir: &Path| {
        let res = Command::new("pdffonts")
            .arg(dir.join("print/print-001.pdf"))
            .output()
            .unwrap();
        String::from_utf8(res.stdout).unwrap()
    };
    assert!(fonts(&clean).lines().count() > 40, "{}", fonts(&clean));
    assert_eq!(fonts(&out), fonts(&clean));
    let ticket = |dir: &Path| std::fs::read_to_string(dir.join("print/job-ticket.csv")).unwrap();
    assert_eq!(ticket(&out), ticket(&clean));
}
