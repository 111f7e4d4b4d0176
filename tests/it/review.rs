//! The review workspace (`letterpress review`) as reviewers use it: a real
//! OpenID provider (npm `oidc-provider`, OpenID-certified, started by the
//! test: tests/a11y/oidc.mjs) and Debian's Chromium driven by
//! puppeteer-core (tests/a11y/review.mjs) log in, open, decide; then the
//! command line (`run`, `layouts approve`, the examiner's `VERIFY.txt`)
//! treats what the browser signed like its own records. The test needs
//! node, the npm packages and Chromium, and fails (never skips) without
//! them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::*;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copies `name@4` to `name@5` (or `to`) with `edits` in file `rel`.
fn new_version(layouts: &Path, name: &str, to: u32, rel: &str, edits: &[(&str, &str)]) {
    let (from, dst) = (
        layouts.join(name).join("4"),
        layouts.join(name).join(to.to_string()),
    );
    copy_tree(&from, &dst);
    let meta = dst.join("layout.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        text.replacen("version: 4", &format!("version: {to}"), 1),
    )
    .unwrap();
    let path = dst.join(rel);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (a, b) in edits {
        assert!(text.contains(a), "{rel} holds {a:?}");
        text = text.replacen(a, b, 1);
    }
    std::fs::write(&path, text).unwrap();
}

/// The demo trust list with logins for its people, the workspace (its
/// key, the provider's issuer, the groups), and Sam as compliance too.
fn workspace_trust(dir: &Path, issuer: &str, key: &Path) -> PathBuf {
    let text = std::fs::read_to_string(trust_list()).unwrap();
    let mut list: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for p in list["people"].as_sequence_mut().unwrap() {
        let id = p["id"].as_str().unwrap().to_owned();
        let login = id.split('.').next().unwrap().to_owned();
        p["login"] = login.clone().into();
        if login == "sam" {
            p["roles"] = serde_yaml::from_str("[author, compliance]").unwrap();
        }
    }
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    list["workspace"] = serde_yaml::from_str(&format!(
        "id: review-workspace\nname: Review workspace (test)\nissuer: {issuer}\ngroups: {{letter-authors: author, compliance-reviewers: compliance, legal-reviewers: legal}}\nkeys: [{{key: \"{}\", from: 2026-01-01}}]",
        public.trim()
    ))
    .unwrap();
    // Each run of the payment reminder must be released before it leaves.
    list["policy"]["layouts"]["payment-reminder"] =
        serde_yaml::from_str("{approvals: [compliance], release: compliance}").unwrap();
    let path = dir.join("trust.yaml");
    std::fs::write(&path, serde_yaml::to_string(&list).unwrap()).unwrap();
    path
}

/// Runs `payment-reminder@4` into `dir/runs/NAME`.
fn reminder_run(layouts: &Path, trust: &str, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join("runs").join(name);
    let data = root().join("fixtures/reminders.csv");
    let res = letterpress_with_layouts(
        layouts,
        &[
            "run",
            "--layout",
            "payment-reminder@4",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--as-of",
            "2026-12-06",
            "--trust",
            trust,
            "--print",
        ],
    );
    assert!(res.status.success(), "{}", describe(&res));
    out
}

/// `send --dry-run` of a run: its exit code and what it said.
fn send_dry(run: &Path, trust: &str) -> (Option<i32>, String) {
    let out = letterpress(&[
        "send",
        "--run",
        run.to_str().unwrap(),
        "--smtp",
        "smtp://127.0.0.1:1",
        "--dry-run",
        "--trust",
        trust,
    ]);
    (out.status.code(), describe(&out))
}

/// Makes the review workspace's SSH key, `dir/workspace-key` (and `.pub`).
fn workspace_key(dir: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "review workspace (test)",
            "-f",
        ])
        .arg(dir.join("workspace-key"))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts the test's OpenID provider; returns it and its issuer URL.
fn provider(redirect: &str) -> (Killed, String) {
    let dir = root().join("tests/a11y");
    for package in ["oidc-provider", "puppeteer-core", "axe-core"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{package} is not installed: run `npm ci --prefix tests/a11y` (.ci/run does)"
        );
    }
    let mut child = Command::new("node")
        .arg(dir.join("oidc.mjs"))
        .args([redirect, "test-client-secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Read on, or the provider dies writing to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let v: Value = serde_json::from_str(&line).expect("the provider says its issuer");
    (Killed(child), v["issuer"].as_str().unwrap().to_owned())
}

/// Starts `letterpress review`; waits until it listens.
fn workspace(layouts: &Path, trust: &Path, dir: &Path, port: u16) -> Killed {
    listening(workspace_cmd(
        layouts,
        trust,
        dir,
        &format!("127.0.0.1:{port}"),
    ))
}

/// `letterpress review --listen LISTEN` with the test's keys, data and
/// client.
fn workspace_cmd(layouts: &Path, trust: &Path, dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "review",
        "--listen",
        listen,
        "--max-age",
        "20",
        "--as-of",
        "2026-12-06",
    ])
    .arg("--layouts")
    .arg(layouts)
    .arg("--trust")
    .arg(trust)
    .arg("--key")
    .arg(dir.join("workspace-key"))
    .arg("--state")
    .arg(dir.join("state"))
    .arg("--runs")
    .arg(dir.join("runs"))
    .arg("--data")
    .arg(dir.join("customers.csv"))
    .arg("--data")
    .arg(format!(
        "payment-reminder={}",
        root().join("fixtures/reminders.csv").display()
    ))
    .arg("--data")
    .arg(format!(
        "annual-statement={}",
        root().join("fixtures/statements.jsonl").display()
    ))
    .args(["--client-id", "letterpress-review"])
    .env("LETTERPRESS_OIDC_CLIENT_SECRET", "test-client-secret");
    cmd
}

/// Spawns the workspace and waits until it says it listens.
fn listening(mut cmd: Command) -> Killed {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("the workspace stopped before it listened: {said}");
        }
        said.push_str(&line);
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Killed(child)
}

/// A session idle longer than `--idle` ends: its cookie opens nothing.
#[test]
fn a_session_idle_longer_than_its_limit_ends() {
    let dir = scratch("review-idle");
    workspace_key(&dir);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (_idp, issuer) = provider(&format!("{base}/callback"));
    let trust = workspace_trust(&dir, &issuer, &dir.join("workspace-key"));
    let mut cmd = workspace_cmd(
        &root().join("layouts"),
        &trust,
        &dir,
        &format!("127.0.0.1:{port}"),
    );
    cmd.args(["--idle", "0.1"]);
    let _ws = listening(cmd);
    let out = Command::new("node")
        .arg(root().join("tests/a11y/review.mjs"))
        .args([
            &base,
            &issuer,
            "8",
            dir.join("shots").to_str().unwrap(),
            "idle",
        ])
        .output()
        .unwrap();
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{}\n{facts:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(facts["beforeIdle"], 200, "{facts:#}");
    assert_eq!(facts["afterIdle"]["status"], 303, "{facts:#}");
    assert_eq!(facts["afterIdle"]["location"], "/login?back=/", "{facts:#}");
}

/// Beyond loopback the workspace serves HTTPS only (rustls): without a
/// certificate it refuses to start; with one, HTTPS answers (with its
/// security headers) and plain HTTP on the same port does not.
#[test]
fn beyond_loopback_the_workspace_serves_https_only() {
    let dir = scratch("review-tls");
    workspace_key(&dir);
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let (_idp, issuer) = provider(&format!("https://127.0.0.1:{port}/callback"));
    let trust = workspace_trust(&dir, &issuer, &dir.join("workspace-key"));
    let layouts = root().join("layouts");
    let plain = workspace_cmd(&layouts, &trust, &dir, &listen)
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(2), "{}", describe(&plain));
    assert!(
        describe(&plain).contains("serves HTTPS only: give --tls-cert and --tls-key"),
        "{}",
        describe(&plain)
    );
    let (cert, key) = certificate(&dir);
    let mut cmd = workspace_cmd(&layouts, &trust, &dir, &listen);
    cmd.arg("--tls-cert").arg(&cert).arg("--tls-key").arg(&key);
    let _ws = listening(cmd);
    let curl = |url: &str, extra: &[&str]| {
        Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--max-time", "10"])
            .args(extra)
            .arg(url)
            .output()
            .unwrap()
    };
    let https = curl(
        &format!("https://127.0.0.1:{port}/"),
        &["--cacert", cert.to_str().unwrap()],
    );
    let head = String::from_utf8_lossy(&https.stdout).to_lowercase();
    assert!(
        head.starts_with("http/2 303") || head.starts_with("http/1.1 303"),
        "{head}"
    );
    assert!(
        head.contains("location: /login?back=/")
            && head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let http = curl(&format!("http://127.0.0.1:{port}/"), &[]);
    assert!(
        !String::from_utf8_lossy(&http.stdout).contains("303"),
        "plain HTTP answered"
    );
}

fn records(layouts: &Path, name: &str) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(layouts.join(name).join("decisions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

#[test]
fn reviewers_log_in_open_everything_and_sign_in_the_browser() {
    let dir = scratch("review-workspace");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    new_version(
        &layouts,
        "welcome-letter",
        5,
        "texts.yaml",
        &[(
            "We look forward to working with you.",
            "We look forward to serving you.",
        )],
    );
    new_version(
        &layouts,
        "welcome-letter",
        6,
        "texts.yaml",
        &[(
            "We look forward to working with you.",
            "Thanks for banking with us.",
        )],
    );
    new_version(
        &layouts,
        "payment-reminder",
        5,
        "texts.yaml",
        &[("Yours sincerely,", "Kind regards,")],
    );
    new_version(
        &layouts,
        "annual-statement",
        5,
        "letter.typ",
        &[("[Your annual statement]", "[Your statement for the year]")],
    );
    workspace_key(&dir);
    // The sample data the welcome letter's proofs come from holds a record
    // whose id is markup: it must show as text and never run.
    let csv = std::fs::read_to_string(root().join("fixtures/customers.csv")).unwrap();
    let hostile = csv.replacen(
        "C-01001,",
        "C-01001<script>alert(1)</script><img src=x onerror=alert(2)>,",
        1,
    );
    std::fs::write(dir.join("customers.csv"), hostile).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (_idp, issuer) = provider(&format!("{base}/callback"));
    let trust = workspace_trust(&dir, &issuer, &dir.join("workspace-key"));
    let t = trust.to_str().unwrap();
    // Sam submits three versions from the command line, with his own key.
    for id in ["welcome-letter@5", "welcome-letter@6", "annual-statement@5"] {
        let key = demo_key("author-sam");
        let out = letterpress_with_layouts(
            &layouts,
            &[
                "layouts",
                "submit",
                id,
                "--yes",
                "--trust",
                t,
                "--key",
                key.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", describe(&out));
    }
    let runs: Vec<PathBuf> = ["reminders-a", "reminders-b", "reminders-c"]
        .iter()
        .map(|n| reminder_run(&layouts, t, &dir, n))
        .collect();
    let (code, said) = send_dry(&runs[2], t);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("released by compliance in the review workspace"),
        "{said}"
    );
    let _ws = workspace(&layouts, &trust, &dir, port);
    let shots = dir.join("shots");
    let out = Command::new("node")
        .arg(root().join("tests/a11y/review.mjs"))
        .args([&base, &issuer, "20", shots.to_str().unwrap()])
        .output()
        .unwrap();
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{}\n{facts:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    browser_saw(&facts);
    let chain = records(&layouts, "welcome-letter");
    let approval = chain
        .iter()
        .find(|r| r["version"] == 5 && r["decision"] == "approved")
        .unwrap();
    what_the_browser_signed(approval, &issuer);
    // The early refusals left nothing behind: v6 has its submission and
    // the one rejection with its reason.
    let v6: Vec<&Value> = chain.iter().filter(|r| r["version"] == 6).collect();
    assert_eq!(v6.len(), 2, "{v6:#?}");
    assert_eq!(v6[1]["decision"], "rejected");
    assert_eq!(
        v6[1]["reason"],
        "REV-2 the closing line is not approved wording"
    );
    assert_eq!(v6[1]["login"]["subject"], "jide");
    // Two reviewers at once: both records, one after the other.
    let annual = records(&layouts, "annual-statement");
    let n = annual.len();
    let last: Vec<&str> = annual[n - 3..n - 1]
        .iter()
        .map(|r| r["signer"]["role"].as_str().unwrap())
        .collect();
    assert!(
        last.contains(&"compliance") && last.contains(&"legal"),
        "{last:?}"
    );
    assert_eq!(annual[n - 1]["seq"].as_u64().unwrap(), n as u64);
    assert_eq!(annual[n - 1]["decision"], "revoked", "{:#}", annual[n - 1]);
    assert_eq!(annual[n - 1]["login"]["subject"], "lena");
    assert!(annual[n - 1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("REV-3"));
    command_line_agrees(&layouts, t, &dir);
    workspace_forgeries_are_refused(&layouts, t, &dir);
    releases_hold_and_let_go(&runs, t);
}

/// A released run sends; a stopped one and one never released do not; a
/// release record edited after signing counts for nothing.
fn releases_hold_and_let_go(runs: &[PathBuf], trust: &str) {
    let (code, said) = send_dry(&runs[0], trust);
    assert_eq!(code, Some(0), "{said}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(runs[0].join("release.json")).unwrap()).unwrap();
    assert_eq!(record["decision"], "released");
    assert_eq!(record["login"]["subject"], "priya");
    let opened: Vec<&str> = record["opened"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(opened.contains(&"report") && opened.len() > 2, "{opened:?}");
    let verify = letterpress(&["verify", runs[0].to_str().unwrap()]);
    assert!(verify.status.success(), "{}", describe(&verify));
    // The print shop's ticket appears with the release, a copy of the held
    // one; the unreleased run has only the held ticket.
    let print = |run: &Path, name: &str| std::fs::read(run.join("print").join(name)).ok();
    let held = print(&runs[0], "job-ticket-HELD-until-released.csv");
    assert!(held.is_some());
    assert_eq!(print(&runs[0], "job-ticket.csv"), held);
    assert!(
        print(&runs[2], "job-ticket.csv").is_none()
            && print(&runs[2], "job-ticket-HELD-until-released.csv").is_some()
    );
    assert!(
        print(&runs[1], "job-ticket.csv").is_none(),
        "a stopped run has no ticket"
    );
    let (code, said) = send_dry(&runs[1], trust);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("stopped this run") && said.contains("REV-9 wrong fee table"),
        "{said}"
    );
    let (code, said) = send_dry(&runs[2], trust);
    assert!(
        code == Some(2) && said.contains("not released yet"),
        "{said}"
    );
    // Edited after signing: a stop turned into a release.
    let stopped = runs[1].join("release.json");
    let text = std::fs::read_to_string(&stopped).unwrap();
    std::fs::write(&stopped, text.replace("\"stopped\"", "\"released\"")).unwrap();
    let (code, said) = send_dry(&runs[1], trust);
    assert!(
        code == Some(2) && said.contains("release record does not count"),
        "{said}"
    );
    let verify = letterpress(&["verify", runs[1].to_str().unwrap()]);
    assert!(
        !verify.status.success() && describe(&verify).contains("release.json: it was altered"),
        "{}",
        describe(&verify)
    );
}

/// The workspace's key signs only for a login the trust list names, as
/// that person: a record it signs without a login, or for another login
/// than the person it names, does not count (`layouts check` exits 1).
fn workspace_forgeries_are_refused(layouts: &Path, trust: &str, dir: &Path) {
    type Spoil = fn(&mut Value);
    let cases: [(&str, Spoil, &str); 3] = [
        (
            "no login",
            |r| {
                r.as_object_mut()
                    .unwrap()
                    .remove("login")
                    .map(drop)
                    .unwrap()
            },
            "names no login",
        ),
        (
            "another login",
            |r| r["login"]["subject"] = "lena".into(),
            "signed with a key of Lena",
        ),
        (
            "nobody's login",
            |r| r["login"]["subject"] = "mallory".into(),
            "nobody's in the trust list",
        ),
    ];
    for (what, spoil, why) in cases {
        let copy = dir.join(format!("forged-{}", what.replace(' ', "-")));
        copy_tree(layouts, &copy);
        let decisions = copy.join("welcome-letter/decisions");
        let file = std::fs::read_dir(&decisions)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("-v5-approved.json"))
            .unwrap();
        let mut record: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        spoil(&mut record);
        let mut bytes = serde_json::to_vec_pretty(&record).unwrap();
        bytes.push(b'\n');
        std::fs::write(&file, bytes).unwrap();
        std::fs::remove_file(file.with_extension("json.sig")).unwrap();
        let signed = Command::new("ssh-keygen")
            .args([
                "-q",
                "-Y",
                "sign",
                "-n",
                "letterpress-layout-decision",
                "-f",
            ])
            .arg(dir.join("workspace-key"))
            .arg(&file)
            .status()
            .unwrap();
        assert!(signed.success());
        let out = letterpress_with_layouts(&copy, &["layouts", "check", "--trust", trust]);
        assert!(!out.status.success(), "{what}: {}", describe(&out));
        assert!(describe(&out).contains(why), "{what}: {}", describe(&out));
    }
}

/// What each user saw in the browser.
fn browser_saw(facts: &Value) {
    let text = |k: &str| facts[k].as_str().unwrap_or_default().to_owned();
    let field = |k: &str, f: &str| facts[k][f].as_str().unwrap_or_default().to_owned();
    for page in facts["pages"].as_array().unwrap() {
        assert_eq!(
            page["violations"],
            serde_json::json!([]),
            "axe-core on {page:#}"
        );
        assert_eq!(
            (page["narrow"].as_u64(), page["zoom"].as_u64()),
            (Some(0), Some(0)),
            "sideways scrolling on {page:#}"
        );
    }
    assert!(facts["pages"].as_array().unwrap().len() >= 9);
    assert_eq!(facts["scripts"], 0, "a page holds a script");
    assert_eq!(
        facts["dialogs"],
        serde_json::json!([]),
        "a record's markup ran"
    );
    assert!(
        text("version").contains("C-01001<script>alert(1)</script>"),
        "the id shows as text: {}",
        text("version")
    );
    assert_eq!(
        facts["requests"],
        serde_json::json!([]),
        "requests to other origins"
    );
    let queue = text("queue");
    assert!(
        queue.contains("welcome-letter@5") && queue.contains("0 of 1 approvals"),
        "{queue}"
    );
    assert!(
        queue.contains("0 of 2 approvals; needs compliance, legal"),
        "{queue}"
    );
    assert!(
        text("version").contains("Proof records")
            && text("version").contains("Changes against the version in effect")
    );
    assert!(
        field("early", "text").contains("open everything before approving; not yet opened"),
        "{}",
        facts["early"]
    );
    assert!(facts["opened"].as_u64().unwrap() >= 3);
    assert_eq!(
        facts["earlierSession"], 303,
        "a new login ends the earlier session"
    );
    assert!(
        field("confirm", "text").contains("approves welcome-letter@5"),
        "{}",
        facts["confirm"]
    );
    assert_eq!(
        field("approved", "title"),
        "Decision recorded",
        "{}",
        facts["approved"]
    );
    assert_eq!(
        facts["keyboardVersion"], "/v/welcome-letter/5",
        "reached with the keyboard"
    );
    for c in facts["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "__Host-lp_session")
    {
        assert_eq!(
            (&c["secure"], &c["httpOnly"], &c["sameSite"]),
            (&Value::Bool(true), &Value::Bool(true), &Value::from("Lax"))
        );
    }
    assert!(
        text("commented").contains("REV-1 <b>checked</b> the closing line"),
        "the comment, its markup as text: {}",
        text("commented")
    );
    // The author: his own submission is not in his queue and he may not
    // approve it; he submits in the browser.
    assert!(
        !text("authorQueue").contains("welcome-letter@6"),
        "{}",
        text("authorQueue")
    );
    assert!(
        text("authorQueue").contains("payment-reminder@5"),
        "{}",
        text("authorQueue")
    );
    assert_eq!(
        field("submitted", "title"),
        "Decision recorded",
        "{}",
        facts["submitted"]
    );
    assert!(
        field("author", "text").contains("you submitted welcome-letter@6"),
        "{}",
        facts["author"]
    );
    // No role: nothing to decide.
    assert!(
        text("nobody").contains("Nothing awaits your decision") && !text("nobody").contains('@'),
        "{}",
        text("nobody")
    );
    // Refused: no reason, a wrong or missing CSRF token.
    assert_eq!(facts["noReason"]["status"], 422);
    assert!(field("noReason", "text").contains("must say why"));
    assert_eq!(facts["badCsrf"]["status"], 403);
    assert!(field("badCsrf", "text").contains("CSRF token is wrong"));
    assert_eq!(facts["noCsrf"]["status"], 422);
    // A stale login logs in again before signing.
    assert_eq!(
        field("stale", "title"),
        "Log in again to sign",
        "{}",
        facts["stale"]
    );
    assert_eq!(
        field("rejected", "title"),
        "Decision recorded",
        "{}",
        facts["rejected"]
    );
    for c in facts["concurrent"].as_array().unwrap() {
        assert_eq!(c["title"], "Decision recorded", "{c}");
    }
    assert!(
        text("runQueue").contains("Runs awaiting your release")
            && text("runQueue").contains("reminders-a"),
        "{}",
        text("runQueue")
    );
    assert!(
        field("earlyRelease", "text").contains("open everything before releasing"),
        "{}",
        facts["earlyRelease"]
    );
    assert!(facts["runOpened"].as_u64().unwrap() >= 3);
    assert_eq!(
        field("released", "title"),
        "Run released",
        "{}",
        facts["released"]
    );
    assert_eq!(
        field("stopped", "title"),
        "Run stopped",
        "{}",
        facts["stopped"]
    );
    assert_eq!(
        facts["afterLogout"], 303,
        "the old session cookie still works"
    );
}

/// A decision the workspace signed: who logged in, where, when, and
/// every proof record, page and changed sentence they opened.
fn what_the_browser_signed(r: &Value, issuer: &str) {
    assert_eq!(r["login"]["workspace"], "review-workspace");
    assert_eq!(r["login"]["issuer"], issuer);
    assert_eq!(r["login"]["subject"], "priya");
    assert_eq!(r["login"]["name"], "Priya Natarajan");
    assert_eq!(r["signer"]["id"], "priya.natarajan@demo.invalid");
    assert!(r["login"]["auth_time"].as_str().unwrap() <= r["at"].as_str().unwrap());
    let evidence = &r["evidence"];
    let picks: Vec<&Value> = evidence["proof"]["picks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["record"])
        .collect();
    let opened = &evidence["opened"];
    let records: Vec<&Value> = opened["records"].as_array().unwrap().iter().collect();
    assert_eq!(picks.len(), records.len());
    assert!(picks.iter().all(|p| records.contains(p)), "{opened:#}");
    assert!(opened["pages"].as_array().unwrap().len() >= picks.len());
    let changed = evidence["diff"]["appearing"].as_array().unwrap().len()
        + evidence["diff"]["disappearing"].as_array().unwrap().len();
    assert!(changed > 0);
    assert_eq!(opened["sentences"].as_array().unwrap().len(), changed);
    assert!(opened["sentences"].as_array().unwrap().iter().any(|s| s
        .as_str()
        .unwrap()
        .contains("We look forward to serving you.")));
}

/// `run`, `layouts approve` and an examiner's `VERIFY.txt` treat the
/// browser's records as their own.
fn command_line_agrees(layouts: &Path, trust: &str, dir: &Path) {
    let key = demo_key("author-sam");
    let out = letterpress_with_layouts(
        layouts,
        &[
            "layouts",
            "approve",
            "payment-reminder@5",
            "--yes",
            "--trust",
            trust,
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        describe(&out).contains("you submitted payment-reminder@5"),
        "{}",
        describe(&out)
    );
    let data = root().join("fixtures/customers.csv");
    // Letters dated today: the workspace approved the version today, and
    // a letter dated before its approval may not use it.
    let today = letterpress::util::clock::Date::today_utc().to_string();
    let run = |v: &str, out: &Path| {
        letterpress_with_layouts(
            layouts,
            &[
                "run",
                "--layout",
                v,
                "--data",
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--as-of",
                &today,
                "--trust",
                trust,
                "--channels",
                "pdf",
            ],
        )
    };
    let ok = run("welcome-letter@5", &dir.join("run-5"));
    assert!(ok.status.success(), "{}", describe(&ok));
    let letters = std::fs::read_dir(dir.join("run-5/pdf")).unwrap();
    let text: String = letters
        .map(|e| squash(&pdftotext(&e.unwrap().path())))
        .collect();
    assert!(
        text.contains("Welookforwardtoservingyou."),
        "the approved version's words are printed"
    );
    let refused = run("welcome-letter@6", &dir.join("run-6"));
    assert!(!refused.status.success());
    assert!(
        describe(&refused).contains("rejected"),
        "{}",
        describe(&refused)
    );
    let check = letterpress_with_layouts(layouts, &["layouts", "check", "--trust", trust]);
    assert!(check.status.success(), "{}", describe(&check));
    let bundle = dir.join("bundle");
    let tar = dir.join("welcome.tar");
    let out = letterpress_with_layouts(
        layouts,
        &[
            "layouts",
            "export",
            "welcome-letter@5",
            "--trust",
            trust,
            "--out",
            tar.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    std::fs::create_dir_all(&bundle).unwrap();
    assert!(Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&bundle)
        .status()
        .unwrap()
        .success());
    let verify = Command::new("sh")
        .arg("VERIFY.txt")
        .current_dir(bundle.join("welcome-letter-v5"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && said.contains("every check passed"),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.contains("review-workspace"), "{said}");
}
