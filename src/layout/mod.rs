//! Stage 2: layout versions. Finding them ([`catalog`]), reading a
//! version's files and digest ([`files`]), approving them and telling
//! whether their files are still the approved ones ([`approval`]), the
//! formats of each locale ([`locale`]) and a layout's wording ([`texts`]),
//! and writing a new one ([`scaffold`]). Above [`crate::model`] and
//! [`crate::util`]; nothing here knows a record.

pub mod approval;
pub mod catalog;
pub mod files;
pub mod locale;
pub mod scaffold;
pub mod texts;
