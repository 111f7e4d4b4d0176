//! The vocabulary: plain serde types every stage shares (the words of a
//! run, `layout.yaml`, decision records and the trust list, the print
//! settings and the manifest), at the bottom of the data path above [`crate::util`]. Types
//! live here, behaviour in the stages that use them.

pub mod approval;
pub mod decision;
pub mod file;
pub mod layout;
pub mod manifest;
pub mod print;
pub mod release;
pub mod vocab;
