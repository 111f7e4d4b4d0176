//! The rows ledger of a run that reads a database: the SHA-256 of every row
//! as the run read it, 32 bytes a row at the row's position, in
//! `rows.sha256` beside the run's state.
//!
//! A database is not a file: between an interrupted run and its resume,
//! rows may change. A resume reads the query again; every row the first
//! attempt already rendered must be what it was, or the resume stops,
//! naming the first row that changed and its record, before anything more
//! is rendered (the letters already made would no longer match their
//! data). Rows not yet rendered may have changed: they are rendered as they
//! are now. The ledger is written a row at a time, before the row goes to
//! the workers, so it always covers what the journal holds. It goes when the
//! run has finished.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ring::digest::{digest, SHA256};

use crate::error::{Error, Result};
use crate::input::RawRecord;
use crate::manifest::journal::Done;

/// The ledger's file name.
pub const ROWS_FILE: &str = "rows.sha256";

/// The ledger of one run.
pub struct Ledger {
    file: File,
    path: PathBuf,
    done: Option<Done>,
    id_field: String,
}

impl Ledger {
    /// Opens the ledger in `folder`: a new one, or on a resume the one of
    /// the attempts before, cut after the last row done (rows before it
    /// that are not done are entered again as they are read).
    pub fn open(folder: &Path, done: Option<&Done>, id_field: &str) -> Result<Ledger> {
        let path = folder.join(ROWS_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(done.is_none())
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let keep = done.and_then(Done::last).map_or(0, |d| (d as u64 + 1) * 32);
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len < keep {
            return Err(Error::Output(format!(
                "{}: holds {} rows, but the journal has {} done: the ledger of the rows read was cut, so a resume cannot check they are unchanged; start a new --out folder",
                path.display(),
                len / 32,
                keep / 32
            )));
        }
        file.set_len(keep).map_err(|e| Error::io(&path, e))?;
        Ok(Ledger {
            file,
            path,
            done: done.cloned(),
            id_field: id_field.to_owned(),
        })
    }

    /// Removes the ledger of a finished run (there is nothing left to
    /// resume); a run of a file has none.
    pub fn remove(folder: &Path) -> Result<()> {
        let path = folder.join(ROWS_FILE);
        crate::util::fs::remove_if_present(&path).map_err(|e| Error::io(&path, e))
    }

    /// Checks a row already rendered against the ledger, or enters a new
    /// one.
    pub fn check(&mut self, raw: &RawRecord) -> Result<()> {
        let bytes = match &raw.data {
            Ok(map) => serde_json::to_vec(map).expect("a record serializes"),
            Err(e) => e.clone().into_bytes(),
        };
        let now = digest(&SHA256, &bytes);
        let at = raw.index as u64 * 32;
        if self.done.as_ref().is_some_and(|d| d.contains(raw.index)) {
            let mut was = [0u8; 32];
            self.file
                .read_exact_at(&mut was, at)
                .map_err(|e| Error::io(&self.path, e))?;
            if was != now.as_ref() {
                return Err(Error::Input(self.changed(raw)));
            }
            return Ok(());
        }
        self.file
            .write_all_at(now.as_ref(), at)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn changed(&self, raw: &RawRecord) -> String {
        let id = raw
            .data
            .as_ref()
            .ok()
            .and_then(|m| m.get(&self.id_field))
            .map_or("(no id)".to_owned(), |v| {
                v.as_str().map_or(v.to_string(), str::to_owned)
            });
        format!(
            "row {} (record {id}) has changed in the database since the interrupted run rendered it: its letters no longer match its data, so the run does not go on. Start a new --out folder to render the rows as they are now",
            raw.line
        )
    }
}
