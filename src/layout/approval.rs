//! Approval records: who signed off a layout version, and whether its files
//! are still the ones they signed off.
//!
//! Part of stage 2 (layouts). `letterpress layouts approve NAME@N --by NAME`
//! writes `approval.yaml` into the version folder: who, on which date, an
//! optional note, when it was recorded, the layout digest and the SHA-256 of
//! every file that can change the output (every file of the folder as the
//! digest sees it, see [`crate::layout`]). It also sets `status: approved`
//! in `layout.yaml`. A re-approval never overwrites an earlier one: every
//! approval of the version stays in the file's `history`, which `layouts
//! show` prints, so an examiner sees who approved what and when.
//!
//! A version is in effect on a day only if the files it has now were
//! approved on or before that day ([`Approval::approved_since`]): a run
//! dated before the approval cannot use it.
//!
//! [`standing`] compares a version's files with its approval: a changed,
//! added or removed file is drift, and a drifted version is not approved any
//! more. `run` renders only approved versions without drift, unless
//! `--allow-draft` asks for a review run, whose letters carry a visible
//! "DRAFT - NOT APPROVED" mark on every page and whose email subjects start
//! with `[DRAFT]`.

use crate::error::{Error, Result};
use crate::layout::catalog::Layout;
use crate::layout::files::LayoutFiles;
use crate::model::approval::{Approval, APPROVAL_FILE};
use crate::model::layout::{Status, METADATA_FILE};
use crate::util::clock::{now_rfc3339, Date};
use crate::util::fs::write_atomic;

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
    crate::layout::catalog::approval_in(&layout.dir)
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
/// and writes its approval record, keeping every earlier approval of the
/// version in its history. Returns the record.
///
/// The approver is one line of text (a name, a role); the approval date
/// may be given (the day the committee signed it off) but not in the
/// future, and the moment it was recorded is kept beside it.
pub fn approve(layout: &Layout, by: &str, note: Option<&str>, on: Date) -> Result<Approval> {
    if by.trim().is_empty() {
        return Err(Error::Usage("--by must name the approver".into()));
    }
    if let Some(c) = by.chars().find(|c| c.is_control()) {
        return Err(Error::Usage(format!(
            "--by must be one line naming the approver; it holds {} (U+{:04X})",
            if c == '\n' || c == '\r' {
                "a line break"
            } else {
                "a control character"
            },
            c as u32
        )));
    }
    let today = Date::today_utc();
    if on > today {
        return Err(Error::Usage(format!(
            "--date {on} is in the future (today is {today}): an approval records a decision already taken"
        )));
    }
    let earlier = load(layout)?;
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
        write_atomic(&meta_path, lines.concat().as_bytes(), true)
            .map_err(|e| Error::io(&meta_path, e))?;
    }
    let files = layout.read_files()?;
    let approval = Approval {
        approved_by: by.trim().to_owned(),
        approved_on: on.to_string(),
        note: note.map(str::to_owned).filter(|n| !n.trim().is_empty()),
        recorded_at: Some(now_rfc3339()),
        digest: files.digest.clone(),
        files: files.hashes.clone(),
        history: earlier.map(|a| a.all()).unwrap_or_default(),
    };
    let yaml = format!(
        "# Written by `letterpress layouts approve`. Edit nothing here: a change to\n# any file of this version makes it drift from this approval.\n{}",
        serde_yaml::to_string(&approval).expect("approval serializes")
    );
    let path = layout.dir.join(APPROVAL_FILE);
    write_atomic(&path, yaml.as_bytes(), true).map_err(|e| Error::io(&path, e))?;
    Ok(approval)
}
