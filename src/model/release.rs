//! Release records: a reviewer's decision that a finished run's output may
//! leave (`released`) or must not (`stopped`), for layouts whose policy in
//! the trust list asks for one (`release: ROLE`). Kept in the run folder as
//! `release.json` with its SSH signature `release.json.sig`, made by the
//! review workspace for the person logged in. Checking them is
//! [`crate::ops::release`].

use serde::{Deserialize, Serialize};

use crate::model::decision::{Login, Signer};

/// The release record's file in a run folder (its signature is
/// `release.json.sig`).
pub const RELEASE_FILE: &str = "release.json";

/// The SSH signature namespace of release records: never taken for a
/// decision about a layout, nor the other way round.
pub const RELEASE_NAMESPACE: &str = "letterpress-run-release";

/// What was decided about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseKind {
    /// Its output may leave: `send` sends, the print shop prints.
    Released,
    /// It must not leave; the run is made again after a fix.
    Stopped,
}

impl ReleaseKind {
    /// `released`, `stopped`.
    pub fn name(self) -> &'static str {
        match self {
            ReleaseKind::Released => "released",
            ReleaseKind::Stopped => "stopped",
        }
    }
}

/// A reviewer's release (or stop) of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The record format (1).
    pub letterpress_release: u32,
    /// The run's id.
    pub run_id: String,
    /// The run manifest's `manifest_digest`: the record is of that
    /// manifest, as it was when released.
    pub manifest_digest: String,
    /// The layout version the run used (`NAME@N`).
    pub layout: String,
    /// What was decided.
    pub decision: ReleaseKind,
    /// The decision in the words the reviewer confirmed.
    pub meaning: String,
    /// Why (required to stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decided, in which role.
    pub signer: Signer,
    /// The fingerprint of the key that signed (the workspace's).
    pub key: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// How the reviewer logged in.
    pub login: Login,
    /// What the reviewer opened: `report`, then each sample document
    /// (`RECORD channel`).
    pub opened: Vec<String>,
}

/// The words of a release record, made from its fields.
pub fn release_meaning(r: &Release) -> String {
    let (name, role) = (&r.signer.name, &r.signer.role);
    match r.decision {
        ReleaseKind::Released => format!(
            "{name}, {role}, releases run {} of {} (manifest digest {}): its letters and emails may go to customers.",
            r.run_id, r.layout, r.manifest_digest
        ),
        ReleaseKind::Stopped => format!(
            "{name}, {role}, stops run {} of {} (manifest digest {}): nothing of it may go to customers.",
            r.run_id, r.layout, r.manifest_digest
        ),
    }
}
