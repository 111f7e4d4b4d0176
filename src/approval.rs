//! Approval records: who signed off a layout version, and whether its files
//! are still the ones they signed off.
//!
//! Part of stage 2 (layouts). `letterpress layouts approve NAME@N --by NAME`
//! writes `approval.yaml` into the version folder: who, on which date, an
//! optional note, the layout digest and the SHA-256 of every file that can
//! change the output (every file of the folder as the digest sees it, see
//! [`crate::layout`]). It also sets `status: approved` in `layout.yaml`.
//!
//! [`standing`] compares a version's files with its approval: a changed,
//! added or removed file is drift, and a drifted version is not approved any
//! more. `run` renders only approved versions without drift, unless
//! `--allow-draft` asks for a review run, whose letters carry a visible
//! "DRAFT - NOT APPROVED" mark on every page and whose email subjects start
//! with `[DRAFT]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Date;
use crate::error::{Error, Result};
use crate::layout::{Layout, LayoutFiles, Status, METADATA_FILE};

/// The approval record's file name in a version folder.
pub const APPROVAL_FILE: &str = "approval.yaml";

/// The contents of `approval.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who approved the version.
    pub approved_by: String,
    /// When (`YYYY-MM-DD`).
    pub approved_on: String,
    /// A remark, e.g. the review ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The layout digest at approval.
    pub digest: String,
    /// SHA-256 of every file at approval, by relative path.
    pub files: BTreeMap<String, String>,
}

/// Where a layout version stands against its approval.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Status approved, and the files are the approved ones.
    Approved(Approval),
    /// Status approved (or not), but there is no approval record.
    Unapproved,
    /// The files changed since the approval.
    Drifted {
        /// The approval the files no longer match.
        approval: Approval,
        /// Changed, added and removed files, one description each.
        changes: Vec<String>,
    },
}

impl Standing {
    /// Whether the version may render for customers.
    pub fn is_approved(&self) -> bool {
        matches!(self, Standing::Approved(_))
    }

    /// The approval record, if any.
    pub fn approval(&self) -> Option<&Approval> {
        match self {
            Standing::Approved(a) | Standing::Drifted { approval: a, .. } => Some(a),
            Standing::Unapproved => None,
        }
    }

    /// One line for people: `approved by X on D`, `no approval record`,
    /// `changed since approved by X on D: letter.typ changed, ...`.
    pub fn describe(&self) -> String {
        match self {
            Standing::Approved(a) => format!(
                "approved by {} on {}, files match",
                a.approved_by, a.approved_on
            ),
            Standing::Unapproved => "no approval record".into(),
            Standing::Drifted {
                approval: a,
                changes,
            } => format!(
                "changed since approved by {} on {}: {}",
                a.approved_by,
                a.approved_on,
                changes.join(", ")
            ),
        }
    }
}

/// Reads a version's approval record, if it has one.
pub fn load(layout: &Layout) -> Result<Option<Approval>> {
    let path = layout.dir.join(APPROVAL_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Layout(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Compares a version's files (as read by [`Layout::read_files`]) with its
/// approval record.
pub fn standing(layout: &Layout, files: &LayoutFiles) -> Result<Standing> {
    let Some(approval) = load(layout)? else {
        return Ok(Standing::Unapproved);
    };
    let mut changes = Vec::new();
    for (rel, hash) in &approval.files {
        match files.hashes.get(rel) {
            None => changes.push(format!("{rel} removed")),
            Some(h) if h != hash => changes.push(format!("{rel} changed")),
            Some(_) => {}
        }
    }
    for rel in files.hashes.keys() {
        if !approval.files.contains_key(rel) {
            changes.push(format!("{rel} added"));
        }
    }
    if changes.is_empty() && approval.digest != files.digest {
        changes.push("the layout digest differs".into());
    }
    Ok(if changes.is_empty() {
        Standing::Approved(approval)
    } else {
        Standing::Drifted { approval, changes }
    })
}

/// Approves a layout version: sets `status: approved` in its `layout.yaml`
/// and writes its approval record. Returns the record.
pub fn approve(layout: &Layout, by: &str, note: Option<&str>, on: Date) -> Result<Approval> {
    if by.trim().is_empty() {
        return Err(Error::Usage("--by must name the approver".into()));
    }
    let meta_path = layout.dir.join(METADATA_FILE);
    if layout.meta.status != Status::Approved {
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let mut found = false;
        let lines: Vec<String> = text
            .split_inclusive('\n')
            .map(|l| {
                if l.starts_with("status:") {
                    found = true;
                    format!(
                        "status: approved{}",
                        if l.ends_with('\n') { "\n" } else { "" }
                    )
                } else {
                    l.to_owned()
                }
            })
            .collect();
        if !found {
            return Err(Error::Layout(format!(
                "{}: no `status:` line at the start of a line to set",
                meta_path.display()
            )));
        }
        crate::output::write_atomic(&meta_path, lines.concat().as_bytes(), true)
            .map_err(|e| Error::io(&meta_path, e))?;
    }
    let files = layout.read_files()?;
    let approval = Approval {
        approved_by: by.trim().to_owned(),
        approved_on: on.to_string(),
        note: note.map(str::to_owned).filter(|n| !n.trim().is_empty()),
        digest: files.digest.clone(),
        files: files.hashes.clone(),
    };
    let yaml = format!(
        "# Written by `letterpress layouts approve`. Edit nothing here: a change to\n# any file of this version makes it drift from this approval.\n{}",
        serde_yaml::to_string(&approval).expect("approval serializes")
    );
    let path = layout.dir.join(APPROVAL_FILE);
    crate::output::write_atomic(&path, yaml.as_bytes(), true).map_err(|e| Error::io(&path, e))?;
    Ok(approval)
}
