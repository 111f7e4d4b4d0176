//! Stage 2, for each record: the schema and the characters of its values
//! ([`schema`], [`values`]), forbidden wording in its data ([`wording`]),
//! its route over the channels and the suppression list ([`route`]), and
//! the checker that does it all in input order for `run` and `validate`
//! alike ([`record`]). Above [`crate::layout`] and [`crate::input`].

pub mod record;
pub mod route;
pub mod schema;
pub mod values;
pub mod wording;
