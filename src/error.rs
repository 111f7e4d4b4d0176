//! Errors that stop a whole command, and the exit codes they map to.
//!
//! A problem with one record is never an [`Error`]: it becomes a failed
//! document in the manifest and the run goes on. An [`Error`] means the command
//! could not do its job at all (bad usage, a broken layout, unreadable input),
//! and it is raised before anything is written.

use std::path::{Path, PathBuf};

/// Exit code: everything asked for was done.
pub const EXIT_OK: i32 = 0;
/// Exit code: the command finished but some records failed (or were invalid).
pub const EXIT_PARTIAL: i32 = 1;
/// Exit code: nothing was done because of a usage, layout or input error.
pub const EXIT_ERROR: i32 = 2;

/// A reason for a command to stop before doing any work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible or contradictory.
    #[error("{0}")]
    Usage(String),
    /// A layout cannot be found, read or compiled.
    #[error("layout error: {0}")]
    Layout(String),
    /// The input data file cannot be read as a whole.
    #[error("input error: {0}")]
    Input(String),
    /// The output directory cannot be used.
    #[error("output error: {0}")]
    Output(String),
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The process exit code for this error. Every [`Error`] stops a command
    /// before it wrote anything, so this is always [`EXIT_ERROR`].
    pub fn exit_code(&self) -> i32 {
        EXIT_ERROR
    }
}

/// Result type of the library's whole-command operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
