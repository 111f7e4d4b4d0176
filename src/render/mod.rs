//! Rendering: a checked record becomes a document.
//!
//! Stage 3 of the data path. [`pdf`] renders letters with Typst in process.
//! (The email channel will live beside it.)

pub mod pdf;
