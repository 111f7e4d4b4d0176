//! `letterpress serve`: the real binary, asked with a real HTTP client
//! (curl): documents on demand byte for byte as a batch makes them, the
//! answers for every refusal, a flood beyond the queue, jobs that are
//! idempotent, survive SIGKILL and drain on SIGTERM, and Schemathesis
//! against the server's own OpenAPI document.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Four clients: `portal` (render), `sched` and `other` (jobs), `ops`
/// (all scopes).
struct Tokens {
    file: PathBuf,
    portal: String,
    sched: String,
    other: String,
    ops: String,
}

fn tokens(dir: &Path) -> Tokens {
    let file = dir.join("tokens");
    let new = |name: &str, scopes: &str| {
        let out = letterpress(&[
            "token",
            name,
            "--scopes",
            scopes,
            "--append",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let portal = new("portal", "render");
    let sched = new("sched", "jobs");
    let other = new("other", "jobs");
    let ops = new("ops", "render,jobs,admin");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&portal), "the token file holds hashes only");
    Tokens {
        file,
        portal,
        sched,
        other,
        ops,
    }
}

/// Starts `serve` on a free port with `layouts`, the tokens and the state
/// folder `state`, and waits until it is ready.
fn start(layouts: &Path, t: &Tokens, state: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .current_dir(root())
        .env("LETTERPRESS_LAYOUTS", layouts)
        .env("LETTERPRESS_TRUST", trust_list())
        .args(["serve", "--listen", &listen, "--tokens"])
        .arg(&t.file)
        .arg("--state")
        .arg(state)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("listening on") {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("serve stopped before it listened: {said}");
        }
        said.push_str(&line);
    }
    let log = state.with_extension("log");
    std::thread::spawn(move || {
        let mut f = std::fs::File::create(log).unwrap();
        std::io::copy(&mut err, &mut f)
    });
    let server = Server {
        child,
        base: format!("http://{listen}"),
    };
    let ready = Instant::now();
    while get(&format!("{}/readyz", server.base), None).status != 200 {
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "not ready in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// An answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Asks with curl: `method url`, a bearer token, a content type and a body.
/// GET `url` with a bearer token, if any.
fn get(url: &str, token: Option<&str>) -> Answer {
    http("GET", url, token, None, b"")
}

fn http(method: &str, url: &str, token: Option<&str>, ctype: Option<&str>, body: &[u8]) -> Answer {
    http_with(method, url, token, ctype, body, &[])
}

fn http_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    ctype: Option<&str>,
    body: &[u8],
    headers: &[String],
) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "-X", method, url]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(c) = ctype {
        cmd.args(["-H", &format!("Content-Type: {c}")]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    if !body.is_empty() {
        cmd.args(["--data-binary", "@-"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut stdin = child.stdin.take().unwrap();
    let body = body.to_vec();
    let feed = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap();
    assert!(
        out.status.success(),
        "curl {method} {url}: {:?}",
        out.status
    );
    parse(&out.stdout)
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[end..].to_vec(),
    }
}

fn document(s: &Server, token: &str, request: &Value) -> Answer {
    http(
        "POST",
        &format!("{}/v1/documents", s.base),
        Some(token),
        Some("application/json"),
        request.to_string().as_bytes(),
    )
}

/// Documents on demand are the bytes a batch run makes for the same
/// records, layout version and day, on every channel, and each is in the
/// day's journal; every refusal has its status and a JSON reason.
#[test]
fn documents_on_demand_are_a_batch_runs_bytes() {
    let dir = scratch("serve-documents");
    let t = tokens(&dir);
    let data = welcome_records(&dir.join("records.jsonl"), 6, 7);
    let batch = dir.join("batch");
    let out = run_layout(
        "welcome-letter",
        &data,
        &batch,
        &["--as-of", "2026-12-05", "--channels", "pdf,email,web"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let m = manifest(&batch);
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let state = dir.join("state");
    let s = start(&layouts, &t, &state, &["--max-body", "65536"]);
    let records: Vec<Value> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut served = 0;
    for (key, entry) in entries(&m) {
        if entry["status"] != "rendered" {
            continue;
        }
        let record = records
            .iter()
            .find(|r| r["customer_id"] == key.0.as_str())
            .unwrap();
        let asked = json!({"layout": "welcome-letter", "as_of": "2026-12-05", "channel": key.1, "record": record});
        let a = document(&s, &t.portal, &asked);
        assert_eq!(
            a.status,
            200,
            "{key:?}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let file = std::fs::read(batch.join(entry["path"].as_str().unwrap())).unwrap();
        assert!(
            a.body == file,
            "{key:?}: on demand is not the batch's bytes"
        );
        assert_eq!(
            a.header("letterpress-sha256"),
            Some(sha256_bytes(&a.body).as_str())
        );
        assert_eq!(a.header("letterpress-layout"), Some("welcome-letter@4"));
        assert_eq!(
            a.header("letterpress-digest"),
            m["layout"]["digest"].as_str()
        );
        let media = match key.1.as_str() {
            "pdf" => "application/pdf",
            "email" => "message/rfc822",
            _ => "text/html; charset=utf-8",
        };
        assert_eq!(a.header("content-type"), Some(media));
        served += 1;
    }
    assert!(served >= 12, "{served} documents compared");
    // The control: another day is other bytes (the letter is dated).
    let (id, entry) = entries(&m).into_iter().find(|(k, _)| k.1 == "pdf").unwrap();
    let record = records
        .iter()
        .find(|r| r["customer_id"] == id.0.as_str())
        .unwrap();
    let other = document(
        &s,
        &t.portal,
        &json!({"layout": "welcome-letter", "as_of": "2026-12-06", "channel": "pdf", "record": record}),
    );
    assert_eq!(other.status, 200);
    assert_ne!(sha256_bytes(&other.body), entry["sha256"].as_str().unwrap());
    // The journal: one chained entry per document served, with its hash.
    let today = letterpress::util::clock::Date::today_utc().to_string();
    let journal =
        std::fs::read_to_string(state.join("on-demand").join(&today).join("documents.jsonl"))
            .unwrap();
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), served + 1);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["index"], i);
        assert_eq!(l["client"], "portal");
        assert_eq!(l["layout"], "welcome-letter@4");
        assert!(l["prev"].as_str().is_some_and(|p| p.len() == 64));
    }
    assert_eq!(
        lines[served]["sha256"].as_str(),
        Some(sha256_bytes(&other.body).as_str())
    );
    served_and_verified(&state, &today, &dir, &other.body);
    refusals(&s, &t, record, &layouts);
}

/// `verify --served` finds a served document in the day's journal, not
/// another file, and names the line of an edited entry.
fn served_and_verified(state: &Path, today: &str, dir: &Path, served: &[u8]) {
    let day = state.join("on-demand").join(today);
    let (letter, stranger) = (dir.join("presented.pdf"), dir.join("stranger.pdf"));
    std::fs::write(&letter, served).unwrap();
    std::fs::write(&stranger, [served, b"\n"].concat()).unwrap();
    let verify = |files: &[&Path]| {
        let mut args = vec![
            "verify".to_owned(),
            "--served".into(),
            day.display().to_string(),
        ];
        for f in files {
            args.extend(["--document".to_owned(), f.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        letterpress(&args)
    };
    let ok = verify(&[&letter]);
    assert!(ok.status.success(), "{}", describe(&ok));
    let said = describe(&ok);
    assert!(
        said.contains("served at")
            && said.contains("to portal")
            && said.contains("welcome-letter@4"),
        "{said}"
    );
    let not = verify(&[&stranger]);
    assert_eq!(not.status.code(), Some(1), "{}", describe(&not));
    assert!(
        describe(&not).contains("no document with its SHA-256"),
        "{}",
        describe(&not)
    );
    // An entry edited (another record id): the chain breaks at the next line.
    let journal = day.join("documents.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let first = text.lines().next().unwrap();
    let id = serde_json::from_str::<Value>(first).unwrap()["record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        &journal,
        text.replacen(
            &format!("\"record_id\":\"{id}\""),
            "\"record_id\":\"C-0\"",
            1,
        ),
    )
    .unwrap();
    let edited = verify(&[]);
    assert_eq!(edited.status.code(), Some(1), "{}", describe(&edited));
    assert!(
        describe(&edited).contains("line 2"),
        "{}",
        describe(&edited)
    );
    std::fs::write(&journal, text).unwrap();
}

/// A request (token, content type, body) and its answer (status, code).
type Case<'a> = (Option<&'a str>, Option<&'a str>, Vec<u8>, u16, &'a str);

/// 400, 401, 403, 404, 409, 413, 415, 422, each as JSON with its code.
fn refusals<'a>(s: &Server, t: &'a Tokens, record: &Value, layouts: &Path) {
    let url = format!("{}/v1/documents", s.base);
    let ok = json!({"layout": "welcome-letter", "channel": "pdf", "as_of": "2026-12-05", "record": record});
    let with = |k: &str, v: Value| {
        let mut r = ok.clone();
        r[k] = v;
        r
    };
    let mut missing = record.clone();
    missing.as_object_mut().unwrap().remove("last_name");
    let json_case = |token: &'a str, body: Value, status: u16, code: &'a str| -> Case<'a> {
        (
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
            status,
            code,
        )
    };
    let cases: Vec<Case> = vec![
        (
            None,
            Some("application/json"),
            ok.to_string().into(),
            401,
            "unauthorized",
        ),
        json_case("lp_not-a-token", ok.clone(), 401, "unauthorized"),
        json_case(&t.sched, ok.clone(), 403, "forbidden"),
        (
            Some(&t.portal),
            Some("text/plain"),
            ok.to_string().into(),
            415,
            "unsupported_media_type",
        ),
        (
            Some(&t.portal),
            Some("application/json"),
            b"{\"layout\": ".to_vec(),
            400,
            "bad_request",
        ),
        (
            Some(&t.portal),
            Some("application/json"),
            vec![b' '; 70_000],
            413,
            "too_large",
        ),
        json_case(
            &t.portal,
            with("layout", json!("no-such-letter")),
            404,
            "unknown_layout",
        ),
        json_case(&t.portal, with("version", json!(9)), 404, "unknown_layout"),
        json_case(
            &t.portal,
            with("as_of", json!("1990-01-01")),
            409,
            "not_cleared",
        ),
        json_case(&t.portal, with("record", missing), 422, "invalid_record"),
        json_case(
            &t.portal,
            with("as_of", json!("yesterday")),
            422,
            "invalid_request",
        ),
        json_case(
            &t.portal,
            with("channel", json!("fax")),
            422,
            "invalid_request",
        ),
    ];
    for (token, ctype, body, status, code) in cases {
        let a = http("POST", &url, token, ctype, &body);
        assert_eq!(
            a.status,
            status,
            "{code}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.json()["code"],
            code,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
    }
    let a = http(
        "POST",
        &url,
        Some(&t.portal),
        Some("application/json"),
        with("record", {
            let mut r = record.clone();
            r.as_object_mut().unwrap().remove("last_name");
            r
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(a.json()["field"], "last_name");
    // A version whose files changed since it was approved is refused
    // within a second or two of the change.
    let template = layouts.join("welcome-letter/4/letter.typ");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, format!("{text}\n// changed\n")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let a = http(
        "POST",
        &url,
        Some(&t.portal),
        Some("application/json"),
        ok.to_string().as_bytes(),
    );
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (409, Some("not_cleared")),
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    std::fs::write(&template, text).unwrap();
    // A token taken out of the file no longer opens anything.
    let kept: Vec<String> = std::fs::read_to_string(&t.file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("portal "))
        .map(str::to_owned)
        .collect();
    std::fs::write(&t.file, kept.join("\n") + "\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let a = http(
        "POST",
        &url,
        Some(&t.portal),
        Some("application/json"),
        ok.to_string().as_bytes(),
    );
    assert_eq!(a.status, 401);
    let a = http(
        "POST",
        &url,
        Some(&t.ops),
        Some("application/json"),
        ok.to_string().as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
}

/// Request bodies for `n` welcome letters to different customers (the
/// same record again would come from Typst's memory, not a render), in
/// `dir/body-N.json`.
fn letter_bodies(dir: &Path, n: usize) -> Vec<PathBuf> {
    let data = welcome_records(&dir.join("records.jsonl"), n, 3);
    let text = std::fs::read_to_string(&data).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let record: Value = serde_json::from_str(line).unwrap();
            let body = dir.join(format!("body-{i}.json"));
            let asked = json!({"layout": "welcome-letter", "channel": "pdf", "record": record});
            std::fs::write(&body, asked.to_string()).unwrap();
            body
        })
        .collect()
}

/// Every request of `bodies` at once with curl (`--parallel`), each
/// POSTing its body to /v1/documents: (status, seconds, Retry-After) of
/// each (all answered), and curl's lines.
fn burst(s: &Server, token: &str, bodies: &[PathBuf]) -> (Vec<(u16, f64, String)>, String) {
    let one = |body: &PathBuf| {
        format!(
            "url = \"{}/v1/documents\"\nrequest = \"POST\"\nheader = \"Authorization: Bearer {token}\"\nheader = \"Content-Type: application/json\"\ndata-binary = \"@{}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}} %{{time_total}} %header{{retry-after}}\\n\"\n",
            s.base,
            body.display()
        )
    };
    // `next` between them, not after the last.
    let config: Vec<String> = bodies.iter().map(one).collect();
    let cfg = bodies[0].with_extension("curl");
    std::fs::write(&cfg, config.join("next\n")).unwrap();
    let n = bodies.len().to_string();
    let out = Command::new("curl")
        .args([
            "-s",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            &n,
            "-K",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let answers: Vec<(u16, f64, String)> = text
        .lines()
        .map(|l| {
            let mut w = l.split(' ');
            (
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(answers.len(), bodies.len(), "{text}");
    (answers, text)
}

/// A request's budget counts its time in the queue: with a budget shorter
/// than the queue ahead, the later requests get 503 `timeout`, are never
/// rendered and never journaled; none is refused 429 (the queue holds
/// them all).
#[test]
fn the_time_budget_counts_the_time_in_the_queue() {
    let dir = scratch("serve-budget");
    let t = tokens(&dir);
    let state = dir.join("state");
    let s = start(
        &root().join("layouts"),
        &t,
        &state,
        &["--workers", "1", "--queue", "40", "--timeout", "0.03"],
    );
    let (answers, text) = burst(&s, &t.ops, &letter_bodies(&dir, 40));
    let made = answers.iter().filter(|a| a.0 == 200).count();
    let late: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(answers.iter().all(|a| a.0 == 200 || a.0 == 503), "{text}");
    assert!(
        !late.is_empty(),
        "40 letters made one at a time within 30 ms each: {text}"
    );
    assert!(
        late.iter().all(|a| a.2.parse::<u64>().is_ok()),
        "Retry-After on every 503: {text}"
    );
    // Only what was answered is in the journal.
    let today = letterpress::util::clock::Date::today_utc().to_string();
    let journal = state.join("on-demand").join(today).join("documents.jsonl");
    let entries = std::fs::read_to_string(&journal)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    assert_eq!(
        entries, made,
        "{made} documents answered, {entries} journaled"
    );
}

/// Beyond the workers and the queue, the answer is 429 with Retry-After at
/// once (never a slow timeout, never a 5xx); the metrics count them.
#[test]
fn a_flood_beyond_the_queue_gets_429_at_once() {
    let dir = scratch("serve-flood");
    let t = tokens(&dir);
    let s = start(
        &root().join("layouts"),
        &t,
        &dir.join("state"),
        &["--workers", "1", "--queue", "2", "--timeout", "60"],
    );
    let (answers, text) = burst(&s, &t.ops, &letter_bodies(&dir, 48));
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(answers.iter().all(|a| a.0 == 200 || a.0 == 429), "{text}");
    // At least the two the queue holds are made (the worker may not have
    // taken the first yet when all 48 arrive).
    assert!(
        ok >= 2 && !busy.is_empty(),
        "{ok} made, {} refused: {text}",
        busy.len()
    );
    for (_, seconds, retry) in &busy {
        assert!(
            retry.parse::<u64>().is_ok_and(|r| r >= 1),
            "Retry-After `{retry}`"
        );
        // Refused at once: not after the 60 s budget, nor after the
        // documents ahead of it.
        assert!(*seconds < 5.0, "a 429 after {seconds} s");
    }
    let text = metrics(&s, &t.ops);
    let line = format!("letterpress_http_request_duration_seconds_count{{route=\"/v1/documents\",layout=\"\",status=\"429\"}} {}", busy.len());
    assert!(text.contains(&line), "{line} not in:\n{text}");
    assert!(
        text.contains(&format!(
            "letterpress_documents_total{{channel=\"pdf\",outcome=\"rendered\",reason=\"\"}} {ok}"
        )),
        "{text}"
    );
    let asked =
        |token: Option<&str>| http("GET", &format!("{}/metrics", s.base), token, None, b"").status;
    assert_eq!((asked(Some(&t.portal)), asked(None)), (403, 401));
}

/// The server's metrics, read with `token` (an `admin` one).
fn metrics(s: &Server, token: &str) -> String {
    let answer = get(&format!("{}/metrics", s.base), Some(token));
    assert_eq!(answer.status, 200);
    String::from_utf8_lossy(&answer.body).into_owned()
}

fn submit(s: &Server, token: &str, key: &str, query: &str, ctype: &str, data: &[u8]) -> Answer {
    http_with(
        "POST",
        &format!("{}/v1/jobs?{query}", s.base),
        Some(token),
        Some(ctype),
        data,
        &[format!("Idempotency-Key: {key}")],
    )
}

/// Polls job `id` until `done` says so (at most `limit`).
fn wait_job(
    s: &Server,
    token: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let a = get(&format!("{}/v1/jobs/{id}", s.base), Some(token));
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v = a.json();
        if done(&v) {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "job {id} did not get there in {limit:?}: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The same key twice is one job; the same key with other data is
/// refused; a job's files are its client's alone.
#[test]
fn a_job_submitted_twice_with_one_key_is_one_job() {
    let dir = scratch("serve-jobs");
    let t = tokens(&dir);
    let s = start(&root().join("layouts"), &t, &dir.join("state"), &[]);
    let csv = std::fs::read(root().join("fixtures/customers.csv")).unwrap();
    let query = "layout=welcome-letter&as_of=2026-12-05&channels=pdf,email";
    let first = submit(&s, &t.sched, "run-2026-12-05", query, "text/csv", &csv);
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let again = submit(&s, &t.sched, "run-2026-12-05", query, "text/csv", &csv);
    assert_eq!(again.status, 202);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(
        first.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = submit(
        &s,
        &t.sched,
        "run-2026-12-05",
        query,
        "text/csv",
        &csv[..csv.len() - 40],
    );
    assert_eq!(
        (other.status, other.json()["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(
        submit(&s, &t.sched, "k", query, "text/plain", &csv).status,
        415
    );
    // Data that cannot be read is refused before it becomes a job.
    let semi = b"customer_id;first_name\nC-1;Ann\n";
    let bad = submit(&s, &t.sched, "semi", query, "text/csv", semi);
    assert_eq!(
        (bad.status, bad.json()["code"].as_str()),
        (422, Some("invalid_data"))
    );
    let said = bad.json()["error"].as_str().unwrap().to_owned();
    assert!(
        said.contains("no `customer_id` column") && said.contains("`;`"),
        "{said}"
    );
    assert!(
        !said.contains("incoming"),
        "no server path in an answer: {said}"
    );
    let cut = submit(
        &s,
        &t.sched,
        "cut",
        query,
        "application/json",
        b"[{\"customer_id\": \"C-1\"},\n{\"a\": ",
    );
    assert_eq!(
        (cut.status, cut.json()["code"].as_str()),
        (422, Some("invalid_data")),
        "{}",
        String::from_utf8_lossy(&cut.body)
    );
    assert_eq!(
        submit(&s, &t.sched, "k", "layout=nope", "text/csv", &csv).status,
        404
    );
    assert_eq!(
        submit(&s, &t.portal, "k", query, "text/csv", &csv).status,
        403
    );
    // A second server on the same state folder is refused: one writer.
    let second = Command::new(bin())
        .current_dir(root())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--tokens",
        ])
        .arg(&t.file)
        .arg("--state")
        .arg(dir.join("state"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", describe(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another serve is working in this folder"),
        "{}",
        describe(&second)
    );
    let done = wait_job(&s, &t.sched, &id, Duration::from_secs(120), |v| {
        v["state"] == "succeeded"
    });
    assert_eq!(done["totals"]["records"], 56);
    let jobs = dir.join("state/jobs");
    let folders: Vec<_> = std::fs::read_dir(&jobs)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(folders.len(), 1, "one job folder");
    assert!(
        !jobs.join(&id).join("data.csv").exists(),
        "the data is deleted once the job ended"
    );
    let m = get(&format!("{}/v1/jobs/{id}/manifest", s.base), Some(&t.sched));
    assert_eq!(m.status, 200);
    assert_eq!(m.json()["totals"]["records"], 56);
    let doc = get(
        &format!("{}/v1/jobs/{id}/documents/0/pdf", s.base),
        Some(&t.sched),
    );
    assert_eq!(doc.status, 200);
    assert!(doc.body.starts_with(b"%PDF"));
    // Any file of the run folder, streamed; never one outside it.
    let path = m.json()["documents"]["path"]
        .as_str()
        .unwrap_or("documents.jsonl")
        .to_owned();
    let journal = get(
        &format!("{}/v1/jobs/{id}/files/{path}", s.base),
        Some(&t.sched),
    );
    assert_eq!(journal.status, 200);
    assert_eq!(
        journal.body,
        std::fs::read(jobs.join(&id).join("run").join(&path)).unwrap()
    );
    let first: Value =
        serde_json::from_slice(journal.body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let pdf = first["path"].as_str().unwrap();
    let same = get(
        &format!("{}/v1/jobs/{id}/files/{pdf}", s.base),
        Some(&t.sched),
    );
    assert_eq!(
        (same.status, same.header("content-type")),
        (200, Some("application/pdf"))
    );
    for sneaky in [
        "../job.json",
        "%2e%2e/job.json",
        "pdf/../../job.json",
        "%2fetc%2fpasswd",
        "pdf",
    ] {
        let out = Command::new("curl")
            .args([
                "-s",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", &format!("Authorization: Bearer {}", t.sched)])
            .arg(format!("{}/v1/jobs/{id}/files/{sneaky}", s.base))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404", "{sneaky}");
    }
    // Another client sees no such job; an admin does.
    let url = format!("{}/v1/jobs/{id}", s.base);
    assert_eq!(http("GET", &url, Some(&t.portal), None, b"").status, 403);
    let none = http("GET", &url, Some(&t.other), None, b"");
    assert_eq!(
        (none.status, none.json()["code"].as_str()),
        (404, Some("not_found"))
    );
    let verify = letterpress(&["verify", jobs.join(&id).join("run").to_str().unwrap()]);
    assert!(verify.status.success(), "{}", describe(&verify));
    assert_eq!(http("GET", &url, Some(&t.ops), None, b"").status, 200);
    failures_are_listed_a_page_at_a_time(&s, &t);
    let text = metrics(&s, &t.ops);
    assert!(
        text.contains("letterpress_jobs{state=\"succeeded\"} 2"),
        "{text}"
    );
}

/// A job whose data holds records that fail lists them with their
/// reasons, one page at a time.
fn failures_are_listed_a_page_at_a_time(s: &Server, t: &Tokens) {
    let good = customer("F-1", json!({}));
    let bad = |id: &str| customer(id, json!({"last_name": null}));
    let lines: Vec<String> = [good, bad("F-2"), bad("F-3"), bad("F-4")]
        .iter()
        .map(Value::to_string)
        .collect();
    let a = submit(
        s,
        &t.sched,
        "failing",
        "layout=welcome-letter&as_of=2026-12-05&channels=pdf",
        "application/x-ndjson",
        (lines.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let done = wait_job(s, &t.sched, &id, Duration::from_secs(60), |v| {
        v["state"] == "succeeded"
    });
    assert_eq!(
        (
            done["totals"]["records"].as_u64(),
            done["totals"]["failed"].as_u64()
        ),
        (Some(4), Some(3))
    );
    let mut url = format!("/v1/jobs/{id}?limit=2");
    let mut seen = Vec::new();
    while !url.is_empty() {
        let page = get(&format!("{}{url}", s.base), Some(&t.sched)).json();
        for f in page["failures"].as_array().unwrap() {
            assert!(f["error"].as_str().unwrap().contains("last_name"), "{f}");
            seen.push(f["record_id"].as_str().unwrap().to_owned());
        }
        url = page["next_failures"].as_str().unwrap_or("").to_owned();
    }
    assert_eq!(seen, ["F-2", "F-3", "F-4"]);
}

/// Every index of a run journal exactly once per channel.
fn each_record_once(run: &Path, records: usize, channels: usize) {
    let journal = std::fs::read_to_string(run.join("documents.jsonl")).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for line in journal.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        *seen.entry(v["index"].as_u64().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), records);
    assert!(
        seen.values().all(|&n| n == channels),
        "a record twice or missing a channel"
    );
}

/// A job survives a server killed with SIGKILL, and a SIGTERM drains: not
/// ready, new requests 503, the job stopped between records, exit 0; each
/// resumes at the next start and ends with every record exactly once.
#[test]
fn a_job_survives_sigkill_and_sigterm_drains() {
    let dir = scratch("serve-restart");
    let t = tokens(&dir);
    let state = dir.join("state");
    let data = welcome_records(&dir.join("records.jsonl"), 600, 11);
    let bytes = std::fs::read(&data).unwrap();
    let s = start(&root().join("layouts"), &t, &state, &[]);
    let query = "layout=welcome-letter&as_of=2026-12-05&channels=pdf";
    let a = submit(&s, &t.sched, "kill", query, "application/x-ndjson", &bytes);
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let v = wait_job(&s, &t.sched, &id, Duration::from_secs(60), |v| {
        v["progress"]["done"].as_u64().is_some_and(|d| d >= 60)
    });
    assert_eq!(v["state"], "running");
    let mut s = s;
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    drop(s);
    let s = start(
        &root().join("layouts"),
        &t,
        &state,
        &["--drain-seconds", "2"],
    );
    wait_job(&s, &t.sched, &id, Duration::from_secs(60), |v| {
        v["progress"]["done"].as_u64().is_some_and(|d| d >= 120) || v["state"] == "succeeded"
    });
    // SIGTERM: draining, then exit 0 with the job queued to resume.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    let ready = get(&format!("{}/readyz", s.base), None);
    assert_eq!(
        (ready.status, String::from_utf8_lossy(&ready.body).trim()),
        (503, "draining")
    );
    let refused = get(&format!("{}/v1/jobs/{id}", s.base), Some(&t.sched));
    assert_eq!(
        (refused.status, refused.json()["code"].as_str()),
        (503, Some("draining"))
    );
    assert!(refused.header("retry-after").is_some());
    let mut s = s;
    let status = s.child.wait().unwrap();
    assert!(status.success(), "serve exited {status:?} after SIGTERM");
    let job: Value = serde_json::from_slice(
        &std::fs::read(state.join("jobs").join(&id).join("job.json")).unwrap(),
    )
    .unwrap();
    if job["state"] != "succeeded" {
        assert_eq!(job["state"], "queued", "{job}");
        assert!(
            job["error"].as_str().unwrap().contains("interrupted"),
            "{job}"
        );
    }
    drop(s);
    let s = start(&root().join("layouts"), &t, &state, &[]);
    let done = wait_job(&s, &t.sched, &id, Duration::from_secs(180), |v| {
        v["state"] == "succeeded"
    });
    assert_eq!(done["totals"]["records"], 600);
    assert_eq!(done["totals"]["failed"], 0);
    let run = state.join("jobs").join(&id).join("run");
    each_record_once(&run, 600, 1);
    let m = manifest(&run);
    assert!(
        m["resumed"].as_array().is_some_and(|r| !r.is_empty()),
        "the run resumed: {}",
        m["resumed"]
    );
    let verify = letterpress(&["verify", run.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", describe(&verify));
}

/// The server's answers match its own OpenAPI document: Schemathesis (from
/// PyPI; `.ci/run` installs it into target/schemathesis) finds no 5xx and
/// no schema violation.
#[test]
fn schemathesis_finds_no_server_error_or_schema_violation() {
    let st = std::env::var_os("LETTERPRESS_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/schemathesis/bin/schemathesis"));
    assert!(
        st.exists(),
        "Schemathesis is not installed at {} (python3 -m venv target/schemathesis && target/schemathesis/bin/pip install schemathesis, as .ci/run does; or set LETTERPRESS_SCHEMATHESIS)",
        st.display()
    );
    let dir = scratch("serve-schemathesis");
    let t = tokens(&dir);
    let s = start(&root().join("layouts"), &t, &dir.join("state"), &[]);
    // A finished job, so that its pages are tested with an id that exists.
    let csv = std::fs::read(root().join("fixtures/customers.csv")).unwrap();
    let a = submit(
        &s,
        &t.ops,
        "fixture",
        "layout=welcome-letter&as_of=2026-12-05",
        "text/csv",
        &csv,
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    wait_job(&s, &t.ops, &id, Duration::from_secs(120), |v| {
        v["state"] == "succeeded"
    });
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!("[parameters]\n\"path.id\" = \"{id}\"\n\"path.channel\" = \"pdf\"\n\"query.layout\" = \"welcome-letter\"\n"),
    )
    .unwrap();
    let out = Command::new(&st)
        .current_dir(&dir)
        .args([
            "run",
            &format!("{}/openapi.json", s.base),
            "--checks",
            "all",
        ])
        // A schema cannot say which layouts exist nor what each layout's
        // records hold: a schema-valid request for an unknown layout is
        // rightly refused.
        .args(["--exclude-checks", "positive_data_acceptance"])
        // DELETE cancels a job; the job stays readable (its state and its
        // journal are the record of what was done), never 404.
        .args(["--exclude-checks", "use_after_free"])
        .args(["--max-examples", "40", "--seed", "1", "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {}", t.ops)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Schemathesis found problems:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("passed"), "{said}");
}

/// Beyond loopback the service speaks HTTPS only: without a certificate it
/// does not start; with one it answers over TLS and not in plain HTTP.
#[test]
fn beyond_loopback_it_speaks_https_only() {
    let dir = scratch("serve-tls");
    let t = tokens(&dir);
    let serve = |listen: &str, extra: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.current_dir(root())
            .args(["serve", "--listen", listen, "--tokens"])
            .arg(&t.file)
            .arg("--state")
            .arg(dir.join("state"))
            .args(extra);
        cmd
    };
    let refused = serve(&format!("0.0.0.0:{}", free_port()), &[])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        describe(&refused).contains("HTTPS only"),
        "{}",
        describe(&refused)
    );
    let (cert, key) = certificate(&dir);
    let port = free_port();
    let mut child = serve(
        &format!("127.0.0.1:{port}"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on https://") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve stopped");
    }
    let _server = Server {
        child,
        base: format!("https://127.0.0.1:{port}"),
    };
    let ask = |url: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&cert)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(ask(&format!("https://127.0.0.1:{port}/healthz")), "200");
    assert_eq!(ask(&format!("http://127.0.0.1:{port}/healthz")), "000");
}

/// DELETE stops a running job between records: it ends `cancelled`, with
/// the records done in its journal and its data deleted.
#[test]
fn a_running_job_is_cancelled_between_records() {
    let dir = scratch("serve-cancel");
    let t = tokens(&dir);
    let state = dir.join("state");
    let s = start(&root().join("layouts"), &t, &state, &[]);
    let data = std::fs::read(welcome_records(&dir.join("records.jsonl"), 2000, 5)).unwrap();
    let a = submit(
        &s,
        &t.sched,
        "long",
        "layout=welcome-letter&as_of=2026-12-05&channels=pdf",
        "application/x-ndjson",
        &data,
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    wait_job(&s, &t.sched, &id, Duration::from_secs(60), |v| {
        v["progress"]["done"].as_u64().is_some_and(|d| d >= 20)
    });
    let url = format!("{}/v1/jobs/{id}", s.base);
    assert_eq!(http("DELETE", &url, Some(&t.other), None, b"").status, 404);
    let asked = http("DELETE", &url, Some(&t.sched), None, b"");
    assert_eq!(
        asked.status,
        200,
        "{}",
        String::from_utf8_lossy(&asked.body)
    );
    let done = wait_job(&s, &t.sched, &id, Duration::from_secs(60), |v| {
        v["state"] == "cancelled"
    });
    assert!(done["finished_at"].is_string());
    let run = state.join("jobs").join(&id).join("run");
    let journal = std::fs::read_to_string(run.join("documents.jsonl")).unwrap();
    let lines = journal.lines().count();
    assert!(
        (20..2000).contains(&lines),
        "{lines} records done before the stop"
    );
    assert!(!state.join("jobs").join(&id).join("data.jsonl").exists());
    // Cancelling again changes nothing.
    let again = http("DELETE", &url, Some(&t.sched), None, b"");
    assert_eq!(
        (again.status, again.json()["state"].as_str()),
        (200, Some("cancelled"))
    );
}

/// A render that never ends (a template that loops on one record's data)
/// is answered 503 at its budget; its worker is given up after
/// --doc-timeout and replaced, so the next document is made; with every
/// worker stuck, /healthz asks for a restart and the metrics say why.
#[test]
fn a_render_that_never_ends_is_answered_and_its_worker_replaced() {
    let dir = scratch("serve-stuck");
    let t = tokens(&dir);
    let layouts = crate::bad_input::robust_layouts(&dir);
    let s = start(
        &layouts,
        &t,
        &dir.join("state"),
        &["--workers", "1", "--timeout", "1", "--doc-timeout", "2"],
    );
    let asked = |id: &str, slow: bool| json!({"layout": "robust", "channel": "pdf", "record": {"customer_id": id, "name": "x", "amount": 1, "slow": slow}});
    let started = Instant::now();
    let stuck = document(&s, &t.portal, &asked("B-1", true));
    assert_eq!(
        (stuck.status, stuck.json()["code"].as_str()),
        (503, Some("timeout"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered after {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let next = document(&s, &t.portal, &asked("G-1", false));
    assert_eq!(next.status, 200, "{}", String::from_utf8_lossy(&next.body));
    let health = get(&format!("{}/healthz", s.base), None);
    assert_eq!(health.status, 503);
    assert!(String::from_utf8_lossy(&health.body).contains("restart"));
    let text = metrics(&s, &t.ops);
    assert!(
        text.contains("letterpress_lane{lane=\"on-demand\",stage=\"stuck\"} 1"),
        "{text}"
    );
}
