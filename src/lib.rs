//! letterpress: a document composition and batch rendering engine for
//! customer communications.
//!
//! Modules follow the data's path through a run:
//!
//! 1. [`input`]: stream records from CSV, JSON or JSONL;
//! 2. [`layout`] and [`schema`]: find the versioned layout and check each
//!    record against its field schema; [`route`]: pick the record's channels;
//! 3. [`render`]: render a record to a PDF letter with Typst and to an email
//!    with Handlebars, both formatting by the record's [`locale`];
//! 4. [`output`]: write files atomically under safe names;
//! 5. [`manifest`]: record what was produced, for audit.
//!
//! [`run`] ties them together and is what the `letterpress` binary calls;
//! [`send`] delivers a finished run's emails over SMTP, [`verify`] checks
//! a finished run, and [`approval`] keeps layout versions as approved.

#![warn(missing_docs)]

pub mod approval;
pub mod clock;
pub mod diff;
pub mod error;
pub mod imb;
pub mod input;
pub mod journal;
pub mod layout;
pub mod locale;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod names;
pub mod output;
pub mod print;
pub mod progress;
pub mod proof;
pub mod render;
pub mod report;
pub mod route;
pub mod run;
pub mod scaffold;
pub mod schema;
pub mod send;
pub mod stop;
pub mod synth;
pub mod values;
pub mod verify;
pub mod wording;

pub use error::{Error, Result};
