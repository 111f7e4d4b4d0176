//! `layouts export`: an examiner's bundle of a layout version, a tar file
//! that can be checked with OpenSSH's `ssh-keygen` and coreutils'
//! `sha256sum` alone.
//!
//! `NAME-vN/` holds the version's files (`layout/`), every signed record of
//! the layout's chain (`decisions/`), the trust list (`trust.yaml`) and the
//! same list in OpenSSH's format (`allowed_signers`), the evidence given
//! (`evidence/`: the proof set and the diff, checked against the hashes the
//! decisions recorded), the files' hashes as `sha256sum -c` reads them, and
//! `VERIFY.txt`: comments that say what is checked and why, and the
//! commands that check it, so that `sh VERIFY.txt` runs them all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::catalog::{Catalog, Layout};
use crate::layout::decisions::{self, Entry, Standing};
use crate::layout::trust::Trust;
use crate::model::decision::{Kind, NAMESPACE};
use crate::model::layout::LayoutRef;
use crate::util::digest::sha256_hex;
use crate::util::fs::write_atomic;

/// What `layouts export` wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Files in the bundle.
    pub files: usize,
}

/// Writes the examiner's bundle of version `reference` to `out`, with the
/// evidence of `proof` and `diff` (the `.json` files a decision recorded).
pub fn export(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    out: &Path,
    proof: Option<&Path>,
    diff: Option<&Path>,
) -> Result<Exported> {
    let Some(version) = reference.version else {
        return Err(Error::Usage(format!(
            "name the version: {}@N",
            reference.name
        )));
    };
    let trust = Trust::find(trust)?.ok_or_else(|| {
        Error::Usage(
            "no trust list: the bundle holds the one the decisions are checked against (--trust)"
                .into(),
        )
    })?;
    let catalog = Catalog::load(layouts, Some(&trust))?;
    let layout = catalog
        .layouts
        .get(&reference.name)
        .and_then(|v| v.get(&version))
        .ok_or_else(|| Error::Layout(format!("no layout version {reference}")))?;
    let files = layout.read_files()?;
    let standing = decisions::standing(layout, &files);
    plain_names(&standing, &files)?;
    let root = format!("{}-v{}", layout.meta.name, layout.meta.version);
    let mut bundle = Bundle::default();
    for (rel, bytes) in &files.files {
        bundle.add(&format!("layout/{rel}"), bytes.clone());
    }
    for e in &standing.review.entries {
        bundle.add(&format!("decisions/{}", e.file), e.bytes.clone());
        bundle.add(
            &format!("decisions/{}.sig", e.file),
            e.sig.clone().unwrap_or_default(),
        );
    }
    bundle.add("trust.yaml", trust.bytes.clone());
    bundle.add("allowed_signers", trust.allowed_signers().into_bytes());
    let recorded = recorded_evidence(&standing, layout.meta.version);
    for json in [proof, diff].into_iter().flatten() {
        add_evidence(&mut bundle, json, &recorded)?;
    }
    let sums = |prefix: &str| -> String {
        bundle
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, b)| format!("{}  {p}\n", sha256_hex(b)))
            .collect()
    };
    let (layout_sums, evidence_sums) = (sums("layout/"), sums("evidence/"));
    bundle.add("layout.sha256", layout_sums.into_bytes());
    if !evidence_sums.is_empty() {
        bundle.add("evidence.sha256", evidence_sums.into_bytes());
    }
    let verify = verify_text(layout, &standing, &trust, &bundle, &recorded);
    bundle.add("VERIFY.txt", verify.into_bytes());
    let mtime = standing
        .review
        .entries
        .last()
        .map_or(0, |e| seconds(&e.record.at));
    let tar = bundle.tar(&root, mtime)?;
    write_atomic(out, &tar, true).map_err(|e| Error::io(out, e))?;
    Ok(Exported {
        files: bundle.files.len(),
    })
}

/// Refuses names VERIFY.txt and `sha256sum -c` could not hold safely: a
/// record file not named as a record is (its name goes into the commands),
/// a layout file whose name has a control character or a backslash.
fn plain_names(standing: &Standing, files: &crate::layout::files::LayoutFiles) -> Result<()> {
    for e in &standing.review.entries {
        let r = &e.record;
        if e.file != decisions::file_name(r.seq, r.version, r.decision) {
            return Err(Error::Usage(format!(
                "{} in the decisions of {} is not named as a decision record is: the chain needs a person before it can be exported",
                comment(&e.file),
                r.layout
            )));
        }
    }
    match files
        .files
        .iter()
        .find(|(rel, _)| rel.chars().any(|c| c.is_control() || c == '\\'))
    {
        Some((rel, _)) => Err(Error::Usage(format!(
            "the layout file {:?} has a name sha256sum cannot list: rename it",
            rel
        ))),
        None => Ok(()),
    }
}

/// `s` as one shell word: single-quoted, a `'` in it closed, escaped and
/// reopened. VERIFY.txt is run with `sh`: nothing a record says may
/// become a command.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` on one comment line: control characters (a line end would end the
/// comment) become spaces.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The bundle's files by path, in order.
#[derive(Default)]
struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    fn add(&mut self, path: &str, bytes: Vec<u8>) {
        self.files.insert(path.to_owned(), bytes);
    }

    /// The tar file: every file under `root/`, owned by nobody in
    /// particular, dated `mtime`, so the same bundle has the same bytes.
    fn tar(&self, root: &str, mtime: u64) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            builder
                .append_data(&mut header, format!("{root}/{path}"), bytes.as_slice())
                .map_err(|e| Error::Output(format!("the bundle: {path}: {e}")))?;
        }
        builder
            .into_inner()
            .map_err(|e| Error::Output(format!("the bundle: {e}")))
    }
}

/// Seconds since 1970 of an RFC 3339 UTC time (0 if it is not one).
fn seconds(at: &str) -> u64 {
    crate::util::clock::rfc3339_seconds(at).unwrap_or(0).max(0) as u64
}

/// The SHA-256 of each evidence file the version's decisions recorded.
fn recorded_evidence(standing: &Standing, version: u32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in &standing.review.entries {
        let Some(ev) = e
            .record
            .evidence
            .as_ref()
            .filter(|_| e.record.version == version)
        else {
            continue;
        };
        let proof = ev.proof.iter().flat_map(|p| p.files.iter());
        for (name, sha) in proof.chain(ev.diff.iter().flat_map(|d| d.files.iter())) {
            out.insert(sha.clone(), name.clone());
        }
    }
    out
}

/// Adds an evidence `.json` and the files it lists, each of which must be
/// one a decision about the version recorded.
fn add_evidence(
    bundle: &mut Bundle,
    json: &Path,
    recorded: &BTreeMap<String, String>,
) -> Result<()> {
    let bytes = std::fs::read(json).map_err(|e| Error::io(json, e))?;
    let listed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Usage(format!(
            "{}: not evidence letterpress wrote ({e})",
            json.display()
        ))
    })?;
    let inner = listed.get("proof").or_else(|| listed.get("diff"));
    let names = inner
        .and_then(|v| v.get("files"))
        .and_then(|f| f.as_object())
        .map(|f| f.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let dir = json.parent().unwrap_or(Path::new("."));
    let mut all = vec![(json.to_path_buf(), bytes)];
    for name in names {
        let path = dir.join(&name);
        let b = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        all.push((path, b));
    }
    for (path, b) in all {
        if !recorded.contains_key(&sha256_hex(&b)) {
            return Err(Error::Usage(format!(
                "{} is not evidence any decision about this version recorded (its SHA-256 is in no record)",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bundle.add(&format!("evidence/{name}"), b);
    }
    Ok(())
}

/// `VERIFY.txt`: what to check and the commands that check it.
fn verify_text(
    layout: &Layout,
    standing: &Standing,
    trust: &Trust,
    bundle: &Bundle,
    recorded: &BTreeMap<String, String>,
) -> String {
    let review = &standing.review;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Examiner's bundle of {}: {}",
        layout.id(),
        comment(&layout.meta.title)
    );
    let _ = writeln!(
        t,
        "# What letterpress {} found: {}",
        env!("CARGO_PKG_VERSION"),
        comment(&standing.describe())
    );
    if let Some(w) = trust.demo_warning() {
        let _ = writeln!(t, "# WARNING: {}", comment(&w));
    }
    t.push_str(
        "#\n# Every check below uses OpenSSH's ssh-keygen (8.9 or later) and coreutils'\n# sha256sum, grep and sed, no letterpress. Run them from this folder, one by\n# one or all at once with `sh VERIFY.txt`, which stops at the first failure.\nset -e\n",
    );
    signatures(&mut t, review);
    chain(&mut t, review);
    files(&mut t, layout, standing);
    let _ = writeln!(
        t,
        "\n# 4. The trust list. allowed_signers is trust.yaml in OpenSSH's format; a run's\n#    manifest records the trust list's SHA-256 under layout.approval.trust:\nsha256sum trust.yaml"
    );
    if bundle.files.contains_key("evidence.sha256") {
        let _ = writeln!(
            t,
            "\n# 5. The evidence the reviewers decided on: unchanged, and recorded in their\n#    signed decisions.\nsha256sum -c evidence.sha256\nwhile read -r sum path; do grep -qF \"\\\": \\\"$sum\\\"\" decisions/*.json || {{ echo \"no decision records $path\"; exit 1; }}; done < evidence.sha256"
        );
    }
    let held: std::collections::BTreeSet<String> =
        bundle.files.values().map(|b| sha256_hex(b)).collect();
    let missing: Vec<String> = recorded
        .iter()
        .filter(|(sha, _)| !held.contains(*sha))
        .map(|(sha, name)| format!("#   {} (SHA-256 {sha})", comment(name)))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            t,
            "\n# Evidence the decisions record but this bundle does not hold (it holds\n# customers' letters, kept where personal data may be kept; `layouts export\n# --proof/--diff` adds it):\n{}",
            missing.join("\n")
        );
    }
    t.push_str("\necho \"every check passed\"\n");
    t
}

/// Section 1: one `ssh-keygen -Y verify` per record, at its own time.
fn signatures(t: &mut String, review: &decisions::Review) {
    let _ = writeln!(
        t,
        "\n# 1. Every decision is signed by the person it names, with a key the trust\n#    list gave them for the day it was signed (namespace {NAMESPACE}).\n#    ssh-keygen prints \"Good ... signature\" for each."
    );
    for e in &review.entries {
        let r = &e.record;
        let time: String = r.at.chars().filter(char::is_ascii_digit).collect();
        // A decision made in the review workspace is signed by the
        // workspace's key, for the person its login names.
        let (principal, login) = match &r.login {
            Some(l) => (
                &l.workspace,
                format!(
                    "\n# signed by the review workspace for {} (login {} at {}, authenticated {})",
                    comment(&r.signer.id),
                    comment(&l.subject),
                    comment(&l.issuer),
                    comment(&l.auth_time)
                ),
            ),
            None => (&r.signer.id, String::new()),
        };
        let _ = writeln!(
            t,
            "# {}: {}{login}\nssh-keygen -Y verify -f allowed_signers -I {} -n {NAMESPACE} -s {} -Overify-time={time}Z < {}",
            comment(&review_label(e)),
            comment(&r.meaning),
            sh(principal),
            sh(&format!("decisions/{}.sig", e.file)),
            sh(&format!("decisions/{}", e.file))
        );
    }
}

fn review_label(e: &Entry) -> String {
    format!(
        "record {} ({} of {}@{})",
        e.record.seq, e.record.decision, e.record.layout, e.record.version
    )
}

/// Section 2: the `prev` links, computed from the files.
fn chain(t: &mut String, review: &decisions::Review) {
    let _ = writeln!(
        t,
        "\n# 2. The records are one chain: each holds the SHA-256 of the one before it\n#    (\"prev\"), the first that of the text \"letterpress decisions of {}\",\n#    so no record can be removed, reordered or inserted unnoticed.",
        review.layout
    );
    let prev = |file: &str| {
        format!(
            "$(sed -n 's/^  \"prev\": \"\\(.*\\)\",$/\\1/p' {})",
            sh(&format!("decisions/{file}"))
        )
    };
    let mut before: Option<&Entry> = None;
    for e in &review.entries {
        let want = match before {
            None => format!(
                "$(printf '%s' {} | sha256sum | cut -d' ' -f1)",
                sh(&format!("letterpress decisions of {}", review.layout))
            ),
            Some(b) => format!("$(sha256sum < 'decisions/{}' | cut -d' ' -f1)", b.file),
        };
        let _ = writeln!(
            t,
            "test \"{}\" = \"{want}\" && echo \"record {} follows {}\"",
            prev(&e.file),
            e.record.seq,
            before.map_or("the start".into(), |b| format!("record {}", b.record.seq))
        );
        before = Some(e);
    }
}

/// Section 3: the files are the submitted and approved ones.
fn files(t: &mut String, layout: &Layout, standing: &Standing) {
    let (submitted, approvals) = decisions::rests_on(&standing.state);
    let mut records: Vec<&Entry> = submitted
        .into_iter()
        .chain(approvals)
        .map(|i| &standing.review.entries[i])
        .collect();
    if records.is_empty() {
        records = standing
            .review
            .entries
            .iter()
            .filter(|e| {
                e.record.version == layout.meta.version && e.record.decision == Kind::Submitted
            })
            .collect();
    }
    let _ = writeln!(
        t,
        "\n# 3. The version's files (layout/) are the ones decided on: each file's SHA-256\n#    is the one the signed records list, and they list no other file."
    );
    t.push_str("sha256sum -c layout.sha256\n");
    for e in records {
        let _ = writeln!(
            t,
            "# {}\nwhile read -r sum path; do grep -qF \"\\\"${{path#layout/}}\\\": \\\"$sum\\\"\" 'decisions/{f}' || {{ echo \"$path is not as decisions/{f} lists it\"; exit 1; }}; done < layout.sha256\ntest \"$(wc -l < layout.sha256)\" -eq \"$(sed -n '/^  \"files\": {{$/,/^  }}/p' 'decisions/{f}' | grep -c '\": \"')\" && echo \"decisions/{f} lists exactly these files\"",
            comment(&review_label(e)),
            f = e.file
        );
    }
}
