//! The audit record's types: `manifest.json` and the entries of
//! `documents.jsonl` (schema in `docs/src/reference/manifest.md`). Writing and reading
//! them is [`crate::manifest`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::file::FileEntry;
use crate::model::print::{Piece, PrintOutput};
use crate::model::vocab::{Channel, DocStatus, LetterFormat};

/// The manifest schema version.
pub const MANIFEST_VERSION: u32 = 6;

/// The file name of the manifest in a run's output folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The folder of a run that holds copies of the trust list and of the
/// signed decisions the run rests on.
pub const APPROVAL_DIR: &str = "approval";

/// The trust list's copy in [`APPROVAL_DIR`].
pub const TRUST_COPY: &str = "trust.yaml";

/// A run's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Manifest {
    /// Schema version ([`MANIFEST_VERSION`]).
    pub manifest_version: u32,
    /// SHA-256 over the manifest's own content (see [`content_digest`]), so
    /// that `letterpress verify` notices an edited manifest.
    #[serde(default)]
    pub manifest_digest: String,
    /// A unique id of this run.
    pub run_id: String,
    /// The engine that produced the run.
    pub engine: Engine,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run finished (RFC 3339, UTC).
    pub finished_at: String,
    /// The date templates saw as today (`YYYY-MM-DD`).
    pub as_of: String,
    /// A review run of a version that is not approved (`--allow-draft`):
    /// nothing in it may go to customers.
    pub draft: bool,
    /// The command line, argument by argument.
    pub command: Vec<String>,
    /// Options that shaped the output.
    pub options: Options,
    /// The layout version used.
    pub layout: LayoutEntry,
    /// The input file.
    pub input: InputEntry,
    /// Counts over all documents.
    pub totals: Totals,
    /// The print files and job ticket (`run --print`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print: Option<PrintOutput>,
    /// The shard of the input this run rendered (`run --shard K/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// A merged run (`letterpress manifest merge`): the shard manifests and
    /// journals it was merged from, with their hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<FileEntry>,
    /// The suppression list's entries that matched no record of the input
    /// (`run --suppress`): often a typo that leaves a customer contacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_suppressions: Vec<Unmatched>,
    /// Earlier attempts this run resumed from (`run --resume`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<Resumed>,
    /// The document entries: one per record and channel, in input order (a
    /// print run: the records without a letter, then the letters in
    /// mailing order), one JSON object a line in this file (see
    /// [`crate::manifest::journal`]).
    pub documents: DocumentsFile,
    /// The record of the purge that deleted the run's documents after their
    /// retention time (`letterpress purge`), with its SHA-256; the manifest
    /// was sealed again then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<FileEntry>,
}

/// A part of the input rendered on its own (`run --shard K/N`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Shard {
    /// This shard, from 1.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Whether a record with this id (or, without a usable id, this input
    /// position) belongs to the shard: the first 8 bytes of the SHA-256 of
    /// the id, as a big-endian number, modulo `count`, equal `index - 1`.
    /// Stable across machines and versions, so N machines split one input
    /// into N disjoint parts without talking to each other.
    pub fn owns(&self, id: Option<&str>, index: usize) -> bool {
        let key = match id {
            Some(id) => id.to_owned(),
            None => format!("#{index}"),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let n = u64::from_be_bytes(digest.as_ref()[..8].try_into().expect("8 bytes"));
        n % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The folder of the shard's manifest and journal inside the run folder.
    pub fn folder(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: write K/N with 1 <= K <= N, e.g. 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// An interrupted attempt of a run that a later attempt resumed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Resumed {
    /// When the resuming attempt started (RFC 3339).
    pub at: String,
    /// Records whose entries and files were kept from before.
    pub kept_records: usize,
    /// Why the journal was cut before its end, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
}

/// Name and version of the engine.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Engine {
    /// Always `letterpress`.
    pub name: String,
    /// The engine's version.
    pub version: String,
}

impl Engine {
    /// This engine.
    pub fn current() -> Engine {
        Engine {
            name: "letterpress".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Options of the run that shape its output.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Options {
    /// PDF standards asked for (`a-2b`, `ua-1`); tagged PDF is always on.
    pub pdf_standards: Vec<String>,
    /// Number of rendering workers (does not change any output byte).
    pub jobs: usize,
    /// The channels the run rendered, in order.
    pub channels: Vec<String>,
    /// The suppression list, if one was given: path, SHA-256 and entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<SuppressEntry>,
    /// The per-record time limit in seconds (`--doc-timeout`).
    #[serde(default)]
    pub doc_timeout_seconds: f64,
    /// Whether print files were made (`--print`).
    #[serde(default)]
    pub print: bool,
    /// The presort sequence file, if one set the mailing order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// Whether the letters of a household were combined (`--household`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub household: bool,
    /// The print shop's file the print files were made for
    /// (`--print-shop`), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_shop: Option<String>,
    /// The contact history routing followed (`--contacts`), its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<String>,
    /// The id of the address key its postal addresses were hashed with
    /// (`--address-key`; the id, never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_key: Option<String>,
    /// The layouts folder, as given (`--layouts`, `LETTERPRESS_LAYOUTS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layouts: Option<String>,
    /// The folder the run ran in: relative paths of the manifest (input,
    /// layouts, suppression list, sequence file) are relative to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// The suppression list a run used.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuppressEntry {
    /// The path as given.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Number of record ids and addresses on it.
    pub entries: usize,
}

/// The layout version a run used.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LayoutEntry {
    /// Layout name.
    pub name: String,
    /// Layout version.
    pub version: u32,
    /// Its status when the run started.
    pub status: String,
    /// Its title.
    pub title: String,
    /// SHA-256 over the version folder (see `layout` module docs).
    pub digest: String,
    /// The signed decisions the run rests on.
    pub approval: Option<ApprovalEntry>,
    /// When the version is in effect: `always`, `from D`, `until D`, `from D until D`.
    pub effective: String,
}

/// The signed decisions that let the layout version run, as the run found
/// them. Copies of the trust list and of these records, with their
/// signatures, are in the run's `approval/` folder, so that the approval
/// can be checked from the run folder alone.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalEntry {
    /// Where the version stood, in words (for a draft run, why it was not
    /// approved).
    pub standing: String,
    /// Its latest submission for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<DecisionEntry>,
    /// The approvals that met the layout's policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<DecisionEntry>,
    /// The first day the approval covers (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The layout digest that was submitted and approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Whether the files were the approved ones (false only in a draft run).
    pub files_match: bool,
    /// The last record of the layout's chain of decisions when the run
    /// started: `verify` checks that the chain still holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_head: Option<ChainHead>,
    /// The trust list the decisions were checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustEntry>,
}

/// One signed decision a run rests on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct DecisionEntry {
    /// Its file, in the layout's `decisions/` folder and in the run's
    /// `approval/` folder.
    pub record: String,
    /// SHA-256 of the record file.
    pub sha256: String,
    /// SHA-256 of its signature file.
    pub signature_sha256: String,
    /// The signer's name.
    pub by: String,
    /// The signer's id in the trust list.
    pub id: String,
    /// The role they decided in.
    pub role: String,
    /// When they signed (RFC 3339, UTC).
    pub at: String,
    /// The fingerprint of the key that signed.
    pub key: String,
}

/// A record of a layout's chain of decisions: its number and SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ChainHead {
    /// The record's number.
    pub seq: u32,
    /// SHA-256 of its file.
    pub sha256: String,
}

/// The trust list a run checked decisions against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct TrustEntry {
    /// Its path, as given (or `trust.yaml`).
    pub path: String,
    /// SHA-256 of the file (of its copy in `approval/trust.yaml` too).
    pub sha256: String,
    /// Whether it was the demonstration list, whose private keys are public.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub demo: bool,
}

/// The input data file of a run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InputEntry {
    /// The path as given on the command line.
    pub path: String,
    /// `csv`, `json`, `jsonl`, `xml`, `fixed` or `postgresql`.
    pub format: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Number of records.
    pub records: usize,
    /// The query whose rows were read (a database input); `sha256` is then
    /// the digest of the rows, each as canonical JSON and a line end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The sender's control total the count was checked against
    /// (`--expect-records`); a fixed-width file's trailer totals are
    /// checked whenever its layout has a trailer, or the run would not
    /// have started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_records: Option<usize>,
}

/// Counts that reconcile: for every channel, `records = rendered + failed +
/// suppressed + routed_elsewhere + held`; over all channels, `documents` is
/// that same sum.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Totals {
    /// Input records.
    pub records: usize,
    /// Document entries: one per record and channel.
    pub documents: usize,
    /// Entries rendered to files.
    pub rendered: usize,
    /// Entries that failed.
    pub failed: usize,
    /// Entries withheld by the suppression list.
    pub suppressed: usize,
    /// Entries of channels the record was not routed to (its contact
    /// preference, or a fallback to print): the customer is reached on
    /// another channel.
    #[serde(default)]
    pub routed_elsewhere: usize,
    /// Letters held: mail to their postal address came back (the contact
    /// history).
    #[serde(default)]
    pub held: usize,
    /// Pages over all rendered PDFs.
    pub pages: usize,
    /// Bytes over all rendered documents (PDF files and `.eml` files).
    pub bytes: u64,
    /// The same counts per channel.
    pub channels: BTreeMap<String, ChannelTotals>,
}

/// Counts of one channel: `records = rendered + failed + suppressed +
/// routed_elsewhere + held`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ChannelTotals {
    /// Records (one entry each).
    pub records: usize,
    /// Rendered.
    pub rendered: usize,
    /// Failed.
    pub failed: usize,
    /// Withheld by the suppression list.
    pub suppressed: usize,
    /// Routed to another channel.
    #[serde(default)]
    pub routed_elsewhere: usize,
    /// Held (letters to an address whose mail came back).
    #[serde(default)]
    pub held: usize,
    /// Pages (PDF only).
    pub pages: usize,
    /// Bytes of the documents' main files.
    pub bytes: u64,
}

/// One record's outcome on one channel.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    /// Position of the record in the input, from 0.
    pub index: usize,
    /// The line of the input where the record starts.
    pub line: u64,
    /// The record id, when the record had a readable one.
    pub record_id: Option<String>,
    /// The output channel: `pdf` or `email`.
    pub channel: String,
    /// The locale the document was rendered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// A letter's format (`standard`, `large-print`), when its layout
    /// reads the customer's accessibility preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LetterFormat>,
    /// Email: the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Email: the subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Email: the Message-ID (without angle brackets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The file, relative to the output folder.
    pub path: Option<String>,
    /// SHA-256 of the file.
    pub sha256: Option<String>,
    /// File size in bytes (0 when failed).
    pub bytes: u64,
    /// Page count (0 when failed).
    pub pages: usize,
    /// Rendered, failed, suppressed or routed elsewhere.
    pub status: DocStatus,
    /// Why the record failed, was suppressed or was routed elsewhere, or null.
    pub error: Option<String>,
    /// A remark on a rendered document, e.g. that a letter is the fallback
    /// for an email that could not be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A letter's postal address as the contact history keys it (a hash,
    /// not the address), in runs with `--contacts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal: Option<String>,
    /// An email's attachment, when the layout attaches the letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentEntry>,
    /// Further files of the document (the `.html` and `.txt` parts of an
    /// email), each with its hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// The mail piece this letter became (`run --print`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece: Option<Piece>,
}

impl Document {
    /// An entry without a file: `status` is why there is none.
    fn without_file(
        index: usize,
        line: u64,
        record_id: Option<&str>,
        channel: Channel,
        status: DocStatus,
        why: String,
    ) -> Document {
        Document {
            index,
            line,
            record_id: record_id.map(str::to_owned),
            channel: channel.name().into(),
            locale: None,
            format: None,
            to: None,
            subject: None,
            message_id: None,
            path: None,
            sha256: None,
            bytes: 0,
            pages: 0,
            status,
            error: Some(why),
            note: None,
            postal: None,
            attachment: None,
            files: Vec::new(),
            piece: None,
        }
    }

    /// Who a failure is about, as its `error` starts: `record C-1 (line
    /// 3)`, or `record at line 3` for a record without a readable id.
    pub fn who(record_id: Option<&str>, line: u64) -> String {
        match record_id {
            Some(id) => format!("record {id} (line {line})"),
            None => format!("record at line {line}"),
        }
    }

    /// A failed entry: its `error` says who it is about and the `reason`
    /// (`record C-1 (line 3): field \`x\`: required but missing`).
    pub fn failed(
        index: usize,
        line: u64,
        record_id: Option<&str>,
        channel: Channel,
        reason: &str,
    ) -> Document {
        let why = format!("{}: {reason}", Document::who(record_id, line));
        Document::without_file(index, line, record_id, channel, DocStatus::Failed, why)
    }

    /// An entry that renders nothing on purpose (`suppressed`,
    /// `routed_elsewhere`), with why.
    pub fn skipped(
        index: usize,
        line: u64,
        record_id: Option<&str>,
        channel: Channel,
        status: DocStatus,
        why: &str,
    ) -> Document {
        Document::without_file(index, line, record_id, channel, status, why.to_owned())
    }

    /// A rendered entry for its main file.
    pub fn rendered(
        index: usize,
        line: u64,
        record_id: &str,
        channel: Channel,
        locale: &str,
        file: FileEntry,
    ) -> Document {
        Document {
            index,
            line,
            record_id: Some(record_id.to_owned()),
            channel: channel.name().into(),
            locale: Some(locale.to_owned()),
            format: None,
            to: None,
            subject: None,
            message_id: None,
            sha256: Some(file.sha256),
            bytes: file.bytes,
            path: Some(file.path),
            pages: 0,
            status: DocStatus::Rendered,
            error: None,
            note: None,
            postal: None,
            attachment: None,
            files: Vec::new(),
            piece: None,
        }
    }

    /// Every file of the document as recorded: its main file (when it has
    /// one), then its parts.
    pub fn all_files(&self) -> Vec<FileEntry> {
        let main = self.path.as_ref().map(|path| FileEntry {
            path: path.clone(),
            sha256: self.sha256.clone().unwrap_or_default(),
            bytes: self.bytes,
        });
        main.into_iter().chain(self.files.iter().cloned()).collect()
    }

    /// The reason of a failed entry without who it is about, which failures
    /// with the same cause share (the report groups by it): the `error`
    /// less exactly the prefix [`Document::failed`] wrote.
    pub fn reason(&self) -> &str {
        let error = self.error.as_deref().unwrap_or("");
        let who = Document::who(self.record_id.as_deref(), self.line);
        error
            .strip_prefix(who.as_str())
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(error)
    }
}

/// The digest of a manifest's content: SHA-256 of its compact JSON with the
/// `manifest_digest` key left out (keys in the order they are written).
/// This catches an edited manifest; it is not a signature: whoever can
/// write the file can also recompute it.
pub fn content_digest(manifest: &serde_json::Value) -> String {
    let mut copy = manifest.clone();
    if let Some(obj) = copy.as_object_mut() {
        obj.shift_remove("manifest_digest");
    }
    crate::util::digest::sha256_hex(&serde_json::to_vec(&copy).expect("JSON serializes"))
}

impl Manifest {
    /// Fills [`Manifest::manifest_digest`] and returns the pretty JSON to write.
    pub fn seal(&mut self) -> Vec<u8> {
        self.manifest_digest = String::new();
        let value = serde_json::to_value(&*self).expect("manifest serializes");
        self.manifest_digest = content_digest(&value);
        let mut json = serde_json::to_vec_pretty(&*self).expect("manifest serializes");
        json.push(b'\n');
        json
    }
}

/// The journal file as the manifest records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct DocumentsFile {
    /// Relative to the manifest's folder.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Number of entries (lines).
    pub entries: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// The letter attached to an email, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttachmentEntry {
    /// Its file name in the email.
    pub name: String,
    /// SHA-256 of the attached bytes (as decoded from the `.eml`).
    pub sha256: String,
    /// Their size.
    pub bytes: u64,
    /// Whether it is password protected (the password is never recorded).
    pub encrypted: bool,
    /// The letter entry of the same record (its `path`), when the run
    /// rendered one on the pdf channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<String>,
}

/// A suppression list entry that matched no record of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unmatched {
    /// Its line in the list.
    pub line: usize,
    /// The entry as normalised (NFC; an address in lower case).
    pub entry: String,
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {})", self.entry, self.line)
    }
}

/// A document served on demand (`letterpress serve`), as its day's journal
/// (`on-demand/DAY/documents.jsonl`, a chained log) records it: a run's
/// document entry (`index` counts the day's documents from 0, `line` is 1)
/// and who asked for it, when, made with which layout version for which
/// day. The document itself is not kept: its SHA-256 is.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServedEntry {
    /// The document's entry, as a run's journal has it.
    #[serde(flatten)]
    pub document: Document,
    /// When it was served (RFC 3339, UTC).
    pub served_at: String,
    /// The name of the token that asked for it.
    pub client: String,
    /// The request's id (the `Letterpress-Request` header).
    pub request_id: String,
    /// The layout version, `NAME@N`.
    pub layout: String,
    /// The digest of the layout version's files.
    pub layout_digest: String,
    /// The day it was made for.
    pub as_of: String,
}
