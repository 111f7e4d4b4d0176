//! The checks of a chain of decisions (see the parent module).
//!
//! For the chain as a whole: records numbered 1, 2, 3, ... without a gap
//! or a second record of a number, each holding the SHA-256 of the one
//! before it. For each record: its file name matches it; its signature is
//! there, is an SSH signature for [`NAMESPACE`], by a key of the trust
//! list, over exactly the record's bytes; the key was valid when the record
//! says it was signed, and that time is not in the future; the signer it
//! names is the key's person, in a role they hold (`author` to submit, a
//! role the layout's policy names otherwise); its words are the ones its
//! fields make; a rejection and a revocation say why.

use ssh_key::{HashAlg, SshSig};

use super::{file_name, origin, Entry, Review};
use crate::layout::trust::{Key, Trust, AUTHOR};
use crate::model::decision::{Kind, Person, Record, FORMAT, NAMESPACE};
use crate::util::clock::{is_rfc3339_utc, rfc3339_utc, unix_seconds, Date};

/// How far in the future a record's time may be (clocks differ).
const SKEW_SECONDS: i64 = 300;

/// Checks `review`'s entries: sets `broken` for the chain, and each
/// entry's `problem` or `person`.
pub(super) fn chain(review: &mut Review, trust: Option<&Trust>) {
    let latest = rfc3339_utc(unix_seconds() + SKEW_SECONDS);
    for i in 0..review.entries.len() {
        if let Some(trust) = trust {
            let label = review.label(i);
            let entry = &review.entries[i];
            match record(entry, &review.layout, trust, &latest) {
                Ok(person) => review.entries[i].person = Some(person),
                Err(why) => review.entries[i].problem = Some(format!("{label} {why}")),
            }
        }
        if review.broken.is_none() {
            review.broken = link(review, i);
        }
    }
}

/// Why the chain lacks the record the trust list pins for its layout, if
/// it does: newer records were deleted, or the chain was rewritten.
pub(super) fn pinned(review: &Review, trust: &Trust) -> Option<String> {
    let head = trust.list.heads.get(&review.layout)?;
    match review.entries.iter().find(|e| e.record.seq == head.seq) {
        None => Some(format!(
            "record {}, which the trust list pins, is missing from the chain (it ends at record {}): records were deleted",
            head.seq,
            review.entries.last().map_or(0, |e| e.record.seq)
        )),
        Some(e) if !e.sha256.eq_ignore_ascii_case(&head.sha256) => Some(format!(
            "record {} is not the one the trust list pins (its SHA-256 is {}, the list says {}): the chain was rewritten",
            head.seq, e.sha256, head.sha256
        )),
        Some(_) => None,
    }
}

/// Checks one record on its own (see [`Entry::check`]).
pub(super) fn one(e: &Entry, trust: &Trust) -> Result<String, String> {
    let latest = rfc3339_utc(unix_seconds() + SKEW_SECONDS);
    record(e, &e.record.layout, trust, &latest)
}

/// Why entry `i` breaks the chain, if it does: its number, or its link to
/// the record before it. When the record before it was altered (its
/// signature fails), that is the reason given.
fn link(review: &Review, i: usize) -> Option<String> {
    let entries = &review.entries;
    let r = &entries[i].record;
    let want = i as u32 + 1;
    if r.seq != want && i == 0 {
        return Some(format!(
            "record 1 is missing from the chain (the first record in the folder is numbered {})",
            r.seq
        ));
    }
    if r.seq != want {
        return Some(if r.seq == want - 1 {
            format!(
                "two records are numbered {} ({} and {}): decisions were made on two copies of the layouts folder",
                r.seq,
                entries[i - 1].file,
                entries[i].file
            )
        } else {
            format!(
                "record {want} is missing from the chain (the folder goes from record {} to record {})",
                want - 1,
                r.seq
            )
        });
    }
    let (prev, before) = match i {
        0 => (origin(&review.layout), None),
        _ => (entries[i - 1].sha256.clone(), Some(&entries[i - 1])),
    };
    if r.prev == prev {
        return None;
    }
    Some(match before.and_then(|b| b.problem.as_ref()) {
        Some(problem) => problem.clone(),
        None => format!(
            "record {} does not follow record {} (it holds another hash of it): a record was altered, replaced or removed",
            r.seq,
            want - 1
        ),
    })
}

/// Checks one record; returns the id of the person who signed it, or why
/// it does not count (completing "record 3 (approval 1 of x@2) ...").
fn record(e: &Entry, layout: &str, trust: &Trust, latest: &str) -> Result<String, String> {
    let r = &e.record;
    if r.letterpress_decision != FORMAT {
        return Err(format!(
            "is in format {}, which this letterpress does not read",
            r.letterpress_decision
        ));
    }
    if e.file != file_name(r.seq, r.version, r.decision) {
        return Err(format!(
            "is in a file named {} (it should be {}): it was renamed",
            e.file,
            file_name(r.seq, r.version, r.decision)
        ));
    }
    if r.layout != layout {
        return Err(format!("is about layout {}, not {layout}", r.layout));
    }
    let person = signature(e, trust)?;
    if !is_rfc3339_utc(&r.at) {
        return Err(format!("has the time {:?}, not YYYY-MM-DDTHH:MM:SSZ", r.at));
    }
    if r.at.as_str() > latest {
        return Err(format!("is dated {}, in the future", r.at));
    }
    if r.meaning != meaning(r) {
        return Err(
            "says in words something other than its fields: its meaning does not match".into(),
        );
    }
    dated(r)?;
    let needs_reason = matches!(r.decision, Kind::Rejected | Kind::Revoked);
    if needs_reason && r.reason.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(format!(
            "gives no reason: a {} must say why",
            r.decision.noun()
        ));
    }
    let role_ok = match r.decision {
        Kind::Submitted => r.signer.role == AUTHOR,
        _ => trust.rule(layout).approvals.contains(&r.signer.role),
    };
    if !role_ok {
        return Err(format!(
            "is signed in the role `{}`, which may not make a {} for {layout}",
            r.signer.role,
            r.decision.noun()
        ));
    }
    Ok(person)
}

/// An approval's and a revocation's first day: a date, not before the day
/// it was signed (nobody approves or revokes letters already sent); an
/// approval's last day, if any, not before its first.
fn dated(r: &Record) -> Result<(), String> {
    if !matches!(r.decision, Kind::Approved | Kind::Revoked) {
        return Ok(());
    }
    let signed = Date::parse(&r.at[..10]).ok_or("has no valid signing day")?;
    let from = r
        .from
        .as_deref()
        .and_then(Date::parse)
        .ok_or_else(|| format!("has no first day (`from`) a {} needs", r.decision.noun()))?;
    if from < signed {
        return Err(format!(
            "takes effect from {from}, before the day it was signed ({signed}): it is back-dated"
        ));
    }
    match r.until.as_deref().map(|u| (u, Date::parse(u))) {
        Some((u, None)) => Err(format!("has the last day {u:?}, not YYYY-MM-DD")),
        Some((_, Some(until))) if until < from => {
            Err(format!("ends on {until}, before it starts ({from})"))
        }
        _ => Ok(()),
    }
}

/// The signature of a record: checks it and returns the signer's id.
fn signature(e: &Entry, trust: &Trust) -> Result<String, String> {
    let r = &e.record;
    let sig = e
        .sig
        .as_ref()
        .ok_or_else(|| format!("has no signature ({}.sig is missing)", e.file))?;
    let sig = std::str::from_utf8(sig)
        .ok()
        .and_then(|s| SshSig::from_pem(s).ok())
        .ok_or_else(|| {
            format!(
                "has a signature file ({}.sig) that is not an SSH signature",
                e.file
            )
        })?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "carries a signature made for `{}`, not for letterpress decisions",
            sig.namespace()
        ));
    }
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let (key, person) = signer(r, trust, &fingerprint)?;
    if key.public.verify(NAMESPACE, &e.bytes, &sig).is_err() {
        return Err("was altered: its signature does not verify".into());
    }
    if r.key != fingerprint {
        return Err(format!(
            "names the key {} but is signed by {fingerprint}",
            r.key
        ));
    }
    if r.signer.id != person.id || r.signer.name != person.name {
        return Err(format!(
            "says it is by {} <{}> but is signed with a key of {} <{}>",
            r.signer.name, r.signer.id, person.name, person.id
        ));
    }
    if !person.roles.contains(&r.signer.role) {
        return Err(format!(
            "is signed as `{}`, a role {} does not hold",
            r.signer.role, person.name
        ));
    }
    if let Some(why) = key.refuses(&r.at) {
        return Err(format!("is signed by {} with {why}", person.name));
    }
    Ok(person.id.clone())
}

/// The key that signed `r` and the person it signed for: a person's own
/// key (and no `login`), or the review workspace's key for the person
/// whose `login` the record names, logged in at the workspace's provider.
fn signer<'t>(
    r: &Record,
    trust: &'t Trust,
    fingerprint: &str,
) -> Result<(&'t Key, &'t Person), String> {
    if let Some((key, person)) = trust.key(fingerprint) {
        if r.login.is_some() {
            return Err(format!(
                "carries a workspace login but is signed with {}'s own key",
                person.name
            ));
        }
        return Ok((key, person));
    }
    let (Some(key), Some(ws)) = (trust.workspace_key(fingerprint), &trust.list.workspace) else {
        return Err(format!(
            "is signed by a key not in the trust list ({fingerprint})"
        ));
    };
    let Some(login) = &r.login else {
        return Err(format!(
            "is signed by the review workspace {} but names no login: the workspace signs only for a person logged in",
            ws.id
        ));
    };
    if login.workspace != ws.id || login.issuer != ws.issuer {
        return Err(format!(
            "names the workspace {} and the identity provider {}, but the trust list's workspace is {} at {}",
            login.workspace, login.issuer, ws.id, ws.issuer
        ));
    }
    if !is_rfc3339_utc(&login.auth_time) || login.auth_time > r.at {
        return Err(format!(
            "has the login time {:?}, not a time before it was signed",
            login.auth_time
        ));
    }
    let person = trust.by_login(&login.subject).ok_or_else(|| {
        format!(
            "is signed by the workspace for the login {:?}, which is nobody's in the trust list",
            login.subject
        )
    })?;
    Ok((key, person))
}

/// The words of a decision, made from its fields.
pub fn meaning(r: &Record) -> String {
    let v = format!("{}@{}", r.layout, r.version);
    let (name, role, d) = (&r.signer.name, &r.signer.role, &r.digest);
    let from = r.from.as_deref().unwrap_or("?");
    match r.decision {
        Kind::Submitted => format!(
            "{name} submits {v} (layout digest {d}) for review, as its author."
        ),
        Kind::Approved => format!(
            "{name}, {role}, approves {v} (layout digest {d}) for use with customers from {from}{}.",
            r.until.as_deref().map(|u| format!(" until {u}")).unwrap_or_default()
        ),
        Kind::Rejected => format!(
            "{name}, {role}, rejects {v} (layout digest {d}): it may not be used with customers."
        ),
        Kind::Revoked => format!(
            "{name}, {role}, revokes the approval of {v} (layout digest {d}): it may not be used with customers from {from}."
        ),
    }
}
