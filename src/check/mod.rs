//! Stage 2, for each record: the schema and the characters of its values
//! ([`schema`], [`values`]), forbidden wording in its data ([`wording`]),
//! its route over the channels and the suppression list ([`route`]), and
//! the checker that does it all in input order for `run` and `validate`
//! alike ([`record`]), and the one rule for links that every channel's
//! renderer applies to what it rendered ([`links`]). Above
//! [`crate::layout`] and [`crate::input`].

pub mod links;
pub mod record;
pub mod route;
pub mod schema;
pub mod values;
pub mod wording;
