//! Helpers shared by the integration tests: run the real binary, make
//! scratch folders, read PDFs with poppler and hash files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch folder for one test,
/// `$TMPDIR/letterpress-test-<pid>-<name>`. A test's files stay after it,
/// to be looked at when it fails; the first call of a test process removes
/// those of test processes that have ended, so they do not pile up (a full
/// run leaves about 3 GB).
pub fn scratch(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_ended_runs);
    let dir = std::env::temp_dir().join(format!("letterpress-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch folders of test processes that are no longer running.
fn sweep_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("letterpress-test-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let running = Path::new("/proc").join(pid.to_string()).exists();
        if !running && pid != std::process::id() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs `letterpress` with the repository's layouts and returns its output.
pub fn letterpress(args: &[&str]) -> Output {
    letterpress_with_layouts(&root().join("layouts"), args)
}

/// The binary under test: this build's, or the one `LETTERPRESS_TEST_BIN`
/// names (to show that a test fails on an earlier build).
pub fn bin() -> PathBuf {
    std::env::var_os("LETTERPRESS_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_letterpress")))
}

/// Runs `letterpress` with the given layouts folder.
pub fn letterpress_with_layouts(layouts: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(root())
        .env("LETTERPRESS_LAYOUTS", layouts)
        .env("LETTERPRESS_TRUST", trust_list())
        .env("LETTERPRESS_ADDRESS_KEY_FILE", address_key())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The address key of this test process (made once by the library, as
/// `letterpress key new` makes one), which the commands the tests run get
/// as `LETTERPRESS_ADDRESS_KEY_FILE`.
pub fn address_key() -> PathBuf {
    static KEY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let path = scratch("address-key").join("address.key");
        letterpress::contacts::key::write_new(&path).unwrap();
        path
    })
    .clone()
}

/// Exit code, stdout and stderr as text, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `letterpress run` on a data file into `out`, as of 2026-11-22 unless
/// `extra` names another `--as-of`.
pub fn run_layout(layout: &str, data: &Path, out: &Path, extra: &[&str]) -> Output {
    run_layout_with(&root().join("layouts"), layout, data, out, extra)
}

/// The arguments of `letterpress run --layout L --data D --out O` plus `extra`.
pub fn run_cmd<'a>(
    layout: &'a str,
    data: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["run", "--layout", layout, "--data", data, "--out", out];
    args.extend_from_slice(extra);
    args
}

/// [`run_layout`] with another layouts folder.
pub fn run_layout_with(
    layouts: &Path,
    layout: &str,
    data: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["run", "--layout", layout, "--data", data, "--out", out];
    if !extra.contains(&"--as-of") {
        args.extend(["--as-of", "2026-11-22"]);
    }
    args.extend_from_slice(extra);
    letterpress_with_layouts(layouts, &args)
}

/// Renders a bundled fixture (path relative to the repository) into a
/// scratch folder, asserts exit 0 and returns the output folder.
pub fn render_ok(layout: &str, fixture: &str, name: &str, extra: &[&str]) -> PathBuf {
    let out = scratch(name);
    let res = run_layout(layout, &root().join(fixture), &out, extra);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    out
}

/// Copies the folder `src` with everything in it to `dst`.
pub fn copy_tree(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let target = dst.join(entry.path().strip_prefix(src).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The parsed manifest of a run, with its document entries (streamed to
/// `documents.jsonl`, whose SHA-256 and line count the manifest records)
/// read back in as a `documents` array.
pub fn manifest(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest written");
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    let journal = std::fs::read(out.join("documents.jsonl")).expect("documents.jsonl written");
    assert_eq!(
        m["documents"]["sha256"].as_str().unwrap(),
        sha256_bytes(&journal),
        "the manifest records the journal's hash"
    );
    let docs: Vec<serde_json::Value> = journal
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("each line is a JSON entry"))
        .collect();
    assert_eq!(m["documents"]["entries"], docs.len());
    m["documents"] = docs.into();
    m
}

/// [`manifest`] without what differs between two runs of the same batch:
/// run id, timings, the command line, and the record of resumes and shards.
pub fn stable_manifest(out: &Path) -> serde_json::Value {
    let mut m = manifest(out);
    let obj = m.as_object_mut().unwrap();
    for key in [
        "run_id",
        "started_at",
        "finished_at",
        "command",
        "manifest_digest",
        "resumed",
        "shards",
    ] {
        obj.remove(key);
    }
    m
}

/// The text of a PDF, by poppler's `pdftotext`.
pub fn pdftotext(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext is installed (poppler-utils)");
    assert!(
        out.status.success(),
        "pdftotext failed on {}",
        pdf.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pdfinfo` output as text.
pub fn pdfinfo(pdf: &Path) -> String {
    let out = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo is installed");
    assert!(out.status.success(), "pdfinfo failed on {}", pdf.display());
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `qpdf --check` finds the file sound.
pub fn qpdf_check(pdf: &Path) -> Output {
    Command::new("qpdf")
        .arg("--check")
        .arg(pdf)
        .output()
        .expect("qpdf is installed")
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    sha256_bytes(&std::fs::read(path).unwrap())
}

/// SHA-256 of bytes, in hex (by the `sha2` crate, independently of the engine).
pub fn sha256_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Text with all whitespace removed, to compare names that a PDF may break
/// across lines or space differently.
pub fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Approves a layout version under `layouts` after a test edited it (the
/// edit made it drift from its approval): submitted again by the demo
/// author and approved by demo compliance (and demo legal where the
/// policy asks for it too), signed with the demo keys through ssh-keygen,
/// dated 2026-11-22. A layout too broken to load stays unapproved; the run
/// then reports what is broken.
pub fn approve(layouts: &Path, id: &str) {
    approve_on(layouts, id, "2026-11-22");
}

/// [`approve`] on another day (the records are dated that day, as a
/// signer's statement: a version is approved for letters from that day).
pub fn approve_on(layouts: &Path, id: &str, date: &str) {
    use letterpress::model::decision::Kind;
    let at = |t: &str| format!("{date}T{t}Z");
    if decide(
        layouts,
        id,
        Kind::Submitted,
        "author-sam",
        &at("00:10:00"),
        None,
    )
    .is_err()
    {
        return; // unchanged and approved, or broken: nothing to approve
    }
    let _ = decide(
        layouts,
        id,
        Kind::Approved,
        "compliance-priya",
        &at("00:20:00"),
        None,
    );
    if standing(layouts, id).starts_with("submitted") {
        let _ = decide(
            layouts,
            id,
            Kind::Approved,
            "legal-lena",
            &at("00:30:00"),
            None,
        );
    }
}

/// Where a version stands, in words (`layouts show`'s standing line).
pub fn standing(layouts: &Path, id: &str) -> String {
    let r: letterpress::model::layout::LayoutRef = id.parse().unwrap();
    let day = letterpress::util::clock::Date::parse("2026-12-06").unwrap();
    letterpress::ops::layouts::show(layouts, Some(&trust_list()), &r, day)
        .map(|s| s.standing.describe())
        .unwrap_or_else(|e| e.to_string())
}

/// The repository's (demo) trust list.
pub fn trust_list() -> PathBuf {
    root().join("trust.yaml")
}

/// A demo key's private key file (`author-sam`, `compliance-priya`,
/// `compliance-jide`, `legal-lena`), copied once per test process with
/// the mode OpenSSH asks of a private key (git keeps no modes), its public
/// key beside it.
pub fn demo_key(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = scratch("demo-keys");
        for entry in std::fs::read_dir(root().join("fixtures/demo-keys")).unwrap() {
            let src = entry.unwrap().path();
            let to = dir.join(src.file_name().unwrap());
            std::fs::copy(&src, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    });
    dir.join(format!("demo-{name}"))
}

/// Records a decision about `id` under `layouts`, signed with the demo key
/// `key` (see [`demo_key`]) by ssh-keygen, dated `at`, through the library
/// (as a program that records decisions taken elsewhere would).
pub fn decide(
    layouts: &Path,
    id: &str,
    kind: letterpress::model::decision::Kind,
    key: &str,
    at: &str,
    reason: Option<&str>,
) -> Result<letterpress::layout::decisions::write::Written, letterpress::error::Error> {
    let signer = letterpress::layout::decisions::sign::SshKeygen::new(&demo_key(key))?;
    let request = letterpress::layout::decisions::write::Request {
        kind,
        reason: reason.map(str::to_owned),
        role: None,
        from: None,
        evidence: None,
        login: None,
    };
    letterpress::ops::layouts::decide_at(
        layouts,
        Some(&trust_list()),
        &id.parse().unwrap(),
        &request,
        &signer,
        at,
        &|_| true,
    )
}

/// A copy of the repository's layouts in `dir/layouts` with each `(from,
/// to)` of `edits` replaced once in the file `rel` of a version (e.g.
/// `annual-statement/1/layout.yaml`), which must hold it; the version is
/// approved again. Returns the layouts folder.
pub fn layouts_edited(dir: &Path, rel: &str, edits: &[(&str, &str)]) -> PathBuf {
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let path = layouts.join(rel);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{rel} holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&path, text).unwrap();
    let mut parts = rel.split('/');
    let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
    approve(&layouts, &format!("{name}@{version}"));
    layouts
}

/// The rows of a CSV file with a header, each as header → value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            headers
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The manifest entries (from [`manifest`]) by (record id, channel).
pub fn entries(
    m: &serde_json::Value,
) -> std::collections::BTreeMap<(String, String), serde_json::Value> {
    m["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let key = (
                d["record_id"].as_str().unwrap_or("").to_owned(),
                d["channel"].as_str().unwrap().to_owned(),
            );
            (key, d.clone())
        })
        .collect()
}

/// A valid welcome-letter record (preference email) with `extra` fields
/// set over the defaults.
pub fn customer(id: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut rec = serde_json::json!({"customer_id": id, "first_name": "Ann", "last_name": "Lee",
        "address": {"line1": "1 Road", "postcode": "E1 1AA", "city": "London"}, "email": "ann@example.com",
        "product": "Saver", "account_number": "1", "opened_on": "2026-01-02", "contact_preference": "email"});
    for (k, v) in extra.as_object().unwrap() {
        rec[k] = v.clone();
    }
    rec
}

/// Writes records as a JSONL file.
pub fn write_jsonl(path: &Path, records: &[serde_json::Value]) {
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Writes `n` synthetic welcome-letter records (seed `seed`) to `path` as
/// JSONL and returns the path.
pub fn welcome_records(path: &Path, n: usize, seed: u64) -> PathBuf {
    let mut rng = letterpress::util::rng::Rng::new(seed);
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| letterpress::ops::synth::welcome_record(i, &mut rng))
        .collect();
    write_jsonl(path, &records);
    path.to_owned()
}

/// A self-signed certificate for 127.0.0.1 (openssl): (cert, key).
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// A TCP port on loopback that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 4-state bar (`F` full, `A` ascender, `D` descender, `T` tracker) from
/// whether its ascender and its descender are printed.
pub fn four_state(up: bool, down: bool) -> char {
    match (up, down) {
        (true, true) => 'F',
        (true, false) => 'A',
        (false, true) => 'D',
        (false, false) => 'T',
    }
}

/// Debian zint's `bars` 4-state bars for `data` in `symbology`
/// (`USPS_IMAIL`, `MAILMARK`), read from its `--dump` bitmap (rows:
/// ascenders, trackers, descenders; one column per bar, gaps between).
pub fn zint_bars(symbology: &str, data: &str, bars: usize) -> String {
    let out = Command::new("zint")
        .args(["-b", symbology, "-d", data, "--dump"])
        .output()
        .expect("zint is installed (see .ci/run)");
    assert!(
        out.status.success(),
        "zint refused {data:?}: {}",
        describe(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<bool>> = text
        .lines()
        .take(3)
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(|c| {
                    let v = c.to_digit(16).expect("hex");
                    (0..4).rev().map(move |k| v >> k & 1 == 1)
                })
                .collect()
        })
        .collect();
    (0..bars)
        .map(|i| four_state(rows[0][2 * i], rows[2][2 * i]))
        .collect()
}
