//! The evidence a reviewer decided on: the proof set (`proof.json` and the
//! files it lists) and the diff against the version in effect
//! (`diff.json` and its page), checked to be of this version's files, and
//! hashed into the decision record.

use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::catalog::Catalog;
use crate::layout::trust::Trust;
use crate::model::decision::{DiffEvidence, Evidence, ProofEvidence};
use crate::model::layout::LayoutRef;
use crate::ops::diff::DiffFile;
use crate::ops::proof::ProofFile;
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;

/// The evidence for a decision about `reference` from the `proof.json` and
/// `diff.json` given (none: `None`), the diff checked to compare against
/// the version in effect on `day` (today, or the day a review workspace
/// prepared its material for).
pub fn evidence(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    (proof, diff): (Option<&Path>, Option<&Path>),
    day: Date,
) -> Result<Option<Evidence>> {
    if proof.is_none() && diff.is_none() {
        return Ok(None);
    }
    let trust = Trust::find(trust)?;
    let catalog = Catalog::load(layouts, trust.as_ref())?;
    let layout = catalog.resolve(reference, day)?;
    let digest = layout.read_files()?.digest;
    let id = layout.id();
    let proof = proof.map(|p| proof_evidence(p, &id, &digest)).transpose()?;
    let diff = match diff {
        Some(path) => {
            let name = LayoutRef {
                name: reference.name.clone(),
                version: None,
            };
            let in_effect = match catalog.resolve(&name, day) {
                Ok(l) => Some((l.id(), l.read_files()?.digest)),
                Err(_) => None,
            };
            Some(diff_evidence(path, &id, &digest, in_effect)?)
        }
        None => None,
    };
    Ok(Some(Evidence {
        proof,
        diff,
        opened: None,
    }))
}

/// Reads an evidence file and hashes it and the files it lists (which must
/// be beside it, unchanged).
fn read_checked(
    path: &Path,
    listed: &std::collections::BTreeMap<String, String>,
) -> Result<(String, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (name, sha) in listed {
        let file = dir.join(name);
        let now = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        if sha256_hex(&now) != *sha {
            return Err(Error::Usage(format!(
                "{} changed since {} was written: it is not the evidence that was produced",
                file.display(),
                path.display()
            )));
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, sha256_hex(&bytes)))
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Usage(format!(
            "{} is not the .json that `letterpress {what}` writes ({e})",
            path.display()
        ))
    })
}

/// The proof set of `proof.json`, which must be of version `id` with
/// these files (`digest`).
fn proof_evidence(path: &Path, id: &str, digest: &str) -> Result<ProofEvidence> {
    let file: ProofFile = parse(path, "proof")?;
    if file.layout != id || file.digest != digest {
        return Err(Error::Usage(format!(
            "{} is a proof of {} with layout digest {}, not of {id} as its files are now ({digest}): proof it again",
            path.display(),
            file.layout,
            file.digest
        )));
    }
    let (name, sha) = read_checked(path, &file.proof.files)?;
    let mut proof = file.proof;
    proof.files.insert(name, sha);
    Ok(proof)
}

/// The comparison of `diff.json`, which must be of version `id` (these
/// files) against the version in effect today.
fn diff_evidence(
    path: &Path,
    id: &str,
    digest: &str,
    in_effect: Option<(String, String)>,
) -> Result<DiffEvidence> {
    let file: DiffFile = parse(path, "diff")?;
    if file.new != id || file.new_digest != digest {
        return Err(Error::Usage(format!(
            "{} compares {} (layout digest {}), not {id} as its files are now ({digest}): compare again",
            path.display(),
            file.new,
            file.new_digest
        )));
    }
    match in_effect {
        Some((current, d)) if current == file.diff.against && d == file.diff.against_digest => {}
        Some((current, _)) => {
            return Err(Error::Usage(format!(
                "{} compares against {} (layout digest {}), but the version in effect today is {current} as its files are now: compare with it",
                path.display(),
                file.diff.against,
                file.diff.against_digest
            )))
        }
        None => {
            return Err(Error::Usage(format!(
                "no version of this layout is in effect today to compare against: leave out --diff ({} compares against {})",
                path.display(),
                file.diff.against
            )))
        }
    }
    let (name, sha) = read_checked(path, &file.diff.files)?;
    let mut diff = file.diff;
    diff.files.insert(name, sha);
    Ok(diff)
}
