//! Recording a decision: the record is made from the version's files and
//! the layout's chain as they are under the chain's lock, shown to the
//! signer, signed, checked as every reader will check it, and only then
//! put in the chain (signature first, then the record, each renamed into
//! place and synced).
//!
//! What may be decided follows from where the version stands: the author
//! submits (again after a change, a rejection or a revocation); a reviewer
//! approves a submitted version whose files are the submitted ones, once,
//! in a role the policy still needs, never their own; a reviewer rejects a
//! version not yet approved, and revokes an approved one, from today or a
//! later day.

use std::path::PathBuf;
use std::time::Duration;

use ssh_key::HashAlg;

use super::check::meaning;
use super::sign::Sign;
use super::{file_name, origin, standing, Review, Standing, State};
use crate::error::{Error, Result};
use crate::layout::catalog::Layout;
use crate::layout::trust::{Trust, AUTHOR};
use crate::model::decision::{
    Evidence, Kind, Login, Person, Record, Signer, DECISIONS_DIR, FORMAT,
};
use crate::util::clock::Date;
use crate::util::fs::{sync_dir, write_atomic};
use crate::util::lock::{Lock, LockTerms};

/// What a person asks to record.
#[derive(Debug, Clone)]
pub struct Request {
    /// The decision.
    pub kind: Kind,
    /// Why (required to reject and revoke).
    pub reason: Option<String>,
    /// The role to decide in, when the signer holds more than one that fits.
    pub role: Option<String>,
    /// A revocation's first day (default: the day of signing).
    pub from: Option<Date>,
    /// What the reviewer saw.
    pub evidence: Option<Evidence>,
    /// A decision made in the review workspace: the login it is made for
    /// (the signer is then the workspace's key).
    pub login: Option<Login>,
}

/// A recorded decision.
#[derive(Debug, Clone)]
pub struct Written {
    /// The record.
    pub record: Record,
    /// Its file.
    pub path: PathBuf,
}

/// Records `request` about `layout` (found again under the lock, with its
/// chain as it is then), signed by `signer` at `at` (RFC 3339 UTC).
/// `confirm` sees the record before it is signed and may decline.
pub fn decide(
    layout: &Layout,
    trust: &Trust,
    signer: &dyn Sign,
    request: &Request,
    at: &str,
    confirm: &dyn Fn(&Record) -> bool,
) -> Result<Written> {
    let layout_dir = layout.dir.parent().expect("a version folder has a parent");
    let dir = layout_dir.join(DECISIONS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let terms = LockTerms {
        wait: Duration::from_secs(30),
        ..LockTerms::default()
    };
    let _lock = Lock::take(&dir.join(".lock"), "decide", terms, None)?;
    // Read under the lock: another reviewer may have just decided.
    let review = Review::read(layout_dir, &layout.meta.name, Some(trust));
    let mut fresh = layout.clone();
    fresh.state = review.state(
        layout.meta.version,
        Some(trust),
        layout.has_legacy_approval(),
    );
    fresh.review = std::sync::Arc::new(review);
    let files = fresh.read_files()?;
    let standing = standing(&fresh, &files);
    let record = prepare(&fresh, &standing, trust, signer, request, at, &files)?;
    if !confirm(&record) {
        return Err(Error::Usage("not signed: nothing was recorded".into()));
    }
    write(&fresh, trust, signer, record)
}

/// The record `request` makes, or why it may not be made.
fn prepare(
    layout: &Layout,
    standing: &Standing,
    trust: &Trust,
    signer: &dyn Sign,
    request: &Request,
    at: &str,
    files: &crate::layout::files::LayoutFiles,
) -> Result<Record> {
    let id = layout.id();
    let fingerprint = signer.public_key().fingerprint(HashAlg::Sha256).to_string();
    let (key, person) = who(trust, &fingerprint, request.login.as_ref())?;
    if let Some(why) = key.refuses(at) {
        return Err(refuse(format!("your key is {why}")));
    }
    if let Some(why) = &standing.review.broken {
        return Err(refuse(format!(
            "the decisions of layout {} cannot be trusted ({why}); nothing can be added until they are repaired",
            layout.meta.name
        )));
    }
    if let State::Problem(why) = &standing.state {
        return Err(refuse(format!("{id}: {why}")));
    }
    allowed(layout, standing, person, request)?;
    let role = role(layout, standing, trust, person, request)?;
    let today = Date::parse(&at[..10]).expect("a checked time");
    let (from, until) = dates(layout, request, today)?;
    let review = &standing.review;
    let (seq, prev) = match review.entries.last() {
        Some(e) => (e.record.seq + 1, e.sha256.clone()),
        None => (1, origin(&layout.meta.name)),
    };
    let mut record = Record {
        letterpress_decision: FORMAT,
        layout: layout.meta.name.clone(),
        version: layout.meta.version,
        seq,
        prev,
        decision: request.kind,
        meaning: String::new(),
        reason: request
            .reason
            .as_ref()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        signer: Signer {
            id: person.id.clone(),
            name: person.name.clone(),
            role,
        },
        key: fingerprint,
        at: at.to_owned(),
        from,
        until,
        digest: files.digest.clone(),
        files: files.hashes.clone(),
        evidence: request.evidence.clone(),
        login: request.login.clone(),
    };
    record.meaning = meaning(&record);
    Ok(record)
}

/// The key that signs and the person it signs for: the signer's own key,
/// or the workspace's for the person logged in.
fn who<'t>(
    trust: &'t Trust,
    fingerprint: &str,
    login: Option<&Login>,
) -> Result<(&'t crate::layout::trust::Key, &'t Person)> {
    let Some(login) = login else {
        return trust.key(fingerprint).ok_or_else(|| {
            refuse(format!(
                "your key {fingerprint} is not in the trust list {}: only the people it names decide",
                trust.path.display()
            ))
        });
    };
    let key = trust.workspace_key(fingerprint).ok_or_else(|| {
        refuse(format!(
            "the key {fingerprint} is not the review workspace's in the trust list {}",
            trust.path.display()
        ))
    })?;
    let person = trust.by_login(&login.subject).ok_or_else(|| {
        refuse(format!(
            "{} (login {}) is not in the trust list {}: only the people it names decide",
            login.name,
            login.subject,
            trust.path.display()
        ))
    })?;
    Ok((key, person))
}

/// The role the signer decides in.
fn role(
    layout: &Layout,
    standing: &Standing,
    trust: &Trust,
    person: &Person,
    request: &Request,
) -> Result<String> {
    let candidates: Vec<String> = match request.kind {
        Kind::Submitted => vec![AUTHOR.to_owned()],
        Kind::Approved => match &standing.state {
            State::Pending { missing, .. } => missing.clone(),
            _ => trust.rule(&layout.meta.name).approvals.clone(),
        },
        _ => trust.rule(&layout.meta.name).approvals.clone(),
    };
    let mut fits: Vec<String> = candidates
        .into_iter()
        .filter(|r| person.roles.contains(r))
        .collect();
    fits.dedup();
    if let Some(asked) = &request.role {
        return match fits.contains(asked) {
            true => Ok(asked.clone()),
            false => Err(refuse(format!(
                "{} cannot {} {} as `{asked}` (roles that fit: {})",
                person.name,
                verb(request.kind),
                layout.id(),
                if fits.is_empty() {
                    "none".into()
                } else {
                    fits.join(", ")
                }
            ))),
        };
    }
    match fits.len() {
        1 => Ok(fits.remove(0)),
        0 => Err(refuse(match request.kind {
            Kind::Submitted => format!(
                "{} is not an author in the trust list: authors submit versions",
                person.name
            ),
            Kind::Approved if matches!(standing.state, State::Pending { .. }) => format!(
                "{} holds none of the roles {} still needs ({}): their approval would not count",
                person.name,
                layout.id(),
                match &standing.state {
                    State::Pending { missing, .. } => missing.join(", "),
                    _ => String::new(),
                }
            ),
            _ => format!(
                "{} holds none of the roles the policy of {} names ({})",
                person.name,
                layout.meta.name,
                trust.rule(&layout.meta.name).approvals.join(", ")
            ),
        })),
        _ => Err(Error::Usage(format!(
            "{} holds several roles that fit ({}): choose one with --role",
            person.name,
            fits.join(", ")
        ))),
    }
}

/// Whether the version stands where `request` may be decided.
fn allowed(layout: &Layout, standing: &Standing, person: &Person, request: &Request) -> Result<()> {
    let id = layout.id();
    let drift = !standing.changes.is_empty();
    let mine = |i: usize| standing.review.entries[i].person.as_deref() == Some(person.id.as_str());
    let why = match (&standing.state, request.kind) {
        (State::Pending { .. }, Kind::Submitted) if !drift => {
            Some(format!("{id} is already submitted and waits for review"))
        }
        (State::Approved(a), Kind::Submitted) if !drift && a.revoked.is_none() => Some(format!(
            "{id} is approved as it is; a change needs a new version (`letterpress layouts new` or a copy)"
        )),
        (_, Kind::Submitted) => None,
        (State::NotSubmitted | State::Legacy | State::NoTrust, _) => Some(format!(
            "{id} was never submitted for review: its author submits it first (`letterpress layouts submit {id} --key KEY`)"
        )),
        _ if drift => Some(format!(
            "the files of {id} changed since it was submitted ({}): its author submits it again",
            standing.changes.join(", ")
        )),
        (State::Pending { submission, .. }, _) | (State::Approved(super::Approval { submission, .. }), _)
            if mine(*submission) =>
        {
            Some(format!(
                "you submitted {id}: its author may not approve, reject or revoke it; another person decides"
            ))
        }
        (State::Pending { approvals, .. }, Kind::Approved)
            if approvals.iter().any(|&i| mine(i)) =>
        {
            Some(format!("you already approved {id}"))
        }
        (State::Pending { .. }, Kind::Approved | Kind::Rejected) => None,
        (State::Pending { .. }, Kind::Revoked) => Some(format!(
            "{id} is not approved yet: reject it instead"
        )),
        (State::Approved(_), Kind::Approved) => Some(format!("{id} is already approved")),
        (State::Approved(_), Kind::Rejected) => Some(format!(
            "{id} is approved: revoke it (from a day on) instead"
        )),
        (State::Approved(a), Kind::Revoked) if a.revoked.is_some() => {
            Some(format!("{id} is already revoked"))
        }
        (State::Approved(_), Kind::Revoked) => None,
        (State::Rejected { .. }, _) => Some(format!(
            "{id} is {}: its author submits it again (after a change) for a new review",
            standing.describe()
        )),
        (State::Broken(_) | State::Problem(_), _) => Some(standing.describe()),
    };
    match why {
        Some(why) => Err(refuse(why)),
        None if matches!(request.kind, Kind::Rejected | Kind::Revoked)
            && request
                .reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty()) =>
        {
            Err(Error::Usage(format!(
                "say why with --reason: a {} must give its reason",
                request.kind.noun()
            )))
        }
        None => Ok(()),
    }
}

/// An approval's first and last day, or a revocation's first day.
fn dates(
    layout: &Layout,
    request: &Request,
    today: Date,
) -> Result<(Option<String>, Option<String>)> {
    let meta = &layout.meta;
    match request.kind {
        Kind::Approved => {
            let effective = meta.effective_from.as_deref().and_then(Date::parse);
            let from = effective.filter(|e| *e > today).unwrap_or(today);
            Ok((Some(from.to_string()), meta.effective_until.clone()))
        }
        Kind::Revoked => {
            let from = request.from.unwrap_or(today);
            if from < today {
                return Err(Error::Usage(format!(
                    "--from {from} is before today ({today}): a revocation takes effect from the day it is signed or later"
                )));
            }
            Ok((Some(from.to_string()), None))
        }
        _ => Ok((None, None)),
    }
}

/// Signs `record`, checks it as a reader will, and puts it in the chain.
fn write(layout: &Layout, trust: &Trust, signer: &dyn Sign, record: Record) -> Result<Written> {
    let review = &layout.review;
    let name = file_name(record.seq, record.version, record.decision);
    let mut bytes = serde_json::to_vec_pretty(&record).expect("a record serializes");
    bytes.push(b'\n');
    let pending = review.dir.join(format!(".pending-{name}"));
    write_atomic(&pending, &bytes, true).map_err(|e| Error::io(&pending, e))?;
    let signed = signer.sign(&pending);
    let _ = std::fs::remove_file(&pending);
    let sig = signed?;
    // Checked as every reader will check it, before it joins the chain.
    let sig_path = review.dir.join(format!("{name}.sig"));
    let path = review.dir.join(&name);
    write_atomic(&sig_path, &sig, true).map_err(|e| Error::io(&sig_path, e))?;
    write_atomic(&path, &bytes, true).map_err(|e| Error::io(&path, e))?;
    let layout_dir = layout.dir.parent().expect("a version folder has a parent");
    let after = Review::read(layout_dir, &layout.meta.name, Some(trust));
    let problem = after
        .entries
        .iter()
        .find(|e| e.file == name)
        .map(|e| e.problem.clone())
        .unwrap_or_else(|| Some("it is not in the chain".into()));
    if let Some(why) = problem.or(after.broken) {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&sig_path);
        return Err(refuse(format!(
            "the signed record does not check, so it was not kept: {why}"
        )));
    }
    sync_dir(&review.dir).map_err(|e| Error::io(&review.dir, e))?;
    Ok(Written { record, path })
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Submitted => "submit",
        Kind::Approved => "approve",
        Kind::Rejected => "reject",
        Kind::Revoked => "revoke",
    }
}

fn refuse(why: String) -> Error {
    Error::Layout(why)
}
