//! The audit manifest of a run: what was sent to whom, from which layout
//! version, and the hash of every file.
//!
//! Stage 5 of the data path. The schema is documented in `docs/manifest.md`;
//! [`MANIFEST_VERSION`] changes whenever a field changes meaning or goes away.

use serde::{Deserialize, Serialize};

/// The manifest schema version.
pub const MANIFEST_VERSION: u32 = 1;

/// The file name of the manifest in a run's output folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A run's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version ([`MANIFEST_VERSION`]).
    pub manifest_version: u32,
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
    /// One entry per input record, in input order.
    pub documents: Vec<Document>,
}

/// Name and version of the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// PDF standards asked for (`a-2b`, `ua-1`); tagged PDF is always on.
    pub pdf_standards: Vec<String>,
    /// Number of rendering workers (does not change any output byte).
    pub jobs: usize,
}

/// The layout version a run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

/// The input data file of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputEntry {
    /// The path as given on the command line.
    pub path: String,
    /// `csv`, `json` or `jsonl`.
    pub format: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Number of records.
    pub records: usize,
}

/// Counts that reconcile: `records = rendered + failed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Input records.
    pub records: usize,
    /// Records rendered to a file.
    pub rendered: usize,
    /// Records that failed.
    pub failed: usize,
    /// Pages over all rendered documents.
    pub pages: usize,
    /// Bytes over all rendered documents.
    pub bytes: u64,
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// The document was rendered and written.
    Rendered,
    /// The record failed; `error` says why.
    Failed,
}

/// One record's outcome on one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// Position of the record in the input, from 0.
    pub index: usize,
    /// The line of the input where the record starts.
    pub line: u64,
    /// The record id, when the record had a readable one.
    pub record_id: Option<String>,
    /// The output channel: `pdf`.
    pub channel: String,
    /// The file, relative to the output folder.
    pub path: Option<String>,
    /// SHA-256 of the file.
    pub sha256: Option<String>,
    /// File size in bytes (0 when failed).
    pub bytes: u64,
    /// Page count (0 when failed).
    pub pages: usize,
    /// Rendered or failed.
    pub status: DocStatus,
    /// Why the record failed, or null.
    pub error: Option<String>,
}

impl Totals {
    /// Adds up the documents.
    pub fn of(documents: &[Document]) -> Totals {
        let mut t = Totals {
            records: documents.len(),
            ..Totals::default()
        };
        for d in documents {
            match d.status {
                DocStatus::Rendered => t.rendered += 1,
                DocStatus::Failed => t.failed += 1,
            }
            t.pages += d.pages;
            t.bytes += d.bytes;
        }
        t
    }
}
