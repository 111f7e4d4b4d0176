//! The commands as library calls, one module (or folder) each, for the CLI
//! and any program that schedules letters: [`run`] a batch, [`validate`]
//! its data first, [`verify`] a finished run, [`send`] its emails,
//! [`merge`] the shards of a run, [`reprint`] print pieces, [`reconcile`]
//! them with the inserter's results, [`proof`] and
//! [`diff`] for reviewers, [`layouts`] to list, check, show and approve
//! layout versions, and for the document service [`ondemand`] (one
//! record's document now) and [`jobs`] (batch jobs handed over by another
//! program). Each takes an options struct with documented defaults and
//! returns a report; none prints. The top of the library.

pub mod diff;
pub mod feedback;
pub mod jobs;
pub mod layouts;
pub mod merge;
pub mod ondemand;
pub mod proof;
pub mod purge;
pub mod reconcile;
pub mod release;
pub mod reprint;
pub mod review;
pub mod run;
pub mod send;
pub mod synth;
pub mod validate;
pub mod verify;
