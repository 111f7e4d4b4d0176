//! `approval.yaml`: the unsigned approval record of letterpress before
//! signed decisions ([`crate::model::decision`]). A version folder that
//! still holds one is refused with a message that says how to have it
//! approved again; the file is left out of the layout digest, so the
//! version can be submitted as it is.

/// The old approval record's file name in a version folder.
pub const APPROVAL_FILE: &str = "approval.yaml";
