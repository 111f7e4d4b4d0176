//! The environment is not the customer's fault: a disk that fills up or a
//! folder that cannot be written stops the run cleanly (exit 2, no record
//! failed) and `--resume` finishes it; SIGTERM and SIGINT stop a run
//! between records; `--jobs` past what the machine can use is refused before
//! anything is written; renames of the manifest and state are made durable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const RECORDS: usize = 3000;

/// 3,000 records for the minimal benchmark layout; `slow` names a record
/// whose first name makes the test layout's template spin.
fn data(dir: &Path, slow: Option<usize>) -> PathBuf {
    let path = dir.join("records.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..RECORDS {
        let first = if Some(i) == slow { "Slow" } else { "Ann" };
        let rec = serde_json::json!({"customer_id": format!("C-{i:05}"), "first_name": first, "last_name": format!("Lee-{i}")});
        writeln!(f, "{rec}").unwrap();
    }
    f.flush().unwrap();
    path
}

/// The benchmark layouts, with the minimal letter spinning (for ever) on a
/// record whose first name is `Slow`.
fn layouts(dir: &Path) -> PathBuf {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("benches/layouts"), &layouts);
    let letter = layouts.join("minimal/1/letter.typ");
    let text = std::fs::read_to_string(&letter).unwrap();
    std::fs::write(
        &letter,
        text + "\n#if r.first_name == \"Slow\" { for i in range(100000) { for j in range(100000) { } } }\n",
    )
    .unwrap();
    approve(&layouts, "minimal@1");
    layouts
}

fn args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = run_cmd(
        "minimal@1",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        &["--as-of", "2026-11-22", "--jobs", "2", "--progress", "none"],
    );
    args.extend_from_slice(extra);
    args
}

fn spawn(layouts: &Path, data: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(bin())
        .env("LETTERPRESS_LAYOUTS", layouts)
        .args(args(data, out, extra))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(layouts: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    letterpress_with_layouts(layouts, &args(data, out, extra))
}

fn journal_lines(out: &Path) -> usize {
    std::fs::read(out.join("documents.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

fn wait_for_lines(child: &mut Child, out: &Path, lines: usize) {
    let start = Instant::now();
    while journal_lines(out) < lines {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its journal had {lines} lines"
        );
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the child with a time limit; its output.
fn finish(child: Child, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    (out, start.elapsed())
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// No record is failed, every record is there once, and the journal is
/// byte for byte an uninterrupted run's.
fn same_as_uninterrupted(out: &Path, reference: &Path) {
    let m = manifest(out);
    assert_eq!(m["totals"]["records"], RECORDS);
    assert_eq!(m["totals"]["failed"], 0, "{}", m["totals"]);
    assert_eq!(
        std::fs::read(out.join("documents.jsonl")).unwrap(),
        std::fs::read(reference.join("documents.jsonl")).unwrap(),
        "the journal equals an uninterrupted run's"
    );
    let verify = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
}

/// The run, uninterrupted, for comparison.
fn reference(dir: &Path, layouts: &Path, data: &Path) -> PathBuf {
    let out = dir.join("reference");
    let res = run(layouts, data, &out, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    out
}

#[test]
fn an_output_folder_that_cannot_be_written_stops_the_run_and_resume_finishes_it() {
    let dir = scratch("env-folder");
    let layouts = layouts(&dir);
    let data = data(&dir, None);
    let reference = reference(&dir, &layouts, &data);
    let out = dir.join("out");
    let mut child = spawn(&layouts, &data, &out, &[]);
    wait_for_lines(&mut child, &out, 400);
    // The letters' folder goes away and a file takes its place, as a
    // mount that disappears would leave it.
    let away = dir.join("pdf-away");
    std::fs::rename(out.join("pdf"), &away).unwrap();
    std::fs::write(out.join("pdf"), b"not a folder").unwrap();
    let (res, _) = finish(child, Duration::from_secs(60));
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains(&format!("cannot write to {}", out.join("pdf").display()))
            && err.contains("--resume"),
        "{err}"
    );
    // Nothing in the journal is failed: what could not be written is not in it.
    let journal = std::fs::read_to_string(out.join("documents.jsonl")).unwrap();
    assert!(journal.lines().count() >= 400);
    assert!(!journal.contains("\"failed\""), "no record was failed");
    assert!(!out.join(".run.lock").exists(), "the lock is released");
    // The folder comes back; --resume renders the rest.
    std::fs::remove_file(out.join("pdf")).unwrap();
    std::fs::rename(&away, out.join("pdf")).unwrap();
    let res = run(&layouts, &data, &out, &["--resume"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    same_as_uninterrupted(&out, &reference);
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_and_resume_finishes_it() {
    let dir = scratch("env-full");
    let layouts = layouts(&dir);
    let data = data(&dir, None);
    let disk = dir.join("disk");
    // A real file system that fills up: a 3 MB tmpfs (root is needed to
    // mount one, as in CI; elsewhere this test has nothing to mount).
    let Some(fs) = Tmpfs::mount(&disk, "3m") else {
        eprintln!("cannot mount a tmpfs here (not root): the full-disk case is not exercised");
        return;
    };
    let reference = reference(&dir, &layouts, &data);
    let out = disk.join("out");
    let res = run(&layouts, &data, &out, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("No space left on device") && err.contains("--resume"),
        "{err}"
    );
    let kept = journal_lines(&out);
    assert!(kept < RECORDS, "{kept} entries before the disk was full");
    let journal = std::fs::read_to_string(out.join("documents.jsonl")).unwrap_or_default();
    assert!(!journal.contains("\"failed\""), "no record was failed");
    // A bigger disk, and the run finishes where it stopped.
    fs.resize("64m");
    let res = run(&layouts, &data, &out, &["--resume"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    same_as_uninterrupted(&out, &reference);
}

#[test]
fn sigterm_and_sigint_stop_a_run_between_records_and_resume_finishes_it() {
    let dir = scratch("env-signal");
    let layouts = layouts(&dir);
    let data = data(&dir, None);
    let reference = reference(&dir, &layouts, &data);
    for (name, code) in [("TERM", 143), ("INT", 130)] {
        let out = dir.join(format!("out-{name}"));
        let mut child = spawn(&layouts, &data, &out, &[]);
        wait_for_lines(&mut child, &out, 500);
        signal(&child, name);
        let (res, took) = finish(child, Duration::from_secs(60));
        assert_eq!(res.status.code(), Some(code), "{}", describe(&res));
        assert!(took < Duration::from_secs(5), "stopped promptly: {took:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("stopped by"))
            .unwrap_or_else(|| panic!("{err}"));
        let done = journal_lines(&out);
        assert_eq!(
            line,
            format!(
                "letterpress: warning: stopped by SIG{name} after {} of 3,000 records; resume with --resume",
                if done >= 1000 { format!("{},{:03}", done / 1000, done % 1000) } else { done.to_string() }
            ),
        );
        assert!(done < RECORDS);
        assert!(!out.join(".run.lock").exists(), "the lock is released");
        assert!(out.join("run-state.json").exists() && !out.join("manifest.json").exists());
        let res = run(&layouts, &data, &out, &["--resume"]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        same_as_uninterrupted(&out, &reference);
    }
}

#[test]
fn a_record_stuck_in_the_template_is_left_for_resume_and_a_second_signal_exits_at_once() {
    let dir = scratch("env-stuck");
    let layouts = layouts(&dir);
    let data = data(&dir, Some(600));
    // One signal: the records in hand get a few seconds, the stuck one is
    // dropped (not failed) and the run stops.
    let out = dir.join("out-one");
    let mut child = spawn(&layouts, &data, &out, &["--doc-timeout", "120"]);
    wait_for_lines(&mut child, &out, 590);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (res, took) = finish(child, Duration::from_secs(60));
    assert_eq!(res.status.code(), Some(143), "{}", describe(&res));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let journal = std::fs::read_to_string(out.join("documents.jsonl")).unwrap();
    assert!(
        !journal.contains("C-00600"),
        "the stuck record is not journaled"
    );
    assert!(!journal.contains("\"failed\""));
    assert!(!out.join(".run.lock").exists());
    // Two signals: the second ends the process at once.
    let out = dir.join("out-two");
    let mut child = spawn(&layouts, &data, &out, &["--doc-timeout", "120"]);
    wait_for_lines(&mut child, &out, 590);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    signal(&child, "TERM");
    let (res, _) = finish(child, Duration::from_secs(60));
    assert_eq!(res.status.code(), Some(143), "{}", describe(&res));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
}

#[test]
fn too_many_jobs_is_a_usage_error_before_anything_is_written() {
    let dir = scratch("env-jobs");
    let data = root().join("fixtures/customers.csv");
    for jobs in ["100000", "0"] {
        let out = dir.join(format!("out-{jobs}"));
        let res = run_layout("welcome-letter", &data, &out, &["--jobs", jobs]);
        assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(&format!("--jobs {jobs}: give 1 to")), "{err}");
        assert!(!out.exists(), "nothing is written");
    }
}

/// The system calls of a run, by strace.
fn strace(dir: &Path, args: &[&str]) -> String {
    let trace = dir.join("trace.txt");
    let res = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=openat,rename,renameat,renameat2,fsync,fdatasync,close",
            "-o",
        ])
        .arg(&trace)
        .arg(bin())
        .args(args)
        .current_dir(root())
        .env("LETTERPRESS_LAYOUTS", root().join("layouts"))
        .output()
        .expect("strace is installed (.ci/run installs it)");
    assert!(res.status.success(), "{}", describe(&res));
    std::fs::read_to_string(trace).unwrap()
}

/// Whether, after the rename onto `name`, the folder holding it is fsynced
/// through a descriptor opened on it.
fn folder_synced_after_rename(trace: &str, folder: &Path, name: &str) -> bool {
    let folder = format!("\"{}\"", folder.display());
    let lines: Vec<&str> = trace.lines().collect();
    let Some(renamed) = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(&format!("/{name}\"")))
    else {
        return false;
    };
    // Descriptors open on the folder, by number, as the trace goes on.
    let mut open: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("openat(") && l.contains(&folder) {
            if let Some(fd) = l.rsplit("= ").next() {
                open.push(fd.trim().to_owned());
            }
        }
        if i > renamed && l.contains("fsync(") {
            let fd = l.split("fsync(").nth(1).and_then(|r| r.split(')').next());
            if fd.is_some_and(|fd| open.iter().any(|o| o == fd)) {
                return true;
            }
        }
        if l.contains("close(") {
            let fd = l.split("close(").nth(1).and_then(|r| r.split(')').next());
            open.retain(|o| Some(o.as_str()) != fd);
        }
    }
    false
}

#[test]
fn the_manifest_state_and_journal_renames_are_made_durable() {
    let dir = scratch("env-fsync");
    let out = dir.join("out");
    let data = root().join("fixtures/statements.jsonl");
    let args = run_cmd(
        "annual-statement",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        &["--as-of", "2026-11-22", "--print"],
    );
    let trace = strace(&dir, &args);
    for name in ["run-state.json", "manifest.json", "documents.jsonl"] {
        assert!(
            folder_synced_after_rename(&trace, &out, name),
            "the folder is fsynced after {name} is renamed into it"
        );
    }
}
