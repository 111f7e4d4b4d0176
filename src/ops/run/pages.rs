//! The pages of a print run's letters, kept from the one layout that made
//! each letter's own PDF: a print run renders its letters in mailing order
//! (see [`super::order::Mailing::in_mailing_order`]), and as they come back, in that
//! order, their laid-out pages are exported together, a run of
//! [`crate::output::print::EXPORT_PIECES`] pieces at a time (each font subset once for the run),
//! into a file beside the run's state. The print files then take their
//! pages from those runs instead of laying the letters out a second time.
//! Only one run's pages are held in memory.
//!
//! Which pieces make a run depends on their numbers alone (see
//! [`export_run`]), so a run's bytes are the same however its letters were
//! laid out. The file is written anew by every attempt: a run missing a
//! letter that an earlier attempt rendered (before a stop and `--resume`),
//! or whose export failed, is laid out again whole from the record spool,
//! to the same bytes.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ring::digest::{digest, SHA256};
use typst_layout::PagedDocument;

use crate::error::{Error, Result};
use crate::output::print::export_run;
use crate::render::pdf::Renderer;
use crate::util::fs::remove_if_present;

/// The file of the exported runs, in the run folder while the run lasts.
pub const PAGES_FILE: &str = "print-pages.pdfs";

/// A letter of a print run laid out, on its way to the print files.
pub struct Laid {
    /// Its piece.
    pub sequence: u32,
    /// Its pages.
    pub doc: PagedDocument,
}

/// Exports the letters' pages in runs as they come, in mailing order.
pub struct Exporter<'a> {
    renderer: &'a Renderer,
    out: std::io::BufWriter<File>,
    /// The letters of the run being gathered.
    window: Vec<Laid>,
    kept: Kept,
}

/// An exported run: offset and length in the file, SHA-256 (checked when
/// it is read back: the file is in the run folder, and what is read back
/// may have been changed), pages and letters.
#[derive(Clone, Copy)]
struct Run {
    at: u64,
    len: u32,
    sha256: [u8; 32],
    pages: usize,
    letters: usize,
}

/// The runs exported: for each, where it is in the file, its pages and
/// its letters.
pub struct Kept {
    file: Option<File>,
    path: PathBuf,
    /// By run number: where it is in the file, its pages and letters.
    runs: Vec<Option<Run>>,
    /// Bytes written so far.
    at: u64,
}

impl<'a> Exporter<'a> {
    /// Starts the file, emptying what an earlier attempt left.
    pub fn create(folder: &Path, renderer: &'a Renderer) -> Result<Self> {
        let path = folder.join(PAGES_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let read = file.try_clone().map_err(|e| Error::io(&path, e))?;
        Ok(Exporter {
            renderer,
            out: std::io::BufWriter::new(file),
            window: Vec::new(),
            kept: Kept {
                file: Some(read),
                path,
                runs: Vec::new(),
                at: 0,
            },
        })
    }

    /// Takes the next letter in mailing order; exports the run before it
    /// when the letter starts a new one.
    pub fn take(&mut self, laid: Laid) -> Result<()> {
        let run = export_run(laid.sequence);
        if self
            .window
            .first()
            .is_some_and(|l| export_run(l.sequence) != run)
        {
            self.export()?;
        }
        self.window.push(laid);
        Ok(())
    }

    /// Exports the run gathered so far.
    fn export(&mut self) -> Result<()> {
        let window = std::mem::take(&mut self.window);
        let Some(run) = window.first().map(|l| export_run(l.sequence)) else {
            return Ok(());
        };
        let letters = window.len();
        let pages = window.iter().map(|l| l.doc.pages().len()).sum();
        // These pages exported without fault as each letter's own PDF; if
        // they do not together, the print files lay them out again and
        // report what is wrong then.
        let Ok(pdf) = self
            .renderer
            .export_together(window.into_iter().map(|l| l.doc).collect())
        else {
            return Ok(());
        };
        self.out
            .write_all(&pdf)
            .map_err(|e| Error::io(&self.kept.path, e))?;
        let kept = &mut self.kept;
        if kept.runs.len() <= run {
            kept.runs.resize(run + 1, None);
        }
        let mut sha256 = [0; 32];
        sha256.copy_from_slice(digest(&SHA256, &pdf).as_ref());
        kept.runs[run] = Some(Run {
            at: kept.at,
            len: pdf.len() as u32,
            sha256,
            pages,
            letters,
        });
        kept.at += pdf.len() as u64;
        Ok(())
    }

    /// Exports the last run and hands over where the runs are.
    pub fn finish(mut self) -> Result<Kept> {
        self.export()?;
        self.out
            .flush()
            .map_err(|e| Error::io(&self.kept.path, e))?;
        Ok(self.kept)
    }
}

impl Kept {
    /// Nothing kept: every run is laid out again.
    pub fn none() -> Kept {
        Kept {
            file: None,
            path: PathBuf::new(),
            runs: Vec::new(),
            at: 0,
        }
    }

    /// Run `run`'s page and letter counts, when it was exported.
    pub fn counts(&self, run: usize) -> Option<(usize, usize)> {
        self.runs
            .get(run)
            .copied()
            .flatten()
            .map(|r| (r.pages, r.letters))
    }

    /// The PDF of run `run`.
    pub fn read(&self, run: usize) -> std::result::Result<Vec<u8>, String> {
        let (file, r) = self
            .file
            .as_ref()
            .zip(self.runs.get(run).copied().flatten())
            .ok_or_else(|| format!("{PAGES_FILE}: no run {run}"))?;
        let mut pdf = vec![0; r.len as usize];
        file.read_exact_at(&mut pdf, r.at)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if digest(&SHA256, &pdf).as_ref() != r.sha256 {
            return Err(format!(
                "{}: the pages of run {} are not the ones the run wrote (the file was changed while the run went on); start the run again",
                self.path.display(),
                run + 1
            ));
        }
        Ok(pdf)
    }

    /// Removes the file (the print files are made).
    pub fn remove(self) -> Result<()> {
        drop(self.file);
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        remove_if_present(&self.path).map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_changed_after_it_was_written_is_refused() {
        let dir = std::env::temp_dir().join(format!("lp-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(PAGES_FILE);
        let pdf = b"%PDF-1.7 a run of pages".to_vec();
        std::fs::write(&path, &pdf).unwrap();
        let mut sha256 = [0; 32];
        sha256.copy_from_slice(digest(&SHA256, &pdf).as_ref());
        let run = Run {
            at: 0,
            len: pdf.len() as u32,
            sha256,
            pages: 1,
            letters: 1,
        };
        let kept = |file| Kept {
            file: Some(file),
            path: path.clone(),
            runs: vec![None, Some(run)],
            at: pdf.len() as u64,
        };
        let k = kept(File::open(&path).unwrap());
        assert_eq!(k.read(1).unwrap(), pdf);
        assert_eq!(k.counts(1), Some((1, 1)));
        assert!(k.read(0).is_err() && k.counts(0).is_none());
        std::fs::write(&path, b"%PDF-1.7 a run of pagez").unwrap();
        let k = kept(File::open(&path).unwrap());
        let why = k.read(1).unwrap_err();
        assert!(why.contains("not the ones the run wrote"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
