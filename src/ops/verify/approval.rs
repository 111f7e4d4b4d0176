//! The approval a run rests on, checked again: the copies in the run's
//! `approval/` folder are the ones the manifest recorded; each record's
//! signature, signer, key and time still check against the trust list the
//! run used (its copy); they approve the files the run used; and the
//! layout's chain of decisions, where the layouts folder still is, holds
//! the records the run saw, unchanged, up to the last one it saw.

use std::path::Path;

use crate::layout::decisions::{Entry, Review};
use crate::layout::trust::Trust;
use crate::model::manifest::{ApprovalEntry, DecisionEntry, Manifest, APPROVAL_DIR, TRUST_COPY};
use crate::util::digest::sha256_hex;

use super::{Files, VerifyReport};

/// Checks the approval of the run in `run`; `layouts` is where the
/// layouts folder is now, if known.
pub(super) fn check(run: &Path, m: &Manifest, layouts: &Path, files: &mut Files) {
    let Some(a) = &m.layout.approval else {
        return;
    };
    let Some(t) = &a.trust else {
        return;
    };
    let trust_path = format!("{APPROVAL_DIR}/{TRUST_COPY}");
    let Some(bytes) = copy(run, &trust_path, &t.sha256, files) else {
        return;
    };
    let trust = match Trust::parse(Path::new(&trust_path), bytes) {
        Ok(t) => t,
        Err(e) => return files.report.problems.push(format!("{trust_path}: {e}")),
    };
    let decisions = a.submitted.iter().chain(&a.approvals);
    let entries: Vec<Entry> = decisions
        .filter_map(|d| record(run, d, &trust, files.report))
        .collect();
    if !m.draft {
        for e in &entries {
            if e.record.digest != m.layout.digest {
                files.report.problems.push(format!(
                    "{APPROVAL_DIR}/{}: decides on layout digest {}, not the {} the run used",
                    e.file, e.record.digest, m.layout.digest
                ));
            }
        }
    }
    for d in a.submitted.iter().chain(&a.approvals) {
        files.listed.insert(format!("{APPROVAL_DIR}/{}", d.record));
        files
            .listed
            .insert(format!("{APPROVAL_DIR}/{}.sig", d.record));
    }
    chain(layouts, &m.layout.name, a, &trust, files.report);
}

/// The bytes of the copy `rel`, if it is the one recorded (else a problem).
fn copy(run: &Path, rel: &str, sha256: &str, files: &mut Files) -> Option<Vec<u8>> {
    files.listed.insert(rel.to_owned());
    files.report.files_checked += 1;
    match std::fs::read(run.join(rel)) {
        Ok(b) if sha256_hex(&b) == sha256 => Some(b),
        Ok(_) => {
            files.report.problems.push(format!(
                "altered: {rel}: its SHA-256 differs from the manifest"
            ));
            None
        }
        Err(e) => {
            files.report.problems.push(format!("missing: {rel} ({e})"));
            None
        }
    }
}

/// A decision's copy, checked: bytes and signature as recorded, and the
/// record still checks against the run's trust list.
fn record(
    run: &Path,
    d: &DecisionEntry,
    trust: &Trust,
    report: &mut VerifyReport,
) -> Option<Entry> {
    let rel = format!("{APPROVAL_DIR}/{}", d.record);
    report.files_checked += 2;
    let bytes = std::fs::read(run.join(&rel)).ok();
    let sig = std::fs::read(run.join(format!("{rel}.sig"))).ok();
    let (Some(bytes), Some(sig)) = (bytes, sig) else {
        report
            .problems
            .push(format!("missing: {rel} or its signature"));
        return None;
    };
    if sha256_hex(&bytes) != d.sha256 || sha256_hex(&sig) != d.signature_sha256 {
        report.problems.push(format!(
            "altered: {rel}: it or its signature differs from the manifest"
        ));
        return None;
    }
    let entry = match Entry::parse(d.record.clone(), bytes, Some(sig)) {
        Ok(e) => e,
        Err(why) => {
            report.problems.push(format!("{rel}: {why}"));
            return None;
        }
    };
    if let Err(why) = entry.check(trust) {
        report.problems.push(format!(
            "{rel}: the decision does not check against the run's trust list: record {} {why}",
            entry.record.seq
        ));
    }
    Some(entry)
}

/// The layout's chain now, against what the run saw of it.
fn chain(layouts: &Path, name: &str, a: &ApprovalEntry, trust: &Trust, report: &mut VerifyReport) {
    let Some(head) = &a.chain_head else {
        return;
    };
    let layout_dir = layouts.join(name);
    if !layout_dir.is_dir() {
        report.cannot_check.push(format!(
            "cannot check the chain of decisions of {name}: {} is not there (give the layouts folder with --layouts)",
            layout_dir.display()
        ));
        return;
    }
    let review = Review::read(&layout_dir, name, Some(trust));
    let seen = a.submitted.iter().chain(&a.approvals);
    let at = |seq: u32| review.entries.iter().find(|e| e.record.seq == seq);
    let head_now = at(head.seq).map(|e| e.sha256.as_str());
    let rewritten = seen
        .filter_map(|d| {
            let seq = d.record.get(..4)?.parse::<u32>().ok()?;
            (at(seq).map(|e| e.sha256.as_str()) != Some(d.sha256.as_str())).then_some(seq)
        })
        .chain((head_now != Some(head.sha256.as_str())).then_some(head.seq))
        .collect::<Vec<_>>();
    if !rewritten.is_empty() {
        report.problems.push(format!(
            "the decisions of {name} in {} changed since the run: record {} is no longer the one the run saw (a record was altered, removed or replaced)",
            layout_dir.display(),
            rewritten[0]
        ));
    }
    if let Some(why) = &review.broken {
        report.problems.push(format!(
            "the decisions of {name} cannot be trusted now: {why}"
        ));
    }
}
