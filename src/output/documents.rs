//! Writing a record's documents into the output folder: every file written
//! to a temporary file and renamed into place (see [`crate::util::fs`]),
//! with its size and SHA-256 for the manifest.
//!
//! A file that cannot be written is never the record's fault (a full disk,
//! a folder gone or read-only): the error is the environment's, and the
//! run stops on it rather than failing the record.

use std::path::PathBuf;

use crate::model::file::FileEntry;
use crate::util::fs::write_atomic_tagged;

/// Where a run's documents go.
#[derive(Debug, Clone)]
pub struct Place {
    /// The output folder (`--out`).
    pub out: PathBuf,
    /// Tags this run's temporary files (a shard's, in shared folders).
    pub temp_tag: String,
}

impl Place {
    /// Writes `bytes` to `<out>/<rel>` atomically; the file's entry, or the
    /// environment error that stops the run, naming the folder.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<FileEntry, String> {
        let path = self.out.join(rel);
        write_atomic_tagged(&path, bytes, false, &self.temp_tag).map_err(|e| {
            let folder = path.parent().unwrap_or(&self.out);
            format!(
                "the run stopped: cannot write to {} ({e}) while writing {}; no record was failed for it. Fix the folder (space, permissions, mount), then run the same command with --resume",
                folder.display(),
                path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            )
        })?;
        Ok(FileEntry::of(rel, bytes))
    }
}
