//! A file a run wrote, as the manifest and the print records name it:
//! its path, SHA-256 and size. Below [`crate::model::manifest`] and
//! [`crate::model::print`], which both list files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::util::digest::sha256_hex;
use crate::util::fs::{check_file, FileProblem};

/// A file that belongs to a document, a print run or a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEntry {
    /// Relative to the output folder.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

impl FileEntry {
    /// The entry of `data`, written at `path`.
    pub fn of(path: impl Into<String>, data: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            sha256: sha256_hex(data),
            bytes: data.len() as u64,
        }
    }

    /// Checks the file under `root` against this entry; a path that would
    /// leave `root` (see [`crate::util::fs::check_relative`]) is unreadable.
    pub fn check(&self, root: &Path) -> Result<(), FileProblem> {
        check_file(root, &self.path, &self.sha256, self.bytes)
    }
}
