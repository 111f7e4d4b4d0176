//! Decision records: what a person decided about a layout version, signed
//! by them (`layouts/<name>/decisions/NNNN-vN-<decision>.json` with an SSH
//! signature beside it), and the trust list of who may decide. Reading,
//! checking and writing them is [`crate::layout::decisions`] and
//! [`crate::layout::trust`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The folder of a layout's decision records, inside the layout's folder
/// (beside its version folders).
pub const DECISIONS_DIR: &str = "decisions";

/// The SSH signature namespace of decision records: a signature made for
/// anything else (a git commit, a file) is never taken for a decision.
pub const NAMESPACE: &str = "letterpress-layout-decision";

/// The format of the records this build writes and reads.
pub const FORMAT: u32 = 1;

/// What was decided.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The author hands the version in for review.
    Submitted,
    /// A reviewer approves it for use with customers.
    Approved,
    /// A reviewer rejects it: it may not be used.
    Rejected,
    /// A reviewer withdraws its approval from a date on.
    Revoked,
}

impl Kind {
    /// `submitted`, `approved`, `rejected`, `revoked`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Submitted => "submitted",
            Kind::Approved => "approved",
            Kind::Rejected => "rejected",
            Kind::Revoked => "revoked",
        }
    }

    /// The noun for messages: `submission`, `approval`, ...
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Submitted => "submission",
            Kind::Approved => "approval",
            Kind::Rejected => "rejection",
            Kind::Revoked => "revocation",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who signed a record, as the record states it (checked against the
/// trust list: the key decides who it really is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Their id in the trust list (the principal of the SSH signature).
    pub id: String,
    /// Their name.
    pub name: String,
    /// The role they decided in (`author`, `compliance`, `legal`, ...).
    pub role: String,
}

/// One decision about a layout version: the bytes of its file are what the
/// signer signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The record format ([`FORMAT`]).
    pub letterpress_decision: u32,
    /// The layout's name.
    pub layout: String,
    /// The version decided about.
    pub version: u32,
    /// Its place in the layout's chain of records, from 1.
    pub seq: u32,
    /// SHA-256 (hex) of the file of record `seq - 1`; for record 1, of the
    /// text `letterpress decisions of <layout>`. Nothing can be taken out
    /// of the chain, or put in, without breaking it.
    pub prev: String,
    /// What was decided.
    pub decision: Kind,
    /// The decision in the words the signer agreed to (made from the other
    /// fields; a record whose words do not match them is refused).
    pub meaning: String,
    /// Why (required to reject or revoke), e.g. the review ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decided, in which role.
    pub signer: Signer,
    /// The SHA-256 fingerprint of the key that signed (`SHA256:...`).
    pub key: String,
    /// When the signer signed it (RFC 3339, UTC, seconds).
    pub at: String,
    /// An approval: the first day it counts for letters (the signing day,
    /// or the version's later `effective_from`). A revocation: the first
    /// day the version may no longer be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// An approval: the last day it counts (the version's `effective_until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The layout digest of the version's files.
    pub digest: String,
    /// SHA-256 (hex) of each file of the version, by relative path: what
    /// `sha256sum` prints for it.
    pub files: BTreeMap<String, String>,
    /// What the reviewer saw before deciding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// A decision made in the review workspace: who logged in, where and
    /// when (the workspace's key signed it for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
}

/// How the signer of a decision made in the review workspace logged in:
/// the identity provider's word for who they are, and when they last
/// proved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The workspace (its id in the trust list), whose key signed.
    pub workspace: String,
    /// The identity provider (OpenID Connect issuer URL).
    pub issuer: String,
    /// The user's subject (`sub`) at that provider: the trust list's
    /// `login` of the person.
    pub subject: String,
    /// The user's name as the provider gave it.
    pub name: String,
    /// When the user last authenticated at the provider (`auth_time`,
    /// RFC 3339 UTC).
    pub auth_time: String,
}

/// The review material an approval or rejection was decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The proof set (`letterpress proof`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofEvidence>,
    /// The comparison with the version in effect (`letterpress diff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffEvidence>,
    /// What the reviewer opened in the review workspace before deciding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<Opened>,
}

/// What a reviewer opened in the review workspace: the workspace lets them
/// approve only once every proof record, page and changed sentence is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Opened {
    /// Proof records (their ids), in the order opened.
    pub records: Vec<String>,
    /// Pages (`RECORD page N`), in the order opened.
    pub pages: Vec<String>,
    /// Changed sentences (`+ sentence` appearing, `- sentence`
    /// disappearing), in the order opened.
    pub sentences: Vec<String>,
}

/// A proof set as a decision records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofEvidence {
    /// SHA-256 of each file of the proof set (`proof.json`, the PDF and
    /// the HTML pages), by file name.
    pub files: BTreeMap<String, String>,
    /// SHA-256 of the data the records were picked from.
    pub data_sha256: String,
    /// The as-of date the proof was rendered for.
    pub as_of: String,
    /// Records read from the data.
    pub records: usize,
    /// The records the proof showed, each with why it was picked.
    pub picks: Vec<ProofPick>,
    /// The wording checks on the picked letters: `passed`, or each failure.
    pub wording: Vec<String>,
}

/// One record a proof showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofPick {
    /// The record id.
    pub record: String,
    /// Why it was picked.
    pub why: Vec<String>,
}

/// A diff report as a decision records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffEvidence {
    /// SHA-256 of each file of the report (`diff.json`, and the HTML page
    /// when there is one), by file name.
    pub files: BTreeMap<String, String>,
    /// The version compared against (`NAME@N`), in effect when decided.
    pub against: String,
    /// Its layout digest.
    pub against_digest: String,
    /// SHA-256 of the data both were rendered with.
    pub data_sha256: String,
    /// Records compared, and whose letter changes.
    pub records: usize,
    /// Records whose letter changes.
    pub changed: usize,
    /// Sentences that appear (with the number of letters).
    pub appearing: Vec<(String, usize)>,
    /// Sentences that disappear (with the number of letters).
    pub disappearing: Vec<(String, usize)>,
}

/// The trust list: who may decide about layout versions, with which keys
/// and in which roles, and how many approvals a version needs.
/// Deployment configuration, kept outside the layouts folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustList {
    /// True for the bundled demonstration list, whose private keys are
    /// published with letterpress: every command that uses it says so.
    #[serde(default)]
    pub demo: bool,
    /// The people who may decide.
    pub people: Vec<Person>,
    /// The approvals each layout needs.
    #[serde(default)]
    pub policy: Policy,
    /// By layout name, a record its chain must hold: deleting the newest
    /// records of a chain (a revocation) cannot be seen from the layouts
    /// folder alone, so the administrators pin a chain's head here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub heads: BTreeMap<String, Head>,
    /// The review workspace (`letterpress review`), if reviewers decide in
    /// the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
}

/// The review workspace: its own key signs the decisions people make in
/// the browser, for the person the identity provider logged in. Only
/// people with a `login` decide there, in roles they hold here and that
/// the provider's groups give them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// Its id: the principal of its key in `allowed_signers`.
    pub id: String,
    /// Its name, e.g. `Compliance review workspace`.
    pub name: String,
    /// The identity provider's issuer URL: logins from any other are
    /// refused.
    pub issuer: String,
    /// The groups (values of the groups claim) and the role each gives.
    pub groups: BTreeMap<String, String>,
    /// Its keys, dated like a person's.
    pub keys: Vec<TrustedKey>,
}

/// A record a layout's chain must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Its number.
    pub seq: u32,
    /// SHA-256 of its file, hex (what `sha256sum` prints).
    pub sha256: String,
}

/// A person of the trust list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// A unique id, e.g. their email address (the principal of
    /// `allowed_signers`).
    pub id: String,
    /// Their name, as records show it.
    pub name: String,
    /// Their roles: `author` may submit; the roles the policy names may
    /// approve, reject and revoke.
    pub roles: Vec<String>,
    /// Their keys: every key is theirs alone (none for a person who
    /// decides only in the review workspace).
    #[serde(default)]
    pub keys: Vec<TrustedKey>,
    /// Their subject (`sub`) at the review workspace's identity provider,
    /// if they decide there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// A public key of a person, with when it may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// The public key as in a `.pub` file (`ssh-ed25519 AAAA... comment`).
    pub key: String,
    /// The first day it may sign (`YYYY-MM-DD`, UTC).
    pub from: String,
    /// The last day it may sign. Records it signed before stand after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The day it was withdrawn (a person left, a role changed): records
    /// signed from that day on do not count; earlier ones stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// With `withdrawn`: the key was lost or stolen, so its holder may have
    /// signed anything with any date: nothing it ever signed counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compromised: bool,
}

/// The approvals layouts need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// For every layout the list does not name.
    #[serde(default = "Rule::one_compliance")]
    pub default: Rule,
    /// By layout name.
    #[serde(default)]
    pub layouts: BTreeMap<String, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: Rule::one_compliance(),
            layouts: BTreeMap::new(),
        }
    }
}

/// The approvals one layout's versions need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// One approval per entry, each by a different person holding that
    /// role, none of them the version's author: `[compliance, legal]`
    /// asks for one compliance and one legal approval.
    pub approvals: Vec<String>,
    /// The role that must release each run of the layout in the review
    /// workspace before its output leaves (`send` refuses, and the print
    /// shop's job ticket is held, until then); none: runs need no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

impl Rule {
    /// One approval by compliance, the default.
    pub fn one_compliance() -> Rule {
        Rule {
            approvals: vec!["compliance".into()],
            release: None,
        }
    }
}
