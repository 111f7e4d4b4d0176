//! The integration tests, one binary (one link) with a module per area.
//! Most drive the real `letterpress` binary on the bundled layouts and
//! fixtures and read what it wrote (PDFs with poppler, `.eml` files with
//! mail-parser, manifests, hashes); `library` calls the library directly,
//! as a scheduler written in Rust would; `layering` checks the direction of
//! the imports in `src/`.

mod common;

mod access;
mod approvals;
mod attach;
mod bad_input;
mod compliance;
mod content;
mod data_in;
mod deploy;
mod edges;
mod email;
mod environment;
mod errors;
mod examples;
mod feedback;
mod household;
mod imb;
mod inserter;
mod layering;
mod lease;
mod library;
mod mailmark;
mod operator;
mod pdfx;
mod pg_server;
mod postgres;
mod print;
mod property;
mod reference;
mod resume;
mod review;
mod run;
mod send;
mod serve;
mod shard;
mod slurm;
mod trust;
mod validate;
mod verify;
