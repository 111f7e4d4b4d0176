//! `letterpress send` against a real SMTP server on 127.0.0.1: Debian's
//! aiosmtpd (installed by `.ci/run`), with a small handler that stores every
//! message it accepts and can defer or refuse recipients.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::*;
use mail_parser::MessageParser;

/// An aiosmtpd handler: stores each accepted message as a file; with
/// `flaky`, answers 451 to a recipient's first attempt and 550 to
/// `customer5@example.com`.
const HANDLER: &str = r#"
import itertools, os

class Sink:
    def __init__(self, folder, flaky):
        self.folder, self.flaky, self.seen = folder, flaky == "flaky", set()
        self.n = itertools.count()

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.flaky and address == "customer5@example.com":
            return "550 5.1.1 no such mailbox"
        if self.flaky and address not in self.seen:
            self.seen.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(self.folder, "%05d.eml" % next(self.n))
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 stored"
"#;

/// A running SMTP sink, stopped when dropped.
pub(crate) struct Sink {
    child: Child,
    port: u16,
    folder: PathBuf,
}

impl Sink {
    pub(crate) fn start(dir: &Path, mode: &str) -> Sink {
        Sink::start_with(dir, mode, &[])
    }

    /// Starts the sink with extra aiosmtpd options (TLS certificates).
    fn start_with(dir: &Path, mode: &str, options: &[&str]) -> Sink {
        let folder = dir.join("received");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(dir.join("lpsink.py"), HANDLER).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/python3")
            .env("PYTHONPATH", dir)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options)
            .args(["-c", "lpsink.Sink"])
            .arg(&folder)
            .arg(mode)
            .spawn()
            .expect("python3-aiosmtpd is installed (see .ci/run)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the SMTP sink did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sink {
            child,
            port,
            folder,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Message-ID → how many times it arrived.
    pub(crate) fn received(&self) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for entry in std::fs::read_dir(&self.folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read(&path).unwrap();
                let msg = MessageParser::default().parse(&raw).unwrap();
                *seen
                    .entry(msg.message_id().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        seen
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Renders the welcome letters (PDF + email) into `dir/run`.
pub(crate) fn rendered_run(dir: &Path) -> (PathBuf, Vec<String>) {
    let out = dir.join("run");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &out,
        &[],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let ids = manifest(&out)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "email" && d["status"] == "rendered")
        .map(|d| d["message_id"].as_str().unwrap().to_owned())
        .collect();
    (out, ids)
}

pub(crate) fn send(run: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["send", "--run", run.to_str().unwrap(), "--smtp", url];
    args.extend_from_slice(extra);
    letterpress(&args)
}

#[test]
fn every_message_arrives_exactly_once_also_after_a_second_send() {
    let dir = scratch("send");
    let (run, ids) = rendered_run(&dir);
    assert!(ids.len() >= 30);
    let sink = Sink::start(&dir, "plain");

    let dry = send(&run, &sink.url(), &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", describe(&dry));
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout)
            .matches("would send:")
            .count(),
        ids.len()
    );
    assert!(sink.received().is_empty(), "a dry run sends nothing");

    let first = send(&run, &sink.url(), &["--rate", "500/s", "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["accepted"], ids.len());
    let got = sink.received();
    assert_eq!(got.len(), ids.len());
    for id in &ids {
        assert_eq!(got.get(id), Some(&1), "{id} must arrive exactly once");
    }
    // What arrived is the file the run wrote, byte for byte.
    let journal = std::fs::read_to_string(run.join("delivery.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), ids.len());
    assert!(journal
        .lines()
        .all(|l| l.contains("\"status\":\"accepted\"") && l.contains("250")));

    let second = send(&run, &sink.url(), &["--json"]);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["accepted"], 0);
    assert_eq!(summary["already_accepted"], ids.len());
    assert_eq!(sink.received(), got, "a second send sends nothing again");
    assert!(!run.join(".send.lock").exists());
}

#[test]
fn temporary_failures_are_retried_and_permanent_ones_reported() {
    let dir = scratch("send-flaky");
    let (run, ids) = rendered_run(&dir);
    // An email altered after the run is never sent.
    let altered = manifest(&run)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["channel"] == "email"
                && d["status"] == "rendered"
                && d["to"] != "customer5@example.com"
        })
        .unwrap()
        .clone();
    let path = run.join(altered["path"].as_str().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("Northwind", "Northwlnd", 1)).unwrap();

    let sink = Sink::start(&dir, "flaky");
    let db = dir.join("contacts.db");
    let db_arg = db.to_str().unwrap();
    let args = [
        "--rate",
        "500/s",
        "--retry-delay",
        "0.05",
        "--json",
        "--contacts",
        db_arg,
    ];
    let res = send(&run, &sink.url(), &args);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(summary["failed"], 2, "{summary}");
    assert_eq!(summary["accepted"], ids.len() - 2);
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains("550") && errors.contains("customer5@example.com"),
        "{errors}"
    );
    assert!(errors.contains("does not match the hash"), "{errors}");

    let got = sink.received();
    assert_eq!(got.len(), ids.len() - 2);
    assert!(got.values().all(|&n| n == 1));
    assert!(!got.contains_key(altered["message_id"].as_str().unwrap()));
    let journal = std::fs::read_to_string(run.join("delivery.jsonl")).unwrap();
    let deferred = journal
        .lines()
        .filter(|l| l.contains("\"deferred\""))
        .count();
    assert_eq!(
        deferred,
        ids.len() - 2,
        "every recipient but the two failures was deferred once"
    );
    assert!(journal.contains("451"));

    // The contact history (a real SQLite file) holds each final outcome.
    // The altered email never reached the relay: nothing to learn from it.
    assert_eq!(summary["contacts_recorded"], ids.len() - 1, "{summary}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |kind: &str| -> i64 {
        conn.query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(count("accepted"), ids.len() as i64 - 2);
    assert_eq!(count("refused"), 1);
    let (customer, detail): (String, String) = conn
        .query_row(
            "SELECT customer_id, detail FROM events WHERE address = 'customer5@example.com'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        customer.starts_with("C-") && detail.contains("550"),
        "{customer}: {detail}"
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // A re-run retries only what was not accepted, and records nothing twice.
    let again = send(&run, &sink.url(), &args);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["already_accepted"], ids.len() - 2);
    assert_eq!(summary["accepted"], 0);
    assert_eq!(summary["contacts_recorded"], 0);
    assert_eq!(count("refused"), 1);
    assert_eq!(sink.received(), got);
}

/// A private CA and a server certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "{}", describe(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    ssl(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=letterpress test CA",
        ],
    ]
    .concat());
    ssl(&[
        &["req"],
        &ec[..],
        &[
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

#[test]
fn delivery_is_encrypted_with_starttls_or_tls_and_certificates_are_checked() {
    let dir = scratch("send-tls");
    let (run, ids) = rendered_run(&dir);
    let (ca, cert, key) = certificates(&dir);
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );

    // STARTTLS (required by the server too).
    let starttls = Sink::start_with(
        &dir.join("starttls"),
        "plain",
        &["--tlscert", cert, "--tlskey", key],
    );
    let url = format!("smtp://127.0.0.1:{}", starttls.port);
    // Without the company CA the certificate is refused at the first
    // connection: a configuration error, nothing is sent or journaled.
    let res = send(
        &run,
        &url,
        &["--max-attempts", "1", "--connections", "1", "--json"],
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(starttls.received().is_empty());
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let error = summary["error"].as_str().unwrap();
    assert!(
        error.contains("--smtp-ca") && error.contains("nothing was sent"),
        "{error}"
    );
    let journal = std::fs::read_to_string(run.join("delivery.jsonl")).unwrap_or_default();
    assert_eq!(journal, "", "no message journaled as failed");
    // With it, everything arrives, once.
    let res = send(&run, &url, &["--smtp-ca", ca, "--rate", "500/s"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let got = starttls.received();
    assert_eq!(got.len(), ids.len());
    assert!(got.values().all(|&n| n == 1));

    // Implicit TLS (smtps) into a second, fresh run.
    let dir2 = scratch("send-tls-2");
    let (run2, ids2) = rendered_run(&dir2);
    let smtps = Sink::start_with(&dir2, "plain", &["--smtpscert", cert, "--smtpskey", key]);
    let url = format!("smtps://127.0.0.1:{}", smtps.port);
    let res = send(&run2, &url, &["--smtp-ca", ca, "--rate", "500/s"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(smtps.received().len(), ids2.len());
}

/// `send` and `send --dry-run` of `run`, with the exit code and stderr.
fn both_sends(run: &Path, url: &str) -> [(Option<i32>, String); 2] {
    [&[][..], &["--dry-run"][..]].map(|extra| {
        let res = send(run, url, extra);
        (
            res.status.code(),
            String::from_utf8_lossy(&res.stderr).into_owned(),
        )
    })
}

#[test]
fn a_draft_run_is_never_sent_whatever_its_files_say() {
    let dir = scratch("send-draft");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    // Back to draft: the review copy of a version that may not go out.
    let meta = layouts.join("welcome-letter/2/layout.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("status: approved", "status: draft")).unwrap();
    let run = dir.join("run");
    let res = run_layout_with(
        &layouts,
        "welcome-letter@2",
        &root().join("fixtures/customers.csv"),
        &run,
        &["--allow-draft"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(manifest(&run)["draft"], true);
    // Someone takes the [DRAFT] mark out of every email: still a draft run.
    for entry in std::fs::read_dir(run.join("email")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            let eml = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, eml.replace("[DRAFT] ", "")).unwrap();
        }
    }
    let sink = Sink::start(&dir, "plain");
    for (code, stderr) in both_sends(&run, &sink.url()) {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("draft run") && stderr.contains("never go to customers"),
            "{stderr}"
        );
    }
    // Nor when the manifest is edited to say otherwise.
    let path = run.join("manifest.json");
    let m = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, m.replace("\"draft\": true", "\"draft\": false")).unwrap();
    for (code, stderr) in both_sends(&run, &sink.url()) {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("edited after the run"), "{stderr}");
    }
    assert!(sink.received().is_empty(), "nothing reached the relay");
    assert!(!run.join("delivery.jsonl").exists());
}

#[test]
fn a_dry_run_refuses_what_a_real_send_refuses() {
    let dir = scratch("send-dry");
    let (run, ids) = rendered_run(&dir);
    // Plain text to a host that is not this one.
    for (code, stderr) in both_sends(&run, "smtp://mail.example.com:25?tls=none") {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("loopback"), "{stderr}");
    }
    // A file altered after the run: the dry run says it would be refused.
    let doc = manifest(&run)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email" && d["status"] == "rendered")
        .unwrap()
        .clone();
    let path = run.join(doc["path"].as_str().unwrap());
    let eml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, eml.replacen("Northwind", "Northwlnd", 1)).unwrap();
    let sink = Sink::start(&dir, "plain");
    let dry = send(&run, &sink.url(), &["--dry-run", "--json"]);
    assert_eq!(dry.status.code(), Some(1), "{}", describe(&dry));
    let summary: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(summary["failed"], 1);
    assert_eq!(
        summary["would_send"].as_array().unwrap().len(),
        ids.len() - 1
    );
    assert!(summary["errors"]
        .to_string()
        .contains("does not match the hash"));
    assert!(sink.received().is_empty());

    // One shard of a sharded run: only the merged run is sent.
    let sharded = dir.join("sharded");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &sharded,
        &["--shard", "1/2"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for (code, stderr) in both_sends(&sharded.join("shard-1-of-2"), &sink.url()) {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("manifest merge"), "{stderr}");
    }
    assert!(sink.received().is_empty());
}

#[test]
fn sigterm_stops_sending_between_messages_and_the_next_send_goes_on() {
    let dir = scratch("send-sigterm");
    let (run, ids) = rendered_run(&dir);
    let sink = Sink::start(&dir, "plain");
    let child = Command::new(bin())
        .current_dir(root())
        .args([
            "send",
            "--run",
            run.to_str().unwrap(),
            "--smtp",
            &sink.url(),
        ])
        .args(["--rate", "5/s", "--connections", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let journal = run.join("delivery.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&journal)
        .map(|j| j.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped_at = Instant::now();
    let res = child.wait_with_output().unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(2));
    assert_eq!(res.status.code(), Some(143), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("send stopped by SIGTERM after")
            && err.contains(&format!("of {} emails", ids.len())),
        "{err}"
    );
    let first = sink.received();
    assert!(first.len() < ids.len(), "it stopped before the end");
    assert!(!run.join(".send.lock").exists(), "the lock is released");
    // The next send delivers the rest; nothing arrives twice.
    let res = send(&run, &sink.url(), &["--rate", "500/s"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let got = sink.received();
    assert_eq!(got.len(), ids.len());
    assert!(got.values().all(|&n| n == 1));
}

/// A relay that greets and answers EHLO, then hangs up when a message
/// starts: no message ever reaches it.
const HANGUP: &str = r#"
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
print(srv.getsockname()[1], flush=True)
def serve(c):
    f = c.makefile("rwb")
    f.write(b"220 hangup ESMTP\r\n"); f.flush()
    for line in f:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            f.write(b"250 hangup\r\n"); f.flush()
        elif verb == b"NOOP" or verb == b"RSET":
            f.write(b"250 OK\r\n"); f.flush()
        else:
            break
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

#[test]
fn a_relay_without_starttls_stops_send_at_once_and_a_lost_message_is_no_refusal() {
    let dir = scratch("send-starttls");
    let (run, _) = rendered_run(&dir);
    // smtp:// asks for STARTTLS; the sink does not offer it.
    let sink = Sink::start(&dir, "plain");
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let started = Instant::now();
    let res = send(&run, &url, &["--json"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let error = summary["error"].as_str().unwrap();
    assert!(
        error.contains("does not offer STARTTLS")
            && error.contains("?tls=none")
            && error.contains("smtps://"),
        "{error}"
    );
    assert!(sink.received().is_empty());
    let journal = std::fs::read_to_string(run.join("delivery.jsonl")).unwrap_or_default();
    assert_eq!(journal, "", "nothing journaled");

    // A relay that drops every message before it is taken: failed, but
    // never recorded as refused in the contact history.
    std::fs::write(dir.join("hangup.py"), HANGUP).unwrap();
    let mut relay = Command::new("/usr/bin/python3")
        .arg(dir.join("hangup.py"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(relay.stdout.as_mut().unwrap()),
        &mut port,
    )
    .unwrap();
    let url = format!("smtp://127.0.0.1:{}?tls=none", port.trim());
    let db = dir.join("contacts.db");
    let res = send(
        &run,
        &url,
        &[
            "--max-attempts",
            "1",
            "--json",
            "--contacts",
            db.to_str().unwrap(),
        ],
    );
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let summary: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert!(summary["failed"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["contacts_recorded"], 0, "{summary}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let refused: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'refused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(refused, 0);
}
