//! Errors that stop a whole command, and the exit codes they map to.
//!
//! A problem with one record is never an [`Error`]: it becomes a failed
//! document in the manifest and the run goes on. An [`Error`] means the
//! command could not do its job: bad usage, a broken layout or unreadable
//! input, found before anything is written; or, once a run writes, the
//! environment ([`Error::Environment`]: a disk that is full or became
//! read-only, a folder that cannot be written) or a signal
//! ([`Error::Stopped`]). Those two stop the run cleanly: every record in
//! the journal is complete, the rest is left for `run --resume`, and no
//! record is failed for what is not its fault.

use std::path::{Path, PathBuf};

/// Exit code: everything asked for was done.
pub const EXIT_OK: i32 = 0;
/// Exit code: the command finished but some records failed (or were invalid).
pub const EXIT_PARTIAL: i32 = 1;
/// Exit code: nothing was done because of a usage, layout or input error,
/// or the environment stopped a run (see [`Error::Environment`]).
pub const EXIT_ERROR: i32 = 2;

/// Exit code of a command stopped by a signal: 128 + the signal's number,
/// the shell's convention (130 for SIGINT, 143 for SIGTERM).
pub fn exit_signal(signal: i32) -> i32 {
    128 + signal
}

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
    /// The environment stopped a run that had started writing: an output
    /// file or the journal could not be written. The message names the
    /// folder and the error; the records not yet in the journal are left
    /// for `run --resume`, none is failed.
    #[error("{0}")]
    Environment(String),
    /// A signal (SIGTERM, SIGINT) stopped the command between records.
    #[error("{message}")]
    Stopped {
        /// The signal's number.
        signal: i32,
        /// One line: what was done, and how to go on.
        message: String,
    },
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

    /// The process exit code for this error: [`exit_signal`] for a
    /// command stopped by a signal, else [`EXIT_ERROR`].
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Stopped { signal, .. } => exit_signal(*signal),
            _ => EXIT_ERROR,
        }
    }
}

/// Result type of the library's whole-command operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
