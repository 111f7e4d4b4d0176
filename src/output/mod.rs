//! Stage 4: what leaves the engine. Safe and unique [`file_names`], the
//! [`documents`] of a record written atomically, [`print`] files in mailing
//! order with their job ticket and inserter marks, and email [`delivery`]
//! over SMTP. Above [`crate::render`].

pub mod delivery;
pub mod documents;
pub mod file_names;
pub mod print;
