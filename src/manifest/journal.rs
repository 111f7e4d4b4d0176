//! The run's journal: `documents.jsonl`, one manifest entry per line, in
//! input order, written while the run goes; and the state file that lets a
//! killed run resume.
//!
//! Part of stage 5 of the data path ([`crate::manifest`] holds the entry
//! types). Workers finish records out of order; the run hands their entries
//! to [`Journal::append`] in the order it read them (a small reorder
//! window): input order, but for a print run, which takes its letters last,
//! in mailing order (see [`crate::ops::run::order::in_mailing_order`]), after
//! each entry's files were written atomically. Lines are buffered and made
//! durable in batches: at most every [`SYNC_EVERY`], the file system holding
//! the output is synced first (`syncfs`, so the documents' own bytes are on
//! disk), then the journal. A crash therefore loses at most the last batch of
//! entries, never an entry whose file is missing.
//!
//! `run --resume` reads the journal back ([`Journal::reopen`]): it keeps the
//! longest prefix of complete records (every channel's entry present, each
//! line whole and parseable, every file present with its recorded size and
//! SHA-256), cuts the file there and appends from the next record; the
//! records it holds are done ([`Done`]), in whatever order they came.
//! Because entries come in an order fixed by the input (and the mailing
//! order) and each line depends only on its record, the journal of a
//! resumed run is byte for byte that of an uninterrupted one.
//!
//! The document entries stream: the run never holds them all, so a run of
//! ten million records needs no more memory than one of ten thousand; the
//! manifest holds the header, totals and the journal's SHA-256.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::manifest::{Document, DocumentsFile, Totals};
use crate::model::vocab::DocStatus;
use crate::util::digest::hex;
use crate::util::fs::{commit, temp_path, FileProblem};
use crate::util::jsonl;

/// The journal's file name, in the run's folder.
pub const DOCUMENTS_FILE: &str = "documents.jsonl";

/// How often the journal is made durable.
pub const SYNC_EVERY: Duration = Duration::from_millis(1000);

/// How many failure reasons a run keeps for its summary.
const FAILURES_KEPT: usize = 10;

/// Running counts over entries in input order.
#[derive(Debug, Default)]
pub struct Tally {
    /// The totals so far.
    pub totals: Totals,
    /// The first few failure reasons, for a summary.
    pub failures: Vec<String>,
    last: Option<usize>,
}

impl Tally {
    /// Counts one entry (entries of a record come together).
    pub fn add(&mut self, d: &Document) {
        let t = &mut self.totals;
        t.documents += 1;
        if self.last != Some(d.index) {
            t.records += 1;
            self.last = Some(d.index);
        }
        let c = t.channels.entry(d.channel.clone()).or_default();
        c.records += 1;
        match d.status {
            DocStatus::Rendered => (t.rendered += 1, c.rendered += 1),
            DocStatus::Failed => (t.failed += 1, c.failed += 1),
            DocStatus::Suppressed => (t.suppressed += 1, c.suppressed += 1),
            DocStatus::RoutedElsewhere => (t.routed_elsewhere += 1, c.routed_elsewhere += 1),
            DocStatus::Held => (t.held += 1, c.held += 1),
        };
        t.pages += d.pages;
        t.bytes += d.bytes;
        c.pages += d.pages;
        c.bytes += d.bytes;
        if d.status == DocStatus::Failed && self.failures.len() < FAILURES_KEPT {
            self.failures.extend(d.error.clone());
        }
    }
}

/// Writes entries as JSON lines and keeps the file's manifest entry (hash,
/// count, size) as it goes: the one place entries are serialized, used by
/// the run's journal, its rewrite after printing, and `manifest merge`.
pub struct Lines {
    path: PathBuf,
    out: jsonl::Writer,
}

impl Lines {
    /// Writes to `file` (at its current position), which is `path`.
    pub fn new(path: PathBuf, file: File) -> Lines {
        Lines {
            path,
            out: jsonl::Writer::new(file),
        }
    }

    /// Creates (or truncates) the file `path`.
    pub fn create(path: PathBuf) -> Result<Lines> {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Lines::new(path, file))
    }

    /// Appends one entry.
    pub fn push(&mut self, d: &Document) -> Result<()> {
        self.out.push(d).map_err(|e| Error::io(&self.path, e))
    }

    /// Writes out what is buffered and forces it to disk.
    fn sync(&mut self) -> Result<()> {
        self.out.sync().map_err(|e| Error::io(&self.path, e))
    }

    /// Syncs the file and returns its manifest entry.
    pub fn finish(mut self) -> Result<DocumentsFile> {
        self.sync()?;
        Ok(DocumentsFile {
            path: DOCUMENTS_FILE.into(),
            sha256: self.out.sha256(),
            entries: self.out.lines(),
            bytes: self.out.bytes(),
        })
    }
}

/// The journal of a running run.
pub struct Journal {
    lines: Lines,
    /// The output folder, synced before the journal.
    root: File,
    tally: Tally,
    synced: Instant,
    dirty: bool,
}

/// The input positions of the records a journal holds: a bit a record, in
/// whatever order they were written (a print run writes its letters in
/// mailing order, after the records without one).
#[derive(Debug, Default, Clone)]
pub struct Done {
    bits: Vec<u64>,
    last: Option<usize>,
}

impl Done {
    /// Marks a record done.
    pub fn insert(&mut self, index: usize) {
        let word = index / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (index % 64);
        self.last = Some(self.last.map_or(index, |l| l.max(index)));
    }

    /// Whether the record at `index` is done.
    pub fn contains(&self, index: usize) -> bool {
        self.bits
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// The highest input position done, if any.
    pub fn last(&self) -> Option<usize> {
        self.last
    }
}

/// What [`Journal::reopen`] found.
#[derive(Debug, Default)]
pub struct Reopened {
    /// Records kept from the earlier attempt.
    pub kept_records: usize,
    /// The input positions of the kept records: they are done.
    pub done: Done,
    /// Why the journal was cut before its end, if it was (a file missing or
    /// changed, a torn last line).
    pub cut: Option<String>,
}

impl Journal {
    /// Starts an empty journal in `dir`; `root` is the folder the documents
    /// are written to.
    pub fn create(dir: &Path, root: &Path) -> Result<Journal> {
        Journal::with(Lines::create(dir.join(DOCUMENTS_FILE))?, root)
    }

    fn with(lines: Lines, root: &Path) -> Result<Journal> {
        Ok(Journal {
            lines,
            root: File::open(root).map_err(|e| Error::io(root, e))?,
            tally: Tally::default(),
            synced: Instant::now(),
            dirty: false,
        })
    }

    /// Opens the journal of an interrupted run and keeps what can be trusted;
    /// see the module docs. `per_record` is the number of entries every record
    /// has (one per channel). A missing journal is an empty one.
    pub fn reopen(dir: &Path, root: &Path, per_record: usize) -> Result<(Journal, Reopened)> {
        let path = dir.join(DOCUMENTS_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // The writer shares the file (and its offset); it writes nothing
        // until the kept part is known and the rest cut off.
        let writer = file.try_clone().map_err(|e| Error::io(&path, e))?;
        let mut journal = Journal::with(Lines::new(path.clone(), writer), root)?;
        let mut found = Reopened::default();
        let mut kept: u64 = 0;
        // The entries of the record being read, each with its line.
        let mut group: Vec<(Document, Vec<u8>)> = Vec::new();
        let mut reader = BufReader::new(&mut file);
        loop {
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(&path, e))?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                found.cut = Some("its last line was cut off".into());
                break;
            }
            let doc: Document = match serde_json::from_slice(&line) {
                Ok(d) => d,
                Err(e) => {
                    found.cut = Some(format!("a line does not parse ({e})"));
                    break;
                }
            };
            if let Some(problem) = file_problem(root, &doc) {
                found.cut = Some(problem);
                break;
            }
            if group.first().is_some_and(|(g, _)| g.index != doc.index) {
                found.cut = Some(format!(
                    "record at input position {} has {} of {per_record} entries",
                    group[0].0.index,
                    group.len()
                ));
                break;
            }
            group.push((doc, line));
            if group.len() == per_record {
                let index = group[0].0.index;
                if found.done.contains(index) {
                    found.cut = Some(format!("record at input position {index} is in it twice"));
                    group.clear();
                    break;
                }
                found.kept_records += 1;
                found.done.insert(index);
                for (doc, line) in group.drain(..) {
                    kept += line.len() as u64;
                    journal.lines.out.count(&line);
                    journal.tally.add(&doc);
                }
            }
        }
        drop(reader);
        if found.cut.is_none() && !group.is_empty() {
            found.cut = Some("its last record was not complete".into());
        }
        file.set_len(kept).map_err(|e| Error::io(&path, e))?;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| Error::io(&path, e))?;
        Ok((journal, found))
    }

    /// Appends the entries of one or more records (in the order the run
    /// reads them).
    pub fn append(&mut self, docs: &[Document]) -> Result<()> {
        for d in docs {
            self.lines.push(d)?;
            self.tally.add(d);
            self.dirty = true;
        }
        self.tick()
    }

    /// Makes the entries durable if the last time was [`SYNC_EVERY`] ago;
    /// the run calls it while it waits, so entries never wait in memory
    /// behind a slow record.
    pub fn tick(&mut self) -> Result<()> {
        if self.dirty && self.synced.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every appended entry durable: the output folder's file system
    /// first (so the documents are), then the journal.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.lines
                .out
                .flush()
                .map_err(|e| Error::io(&self.lines.path, e))?;
            syncfs(&self.root);
            self.lines.sync()?;
            self.dirty = false;
        }
        self.synced = Instant::now();
        Ok(())
    }

    /// The counts so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Syncs and closes the journal; returns its manifest entry and the counts.
    pub fn finish(mut self) -> Result<(DocumentsFile, Tally)> {
        self.dirty = true;
        self.sync()?;
        Ok((self.lines.finish()?, self.tally))
    }
}

/// Syncs the file system holding `dir` (Linux `syncfs`; elsewhere the
/// journal's own sync has to do).
fn syncfs(dir: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call.
        unsafe {
            libc::syncfs(dir.as_raw_fd());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

/// Why a journaled document's files cannot be trusted, if they cannot.
fn file_problem(root: &Path, d: &Document) -> Option<String> {
    if d.status != DocStatus::Rendered {
        return None;
    }
    d.all_files().into_iter().find_map(|f| match f.check(root) {
        Ok(()) => None,
        Err(FileProblem::Differs) => Some(format!("{} differs from its journal entry", f.path)),
        Err(FileProblem::Unreadable(e)) => Some(format!("{} cannot be read ({e})", f.path)),
    })
}

/// Rewrites a finished journal through `edit` (used to link letters to
/// their mail pieces after the print files are made); atomic.
pub fn rewrite(dir: &Path, mut edit: impl FnMut(&mut Document)) -> Result<DocumentsFile> {
    let path = dir.join(DOCUMENTS_FILE);
    let tmp = temp_path(&path, "");
    let mut out = Lines::create(tmp.clone())?;
    for doc in documents(dir)? {
        let mut doc = doc?;
        edit(&mut doc);
        out.push(&doc)?;
    }
    let entry = out.finish()?;
    commit(&tmp, &path, true).map_err(|e| Error::io(&path, e))?;
    Ok(entry)
}

/// Reads the entries of the journal in `dir`, one at a time.
pub fn documents(dir: &Path) -> Result<Documents> {
    let path = dir.join(DOCUMENTS_FILE);
    let file = File::open(&path).map_err(|e| {
        Error::Input(format!(
            "{}: {e} (a run's document entries are in this file)",
            path.display()
        ))
    })?;
    Ok(Documents {
        reader: BufReader::with_capacity(1 << 16, file),
        path,
        line: 0,
        buf: Vec::new(),
        hash: ring::digest::Context::new(&ring::digest::SHA256),
    })
}

/// An iterator over a journal's entries; see [`documents`].
pub struct Documents {
    reader: BufReader<File>,
    path: PathBuf,
    line: usize,
    buf: Vec<u8>,
    hash: ring::digest::Context,
}

impl Documents {
    /// SHA-256 of the bytes read so far (of the whole file once the
    /// iterator is exhausted).
    pub fn sha256(&self) -> String {
        hex(self.hash.clone().finish().as_ref())
    }
}

impl Iterator for Documents {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                self.hash.update(&self.buf);
                Some(serde_json::from_slice(&self.buf).map_err(|e| {
                    Error::Input(format!("{}:{}: {e}", self.path.display(), self.line))
                }))
            }
            Err(e) => Some(Err(Error::io(&self.path, e))),
        }
    }
}

/// Reads every entry of the journal in `dir` into memory (for commands that
/// pick a few: `send`, `reprint`, `verify --rerender`).
pub fn read_all(dir: &Path) -> Result<Vec<Document>> {
    documents(dir)?.collect()
}

/// The entries of a finished run's journal, for a command that acts on
/// them (`send`, `reprint`, `reconcile`, `purge`): every line reads, every
/// file it names is a path inside the run folder, and the file is the one
/// the manifest sealed (its SHA-256). Otherwise nothing is done: the error
/// names the line, or says the journal was altered.
pub fn read_sealed(dir: &Path, sealed: &DocumentsFile, command: &str) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    check_sealed(dir, sealed, command, |d| out.push(d))?;
    Ok(out)
}

/// [`read_sealed`], handing each entry to `each` as it is read instead of
/// keeping them (for a journal of millions of entries); nothing is to be
/// acted on before it returns `Ok`.
pub fn check_sealed(
    dir: &Path,
    sealed: &DocumentsFile,
    command: &str,
    mut each: impl FnMut(Document),
) -> Result<()> {
    let refuse = |why: String| {
        Error::Input(format!(
            "{command} refuses {}: {why}; nothing was done (`letterpress verify` lists every problem of the run)",
            dir.display()
        ))
    };
    let mut entries = documents(dir)?;
    for (i, d) in entries.by_ref().enumerate() {
        let d = d.map_err(|e| refuse(e.to_string()))?;
        for f in d.all_files() {
            crate::util::fs::check_relative(&f.path).map_err(|why| {
                refuse(format!(
                    "{DOCUMENTS_FILE} line {}: it names a file outside the run folder: {why}",
                    i + 1
                ))
            })?;
        }
        each(d);
    }
    if entries.sha256() != sealed.sha256 {
        return Err(refuse(format!(
            "its journal {DOCUMENTS_FILE} does not match the SHA-256 the manifest recorded (edited after the run)"
        )));
    }
    Ok(())
}
