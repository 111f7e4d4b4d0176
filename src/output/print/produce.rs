//! Making the print files, their Mail Run Data Files and the job ticket
//! from letters in mailing order, as a stream: each piece is placed,
//! written to its print file, its inserter file and the ticket, and handed
//! on before the next letter is read. What stays is the ticket's totals (a
//! few numbers per file, envelope, weight class and insert) and the print
//! file's page list ([`super::stream`]), so a print file of a million
//! sheets is made at flat memory.

use std::path::Path;

use serde_json::Value;

use crate::model::file::FileEntry;
use crate::model::print::{Householded, Piece, Plex, PrintFile, PrintOutput, PrintSettings};
use crate::util::fs::Streamed;
use crate::util::text::csv_cell;

use super::stream::{PdfStream, Pdfx, PieceMarks, Source, Take};
use super::{dpm, pdfx, weigh, Letter, SheetMarks, Together};

/// Combines the letters (sorted by sequence) into print files under
/// `<out>/print/` and writes the job ticket. Returns the pieces and the
/// output summary.
pub fn produce(
    out: &Path,
    settings: &PrintSettings,
    letters: Vec<Letter>,
    run_id: &str,
    together: Option<Together>,
) -> Result<(Vec<Piece>, PrintOutput), String> {
    produce_named(
        out,
        settings,
        letters,
        "print",
        "job-ticket",
        run_id,
        together,
    )
}

/// [`produce`] with other names: print files `print/<stem>-NNN.pdf` and the
/// ticket `print/<ticket>.csv` and `.json` (reprints use their own).
/// Without `together`, the letters' pages come from their own PDFs.
pub fn produce_named(
    out: &Path,
    settings: &PrintSettings,
    mut letters: Vec<Letter>,
    stem: &str,
    ticket: &str,
    run_id: &str,
    together: Option<Together>,
) -> Result<(Vec<Piece>, PrintOutput), String> {
    letters.sort_by_key(|l| l.sequence);
    let mut placed = Vec::with_capacity(letters.len());
    let output = produce_stream(
        out,
        settings,
        letters.into_iter().map(Ok),
        (stem, ticket, run_id),
        together,
        &mut |p| {
            placed.push(p);
            Ok(())
        },
    )?;
    Ok((placed, output))
}

/// [`produce_named`] for letters given one at a time in sequence order:
/// each piece goes to `placed` once it is in its print file, its Mail Run
/// Data File and the ticket, and nothing of it is kept here.
pub fn produce_stream(
    out: &Path,
    settings: &PrintSettings,
    letters: impl Iterator<Item = Result<Letter, String>>,
    (stem, ticket, run_id): (&str, &str, &str),
    together: Option<Together>,
    placed: &mut dyn FnMut(Piece) -> Result<(), String>,
) -> Result<PrintOutput, String> {
    let dir = out.join("print");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::util::fs::remove_stale_temp_files(&dir, "")
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut made = Made {
        out,
        settings,
        run_id,
        together,
        ticket: Ticket::create(out, ticket)?,
        totals: Totals::new(settings),
        file: None,
        files: Vec::new(),
        pending: Vec::new(),
        letters: 0,
        placed,
    };
    let mut placer = Placer::new(settings, stem);
    for letter in letters {
        let mut letter = letter?;
        let (piece, new_file) = placer.place(&mut letter);
        if new_file {
            made.close_file()?;
            made.file = Some(OpenFile::create(out, &piece.print_file, settings, run_id)?);
        }
        made.letters += letter.parts.len();
        made.pending.push((letter, piece));
        made.write_ready(false)?;
    }
    made.close_file()?;
    made.finish()
}

/// A print run's files as they are being made.
struct Made<'a, 'p> {
    out: &'a Path,
    settings: &'a PrintSettings,
    run_id: &'a str,
    together: Option<Together<'a>>,
    ticket: Ticket,
    totals: Totals,
    /// The print file being written.
    file: Option<OpenFile>,
    files: Vec<PrintFile>,
    /// Placed, not yet written: with `together`, the pieces of the runs
    /// laid out next (a run a thread).
    pending: Vec<(Letter, Piece)>,
    letters: usize,
    placed: &'p mut dyn FnMut(Piece) -> Result<(), String>,
}

impl Made<'_, '_> {
    /// Writes the pending pieces when there are enough of them (`all`: the
    /// print file ends): one at a time from their own PDFs, or, with
    /// `together`, whole runs a window at a time (one run a thread), the
    /// last run waiting until a piece of the next one comes.
    fn write_ready(&mut self, all: bool) -> Result<(), String> {
        let Some(together) = self.together else {
            for (letter, piece) in std::mem::take(&mut self.pending) {
                let file = self.file.as_mut().expect("a piece has its file");
                let (mut sources, takes) = own_pdfs(self.out, self.settings.plex, &letter)?;
                let marks = SheetMarks {
                    omr: self.settings.omr.as_ref(),
                    code: self.settings.datamatrix.as_ref(),
                    run_id: self.run_id,
                };
                file.pdf
                    .add_piece(&mut sources, &takes, Some(piece_marks(&marks, &piece)))
                    .map_err(|e| format!("piece {}: {e}", piece.sequence))?;
                self.written(piece)?;
            }
            return Ok(());
        };
        let window = rayon::current_num_threads().max(1);
        // Pending pieces are in sequence order: while their first and last
        // runs are fewer than a window and one apart, nothing is ready (no
        // need to split them into runs for every letter).
        let run = |i: usize| {
            self.pending
                .get(i)
                .map_or(0, |(l, _)| super::export_run(l.sequence))
        };
        if !all && run(self.pending.len().saturating_sub(1)) - run(0) < window {
            return Ok(());
        }
        let runs = runs_of(&self.pending);
        let ready = match all {
            true => runs.len(),
            false if runs.len() > window => window,
            false => return Ok(()),
        };
        let end = runs.get(ready - 1).map_or(0, |r| r.end);
        let batch: Vec<(Letter, Piece)> = self.pending.drain(..end).collect();
        let sources = {
            use rayon::prelude::*;
            let letters: Vec<&Letter> = batch.iter().map(|(l, _)| l).collect();
            runs[..ready]
                .par_iter()
                .map(|r| {
                    let (pdf, first) = together.pages(&letters[r.clone()])?;
                    Ok((Source::load(&pdf)?, first))
                })
                .collect::<Vec<Result<(Source, usize), String>>>()
        };
        let mut batch = batch.into_iter();
        for (r, source) in runs[..ready].iter().zip(sources) {
            let run: Vec<(Letter, Piece)> = batch.by_ref().take(r.len()).collect();
            let file = self.file.as_mut().expect("a piece has its file");
            write_run(&mut file.pdf, source?, &run, self.settings, self.run_id)?;
            for (_, piece) in run {
                self.written(piece)?;
            }
        }
        Ok(())
    }

    /// A piece is in its print file: it goes to its Mail Run Data File,
    /// the ticket and the totals, and on.
    fn written(&mut self, piece: Piece) -> Result<(), String> {
        let file = self.file.as_mut().expect("a piece has its file");
        file.mrdf_row(&piece, self.run_id)?;
        file.pieces += 1;
        file.pages += piece.pages;
        file.sheets += piece.sheets;
        self.ticket.row(&piece_row(&piece))?;
        self.totals.add(&piece);
        (self.placed)(piece)
    }

    /// Writes what is pending and puts the print file and its Mail Run
    /// Data File in place.
    fn close_file(&mut self) -> Result<(), String> {
        self.write_ready(true)?;
        if let Some(file) = self.file.take() {
            let made = file.commit()?;
            self.totals.file(&made.file.path);
            self.files.push(made);
        }
        Ok(())
    }

    /// Writes the ticket's totals and puts it in place.
    fn finish(self) -> Result<PrintOutput, String> {
        let Made {
            settings,
            ticket,
            totals,
            files,
            letters,
            ..
        } = self;
        let pieces = totals.total.pieces;
        let tickets = ticket.finish(totals.rows())?;
        let total: u64 = files.iter().map(|f| f.file.bytes).sum();
        let household = settings.household.as_ref().map(|_| Householded {
            letters,
            pieces,
            saved: letters - pieces,
        });
        Ok(PrintOutput {
            plex: settings.plex,
            files,
            tickets,
            bytes_per_piece: total.checked_div(pieces as u64).unwrap_or(0),
            household,
            omr: settings.omr.clone(),
            datamatrix: settings.datamatrix.clone(),
            print_shop: settings.conformance.as_ref().map(|c| c.used.clone()),
            laid_out_again: None,
        })
    }
}

/// The pending pieces split by their export runs (see [`export_run`]).
fn runs_of(pending: &[(Letter, Piece)]) -> Vec<std::ops::Range<usize>> {
    let letters: Vec<&Letter> = pending.iter().map(|(l, _)| l).collect();
    super::export_runs(&letters)
}

/// A print file being written, with its Mail Run Data File.
struct OpenFile {
    rel: String,
    pdf: PdfStream<Streamed>,
    mrdf: (String, csv::Writer<Streamed>),
    pieces: usize,
    pages: usize,
    sheets: usize,
}

impl OpenFile {
    fn create(
        out: &Path,
        rel: &str,
        settings: &PrintSettings,
        run_id: &str,
    ) -> Result<OpenFile, String> {
        let pdfx = settings.conformance.as_ref().map(|c| Pdfx {
            id: pdfx::file_id(run_id, rel, c),
            title: format!("{rel} of run {run_id}"),
            conformance: c.clone(),
        });
        let file = Streamed::create(&out.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        let pdf = PdfStream::new(file, settings.plex, true, pdfx)?;
        let mrdf_rel = format!("{}.mrdf.csv", rel.trim_end_matches(".pdf"));
        let file =
            Streamed::create(&out.join(&mrdf_rel)).map_err(|e| format!("{mrdf_rel}: {e}"))?;
        let mut mrdf = csv::Writer::from_writer(file);
        mrdf.write_record(MRDF_COLUMNS)
            .map_err(|e| format!("{mrdf_rel}: {e}"))?;
        Ok(OpenFile {
            rel: rel.to_owned(),
            pdf,
            mrdf: (mrdf_rel, mrdf),
            pieces: 0,
            pages: 0,
            sheets: 0,
        })
    }

    /// A piece's row of the Mail Run Data File (see
    /// `docs/src/reference/print-files.md`). A cell a spreadsheet would
    /// evaluate (a record id from the data that begins with `=`) gets a
    /// leading `'` ([`csv_cell`]); the cells an inserter acts on (piece id,
    /// sheets, insert codes, divert) never begin so (the layout refuses
    /// such insert codes), so they are never changed.
    fn mrdf_row(&mut self, p: &Piece, run_id: &str) -> Result<(), String> {
        let row = [
            p.id(run_id),
            p.sequence.to_string(),
            p.record_ids(),
            p.sheets.to_string(),
            p.inserts.join("+"),
            p.envelope.clone(),
            format!("{:.1}", p.weight),
            p.weight_class.clone(),
            if p.divert { "1" } else { "0" }.to_string(),
            p.barcode.clone(),
        ];
        let (rel, csv) = &mut self.mrdf;
        csv.write_record(row.iter().map(|c| csv_cell(c).into_owned()))
            .map_err(|e| format!("{rel}: {e}"))
    }

    /// Finishes both files and puts them in place, on disk.
    fn commit(self) -> Result<PrintFile, String> {
        let rel = self.rel;
        let pdf = self.pdf.finish(None)?;
        let (sha256, bytes) = pdf.commit(true).map_err(|e| format!("{rel}: {e}"))?;
        let (mrdf_rel, csv) = self.mrdf;
        let mrdf = csv
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.commit(true))
            .map_err(|e| format!("{mrdf_rel}: {e}"))?;
        Ok(PrintFile {
            file: FileEntry {
                path: rel,
                sha256,
                bytes,
            },
            pieces: self.pieces,
            pages: self.pages,
            sheets: self.sheets,
            mrdf: Some(FileEntry {
                path: mrdf_rel,
                sha256: mrdf.0,
                bytes: mrdf.1,
            }),
        })
    }
}

/// A letter's pages padded to whole sheets.
pub(super) fn pad(plex: Plex, pages: usize) -> usize {
    match plex {
        Plex::Duplex => pages + pages % 2,
        Plex::Simplex => pages,
    }
}

/// Places letters (in sequence order) as pieces: each padded to whole
/// sheets, given an envelope (the letter's own or the first class its
/// sheets fit), and put in a print file, a new file starting when the next
/// piece would pass `max_sheets_per_file`.
pub(super) struct Placer<'a> {
    settings: &'a PrintSettings,
    stem: &'a str,
    file_no: usize,
    file_sheets: usize,
    file_pages: usize,
}

impl<'a> Placer<'a> {
    pub(super) fn new(settings: &'a PrintSettings, stem: &'a str) -> Placer<'a> {
        Placer {
            settings,
            stem,
            file_no: 0,
            file_sheets: 0,
            file_pages: 0,
        }
    }

    /// The letter's piece, and whether it starts a new print file. What
    /// moves from the letter to its piece is taken, not copied.
    pub(super) fn place(&mut self, l: &mut Letter) -> (Piece, bool) {
        let settings = self.settings;
        // In duplex every letter starts on the front of a sheet.
        let padded: usize = l.parts.iter().map(|p| pad(settings.plex, p.pages)).sum();
        let sheets = match settings.plex {
            Plex::Duplex => padded / 2,
            Plex::Simplex => padded,
        };
        let new_file = self.file_no == 0
            || (self.file_sheets > 0 && self.file_sheets + sheets > settings.max_sheets_per_file);
        if new_file {
            self.file_no += 1;
            self.file_sheets = 0;
            self.file_pages = 0;
        }
        let envelope = l.envelope.take().unwrap_or_else(|| {
            settings
                .envelopes
                .iter()
                .find(|e| e.max_sheets.is_none_or(|m| sheets <= m))
                .map_or_else(|| "unclassified".to_string(), |e| e.name.clone())
        });
        let (weight, weight_class) = l
            .weight
            .take()
            .unwrap_or_else(|| weigh(settings, sheets, &l.inserts, &envelope));
        let divert = l.divert
            || settings
                .envelopes
                .iter()
                .any(|e| e.name == envelope && e.divert);
        let first = l.parts.first().map_or("", |p| p.record_id.as_str());
        let records = match l.parts.len() {
            1 => Vec::new(),
            _ => l.parts.iter().map(|p| p.record_id.clone()).collect(),
        };
        let piece = Piece {
            sequence: l.sequence,
            record_id: first.to_owned(),
            records,
            print_file: format!("print/{}-{:03}.pdf", self.stem, self.file_no),
            first_page: self.file_pages + 1,
            last_page: self.file_pages + padded,
            pages: padded,
            sheets,
            envelope,
            postcode: std::mem::take(&mut l.postcode),
            barcode: std::mem::take(&mut l.barcode),
            inserts: std::mem::take(&mut l.inserts),
            weight,
            weight_class,
            divert,
        };
        self.file_sheets += sheets;
        self.file_pages += padded;
        (piece, new_file)
    }
}

/// The columns of a Mail Run Data File.
pub const MRDF_COLUMNS: [&str; 10] = [
    "piece_id",
    "sequence",
    "record_ids",
    "sheets",
    "inserts",
    "envelope",
    "weight_g",
    "weight_class",
    "divert",
    "barcode",
];

/// The ticket's columns.
pub(super) const TICKET_COLUMNS: [&str; 14] = [
    "sequence",
    "record_id",
    "print_file",
    "first_page",
    "last_page",
    "pages",
    "sheets",
    "envelope",
    "postcode",
    "barcode",
    "inserts",
    "weight_g",
    "weight_class",
    "divert",
];

/// A piece's row of the ticket.
pub(super) fn piece_row(p: &Piece) -> Vec<String> {
    vec![
        p.sequence.to_string(),
        p.record_ids(),
        p.print_file.clone(),
        p.first_page.to_string(),
        p.last_page.to_string(),
        p.pages.to_string(),
        p.sheets.to_string(),
        p.envelope.clone(),
        p.postcode.clone(),
        p.barcode.clone(),
        p.inserts.join("+"),
        format!("{:.1}", p.weight),
        p.weight_class.clone(),
        if p.divert { "1" } else { "0" }.to_string(),
    ]
}

/// What a totals row of the ticket adds up.
#[derive(Default, Clone)]
struct Sum {
    pieces: usize,
    pages: usize,
    sheets: usize,
    weight: f64,
    diverted: usize,
}

impl Sum {
    fn add(&mut self, p: &Piece) {
        self.pieces += 1;
        self.pages += p.pages;
        self.sheets += p.sheets;
        self.weight += p.weight;
        self.diverted += usize::from(p.divert);
    }

    /// Its row: its kind, and the column that names it.
    fn row(&self, kind: &str, (column, name): (usize, &str)) -> Vec<String> {
        let mut row = vec![String::new(); TICKET_COLUMNS.len()];
        row[0] = kind.to_string();
        row[1] = format!("{} pieces", self.pieces);
        row[5] = self.pages.to_string();
        row[6] = self.sheets.to_string();
        // Plus 0.0: an empty sum of f64 is -0.0.
        row[11] = format!("{:.1}", 0.0 + self.weight);
        row[13] = self.diverted.to_string();
        row[column] = name.to_string();
        row
    }
}

/// The ticket's totals, added up as the pieces come: a TOTAL row, one FILE
/// row per print file, one ENVELOPE row per envelope class, one WEIGHT row
/// per weight class (what postage is paid on) and one INSERT row per
/// selective insert (what each feeder must hold).
pub(super) struct Totals {
    total: Sum,
    /// The print file being written, and those before.
    file: Sum,
    files: Vec<(String, Sum)>,
    envelopes: Vec<(String, Sum)>,
    /// The layout's classes, then any other a piece has, in order.
    classes: Vec<(String, Sum)>,
    inserts: Vec<(String, Sum)>,
}

impl Totals {
    pub(super) fn new(settings: &PrintSettings) -> Totals {
        fn named<'a>(names: impl Iterator<Item = &'a String>) -> Vec<(String, Sum)> {
            names.map(|n| (n.clone(), Sum::default())).collect()
        }
        Totals {
            total: Sum::default(),
            file: Sum::default(),
            files: Vec::new(),
            envelopes: named(settings.envelopes.iter().map(|e| &e.name)),
            classes: named(settings.weight_classes.iter().map(|c| &c.name)),
            inserts: named(settings.inserts.iter().map(|i| &i.code)),
        }
    }

    pub(super) fn add(&mut self, p: &Piece) {
        self.total.add(p);
        self.file.add(p);
        if let Some((_, s)) = self.envelopes.iter_mut().find(|(n, _)| *n == p.envelope) {
            s.add(p);
        }
        match self.classes.iter_mut().find(|(n, _)| *n == p.weight_class) {
            Some((_, s)) => s.add(p),
            None => {
                let mut s = Sum::default();
                s.add(p);
                self.classes.push((p.weight_class.clone(), s));
            }
        }
        for (code, s) in &mut self.inserts {
            if p.inserts.contains(code) {
                s.add(p);
            }
        }
    }

    /// The print file whose pieces were added since the last one ends.
    pub(super) fn file(&mut self, path: &str) {
        let sum = std::mem::take(&mut self.file);
        self.files.push((path.to_owned(), sum));
    }

    pub(super) fn rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![self.total.row("TOTAL", (0, "TOTAL"))];
        for (path, s) in &self.files {
            rows.push(s.row("FILE", (2, path)));
        }
        for (name, s) in &self.envelopes {
            rows.push(s.row("ENVELOPE", (7, name)));
        }
        for (name, s) in self.classes.iter().filter(|(_, s)| s.pieces > 0) {
            rows.push(s.row("WEIGHT", (12, name)));
        }
        for (code, s) in &self.inserts {
            rows.push(s.row("INSERT", (10, code)));
        }
        rows
    }
}

/// The job ticket, CSV and JSON, written a row at a time.
struct Ticket {
    name: String,
    csv: csv::Writer<Streamed>,
    json: Streamed,
    rows: usize,
}

impl Ticket {
    fn create(out: &Path, name: &str) -> Result<Ticket, String> {
        let open = |ext: &str| {
            let rel = format!("print/{name}.{ext}");
            Streamed::create(&out.join(&rel)).map_err(|e| format!("{rel}: {e}"))
        };
        let mut csv = csv::Writer::from_writer(open("csv")?);
        csv.write_record(TICKET_COLUMNS)
            .map_err(|e| format!("print/{name}.csv: {e}"))?;
        let mut json = open("json")?;
        std::io::Write::write_all(&mut json, b"[")
            .map_err(|e| format!("print/{name}.json: {e}"))?;
        Ok(Ticket {
            name: name.to_owned(),
            csv,
            json,
            rows: 0,
        })
    }

    /// A row, in both: in the CSV with cells a spreadsheet would evaluate
    /// made harmless ([`csv_cell`]); in the JSON as an object of the
    /// columns, laid out as `serde_json`'s pretty printer lays out an array
    /// of them.
    fn row(&mut self, row: &[String]) -> Result<(), String> {
        let name = &self.name;
        self.csv
            .write_record(row.iter().map(|c| csv_cell(c).into_owned()))
            .map_err(|e| format!("print/{name}.csv: {e}"))?;
        let object: serde_json::Map<String, Value> = TICKET_COLUMNS
            .iter()
            .map(|h| h.to_string())
            .zip(row.iter().map(|c| Value::String(c.clone())))
            .collect();
        let text = serde_json::to_string_pretty(&object).expect("JSON serializes");
        let sep = if self.rows == 0 { "\n  " } else { ",\n  " };
        let text = format!("{sep}{}", text.replace('\n', "\n  "));
        self.rows += 1;
        std::io::Write::write_all(&mut self.json, text.as_bytes())
            .map_err(|e| format!("print/{name}.json: {e}"))
    }

    /// Adds the totals rows and puts both files in place, on disk.
    fn finish(mut self, totals: Vec<Vec<String>>) -> Result<Vec<FileEntry>, String> {
        for row in &totals {
            self.row(row)?;
        }
        let name = self.name;
        let end: &[u8] = if self.rows == 0 { b"]\n" } else { b"\n]\n" };
        let csv = self
            .csv
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.commit(true))
            .map_err(|e| format!("print/{name}.csv: {e}"))?;
        let mut json = self.json;
        let json = std::io::Write::write_all(&mut json, end)
            .and_then(|()| json.commit(true))
            .map_err(|e| format!("print/{name}.json: {e}"))?;
        let entry = |ext: &str, (sha256, bytes): (String, u64)| FileEntry {
            path: format!("print/{name}.{ext}"),
            sha256,
            bytes,
        };
        Ok(vec![entry("csv", csv), entry("json", json)])
    }
}

/// A piece's sheet marks and document part metadata.
fn piece_marks<'a>(marks: &'a SheetMarks<'a>, piece: &'a Piece) -> PieceMarks<'a> {
    PieceMarks {
        marks,
        piece: piece.sequence,
        inserts: &piece.inserts,
        dpm: dpm(piece, marks.run_id),
    }
}

/// Writes the pieces of a run from the PDF they were exported together in
/// (their pages from `first` on), checking it has the pages they had when
/// rendered.
fn write_run<W: std::io::Write>(
    pdf: &mut PdfStream<W>,
    (source, first): (Source, usize),
    run: &[(Letter, Piece)],
    settings: &PrintSettings,
    run_id: &str,
) -> Result<(), String> {
    let expected: usize = run
        .iter()
        .flat_map(|(l, _)| &l.parts)
        .map(|p| p.pages)
        .sum();
    if first + expected > source.page_count() {
        let record = run.first().map_or("", |(_, p)| p.record_id.as_str());
        return Err(format!(
            "the letters from record {record} on have {} pages for the print file, not the {expected} they had when rendered",
            source.page_count().saturating_sub(first)
        ));
    }
    let marks = SheetMarks {
        omr: settings.omr.as_ref(),
        code: settings.datamatrix.as_ref(),
        run_id,
    };
    let mut sources = [source];
    let mut at = first;
    for (letter, piece) in run {
        let takes: Vec<Take> = letter
            .parts
            .iter()
            .map(|part| {
                at += part.pages;
                Take {
                    source: 0,
                    pages: at - part.pages..at,
                    padded: pad(settings.plex, part.pages),
                }
            })
            .collect();
        let m = piece_marks(&marks, piece);
        pdf.add_piece(&mut sources, &takes, Some(m))
            .map_err(|e| format!("piece {} (record {}): {e}", piece.sequence, piece.record_id))?;
    }
    Ok(())
}

/// A piece's letters read from their own PDFs.
fn own_pdfs(out: &Path, plex: Plex, letter: &Letter) -> Result<(Vec<Source>, Vec<Take>), String> {
    let mut sources = Vec::with_capacity(letter.parts.len());
    let mut takes = Vec::with_capacity(letter.parts.len());
    for part in &letter.parts {
        // The path comes from the journal: it must stay inside the run.
        let bytes = crate::util::fs::read_inside(out, &part.path)
            .map_err(|e| format!("{}: {e}", out.join(&part.path).display()))?;
        let source = Source::load(&bytes)?;
        takes.push(Take {
            source: sources.len(),
            pages: 0..source.page_count(),
            padded: pad(plex, part.pages),
        });
        sources.push(source);
    }
    Ok((sources, takes))
}

/// Places letters as [`Placer`] does; returns the pieces and, per print
/// file, the indexes of its letters.
#[cfg(test)]
pub(super) fn place(
    settings: &PrintSettings,
    letters: &mut [Letter],
    stem: &str,
) -> (Vec<Piece>, Vec<Vec<usize>>) {
    let mut placer = Placer::new(settings, stem);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut pieces = Vec::new();
    for (i, l) in letters.iter_mut().enumerate() {
        let (piece, new_file) = placer.place(l);
        if new_file {
            groups.push(Vec::new());
        }
        groups.last_mut().expect("a file").push(i);
        pieces.push(piece);
    }
    (pieces, groups)
}

/// The ticket's rows for `pieces` in `files`: one per piece, then the
/// totals.
#[cfg(test)]
pub(super) fn ticket_rows(
    pieces: &[Piece],
    files: &[PrintFile],
    settings: &PrintSettings,
) -> Vec<Vec<String>> {
    let mut totals = Totals::new(settings);
    for f in files {
        for p in pieces.iter().filter(|p| p.print_file == f.file.path) {
            totals.add(p);
        }
        totals.file(&f.file.path);
    }
    let mut rows: Vec<Vec<String>> = pieces.iter().map(piece_row).collect();
    rows.extend(totals.rows());
    rows
}
