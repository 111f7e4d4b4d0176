//! Signed decisions: whether a layout version may reach customers.
//!
//! Part of stage 2 (layouts). Every decision about a version (submitted
//! for review by its author, approved, rejected, revoked) is a record
//! signed by the person who made it with their SSH key (the SSHSIG format
//! of `ssh-keygen -Y sign`, namespace [`NAMESPACE`]), kept in the layout's
//! `decisions/` folder as `NNNN-vN-<decision>.json` with the signature in
//! `NNNN-vN-<decision>.json.sig`. Each record holds the SHA-256 of the one
//! before it, so the records of a layout are one chain from which nothing
//! can be removed, reordered or inserted unnoticed.
//!
//! Who may sign is the deployment's trust list ([`crate::layout::trust`]),
//! never a file of the layouts folder: whoever can write every file under
//! `layouts/` but holds no reviewer key cannot make a version approved,
//! change who approved it, or move the day it was approved.
//!
//! [`Review::read`] checks a layout's chain ([`check`]); [`Review::state`]
//! then says where a version stands: only its latest submission counts;
//! the approvals after it must be of the submitted digest, by people other
//! than its author, meet the policy (one approval per role it names, each
//! by a different person) and not predate the submission; a rejection
//! stops the version, a revocation stops it from its date on. A record
//! that fails a check stops the version it is about (someone tampered, or
//! a key was withdrawn: a person must look); a chain that is broken stops
//! every version of the layout. [`standing`] adds the files: a version
//! whose files are no longer the submitted ones has drifted.
//!
//! Writing a decision is [`write`]; signing is [`sign`].

mod check;
pub mod sign;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::layout::catalog::Layout;
use crate::layout::files::LayoutFiles;
use crate::layout::trust::Trust;
use crate::model::approval::APPROVAL_FILE;
pub use crate::model::decision::NAMESPACE;
use crate::model::decision::{Kind, Record, DECISIONS_DIR};
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;
pub use check::meaning;

/// One record file of a chain, as read.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its file name in `decisions/`.
    pub file: String,
    /// Its bytes (what was signed).
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The signature file's bytes, if there is one.
    pub sig: Option<Vec<u8>>,
    /// The record.
    pub record: Record,
    /// Why it does not count, if it does not (see [`check`]).
    pub problem: Option<String>,
    /// The trust list id of the person whose key signed it, if it counts.
    pub person: Option<String>,
}

impl Entry {
    /// A record file's entry, not yet checked.
    pub fn parse(
        file: String,
        bytes: Vec<u8>,
        sig: Option<Vec<u8>>,
    ) -> std::result::Result<Entry, String> {
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{file} is not a decision record letterpress reads ({e})"))?;
        Ok(Entry {
            file,
            sha256: sha256_hex(&bytes),
            bytes,
            sig,
            record,
            problem: None,
            person: None,
        })
    }

    /// Checks the record on its own (its signature, signer, key, time and
    /// words; not its place in a chain) against `trust`: the signer's id,
    /// or why it does not count.
    pub fn check(&self, trust: &Trust) -> std::result::Result<String, String> {
        check::one(self, trust)
    }
}

/// A layout's chain of decisions, checked.
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// The layout.
    pub layout: String,
    /// The layout's `decisions/` folder.
    pub dir: PathBuf,
    /// The records, in chain order.
    pub entries: Vec<Entry>,
    /// Why the chain as a whole cannot be trusted, if so.
    pub broken: Option<String>,
    /// Whether a trust list checked it (without one, nothing counts).
    pub trusted: bool,
}

/// Where a version stands by its decisions, before its files are looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No trust list: no version is approved.
    NoTrust,
    /// The layout's chain of decisions is broken.
    Broken(String),
    /// A decision about this version fails its checks.
    Problem(String),
    /// Only an unsigned `approval.yaml` of an earlier letterpress.
    Legacy,
    /// Never submitted for review.
    NotSubmitted,
    /// Submitted; the policy's approvals are not all given yet.
    Pending {
        /// The submission (index into the chain).
        submission: usize,
        /// The approvals given so far (indexes).
        approvals: Vec<usize>,
        /// The roles still to approve.
        missing: Vec<String>,
    },
    /// Rejected after its latest submission, or revoked before approval.
    Rejected {
        /// The submission.
        submission: usize,
        /// The rejection (or revocation).
        by: usize,
    },
    /// Approved: the policy is met.
    Approved(Approval),
}

/// An approved version's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The submission (index into the chain).
    pub submission: usize,
    /// The approvals that met the policy (indexes).
    pub approvals: Vec<usize>,
    /// The first day it may be used.
    pub from: Date,
    /// A revocation: the record and the first day it may no longer be used.
    pub revoked: Option<(usize, Date)>,
    /// The digest the approvals are of.
    pub digest: String,
}

impl Approval {
    /// Whether it covers a letter dated `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && self.revoked.is_none_or(|(_, r)| day < r)
    }
}

impl State {
    /// The approval, if the version is approved.
    pub fn approval(&self) -> Option<&Approval> {
        match self {
            State::Approved(a) => Some(a),
            _ => None,
        }
    }

    /// A word or two for a list of versions.
    pub fn short(&self) -> &'static str {
        match self {
            State::NoTrust => "no trust list",
            State::Broken(_) => "decisions broken",
            State::Problem(_) => "decision refused",
            State::Legacy => "unsigned approval (refused)",
            State::NotSubmitted => "not submitted",
            State::Pending { .. } => "submitted",
            State::Rejected { .. } => "rejected",
            State::Approved(_) => "approved",
        }
    }
}

/// The records a version's state rests on: its latest submission and the
/// approvals that count.
pub fn rests_on(state: &State) -> (Option<usize>, Vec<usize>) {
    match state {
        State::Approved(a) => (Some(a.submission), a.approvals.clone()),
        State::Pending {
            submission,
            approvals,
            ..
        } => (Some(*submission), approvals.clone()),
        State::Rejected { submission, .. } => (Some(*submission), Vec::new()),
        _ => (None, Vec::new()),
    }
}

/// The text record 1 of a layout's chain links to.
pub fn origin(layout: &str) -> String {
    sha256_hex(format!("letterpress decisions of {layout}").as_bytes())
}

/// The file name of a record: `0003-v4-approved.json`.
pub fn file_name(seq: u32, version: u32, kind: Kind) -> String {
    format!("{seq:04}-v{version}-{kind}.json")
}

impl Review {
    /// Reads and checks the decisions of layout `name`, whose version
    /// folders are in `layout_dir`, against `trust` (without one nothing
    /// counts, and the chain is read only to be shown).
    pub fn read(layout_dir: &Path, name: &str, trust: Option<&Trust>) -> Review {
        let dir = layout_dir.join(DECISIONS_DIR);
        let mut review = Review {
            layout: name.to_owned(),
            dir: dir.clone(),
            trusted: trust.is_some(),
            ..Review::default()
        };
        match read_entries(&dir) {
            Ok(entries) => review.entries = entries,
            Err(why) => review.broken = Some(why),
        }
        if review.broken.is_none() {
            check::chain(&mut review, trust);
        }
        if review.broken.is_none() {
            review.broken = trust.and_then(|t| check::pinned(&review, t));
        }
        review
    }

    /// The record at `i`, named for people: `record 7 (approval 2 of
    /// welcome-letter@5)`.
    pub fn label(&self, i: usize) -> String {
        let r = &self.entries[i].record;
        let nth = self.entries[..=i]
            .iter()
            .filter(|e| e.record.version == r.version && e.record.decision == r.decision)
            .count();
        format!(
            "record {} ({} {nth} of {}@{})",
            r.seq,
            r.decision.noun(),
            r.layout,
            r.version
        )
    }

    /// The last record's number and SHA-256, if there is one.
    pub fn head(&self) -> Option<(u32, String)> {
        self.entries
            .last()
            .map(|e| (e.record.seq, e.sha256.clone()))
    }

    /// Where version `version` stands by the decisions (see the module
    /// docs); `legacy` says whether its folder holds an old `approval.yaml`.
    pub fn state(&self, version: u32, trust: Option<&Trust>, legacy: bool) -> State {
        let Some(trust) = trust.filter(|_| self.trusted) else {
            return State::NoTrust;
        };
        if let Some(why) = &self.broken {
            return State::Broken(why.clone());
        }
        let mine: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].record.version == version)
            .collect();
        if let Some(why) = mine.iter().find_map(|&i| self.entries[i].problem.clone()) {
            return State::Problem(why);
        }
        let Some(pos) = mine
            .iter()
            .rposition(|&i| self.entries[i].record.decision == Kind::Submitted)
        else {
            return if legacy {
                State::Legacy
            } else {
                State::NotSubmitted
            };
        };
        let cycle = Cycle {
            review: self,
            submission: mine[pos],
            after: &mine[pos + 1..],
        };
        match cycle.problem() {
            Some(why) => State::Problem(why),
            None => cycle.state(&trust.rule(&self.layout).approvals),
        }
    }
}

/// A version's latest submission and the decisions after it.
struct Cycle<'a> {
    review: &'a Review,
    submission: usize,
    after: &'a [usize],
}

impl Cycle<'_> {
    fn record(&self, i: usize) -> &Record {
        &self.review.entries[i].record
    }

    /// A decision after the submission that breaks the rules of review:
    /// by the author, of another digest, dated before the submission.
    fn problem(&self) -> Option<String> {
        let sub = self.record(self.submission);
        let author = self.review.entries[self.submission].person.as_deref();
        self.after.iter().find_map(|&i| {
            let r = self.record(i);
            let label = self.review.label(i);
            if self.review.entries[i].person.as_deref() == author {
                return Some(match r.decision {
                    Kind::Approved => format!(
                        "the author approved their own change: {label} is signed by {}, who submitted it (record {})",
                        r.signer.name, sub.seq
                    ),
                    _ => format!(
                        "{label} is by the version's author {}, who may not decide on their own change",
                        r.signer.name
                    ),
                });
            }
            if r.digest != sub.digest {
                return Some(format!(
                    "{label} is about layout digest {}, not the submitted {} (record {}): it decides on other files",
                    r.digest, sub.digest, sub.seq
                ));
            }
            (r.at < sub.at).then(|| {
                format!(
                    "{label} is dated {}, before the submission it decides on (record {}, {}): it is back-dated",
                    r.at, sub.seq, sub.at
                )
            })
        })
    }

    /// The state the decisions after the submission make.
    fn state(&self, roles: &[String]) -> State {
        let submission = self.submission;
        if let Some(&by) = self
            .after
            .iter()
            .find(|&&i| self.record(i).decision == Kind::Rejected)
        {
            return State::Rejected { submission, by };
        }
        let revocation = self
            .after
            .iter()
            .find(|&&i| self.record(i).decision == Kind::Revoked)
            .copied();
        let (approvals, missing) = self.fill(roles);
        if !missing.is_empty() {
            return match revocation {
                Some(by) => State::Rejected { submission, by },
                None => State::Pending {
                    submission,
                    approvals,
                    missing,
                },
            };
        }
        let day = |s: Option<&String>| s.and_then(|d| Date::parse(d));
        let from = approvals
            .iter()
            .filter_map(|&i| day(self.record(i).from.as_ref()))
            .max()
            .unwrap_or(Date::parse("9999-12-31").expect("a date"));
        State::Approved(Approval {
            submission,
            from,
            revoked: revocation.map(|i| {
                let r = self.record(i);
                (i, day(r.from.as_ref()).unwrap_or(from))
            }),
            digest: self.record(submission).digest.clone(),
            approvals,
        })
    }

    /// The approvals that fill the policy's roles (each by a different
    /// person, in chain order), and the roles left.
    fn fill(&self, roles: &[String]) -> (Vec<usize>, Vec<String>) {
        let mut missing: Vec<String> = roles.to_vec();
        let mut used = Vec::new();
        let mut people: Vec<&str> = Vec::new();
        for &i in self.after {
            let r = self.record(i);
            let person = self.review.entries[i].person.as_deref().unwrap_or("");
            if r.decision != Kind::Approved || people.contains(&person) {
                continue;
            }
            if let Some(slot) = missing.iter().position(|role| *role == r.signer.role) {
                missing.remove(slot);
                used.push(i);
                people.push(person);
            }
        }
        (used, missing)
    }
}

/// Reads the record files of a `decisions/` folder in chain order (by
/// number). A file that is not a record of this form breaks the chain.
fn read_entries(dir: &Path) -> std::result::Result<Vec<Entry>, String> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{} cannot be read: {e}", dir.display())),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let bytes = read_record_file(dir, &name)?
            .ok_or_else(|| format!("{name} went away while it was read"))?;
        let sig = read_record_file(dir, &format!("{name}.sig"))?;
        entries.push(Entry::parse(name, bytes, sig)?);
    }
    entries.sort_by(|a, b| (a.record.seq, &a.file).cmp(&(b.record.seq, &b.file)));
    Ok(entries)
}

/// The largest record or signature file read (a record with a proof's
/// picks is a few kilobytes).
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// A record or signature file of `dir` (`None` if there is none). Like a
/// layout's files it must be a file of its own, not a link (which could
/// make a record of any file on the machine), and small.
fn read_record_file(dir: &Path, name: &str) -> std::result::Result<Option<Vec<u8>>, String> {
    let path = dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
    };
    if !meta.is_file() {
        return Err(format!(
            "{name} is not a plain file (a link or a folder), so not a decision record"
        ));
    }
    if meta.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "{name} is {} bytes, larger than any decision record",
            meta.len()
        ));
    }
    std::fs::read(&path)
        .map(Some)
        .map_err(|e| format!("{name}: {e}"))
}

/// Where a version stands: its decisions and its files.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The version (`NAME@N`).
    pub id: String,
    /// By the decisions.
    pub state: State,
    /// The files changed, added and removed since the submission the state
    /// rests on (empty when they are the submitted ones).
    pub changes: Vec<String>,
    /// The chain of the layout, to name records.
    pub review: Arc<Review>,
}

/// Compares a version's files (as read by [`Layout::read_files`]) with the
/// submission its decisions rest on.
pub fn standing(layout: &Layout, files: &LayoutFiles) -> Standing {
    let review = layout.review.clone();
    let state = layout.state.clone();
    let submitted = match &state {
        State::Pending { submission, .. }
        | State::Rejected { submission, .. }
        | State::Approved(Approval { submission, .. }) => {
            Some(&review.entries[*submission].record.files)
        }
        _ => None,
    };
    let changes = submitted
        .map(|s| changes(s, &files.hashes))
        .unwrap_or_default();
    Standing {
        id: layout.id(),
        state,
        changes,
        review,
    }
}

/// Each file changed, removed or added between `then` and `now`.
pub fn changes(then: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, hash) in then {
        match now.get(rel) {
            None => out.push(format!("{rel} removed")),
            Some(h) if h != hash => out.push(format!("{rel} changed")),
            Some(_) => {}
        }
    }
    out.extend(
        now.keys()
            .filter(|rel| !then.contains_key(*rel))
            .map(|rel| format!("{rel} added")),
    );
    out
}

impl Standing {
    /// Whether the version may render for customers (on some day).
    pub fn is_approved(&self) -> bool {
        self.state.approval().is_some() && self.changes.is_empty()
    }

    /// The record at `i`.
    pub fn record(&self, i: usize) -> &Record {
        &self.review.entries[i].record
    }

    /// Why the version may not render for customers on `day`, if it may not.
    pub fn refusal(&self, day: Date) -> Option<String> {
        let why = match &self.state {
            State::Approved(a) if self.changes.is_empty() => {
                if day < a.from {
                    format!(
                        "it is approved for letters from {} only, and a letter dated {day} cannot use wording approved later",
                        a.from
                    )
                } else if let Some((i, on)) = a.revoked.filter(|(_, on)| day >= *on) {
                    let r = self.record(i);
                    format!(
                        "its approval was revoked from {on} by {} ({}): {}",
                        r.signer.name,
                        self.review.label(i),
                        r.reason.as_deref().unwrap_or("")
                    )
                } else {
                    return None;
                }
            }
            _ => self.describe(),
        };
        Some(why)
    }

    /// One line for people: `approved by X (compliance) on D, files match`,
    /// `submitted by X on D, waiting for a legal approval`, ...
    pub fn describe(&self) -> String {
        let who = |i: usize| {
            let r = self.record(i);
            format!(
                "{} as {} on {}",
                r.signer.name,
                r.signer.role,
                r.at.get(..10).unwrap_or("")
            )
        };
        let drift = || {
            format!(
                "its files changed since it was submitted ({}): submit it again for review",
                self.changes.join(", ")
            )
        };
        match &self.state {
            State::NoTrust => "no trust list, so no version is approved (give one with --trust or LETTERPRESS_TRUST)".into(),
            State::Broken(why) => format!("the decisions of layout {} cannot be trusted: {why}", self.review.layout),
            State::Problem(why) => why.clone(),
            State::Legacy => format!(
                "it has only an unsigned {APPROVAL_FILE} from an earlier letterpress, and a typed name is not an approval: its author submits it (`letterpress layouts submit {id} --key KEY`) and reviewers approve it (`letterpress layouts approve {id} --key KEY`), each with their own key from the trust list",
                id = self.id
            ),
            State::NotSubmitted => format!(
                "it was never submitted for review (its author runs `letterpress layouts submit {} --key KEY`)",
                self.id
            ),
            _ if !self.changes.is_empty() => drift(),
            State::Pending { submission, approvals, missing } => {
                let given: Vec<String> = approvals.iter().map(|&i| who(i)).collect();
                format!(
                    "submitted by {}, waiting for approval by {}{}",
                    who(*submission),
                    missing.join(" and "),
                    if given.is_empty() { String::new() } else { format!(" (approved so far by {})", given.join(", ")) }
                )
            }
            State::Rejected { by, .. } => {
                let r = self.record(*by);
                format!(
                    "{} by {}: {}",
                    if r.decision == Kind::Revoked { "revoked before it was approved" } else { "rejected" },
                    who(*by),
                    r.reason.as_deref().unwrap_or("")
                )
            }
            State::Approved(a) => {
                let by: Vec<String> = a.approvals.iter().map(|&i| who(i)).collect();
                let revoked = a
                    .revoked
                    .map(|(_, on)| format!(", revoked from {on}"))
                    .unwrap_or_default();
                format!(
                    "approved by {} for letters from {}{revoked}, submitted by {}, files match",
                    by.join(" and "),
                    a.from,
                    who(a.submission)
                )
            }
        }
    }
}
