//! Memory and speed of reading records: `letterpress validate` (which
//! reads, maps and checks every record as a run does, rendering none) over
//! generated welcome-letter records as JSONL, XML and a PostgreSQL table,
//! at a tenth of the records and at all of them; and a rendering run from
//! PostgreSQL at a hundredth and a tenth. Flat memory means the peak RSS
//! does not grow with the records.
//!
//!     cargo bench --bench data_in                          # 1,000,000 records
//!     LP_BENCH_RECORDS=100000 cargo bench --bench data_in
//!     LP_BENCH_DIR=/dev/shm cargo bench --bench data_in    # files on tmpfs
//!     LP_BENCH_RENDER=0 cargo bench --bench data_in        # no rendering run
//!
//! "read" is the reader alone: a run with `--expect-records 1` reads and
//! maps every record to count them, then stops (exit 2) before it checks
//! or renders any. "validate" adds the checks, whose sets of record ids and
//! file names (duplicates are refused) grow with the records whatever the
//! format.
//! Prints, per case: records, wall seconds, CPU seconds (user + system of
//! letterpress), records a second, peak RSS in MB (GNU time's %M).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

// The tests' server; the benchmark needs only part of it.
#[allow(dead_code)]
#[path = "../tests/it/pg_server.rs"]
mod pg_server;

use letterpress::ops::synth::welcome_record;
use letterpress::util::rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_letterpress");

/// The sample layouts with welcome-letter@4 as a draft reading XML.
fn layouts(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts");
    let dst = dir.join("layouts");
    let ok = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(ok.success());
    let yaml = dst.join("welcome-letter/4/layout.yaml");
    let text = std::fs::read_to_string(&yaml)
        .unwrap()
        .replacen("status: approved", "status: draft", 1)
        .replacen(
            "\nfields:\n",
            "\ninput:\n  xml:\n    record: customers/customer\nfields:\n",
            1,
        );
    std::fs::write(&yaml, text).unwrap();
    dst
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_value(out: &mut impl Write, key: &str, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            write!(out, "<{key}>").unwrap();
            for (k, v) in m {
                xml_value(out, k, v);
            }
            write!(out, "</{key}>").unwrap();
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => write!(out, "<{key}>{}</{key}>", escape(s)).unwrap(),
        other => write!(out, "<{key}>{other}</{key}>").unwrap(),
    }
}

/// Writes `n` records as JSONL, XML and a CSV for PostgreSQL's COPY (one
/// JSON document a line).
fn generate(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let (jsonl, xml) = (
        dir.join(format!("r{n}.jsonl")),
        dir.join(format!("r{n}.xml")),
    );
    let mut j = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    let mut x = std::io::BufWriter::new(std::fs::File::create(&xml).unwrap());
    writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<customers>").unwrap();
    let mut rng = Rng::new(7);
    for i in 0..n {
        let r = welcome_record(i, &mut rng);
        writeln!(j, "{r}").unwrap();
        xml_value(&mut x, "customer", &r);
        writeln!(x).unwrap();
    }
    writeln!(x, "</customers>").unwrap();
    j.flush().unwrap();
    x.flush().unwrap();
    (jsonl, xml)
}

/// Runs letterpress under GNU time: (wall s, cpu s, peak RSS MB).
fn measure(args: &[&str], layouts: &Path) -> (f64, f64, f64) {
    measure_exit(args, layouts, &[0, 1])
}

fn measure_exit(args: &[&str], layouts: &Path, codes: &[i32]) -> (f64, f64, f64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M", BIN])
        .args(args)
        .env("LETTERPRESS_LAYOUTS", layouts)
        .env("PGPASSWORD", pg_server::PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "{args:?}: {err}"
    );
    let last = err.lines().last().unwrap_or("");
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "{err}");
    (f[0], f[1] + f[2], f[3] / 1024.0)
}

fn report(what: &str, n: usize, (wall, cpu, rss): (f64, f64, f64)) {
    println!(
        "{what:<28} {n:>9} records  {wall:>7.1} s  cpu {cpu:>7.1} s  {:>9.0} records/s  peak RSS {rss:>6.1} MB",
        n as f64 / wall
    );
}

fn validate(layouts: &Path, data: &str, extra: &[&str]) -> (f64, f64, f64) {
    let mut args = vec![
        "validate",
        "--layout",
        "welcome-letter@4",
        "--allow-draft",
        "--data",
        data,
        "--as-of",
        "2026-11-22",
    ];
    args.extend_from_slice(extra);
    measure(&args, layouts)
}

/// The reader alone: a run whose control total cannot match reads and maps
/// every record (to count them) and stops before checking or rendering.
fn read(layouts: &Path, data: &str, extra: &[&str], dir: &Path) -> (f64, f64, f64) {
    let out = dir.join("read-out");
    let mut args = vec![
        "run",
        "--layout",
        "welcome-letter@4",
        "--allow-draft",
        "--data",
        data,
        "--out",
        out.to_str().unwrap(),
        "--expect-records",
        "1",
    ];
    args.extend_from_slice(extra);
    measure_exit(&args, layouts, &[2])
}

/// The welcome letter's fields from the table's JSON documents.
const COLUMNS: &str = "SELECT doc->>'customer_id' AS customer_id, doc->>'first_name' AS first_name, doc->>'last_name' AS last_name, doc->'address' AS address, doc->>'email' AS email, doc->>'locale' AS locale, doc->>'product' AS product, doc->>'account_number' AS account_number, doc->>'opened_on' AS opened_on, doc->>'contact_preference' AS contact_preference FROM letters";

fn main() {
    let n: usize = std::env::var("LP_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var("LP_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let dir = base.join(format!("letterpress-bench-data-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layouts = layouts(&dir);
    let server = pg_server::Server::start("bench");
    if let Some(s) = &server {
        s.psql("bank", "CREATE TABLE letters (pos serial, doc jsonb NOT NULL); ALTER TABLE letters OWNER TO letters;");
    }
    let mut loaded = 0;
    for size in [n / 10, n] {
        let (jsonl, xml) = generate(&dir, size);
        let (j, x) = (jsonl.to_str().unwrap(), xml.to_str().unwrap());
        report("read jsonl", size, read(&layouts, j, &[], &dir));
        report("read xml", size, read(&layouts, x, &[], &dir));
        report(
            "validate jsonl",
            size,
            validate(&layouts, jsonl.to_str().unwrap(), &[]),
        );
        report(
            "validate xml",
            size,
            validate(&layouts, xml.to_str().unwrap(), &[]),
        );
        if let Some(s) = &server {
            s.psql("bank", "TRUNCATE letters RESTART IDENTITY");
            s.copy_in(
                "letters(doc)",
                &jsonl,
                "FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02'",
            );
            loaded = size;
            let query = &format!("{COLUMNS} ORDER BY pos");
            let url = s.url();
            let q = ["--query", query.as_str()];
            report("read postgresql", size, read(&layouts, &url, &q, &dir));
            report(
                "validate postgresql",
                size,
                validate(&layouts, &url, &["--query", query]),
            );
        }
        let _ = std::fs::remove_file(&jsonl);
        let _ = std::fs::remove_file(&xml);
    }
    // Rendering from PostgreSQL: the first hundredth and tenth of the rows.
    let render = std::env::var("LP_BENCH_RENDER").map_or(true, |v| v != "0");
    if let Some(s) = server.as_ref().filter(|_| render) {
        for size in [loaded / 100, loaded / 10] {
            let query = format!("{COLUMNS} WHERE pos <= {size} ORDER BY pos");
            let url = s.url();
            let out = dir.join(format!("run{size}"));
            let args = [
                "run",
                "--layout",
                "welcome-letter@4",
                "--allow-draft",
                "--data",
                &url,
                "--query",
                &query,
                "--out",
                out.to_str().unwrap(),
                "--as-of",
                "2026-11-22",
                "--channels",
                "pdf",
            ];
            report("run postgresql (pdf)", size, measure(&args, &layouts));
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
