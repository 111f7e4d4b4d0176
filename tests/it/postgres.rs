//! Records straight from PostgreSQL, against a real server from Debian's
//! `postgresql` package, started by the test in a temporary folder (as the
//! `postgres` user when the tests run as root). Without the package the
//! tests say so and stop; with `LETTERPRESS_REQUIRE_POSTGRES=1` (as in CI)
//! they fail instead.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::pg_server::{Server, PASSWORD};

/// The binary as [`letterpress_with_layouts`] runs it, with the
/// repository's layouts.
fn command() -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(root())
        .env("LETTERPRESS_LAYOUTS", root().join("layouts"))
        .env("LETTERPRESS_TRUST", trust_list())
        .env("LETTERPRESS_ADDRESS_KEY_FILE", address_key());
    cmd
}

/// `letterpress ARGS` with no password file (and `env` on top).
fn letterpress_pg(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command();
    cmd.args(args)
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The customers fixture as a table whose columns are the CSV's headers
/// (dotted names quoted), in file order.
fn customers_table(server: &Server) -> String {
    let csv = root().join("fixtures/customers.csv");
    let header = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let cols: Vec<String> = header.split(',').map(|c| format!("\"{c}\"")).collect();
    let defs: Vec<String> = cols.iter().map(|c| format!("{c} text")).collect();
    server.psql(
        "bank",
        &format!(
            "CREATE TABLE customers ({}, pos serial); ALTER TABLE customers OWNER TO letters;",
            defs.join(", ")
        ),
    );
    server.copy_in(
        &format!("customers({})", cols.join(",")),
        &csv,
        "FORMAT csv, HEADER true",
    );
    format!("SELECT {} FROM customers ORDER BY pos", cols.join(", "))
}

fn journal_without_lines(out: &Path) -> Vec<serde_json::Value> {
    let mut docs = manifest(out)["documents"].as_array().unwrap().clone();
    for d in &mut docs {
        d.as_object_mut().unwrap().remove("line");
    }
    docs
}

#[test]
fn rows_give_the_documents_and_journal_of_the_csv() {
    let Some(server) = Server::start("csv") else {
        return;
    };
    let query = customers_table(&server);
    let dir = scratch("pg-csv");
    let (csv_out, pg_out) = (dir.join("csv"), dir.join("pg"));
    let csv = root().join("fixtures/customers.csv");
    let res = run_layout(
        "welcome-letter@4",
        &csv,
        &csv_out,
        &["--as-of", "2026-12-06"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let url = server.url();
    let args = run_cmd(
        "welcome-letter@4",
        &url,
        pg_out.to_str().unwrap(),
        &["--query", &query, "--as-of", "2026-12-06"],
    );
    let res = letterpress_pg(&args, &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        journal_without_lines(&pg_out),
        journal_without_lines(&csv_out),
        "the same journal but for line numbers (rows count from 1)"
    );
    let m = manifest(&pg_out);
    assert_eq!(m["input"]["format"], "postgresql");
    assert_eq!(m["input"]["query"], query.as_str());
    assert_eq!(m["input"]["path"], url.as_str());
    let text = std::fs::read_to_string(pg_out.join("manifest.json")).unwrap()
        + &std::fs::read_to_string(pg_out.join("documents.jsonl")).unwrap();
    assert!(!text.contains(PASSWORD), "the password is never written");
    let res = letterpress_pg(
        &["verify", pg_out.to_str().unwrap(), "--rerender", "5"],
        &[("PGPASSWORD", PASSWORD)],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));

    // The password from a password file (mode 600), and only then.
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:bank:letters:{PASSWORD}\n", server.port),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let validate = [
        "validate",
        "--layout",
        "welcome-letter@4",
        "--data",
        &url,
        "--query",
        &query,
        "--as-of",
        "2026-12-06",
    ];
    let res = letterpress_pg(&validate, &[("PGPASSFILE", pgpass.to_str().unwrap())]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let res = letterpress_pg(&validate, &[("PGPASSFILE", pgpass.to_str().unwrap())]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("chmod 600"),
        "{}",
        describe(&res)
    );
    // Negative control: no password, no connection.
    let res = letterpress_pg(&validate, &[]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("cannot connect"),
        "{}",
        describe(&res)
    );
    // A password in the URL is refused before any connection.
    let with_pw = url.replace("letters@", &format!("letters:{PASSWORD}@"));
    let res = letterpress_pg(
        &[
            "validate",
            "--layout",
            "welcome-letter@4",
            "--data",
            &with_pw,
            "--query",
            &query,
        ],
        &[],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        !String::from_utf8_lossy(&res.stderr).contains(PASSWORD),
        "{}",
        describe(&res)
    );
}

/// 1,500 welcome letters as JSON documents in a table, read with `->` (an
/// object) and `->>` (text) into the record's fields.
fn letters_table(server: &Server, dir: &Path) -> String {
    let jsonl = welcome_records(&dir.join("letters.jsonl"), ROWS, 7);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    server.psql("bank", "CREATE TABLE letters (pos serial, doc jsonb NOT NULL); ALTER TABLE letters OWNER TO letters;");
    server.copy_in(
        "letters(doc)",
        &jsonl,
        "FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02'",
    );
    let cols: Vec<String> = first
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| match v.is_object() {
            true => format!("doc->'{k}' AS \"{k}\""),
            false => format!("doc->>'{k}' AS \"{k}\""),
        })
        .collect();
    format!("SELECT {} FROM letters ORDER BY pos", cols.join(", "))
}

fn spawn_run(url: &str, query: &str, out: &Path, resume: bool) -> Child {
    let mut args = run_cmd(
        "welcome-letter@4",
        url,
        out.to_str().unwrap(),
        &["--query", query, "--as-of", "2026-12-06", "--jobs", "2"],
    );
    if resume {
        args.push("--resume");
    }
    command()
        .args(args)
        .env("PGPASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const ROWS: usize = 1500;

/// Kills the run (SIGKILL) once its journal holds `lines` entries on disk.
fn kill_after(child: &mut Child, out: &Path, lines: usize) {
    let start = Instant::now();
    let journal = |out: &Path| {
        std::fs::read(out.join("documents.jsonl"))
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
    };
    while journal(out) < lines {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists(), "killed before the end");
}

#[test]
fn a_resume_refuses_a_rendered_row_that_changed() {
    let Some(server) = Server::start("resume") else {
        return;
    };
    let dir = scratch("pg-resume");
    let query = letters_table(&server, &dir);
    let url = server.url();

    // A row already rendered changes: the resume stops, naming it.
    let out = dir.join("changed");
    kill_after(&mut spawn_run(&url, &query, &out, false), &out, 100);
    let id = server.psql("bank", "UPDATE letters SET doc = jsonb_set(doc, '{last_name}', '\"Changed\"') WHERE pos = 2 RETURNING doc->>'customer_id'");
    let res = spawn_run(&url, &query, &out, true)
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("row 2 (record {})", id.trim())) && err.contains("has changed"),
        "{err}"
    );
    assert!(!out.join("manifest.json").exists());

    // Negative control: a row not rendered yet may change; the resume
    // renders it as it is now, and every record once.
    let out = dir.join("later");
    server.psql(
        "bank",
        "UPDATE letters SET doc = jsonb_set(doc, '{last_name}', '\"Before\"') WHERE pos = 1500",
    );
    kill_after(&mut spawn_run(&url, &query, &out, false), &out, 100);
    let id = server.psql("bank", "UPDATE letters SET doc = jsonb_set(doc, '{last_name}', '\"Afterwards\"') WHERE pos = 1500 RETURNING doc->>'customer_id'");
    let res = spawn_run(&url, &query, &out, true)
        .wait_with_output()
        .unwrap();
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let m = manifest(&out);
    let docs = m["documents"].as_array().unwrap();
    let channels = docs.len() / ROWS;
    assert_eq!(docs.len(), ROWS * channels, "every row on every channel");
    assert!(
        m["resumed"][0]["kept_records"].as_u64().unwrap() > 0,
        "{}",
        m["resumed"]
    );
    let last = docs
        .iter()
        .find(|d| d["record_id"] == id.trim() && d["channel"] == "pdf")
        .unwrap();
    let text = pdftotext(&out.join(last["path"].as_str().unwrap()));
    assert!(text.contains("Afterwards"), "{text}");
}

/// A CA and a server certificate it signed for 127.0.0.1: (ca, cert, key).
fn ca_and_server_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let f = |n: &str| dir.join(n);
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
    };
    std::fs::write(f("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
    ssl(&[
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
        "/CN=letterpress test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    ssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "server.pem",
    ]);
    (f("ca.pem"), f("server.pem"), f("server.key"))
}

/// TLS: the server takes TCP clients only over TLS; letterpress connects
/// when the URL names the CA that signed its certificate, and refuses a
/// certificate it cannot verify rather than send the password to it.
#[test]
fn tls_connections_verify_the_servers_certificate() {
    let Some(server) = Server::start("tls") else {
        return;
    };
    let dir = scratch("pg-tls");
    let (ca, cert, key) = ca_and_server_cert(&dir);
    server.tls_only(&cert, &key);
    let query = customers_table(&server);
    let base = server.url();
    let validate = |url: &str| {
        let args = [
            "validate",
            "--layout",
            "welcome-letter@4",
            "--data",
            url,
            "--query",
            &query,
            "--as-of",
            "2026-12-06",
        ];
        letterpress_pg(
            &args,
            &[("PGPASSWORD", PASSWORD), ("HOME", dir.to_str().unwrap())],
        )
    };
    let ok = validate(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    ));
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    // libpq's default CA file, ~/.postgresql/root.crt, is read too.
    std::fs::create_dir_all(dir.join(".postgresql")).unwrap();
    std::fs::copy(&ca, dir.join(".postgresql/root.crt")).unwrap();
    let ok = validate(&format!("{base}?sslmode=require"));
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    std::fs::remove_file(dir.join(".postgresql/root.crt")).unwrap();
    // A certificate no known CA signed: refused, never used unverified.
    let refused = validate(&format!("{base}?sslmode=require"));
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        describe(&refused).contains("cannot connect"),
        "{}",
        describe(&refused)
    );
    // Control: without TLS the server lets nobody in, so the first
    // connections were encrypted.
    let plain = validate(&format!("{base}?sslmode=disable"));
    assert_eq!(plain.status.code(), Some(2), "{}", describe(&plain));
    assert!(
        describe(&plain).contains("no pg_hba.conf entry")
            || describe(&plain).contains("cannot connect"),
        "{}",
        describe(&plain)
    );
}
