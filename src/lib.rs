//! letterpress: a document composition and batch rendering engine for
//! customer communications.
//!
//! The modules follow the data's path, and each imports only from those
//! below it (`tests/it/layering.rs` checks it):
//!
//! ```text
//! util      digests, atomic files, dates, locks, the stop flag
//! model     the vocabulary: layout.yaml, approval.yaml, manifest types
//! input     records from CSV, JSON, JSONL          layout   catalog, files, approval, locale, texts
//!           contacts  the contact history (SQLite): what happened to what was sent
//! check     schema and values, routing, the record checker, wording
//! render    names and addresses, PDF (Typst), email (Handlebars)
//! output    file names, documents, print files, SMTP delivery
//! manifest  the journal, the run folder, the manifest, the report
//! ops       one function per command: run, validate, verify, send, ...
//! ```
//!
//! The `letterpress` binary (`src/cli/`) is a thin shell over [`ops`].

#![warn(missing_docs)]

pub mod check;
pub mod contacts;
pub mod error;
pub mod input;
pub mod layout;
pub mod manifest;
pub mod model;
pub mod ops;
pub mod output;
pub mod render;
pub mod util;

pub use error::{Error, Result};
pub use ops::run::{run, RunOptions, RunReport};
