//! Stage 3: one checked record to documents, in memory. [`pdf`] renders a
//! letter with Typst in process, [`email`] an email with Handlebars; both
//! format money, numbers and dates by the record's locale
//! ([`crate::layout::locale`]), take sentences from the layout's texts, and
//! get the recipient's name and address block from [`names`]. Nothing here
//! writes a file.

pub mod email;
pub mod names;
pub mod pdf;
