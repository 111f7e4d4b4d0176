//! Signed approvals: real SSH keys made with ssh-keygen, signing from key
//! files and through a real ssh-agent, a trust list outside the layouts
//! folder, and every way of cheating a person without (or with the wrong)
//! key might try, each refused by the real binary with its reason. The
//! examiner's bundle is checked with ssh-keygen and sha256sum alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use letterpress::model::decision::{Kind, Record, Signer};

use crate::common::*;

/// A deployment: its own trust list and keys, and a copy of the sample
/// layouts whose decisions (signed with the demo keys) are left behind.
struct Desk {
    dir: PathBuf,
    layouts: PathBuf,
    trust: PathBuf,
}

/// The people of the test trust list: (key name, id, name, roles, key
/// terms). `bob` holds two keys and two roles; `dan`'s key expired;
/// `mallory` is in no list.
const PEOPLE: &[(&str, &str, &str, &str)] = &[
    ("alice", "alice@bank.test", "Alice Author", "[author]"),
    (
        "carol",
        "carol@bank.test",
        "Carol Compliance",
        "[compliance]",
    ),
    ("dan", "dan@bank.test", "Dan Departed", "[compliance]"),
    ("lee", "lee@bank.test", "Lee Legal", "[legal]"),
    ("bob", "bob@bank.test", "Bob Both", "[author, compliance]"),
];

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(out.status.success(), "{}", describe(&out));
    path
}

fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

fn desk(name: &str) -> Desk {
    let dir = scratch(name);
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    for layout in std::fs::read_dir(&layouts).unwrap() {
        let _ = std::fs::remove_dir_all(layout.unwrap().path().join("decisions"));
    }
    let mut yaml = String::from("people:\n");
    for (key, id, person, roles) in PEOPLE {
        let mut terms = vec![(keygen(&keys, key), "from: 2026-01-01")];
        if *key == "dan" {
            terms[0].1 = "from: 2026-01-01, until: 2026-06-30";
        }
        if *key == "bob" {
            terms.push((keygen(&keys, "bob2"), "from: 2026-01-01"));
        }
        yaml += &format!("  - id: {id}\n    name: {person}\n    roles: {roles}\n    keys:\n");
        for (path, t) in terms {
            yaml += &format!("      - {{key: \"{}\", {t}}}\n", public(&path));
        }
    }
    keygen(&keys, "mallory");
    yaml += "policy:\n  default: {approvals: [compliance]}\n  layouts:\n    annual-statement: {approvals: [compliance, legal]}\n";
    // The trust list is deployment configuration: beside, not in, layouts/.
    let trust = dir.join("config/trust.yaml");
    std::fs::create_dir_all(trust.parent().unwrap()).unwrap();
    std::fs::write(&trust, yaml).unwrap();
    Desk {
        dir,
        layouts,
        trust,
    }
}

impl Desk {
    fn key(&self, name: &str) -> PathBuf {
        self.dir.join("keys").join(name)
    }

    /// The binary with this desk's layouts and trust list.
    fn lp(&self, args: &[&str]) -> Output {
        self.lp_env(args, &[])
    }

    fn lp_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.current_dir(root())
            .env("LETTERPRESS_LAYOUTS", &self.layouts)
            .env("LETTERPRESS_TRUST", &self.trust)
            .env("LETTERPRESS_ADDRESS_KEY_FILE", address_key())
            .env_remove("SSH_AUTH_SOCK")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("the binary runs")
    }

    /// A decision through the command line, signed with key file `key`.
    fn decide(&self, verb: &str, id: &str, key: &str, extra: &[&str]) -> Output {
        let key = self.key(key);
        let mut args = vec!["layouts", verb, id, "--key", key.to_str().unwrap(), "--yes"];
        args.extend_from_slice(extra);
        self.lp(&args)
    }

    fn decide_ok(&self, verb: &str, id: &str, key: &str, extra: &[&str]) {
        let out = self.decide(verb, id, key, extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{verb} {id}: {}",
            describe(&out)
        );
    }

    /// `run` of `id` on the sample data for it, as of `as_of`.
    fn run(&self, id: &str, out: &Path, as_of: &str) -> Output {
        let data = match id.split('@').next().unwrap() {
            "annual-statement" => root().join("fixtures/statements.jsonl"),
            "payment-reminder" => root().join("fixtures/reminders.csv"),
            _ => root().join("fixtures/customers.csv"),
        };
        let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
        self.lp(&run_cmd(id, data, out, &["--as-of", as_of]))
    }

    /// A copy of this desk (same trust list and keys), to cheat on.
    fn copy(&self, name: &str) -> Desk {
        let dir = scratch(name);
        copy_tree(&self.layouts, &dir.join("layouts"));
        Desk {
            layouts: dir.join("layouts"),
            dir: self.dir.clone(),
            trust: self.trust.clone(),
        }
    }

    /// [`Desk::copy`] with welcome-letter@3 submitted by Alice.
    fn submitted_copy(&self, name: &str) -> Desk {
        let d = self.copy(name);
        d.decide_ok("submit", "welcome-letter@3", "alice", &[]);
        d
    }

    fn decisions(&self, layout: &str) -> PathBuf {
        self.layouts.join(layout).join("decisions")
    }

    /// The record files of a layout, in chain order.
    fn records(&self, layout: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.decisions(layout))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    }

    /// Writes a record by hand (bypassing every check of `layouts
    /// approve`) after the last of `layout`'s chain, about `version` as its
    /// submission describes it, and signs it with `ssh-keygen -Y sign` and
    /// key `key` (if any): what a person with a key, or a forger, can do.
    fn forge(
        &self,
        layout: &str,
        version: u32,
        key: Option<&str>,
        edit: impl Fn(&mut Record),
    ) -> PathBuf {
        let files = self.records(layout);
        let last = files.last().unwrap();
        let bytes = std::fs::read(last).unwrap();
        let head: Record = serde_json::from_slice(&bytes).unwrap();
        let submitted: Record = files
            .iter()
            .rev()
            .map(|f| serde_json::from_slice::<Record>(&std::fs::read(f).unwrap()).unwrap())
            .find(|r| r.version == version && r.decision == Kind::Submitted)
            .unwrap();
        let today = letterpress::util::clock::Date::today_utc().to_string();
        let mut r = Record {
            seq: head.seq + 1,
            prev: sha256_bytes(&bytes),
            decision: Kind::Approved,
            meaning: String::new(),
            reason: None,
            signer: Signer {
                id: "carol@bank.test".into(),
                name: "Carol Compliance".into(),
                role: "compliance".into(),
            },
            key: String::new(),
            at: letterpress::util::clock::rfc3339_utc(letterpress::util::clock::unix_seconds()),
            from: Some(today),
            until: None,
            evidence: None,
            ..submitted
        };
        if let Some(key) = key {
            r.key = fingerprint(&self.key(key));
        }
        edit(&mut r);
        r.meaning = letterpress::layout::decisions::meaning(&r);
        let name = format!("{:04}-v{}-{}.json", r.seq, r.version, r.decision);
        let path = self.decisions(layout).join(name);
        let mut text = serde_json::to_vec_pretty(&r).unwrap();
        text.push(b'\n');
        std::fs::write(&path, text).unwrap();
        if let Some(key) = key {
            let out = Command::new("ssh-keygen")
                .args(["-Y", "sign", "-n", "letterpress-layout-decision", "-f"])
                .arg(self.key(key))
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", describe(&out));
        }
        path
    }
}

/// The signer a record names: `key`'s person of [`PEOPLE`], in `role`.
fn person(key: &str, role: &str) -> Signer {
    let (_, id, name, _) = PEOPLE.iter().find(|p| p.0 == key).unwrap();
    Signer {
        id: (*id).into(),
        name: (*name).into(),
        role: role.into(),
    }
}

fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn today() -> String {
    letterpress::util::clock::Date::today_utc().to_string()
}

/// Asserts that `out` is a refusal (exit `code`) whose text holds `want`.
fn refused(out: &Output, code: i32, want: &str) {
    let text = squash(&format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    assert!(
        text.contains(&squash(want)),
        "wanted {want:?} in:\n{}",
        describe(out)
    );
}

/// What an examiner does with a bundle: extracts it into `at`, lets
/// `spoil` change it, and runs `sh VERIFY.txt` with nothing but the
/// standard tools on the PATH (no letterpress).
fn examine(tar: &Path, at: &Path, spoil: &dyn Fn(&Path)) -> Output {
    std::fs::create_dir_all(at).unwrap();
    let x = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .current_dir(at)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", describe(&x));
    let top = at.join("welcome-letter-v4");
    spoil(&top);
    Command::new("sh")
        .arg("VERIFY.txt")
        .current_dir(&top)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// A running ssh-agent, killed when dropped.
struct Agent {
    sock: String,
    pid: String,
}

impl Agent {
    fn start() -> Agent {
        let out = Command::new("ssh-agent")
            .arg("-s")
            .output()
            .expect("ssh-agent runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let value = |name: &str| {
            text.split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split(';').next())
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .to_owned()
        };
        Agent {
            sock: value("SSH_AUTH_SOCK"),
            pid: value("SSH_AGENT_PID"),
        }
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

#[test]
fn a_version_runs_once_its_author_submitted_it_and_a_reviewer_approved_it_through_ssh_agent() {
    let d = desk("approve-agent");
    let out = d.dir.join("out");
    refused(
        &d.run("welcome-letter@4", &out, &today()),
        2,
        "never submitted for review",
    );
    assert!(!out.exists());

    // The author submits with a key file.
    d.decide_ok(
        "submit",
        "welcome-letter@4",
        "alice",
        &["--reason", "CHG-1041"],
    );
    refused(
        &d.run("welcome-letter@4", &out, &today()),
        2,
        "waiting for approval by compliance",
    );

    // The reviewer's private key lives only in ssh-agent: letterpress gets
    // the public key, ssh-keygen asks the agent to sign.
    let agent = Agent::start();
    agent.add(&d.key("carol"));
    let private = d.key("carol");
    std::fs::rename(&private, d.dir.join("carol.moved")).unwrap();
    let carol = d.key("carol").with_extension("pub");
    let args = [
        "layouts",
        "approve",
        "welcome-letter@4",
        "--key",
        carol.to_str().unwrap(),
        "--yes",
    ];
    // Negative control: without the agent nobody holds the private key.
    let no_agent = d.lp(&args);
    assert_ne!(no_agent.status.code(), Some(0), "{}", describe(&no_agent));
    assert_eq!(
        d.records("welcome-letter").len(),
        1,
        "a failed signature records nothing"
    );
    let approved = d.lp_env(&args, &[("SSH_AUTH_SOCK", &agent.sock)]);
    assert_eq!(approved.status.code(), Some(0), "{}", describe(&approved));
    let said = squash(&String::from_utf8_lossy(&approved.stderr));
    assert!(
        said.contains(&squash(
            "Carol Compliance, compliance, approves welcome-letter@4 (layout digest"
        )) && said.contains(&squash(&format!("for use with customers from {}", today()))),
        "the signer sees the words they sign: {said}"
    );
    drop(agent);

    // The records verify with OpenSSH alone, against the trust list.
    let signers = d.dir.join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "carol@bank.test namespaces=\"letterpress-layout-decision\" {}\n",
            public(&d.key("carol"))
        ),
    )
    .unwrap();
    let record = &d.records("welcome-letter")[1];
    let check = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args([
            "-I",
            "carol@bank.test",
            "-n",
            "letterpress-layout-decision",
            "-s",
        ])
        .arg(record.with_extension("json.sig"))
        .stdin(std::fs::File::open(record).unwrap())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", describe(&check));

    let res = d.run("welcome-letter@4", &out, &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    let approval = &m["layout"]["approval"];
    assert!(
        approval["standing"]
            .as_str()
            .unwrap()
            .contains("approved by Carol Compliance as compliance"),
        "{approval}"
    );
    assert_eq!(approval["submitted"]["by"], "Alice Author", "{approval}");
    assert_eq!(
        approval["approvals"][0]["by"], "Carol Compliance",
        "{approval}"
    );
    assert_eq!(
        approval["trust"]["sha256"],
        sha256_file(&d.trust).as_str(),
        "{approval}"
    );
    assert!(
        approval["trust"]["demo"].is_null(),
        "not the demo list: {approval}"
    );
    for f in [
        "0001-v4-submitted.json",
        "0002-v4-approved.json.sig",
        "trust.yaml",
    ] {
        let copies = walk(&out.join("approval"));
        assert!(
            copies.iter().any(|p| p.ends_with(f)),
            "{f} kept with the run: {copies:?}"
        );
    }
    let verify = d.lp(&["verify", out.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));

    // People read the history.
    let show = d.lp(&["layouts", "show", "welcome-letter@4"]);
    let text = squash(&String::from_utf8_lossy(&show.stdout));
    for want in [
        "Alice Author",
        "CHG-1041",
        "Carol Compliance",
        "approves welcome-letter@4",
    ] {
        assert!(text.contains(&squash(want)), "{want} in: {text}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .collect()
}

/// welcome-letter@4 submitted by Alice and approved by Carol, and a run of
/// it made before any cheating.
fn approved_desk(name: &str) -> (Desk, PathBuf) {
    let d = desk(name);
    d.decide_ok("submit", "welcome-letter@4", "alice", &[]);
    d.decide_ok("approve", "welcome-letter@4", "carol", &[]);
    let out = d.dir.join("before");
    let res = d.run("welcome-letter@4", &out, &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    (d, out)
}

/// Every command that decides whether a version may reach customers
/// (`run`, `validate`, `layouts check`) refuses `id` on `d` with `want`.
fn everyone_refuses(d: &Desk, id: &str, want: &str) {
    let out = d.dir.join(format!(
        "cheat-{}",
        d.layouts
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    refused(&d.run(id, &out, &today()), 2, want);
    assert!(!out.exists(), "nothing is rendered");
    let data = root().join("fixtures/customers.csv");
    refused(
        &d.lp(&[
            "validate",
            "--layout",
            id,
            "--data",
            data.to_str().unwrap(),
            "--as-of",
            &today(),
        ]),
        2,
        want,
    );
    let check = d.lp(&["layouts", "check"]);
    refused(&check, 1, want);
}

#[test]
fn a_person_without_a_reviewer_key_cannot_make_a_version_approved() {
    let (base, _) = approved_desk("cheat-base");

    // 1. An edited record: moving the approval's first day back. A run
    // made before the edit no longer verifies against the folder.
    let d = base.copy("cheat-edited");
    let before = d.dir.join("before-edit");
    let res = d.run("welcome-letter@4", &before, &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let approval = &d.records("welcome-letter")[1];
    let text = std::fs::read_to_string(approval).unwrap();
    let edited = text.replace(
        &format!("\"from\": \"{}\"", today()),
        "\"from\": \"2026-01-01\"",
    );
    assert_ne!(text, edited);
    std::fs::write(approval, edited).unwrap();
    let want =
        "record 2 (approval 1 of welcome-letter@4) was altered: its signature does not verify";
    everyone_refuses(&d, "welcome-letter@4", want);
    refused(
        &d.lp(&["verify", before.to_str().unwrap()]),
        1,
        "changed since the run: record 2 is no longer the one the run saw",
    );

    // 2. A hand-written record with no signature, approving a submitted version.
    let d = base.submitted_copy("cheat-unsigned");
    d.forge("welcome-letter", 3, None, |_| {});
    everyone_refuses(
        &d,
        "welcome-letter@3",
        "record 4 (approval 1 of welcome-letter@3) has no signature",
    );

    // 3. Signed, but by a key the trust list does not hold, naming Carol.
    let d = base.submitted_copy("cheat-outsider");
    d.forge("welcome-letter", 3, Some("mallory"), |_| {});
    let want = format!(
        "record 4 (approval 1 of welcome-letter@3) is signed by a key not in the trust list ({})",
        fingerprint(&d.key("mallory"))
    );
    everyone_refuses(&d, "welcome-letter@3", &want);

    // 4. A record removed from the middle of the chain.
    let d = base.submitted_copy("cheat-removed");
    let records = d.records("welcome-letter");
    std::fs::remove_file(&records[1]).unwrap();
    std::fs::remove_file(records[1].with_extension("json.sig")).unwrap();
    everyone_refuses(&d, "welcome-letter@4", "record 2 is missing from the chain");
    refused(
        &d.decide("approve", "welcome-letter@3", "carol", &[]),
        2,
        "record 2 is missing from the chain",
    );

    // ... and the first record of the chain.
    let d = base.copy("cheat-first");
    let records = d.records("welcome-letter");
    std::fs::remove_file(&records[0]).unwrap();
    everyone_refuses(&d, "welcome-letter@4", "record 1 is missing from the chain");

    // ... or a link in its place, which would make a record of any file.
    let d = base.copy("cheat-link");
    let link = d.decisions("welcome-letter").join("0003-v4-approved.json");
    std::os::unix::fs::symlink(d.records("welcome-letter")[1].clone(), &link).unwrap();
    everyone_refuses(
        &d,
        "welcome-letter@4",
        "0003-v4-approved.json is not a plain file (a link or a folder), so not a decision record",
    );

    // 5. A record copied from another layout's chain.
    let d = base.copy("cheat-transplant");
    d.decide_ok("submit", "payment-reminder@4", "alice", &[]);
    let from = d.records("welcome-letter")[1].clone();
    let to = d
        .decisions("payment-reminder")
        .join("0002-v4-approved.json");
    std::fs::copy(&from, &to).unwrap();
    std::fs::copy(
        from.with_extension("json.sig"),
        to.with_extension("json.sig"),
    )
    .unwrap();
    let check = d.lp(&["layouts", "check"]);
    refused(
        &check,
        1,
        "is about layout welcome-letter, not payment-reminder",
    );

    // 6. Files changed after the approval: the approval is void.
    let d = base.copy("cheat-drift");
    let letter = d.layouts.join("welcome-letter/4/letter.typ");
    let text = std::fs::read_to_string(&letter).unwrap();
    std::fs::write(&letter, format!("{text}\n// one more line\n")).unwrap();
    everyone_refuses(&d, "welcome-letter@4", "letter.typ changed");

    // 7. The newest records taken away (the tail of a chain): the version
    // looks submitted and unapproved to a new run; the earlier run's
    // manifest recorded the chain head, so verify sees records are gone.
    let d = base.copy("cheat-tail");
    let before = d.dir.join("before-tail");
    let res = d.run("welcome-letter@4", &before, &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let records = d.records("welcome-letter");
    std::fs::remove_file(&records[1]).unwrap();
    refused(
        &d.run("welcome-letter@4", &d.dir.join("tail"), &today()),
        2,
        "waiting for approval",
    );
    refused(
        &d.lp(&["verify", before.to_str().unwrap()]),
        1,
        "changed since the run: record 2 is no longer the one the run saw",
    );

    // Negative control: the untouched desk runs.
    let res = base.run("welcome-letter@4", &base.dir.join("after"), &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn a_key_holder_cannot_approve_their_own_change_backdate_or_approve_other_files() {
    let (base, _) = approved_desk("keyholder-base");

    // The author who also holds a compliance role, under their other key.
    let d = base.copy("keyholder-self");
    d.decide_ok("submit", "welcome-letter@3", "bob", &[]);
    refused(
        &d.decide("approve", "welcome-letter@3", "bob2", &[]),
        2,
        "you submitted welcome-letter@3: its author may not approve",
    );
    d.forge("welcome-letter", 3, Some("bob2"), |r| {
        r.signer = person("bob", "compliance");
    });
    everyone_refuses(&d, "welcome-letter@3", "the author approved their own change: record 4 (approval 1 of welcome-letter@3) is signed by Bob Both, who submitted it (record 3)");

    // The CLI refuses a reviewer whose key expired before anything is signed.
    let d = base.submitted_copy("keyholder-expired-cli");
    refused(
        &d.decide("approve", "welcome-letter@3", "dan", &[]),
        2,
        "your key is an expired key (valid until 2026-06-30)",
    );

    // Records a key holder writes and signs by hand, bypassing the CLI:
    // (name, key, what the record says, the refusal).
    type Edit = Box<dyn Fn(&mut Record)>;
    let backdated_from = format!(
        "takes effect from 2026-01-01, before the day it was signed ({}): it is back-dated",
        today()
    );
    let zeros = "0".repeat(64);
    let other_digest = format!("is about layout digest {zeros}, not the submitted");
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        // An author without the role signs as compliance.
        (
            "role",
            "alice",
            Box::new(|r| r.signer = person("alice", "compliance")),
            "is signed as `compliance`, a role Alice Author does not hold",
        ),
        // A reviewer whose key expired signs anyway ...
        (
            "expired",
            "dan",
            Box::new(|r| r.signer = person("dan", "compliance")),
            "is signed by Dan Departed with an expired key (valid until 2026-06-30)",
        ),
        // ... and dates the record inside the key's validity: it is then
        // dated before the submission it approves.
        (
            "expired-backdated",
            "dan",
            Box::new(|r| {
                r.signer = person("dan", "compliance");
                r.at = "2026-06-01T09:00:00Z".into();
                r.from = Some("2026-06-01".into());
            }),
            "is dated 2026-06-01T09:00:00Z, before the submission it decides on (record 3",
        ),
        // A valid reviewer back-dates the first day the approval counts.
        (
            "from",
            "carol",
            Box::new(|r| r.from = Some("2026-01-01".into())),
            &backdated_from,
        ),
        // A valid reviewer approves files other than the submitted ones.
        (
            "digest",
            "carol",
            Box::new(move |r| r.digest = "0".repeat(64)),
            &other_digest,
        ),
    ];
    for (name, key, edit, want) in cases {
        let d = base.submitted_copy(&format!("keyholder-{name}"));
        d.forge("welcome-letter", 3, Some(key), edit);
        everyone_refuses(&d, "welcome-letter@3", want);
    }

    // Negative control: the same forging path with nothing wrong counts.
    let d = base.submitted_copy("keyholder-fine");
    d.forge("welcome-letter", 3, Some("carol"), |_| {});
    let res = d.run("welcome-letter@3", &d.dir.join("fine"), &today());
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

#[test]
fn rejected_revoked_and_four_eyes_decide_what_runs() {
    let (d, _) = approved_desk("lifecycle");

    // A rejection needs a reason and stops the version.
    d.decide_ok("submit", "welcome-letter@3", "alice", &[]);
    refused(
        &d.decide("reject", "welcome-letter@3", "carol", &["--reason", " "]),
        2,
        "must give its reason",
    );
    d.decide_ok(
        "reject",
        "welcome-letter@3",
        "carol",
        &["--reason", "fee table wrong (REV-7)"],
    );
    refused(
        &d.run("welcome-letter@3", &d.dir.join("rejected"), &today()),
        2,
        "rejected by Carol Compliance as compliance",
    );
    refused(
        &d.decide("approve", "welcome-letter@3", "carol", &[]),
        2,
        "submits it again",
    );

    // A revocation from a later day stops letters dated from that day on.
    let later = {
        let today = letterpress::util::clock::Date::today_utc();
        letterpress::util::clock::Date::from_unix_days(today.unix_days() + 10).to_string()
    };
    d.decide_ok(
        "revoke",
        "welcome-letter@4",
        "carol",
        &["--reason", "rate changed", "--from", &later],
    );
    let ok = d.run(
        "welcome-letter@4",
        &d.dir.join("before-revocation"),
        &today(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    refused(
        &d.run("welcome-letter@4", &d.dir.join("after-revocation"), &later),
        2,
        &format!("its approval was revoked from {later} by Carol Compliance"),
    );

    // Four eyes, two functions: the statement needs compliance and legal.
    d.decide_ok("submit", "annual-statement@4", "alice", &[]);
    d.decide_ok("approve", "annual-statement@4", "carol", &[]);
    refused(
        &d.run("annual-statement@4", &d.dir.join("one"), &today()),
        2,
        "waiting for approval by legal (approved so far by Carol Compliance",
    );
    refused(
        &d.decide("approve", "annual-statement@4", "carol", &[]),
        2,
        "you already approved annual-statement@4",
    );
    d.decide_ok("approve", "annual-statement@4", "lee", &[]);
    let two = d.run("annual-statement@4", &d.dir.join("two"), &today());
    assert_eq!(two.status.code(), Some(0), "{}", describe(&two));

    // An approval.yaml of an earlier letterpress is refused, saying how to
    // re-approve.
    let legacy = d.layouts.join("payment-reminder/4/approval.yaml");
    std::fs::write(
        &legacy,
        "approved_by: Priya Natarajan (Compliance)\napproved_on: 2026-11-22\ndigest: abc\n",
    )
    .unwrap();
    refused(&d.run("payment-reminder@4", &d.dir.join("legacy"), &today()), 2, "a typed name is not an approval: its author submits it (`letterpress layouts submit payment-reminder@4");
}

#[test]
fn the_examiners_bundle_verifies_with_ssh_keygen_and_sha256sum_alone() {
    let d = desk("bundle");
    d.decide_ok("submit", "welcome-letter@4", "alice", &[]);
    let proof = d.dir.join("proof/welcome-letter-4.pdf");
    std::fs::create_dir_all(proof.parent().unwrap()).unwrap();
    let data = root().join("fixtures/customers.csv");
    let p = d.lp(&[
        "proof",
        "--layout",
        "welcome-letter@4",
        "--data",
        data.to_str().unwrap(),
        "--out",
        proof.to_str().unwrap(),
    ]);
    assert_eq!(p.status.code(), Some(0), "{}", describe(&p));
    let proof_json = proof.with_extension("json");
    d.decide_ok(
        "approve",
        "welcome-letter@4",
        "carol",
        &["--proof", proof_json.to_str().unwrap()],
    );
    let approval: Record =
        serde_json::from_slice(&std::fs::read(&d.records("welcome-letter")[1]).unwrap()).unwrap();
    let evidence = approval.evidence.expect("the approval names its evidence");
    assert!(
        !evidence.proof.as_ref().unwrap().picks.is_empty(),
        "{evidence:?}"
    );

    let tar = d.dir.join("bundle.tar");
    let e = d.lp(&[
        "layouts",
        "export",
        "welcome-letter@4",
        "--out",
        tar.to_str().unwrap(),
        "--proof",
        proof_json.to_str().unwrap(),
    ]);
    assert_eq!(e.status.code(), Some(0), "{}", describe(&e));

    let examine = |name: &str, spoil: &dyn Fn(&Path)| examine(&tar, &d.dir.join(name), spoil);
    let good = examine("good", &|_| {});
    assert!(good.status.success(), "{}", describe(&good));
    let said = String::from_utf8_lossy(&good.stdout);
    assert!(said.contains("every check passed"), "{said}");
    assert_eq!(
        said.matches("Good \"letterpress-layout-decision\" signature")
            .count()
            + String::from_utf8_lossy(&good.stderr)
                .matches("Good \"letterpress-layout-decision\" signature")
                .count(),
        2,
        "{}",
        describe(&good)
    );

    // Negative controls: one byte of a file, of a record, of the evidence.
    let flip = |path: PathBuf| {
        let mut b = std::fs::read(&path).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x20;
        std::fs::write(&path, b).unwrap();
    };
    for (name, spoil) in [
        (
            "file",
            Box::new(|t: &Path| flip(t.join("layout/letter.typ"))) as Box<dyn Fn(&Path)>,
        ),
        (
            "record",
            Box::new(|t: &Path| flip(t.join("decisions/0002-v4-approved.json"))),
        ),
        (
            "evidence",
            Box::new(|t: &Path| flip(t.join("evidence/welcome-letter-4.pdf"))),
        ),
    ] {
        let bad = examine(name, &*spoil);
        assert!(
            !bad.status.success(),
            "a changed {name} must fail: {}",
            describe(&bad)
        );
        assert!(!String::from_utf8_lossy(&bad.stdout).contains("every check passed"));
    }
}

#[test]
fn an_approval_records_the_diff_against_the_version_in_effect() {
    let d = desk("diff-evidence");
    d.decide_ok("submit", "payment-reminder@1", "alice", &[]);
    d.decide_ok("approve", "payment-reminder@1", "carol", &[]);
    d.decide_ok("submit", "payment-reminder@2", "alice", &[]);
    let data = root().join("fixtures/reminders.csv");
    let diff = |old: &str, name: &str| {
        let html = d.dir.join(name);
        let out = d.lp(&[
            "diff",
            old,
            "payment-reminder@2",
            "--data",
            data.to_str().unwrap(),
            "--out",
            html.to_str().unwrap(),
        ]);
        assert!(
            out.status.code().is_some_and(|c| c < 2),
            "{}",
            describe(&out)
        );
        html.with_extension("json")
    };
    // Against another version than the one in effect: refused, nothing signed.
    let other = diff("payment-reminder@3", "against-3.html");
    let args = ["--diff", other.to_str().unwrap()];
    refused(
        &d.decide("approve", "payment-reminder@2", "carol", &args),
        2,
        "but the version in effect today is payment-reminder@1",
    );
    // A page changed after it was written is not the evidence produced.
    let right = diff("payment-reminder@1", "against-1.html");
    let page = d.dir.join("against-1.html");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replacen("<body", "<body data-x=\"1\"", 1)).unwrap();
    let args = ["--diff", right.to_str().unwrap()];
    refused(
        &d.decide("approve", "payment-reminder@2", "carol", &args),
        2,
        "changed since",
    );
    assert_eq!(d.records("payment-reminder").len(), 3, "nothing was signed");
    // The real thing: the record names the comparison and its sentences.
    let right = diff("payment-reminder@1", "against-1b.html");
    let args = ["--diff", right.to_str().unwrap()];
    d.decide_ok("approve", "payment-reminder@2", "carol", &args);
    let record: Record =
        serde_json::from_slice(&std::fs::read(&d.records("payment-reminder")[3]).unwrap()).unwrap();
    let diff = record.evidence.unwrap().diff.unwrap();
    assert_eq!(diff.against, "payment-reminder@1");
    assert_eq!(diff.data_sha256, sha256_file(&data));
    assert!(diff.changed > 0 && !diff.appearing.is_empty(), "{diff:?}");
    assert_eq!(
        diff.files.get("against-1b.html").map(String::as_str),
        Some(sha256_file(&d.dir.join("against-1b.html")).as_str())
    );
}

/// VERIFY.txt is run with `sh` by an examiner: what a (forged) record says
/// never becomes a command there.
#[test]
fn nothing_a_record_says_runs_in_the_examiners_shell() {
    let (d, _) = approved_desk("bundle-hostile");
    let forged = d.forge("welcome-letter", 4, None, |r| {
        r.signer = Signer {
            id: "x';touch pwned-id;'".into(),
            name: "Eve\ntouch pwned-name\n".into(),
            role: "compliance\n$(touch pwned-role)".into(),
        };
        r.layout = "welcome-letter'$(touch pwned-layout)'".into();
    });
    let tar = d.dir.join("hostile.tar");
    let e = d.lp(&[
        "layouts",
        "export",
        "welcome-letter@4",
        "--out",
        tar.to_str().unwrap(),
    ]);
    assert_eq!(e.status.code(), Some(0), "{}", describe(&e));
    let at = d.dir.join("examiner");
    let run = examine(&tar, &at, &|_| {});
    assert!(
        !run.status.success(),
        "the forged record fails: {}",
        describe(&run)
    );
    let made: Vec<String> = walk(&at)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(
        made.is_empty(),
        "the record's words ran as commands: {made:?}"
    );

    // A record file not named as a record is refused before anything is
    // written (its name would go into the commands).
    let odd = forged.with_file_name("0003-v4-approved';touch pwned'.json");
    std::fs::rename(&forged, odd).unwrap();
    let tar2 = d.dir.join("odd.tar");
    let e = d.lp(&[
        "layouts",
        "export",
        "welcome-letter@4",
        "--out",
        tar2.to_str().unwrap(),
    ]);
    refused(&e, 2, "is not named as a decision record is");
    assert!(!tar2.exists());
}

/// Deleting the newest records of a chain (here a revocation) cannot be
/// seen from the layouts folder alone; a head the trust list pins shows it.
#[test]
fn a_head_the_trust_list_pins_shows_that_newer_records_were_deleted() {
    let (d, _) = approved_desk("pinned");
    let later = {
        let today = letterpress::util::clock::Date::today_utc();
        letterpress::util::clock::Date::from_unix_days(today.unix_days() + 10).to_string()
    };
    let why = ["--reason", "rate changed", "--from", &later];
    d.decide_ok("revoke", "welcome-letter@4", "carol", &why);
    let revoked = format!("its approval was revoked from {later}");
    refused(
        &d.run("welcome-letter@4", &d.dir.join("r"), &later),
        2,
        &revoked,
    );

    // Unpinned, the revocation deleted goes unseen (the documented limit).
    let u = d.copy("pinned-not-yet");
    std::fs::remove_file(&u.records("welcome-letter")[2]).unwrap();
    let res = u.run("welcome-letter@4", &u.dir.join("unseen"), &later);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));

    // The administrators pin the revocation.
    let head = sha256_file(&d.records("welcome-letter")[2]);
    let mut list = std::fs::read_to_string(&d.trust).unwrap();
    list += &format!("heads:\n  welcome-letter: {{seq: 3, sha256: {head}}}\n");
    std::fs::write(&d.trust, list).unwrap();
    refused(
        &d.run("welcome-letter@4", &d.dir.join("r2"), &later),
        2,
        &revoked,
    );
    let p = d.copy("pinned-deleted");
    std::fs::remove_file(&p.records("welcome-letter")[2]).unwrap();
    let want = "record 3, which the trust list pins, is missing from the chain (it ends at record 2): records were deleted";
    everyone_refuses(&p, "welcome-letter@4", want);
    // ... or replaced by another record 3.
    let p = d.copy("pinned-rewritten");
    std::fs::remove_file(&p.records("welcome-letter")[2]).unwrap();
    // (letterpress itself adds nothing to a chain that lacks its pin)
    refused(
        &p.decide("submit", "welcome-letter@3", "alice", &[]),
        2,
        "nothing can be added until they are repaired",
    );
    p.forge("welcome-letter", 4, Some("carol"), |_| {});
    everyone_refuses(
        &p,
        "welcome-letter@4",
        "record 3 is not the one the trust list pins",
    );
}
