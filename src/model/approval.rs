//! `approval.yaml`: who approved a layout version, when, and the hash of
//! every file they approved, with every earlier approval. Taking and
//! checking approvals is [`crate::layout::approval`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::util::clock::Date;

/// The approval record's file name in a version folder.
pub const APPROVAL_FILE: &str = "approval.yaml";

/// The contents of `approval.yaml`: the version's current approval, and
/// every earlier approval of it, which a new one never overwrites.
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
    /// The moment the approval was recorded (RFC 3339, UTC), which an
    /// approval date given with `--date` cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// The layout digest at approval.
    pub digest: String,
    /// SHA-256 of every file at approval, by relative path.
    pub files: BTreeMap<String, String>,
    /// The earlier approvals of this version, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Record>,
}

/// One approval of a version, as the history keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Who approved it.
    pub approved_by: String,
    /// The approval date (`YYYY-MM-DD`).
    pub approved_on: String,
    /// Their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was recorded (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// The layout digest they approved.
    pub digest: String,
}

impl Approval {
    /// Every approval of the version, oldest first, the current one last.
    pub fn all(&self) -> Vec<Record> {
        let mut all = self.history.clone();
        all.push(Record {
            approved_by: self.approved_by.clone(),
            approved_on: self.approved_on.clone(),
            note: self.note.clone(),
            recorded_at: self.recorded_at.clone(),
            digest: self.digest.clone(),
        });
        all
    }

    /// Since when the files as they are now approved have been approved: the
    /// earliest approval of the current digest. A version is in effect on a
    /// day only from then on (see [`crate::layout::catalog::Layout::in_effect`]).
    pub fn approved_since(&self) -> Option<Date> {
        self.all()
            .iter()
            .filter(|r| r.digest == self.digest)
            .filter_map(|r| Date::parse(&r.approved_on))
            .min()
    }
}
