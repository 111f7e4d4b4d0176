//! Stage 2: layout versions. Finding them ([`catalog`]), reading a
//! version's files and digest ([`files`]), who may decide about them
//! ([`trust`]) and their signed decisions: submitted, approved, rejected,
//! revoked, and whether their files are still the submitted ones
//! ([`decisions`]); the formats of each locale ([`locale`]) and a layout's
//! wording ([`texts`]), and writing a new one ([`scaffold`]). Above
//! [`crate::model`] and [`crate::util`]; nothing here knows a record.

pub mod catalog;
pub mod decisions;
pub mod files;
pub mod locale;
pub mod scaffold;
pub mod texts;
pub mod trust;
