//! Rendering: a checked record becomes a document.
//!
//! Stage 3 of the data path. [`pdf`] renders letters with Typst in process;
//! [`email`] renders HTML and plain-text emails with Handlebars and packs them
//! into `.eml` files. Both format money, numbers, dates and wording with
//! [`crate::locale`], so a customer reads the same on paper and on screen.

pub mod email;
pub mod pdf;
