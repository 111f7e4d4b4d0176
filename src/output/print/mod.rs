//! Print production: letters in mailing order, combined into print files,
//! with a job ticket a print shop reconciles on receipt.
//!
//! Stage 4 of the data path, for the pdf channel (`run --print`). Before
//! rendering, the run sorts the records that get a letter by the layout's
//! mailing-order key (`print.sort`, then the record id) or by a sequence file
//! a presort tool returned (`--sequence FILE`: one record id a line), and
//! numbers the pieces 1..n. The template knows its piece number before it
//! renders: `json("/letterpress/piece.json").sequence`.
//!
//! After rendering, the letters are combined in that order into
//! `print/print-001.pdf`, `print-002.pdf`, ..., each at most
//! `print.max_sheets_per_file` sheets. In duplex every letter starts on the
//! front of a sheet: a letter with an odd page count gets a blank back page.
//! Each piece gets an envelope class by its sheet count (`print.envelopes`,
//! the first class whose `max_sheets` it fits). Identical objects of the
//! letters (the logo, colour profiles, and any identical font data) are
//! stored once per print file. The job ticket `print/job-ticket.csv` (and
//! `.json`) has one row per piece, then totals rows whose `sequence` is
//! `TOTAL`, `FILE` or `ENVELOPE`.

pub mod household;
pub mod imb;

use std::collections::HashMap;
use std::path::Path;

use lopdf::{dictionary, Document, Object, ObjectId};
use serde_json::{Map, Value};

use crate::model::file::FileEntry;
use crate::model::print::{
    Code, Householded, ImbSettings, Insert, Omr, Piece, Plex, PrintFile, PrintOutput, PrintSettings,
};

impl ImbSettings {
    /// The `tracking-routing` payload and the 65 bars of a piece.
    pub fn barcode(&self, sequence: u32, zip: &str) -> Result<(String, String), String> {
        let width = 15usize.saturating_sub(self.mailer_id.len());
        let serial = self.serial_offset + u64::from(sequence);
        let serial = format!("{serial:0width$}");
        if serial.len() > width {
            return Err(format!(
                "IMb serial {serial} does not fit {width} digits (serial_offset too large)"
            ));
        }
        let tracking = format!(
            "{}{}{}{serial}",
            self.barcode_id, self.service_type, self.mailer_id
        );
        let routing: String = zip.chars().filter(char::is_ascii_digit).collect();
        let bars = crate::output::print::imb::encode(&tracking, &routing)
            .map_err(|e| format!("IMb: {e}"))?;
        let payload = if routing.is_empty() {
            tracking
        } else {
            format!("{tracking}-{routing}")
        };
        Ok((payload, bars))
    }
}

impl Code {
    /// The payload of a sheet's code: `<run id>|<piece>|<sheet>/<sheets>`,
    /// then `|` and the piece's insert codes joined by `+` when it has any.
    pub fn payload(
        run_id: &str,
        piece: u32,
        sheet: usize,
        sheets: usize,
        inserts: &[String],
    ) -> String {
        let mut p = format!("{run_id}|{piece}|{sheet}/{sheets}");
        if !inserts.is_empty() {
            p.push('|');
            p.push_str(&inserts.join("+"));
        }
        p
    }

    /// PDF drawing operators for a code on a page `height` pt tall.
    fn content(&self, payload: &str, height: f64) -> Result<String, String> {
        let code = datamatrix::DataMatrix::encode_str(payload, datamatrix::SymbolList::default())
            .map_err(|e| format!("DataMatrix for {payload:?}: {e:?}"))?;
        let pt = |mm: f64| mm * 72.0 / 25.4;
        let m = pt(self.module);
        let mut ops = String::from("q 0 0 0 rg\n");
        for (x, y) in code.bitmap().pixels() {
            let px = pt(self.left) + x as f64 * m;
            let py = height - pt(self.top) - (y as f64 + 1.0) * m;
            ops.push_str(&format!("{px:.3} {py:.3} {m:.3} {m:.3} re\n"));
        }
        ops.push_str("f Q\n");
        Ok(ops)
    }
}

/// What is printed on every sheet of a print file besides the letters.
pub struct SheetMarks<'a> {
    /// OMR bars.
    pub omr: Option<&'a Omr>,
    /// A DataMatrix code.
    pub code: Option<&'a Code>,
    /// The run id, in the code.
    pub run_id: &'a str,
    /// Each piece's number, insert codes and number of parts (letters).
    pub pieces: &'a [(u32, Vec<String>, usize)],
}

impl Omr {
    /// The marks of a sheet: start, end of set, 3 sequence bits, parity,
    /// safety.
    pub fn marks(sheet_in_file: usize, last_of_piece: bool) -> [bool; 7] {
        let n = sheet_in_file % 8;
        let mut m = [
            true,
            last_of_piece,
            n & 1 != 0,
            n & 2 != 0,
            n & 4 != 0,
            false,
            true,
        ];
        m[5] = m.iter().filter(|b| **b).count() % 2 == 1;
        m
    }

    /// PDF drawing operators for a sheet's marks on a page `height` pt tall.
    fn content(&self, marks: [bool; 7], height: f64) -> String {
        let pt = |mm: f64| mm * 72.0 / 25.4;
        let mut ops = String::from("q 0 0 0 rg\n");
        for (i, on) in marks.iter().enumerate() {
            if *on {
                let y = height - pt(self.top + i as f64 * self.pitch) - pt(self.thickness) / 2.0;
                ops.push_str(&format!(
                    "{:.3} {:.3} {:.3} {:.3} re f\n",
                    pt(self.left),
                    y,
                    pt(self.length),
                    pt(self.thickness)
                ));
            }
        }
        ops.push_str("Q\n");
        ops
    }
}

/// A rendered letter of a mail piece.
#[derive(Debug, Clone)]
pub struct Part {
    /// The record id.
    pub record_id: String,
    /// The rendered PDF, relative to the output folder.
    pub path: String,
    /// Its page count.
    pub pages: usize,
}

/// A mail piece waiting to be placed: its letters (one, or a household's)
/// and what the ticket shows.
pub struct Letter {
    /// Mailing-order number.
    pub sequence: u32,
    /// Its letters in order; the first one's address shows in the window.
    pub parts: Vec<Part>,
    /// The postcode.
    pub postcode: String,
    /// The envelope class, when already known (a reprint keeps the original's).
    pub envelope: Option<String>,
    /// The postal barcode payload, if any.
    pub barcode: String,
    /// The codes of its selective inserts.
    pub inserts: Vec<String>,
    /// Whether the record asks for the piece to be diverted.
    pub divert: bool,
    /// Its weight and weight class, when already known (a reprint keeps
    /// the original's).
    pub weight: Option<(f64, String)>,
}

/// Whether a record field's value counts as yes: true, `yes`, `y`, `true`,
/// `1`, or a non-zero number.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "y" | "true" | "1"
        ),
        _ => false,
    }
}

/// Whether a record selects an insert; see [`crate::model::print::Insert`].
fn selects(insert: &Insert, record: &Map<String, Value>) -> bool {
    let Some(v) = crate::input::field(record, &insert.field) else {
        return false;
    };
    let Some(want) = &insert.value else {
        return truthy(v);
    };
    let same = |x: &Value| match x {
        Value::String(s) => s.trim().eq_ignore_ascii_case(want.trim()),
        Value::Number(n) => n.to_string() == want.trim(),
        Value::Bool(b) => b.to_string() == want.trim().to_ascii_lowercase(),
        _ => false,
    };
    match v {
        Value::Array(items) => items.iter().any(same),
        other => same(other),
    }
}

/// The insert codes a record selects, in the order the layout declares
/// them, and whether it asks to be diverted (`print.divert_field`).
pub fn chosen(settings: &PrintSettings, record: &Map<String, Value>) -> (Vec<String>, bool) {
    let inserts = settings
        .inserts
        .iter()
        .filter(|i| selects(i, record))
        .map(|i| i.code.clone())
        .collect();
    let divert = settings
        .divert_field
        .as_deref()
        .and_then(|f| crate::input::field(record, f))
        .is_some_and(truthy);
    (inserts, divert)
}

/// A piece's weight in grams (sheets, inserts, empty envelope; to 0.1 g)
/// and the first weight class it fits.
fn weigh(
    settings: &PrintSettings,
    sheets: usize,
    inserts: &[String],
    envelope: &str,
) -> (f64, String) {
    let inserts: f64 = inserts
        .iter()
        .filter_map(|c| settings.inserts.iter().find(|i| &i.code == c))
        .map(|i| i.weight)
        .sum();
    let envelope = settings
        .envelopes
        .iter()
        .find(|e| e.name == envelope)
        .map_or(0.0, |e| e.weight);
    let grams =
        ((sheets as f64 * settings.sheet_weight + inserts + envelope) * 10.0).round() / 10.0;
    let class = settings
        .weight_classes
        .iter()
        .find(|c| c.max.is_none_or(|m| grams <= m))
        .map_or_else(|| "over every weight class".to_string(), |c| c.name.clone());
    (grams, class)
}

/// Combines the letters (sorted by sequence) into print files under
/// `<out>/print/` and writes the job ticket. Returns the pieces and the
/// output summary.
pub fn produce(
    out: &Path,
    settings: &PrintSettings,
    letters: Vec<Letter>,
    run_id: &str,
) -> Result<(Vec<Piece>, PrintOutput), String> {
    produce_named(out, settings, letters, "print", "job-ticket", run_id)
}

/// [`produce`] with other names: print files `print/<stem>-NNN.pdf` and the
/// ticket `print/<ticket>.csv` and `.json` (reprints use their own).
pub fn produce_named(
    out: &Path,
    settings: &PrintSettings,
    mut letters: Vec<Letter>,
    stem: &str,
    ticket: &str,
    run_id: &str,
) -> Result<(Vec<Piece>, PrintOutput), String> {
    letters.sort_by_key(|l| l.sequence);
    let dir = out.join("print");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::util::fs::remove_stale_temp_files(&dir, "")
        .map_err(|e| format!("{}: {e}", dir.display()))?;

    let (pieces, groups) = place(settings, &letters, stem);
    let files = write_files(out, settings, &letters, &pieces, &groups, stem, run_id)?;
    let tickets = write_ticket(out, &pieces, &files, settings, ticket)?;
    let total: u64 = files.iter().map(|f| f.file.bytes).sum();
    let letter_count: usize = letters.iter().map(|l| l.parts.len()).sum();
    let household = settings.household.as_ref().map(|_| Householded {
        letters: letter_count,
        pieces: pieces.len(),
        saved: letter_count - pieces.len(),
    });
    let bytes_per_piece = if pieces.is_empty() {
        0
    } else {
        total / pieces.len() as u64
    };
    Ok((
        pieces,
        PrintOutput {
            plex: settings.plex,
            files,
            tickets,
            bytes_per_piece,
            household,
        },
    ))
}

/// A letter's pages padded to whole sheets.
fn pad(plex: Plex, pages: usize) -> usize {
    match plex {
        Plex::Duplex => pages + pages % 2,
        Plex::Simplex => pages,
    }
}

/// Places the letters (in sequence order) as pieces: each padded to whole
/// sheets, given an envelope (the letter's own or the first class its
/// sheets fit), and put in a print file, a new file starting when the next
/// piece would pass `max_sheets_per_file`. Returns the pieces and, per
/// print file, the indexes of its letters.
fn place(
    settings: &PrintSettings,
    letters: &[Letter],
    stem: &str,
) -> (Vec<Piece>, Vec<Vec<usize>>) {
    let mut pieces = Vec::with_capacity(letters.len());
    let mut groups: Vec<Vec<usize>> = vec![Vec::new()];
    let (mut file_sheets, mut file_pages) = (0usize, 0usize);
    for (i, l) in letters.iter().enumerate() {
        // In duplex every letter starts on the front of a sheet.
        let padded: usize = l.parts.iter().map(|p| pad(settings.plex, p.pages)).sum();
        let sheets = match settings.plex {
            Plex::Duplex => padded / 2,
            Plex::Simplex => padded,
        };
        if file_sheets > 0 && file_sheets + sheets > settings.max_sheets_per_file {
            groups.push(Vec::new());
            file_sheets = 0;
            file_pages = 0;
        }
        let file_no = groups.len();
        groups.last_mut().expect("a group").push(i);
        let envelope = l.envelope.clone().unwrap_or_else(|| {
            settings
                .envelopes
                .iter()
                .find(|e| e.max_sheets.is_none_or(|m| sheets <= m))
                .map_or_else(|| "unclassified".to_string(), |e| e.name.clone())
        });
        let (weight, weight_class) = l
            .weight
            .clone()
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
        pieces.push(Piece {
            sequence: l.sequence,
            record_id: first.to_owned(),
            records,
            print_file: format!("print/{stem}-{file_no:03}.pdf"),
            first_page: file_pages + 1,
            last_page: file_pages + padded,
            pages: padded,
            sheets,
            envelope,
            postcode: l.postcode.clone(),
            barcode: l.barcode.clone(),
            inserts: l.inserts.clone(),
            weight,
            weight_class,
            divert,
        });
        file_sheets += sheets;
        file_pages += padded;
    }
    (pieces, groups)
}

/// Writes each print file: its letters' PDFs padded and combined, with the
/// sheet marks.
fn write_files(
    out: &Path,
    settings: &PrintSettings,
    letters: &[Letter],
    pieces: &[Piece],
    groups: &[Vec<usize>],
    stem: &str,
    run_id: &str,
) -> Result<Vec<PrintFile>, String> {
    let mut files = Vec::new();
    for (n, group) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
        let mut parts = Vec::with_capacity(group.len());
        for &i in group {
            for part in &letters[i].parts {
                let path = out.join(&part.path);
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                parts.push((bytes, pad(settings.plex, part.pages)));
            }
        }
        let ids: Vec<(u32, Vec<String>, usize)> = group
            .iter()
            .map(|&i| {
                (
                    pieces[i].sequence,
                    pieces[i].inserts.clone(),
                    letters[i].parts.len(),
                )
            })
            .collect();
        let marks = SheetMarks {
            omr: settings.omr.as_ref(),
            code: settings.datamatrix.as_ref(),
            run_id,
            pieces: &ids,
        };
        let pdf = combine_marked(&parts, None, Some(&marks), settings.plex)?;
        let rel = format!("print/{stem}-{:03}.pdf", n + 1);
        crate::util::fs::write_atomic(&out.join(&rel), &pdf, true)
            .map_err(|e| format!("{rel}: {e}"))?;
        let in_file: Vec<&Piece> = group.iter().map(|&i| &pieces[i]).collect();
        let mrdf_rel = format!("print/{stem}-{:03}.mrdf.csv", n + 1);
        let mrdf = mrdf(&in_file, run_id)?;
        crate::util::fs::write_atomic(&out.join(&mrdf_rel), &mrdf, true)
            .map_err(|e| format!("{mrdf_rel}: {e}"))?;
        files.push(PrintFile {
            file: FileEntry::of(rel, &pdf),
            pieces: group.len(),
            pages: in_file.iter().map(|p| p.pages).sum(),
            sheets: in_file.iter().map(|p| p.sheets).sum(),
            mrdf: Some(FileEntry::of(mrdf_rel, &mrdf)),
        });
    }
    Ok(files)
}

/// The columns of a Mail Run Data File.
pub const MRDF_COLUMNS: [&str; 9] = [
    "piece_id",
    "sequence",
    "record_ids",
    "sheets",
    "inserts",
    "envelope",
    "weight_g",
    "weight_class",
    "divert",
];

/// A print file's Mail Run Data File: one row per piece in sequence, for a
/// file-based inserter (see `docs/print.md`).
fn mrdf(pieces: &[&Piece], run_id: &str) -> Result<Vec<u8>, String> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(MRDF_COLUMNS).map_err(|e| e.to_string())?;
    for p in pieces {
        csv.write_record([
            p.id(run_id),
            p.sequence.to_string(),
            p.record_ids(),
            p.sheets.to_string(),
            p.inserts.join("+"),
            p.envelope.clone(),
            format!("{:.1}", p.weight),
            p.weight_class.clone(),
            if p.divert { "1" } else { "0" }.to_string(),
        ])
        .map_err(|e| e.to_string())?;
    }
    csv.into_inner().map_err(|e| e.to_string())
}

/// The ticket's columns.
const TICKET_COLUMNS: [&str; 14] = [
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

/// The ticket's rows: one per piece in sequence, then a TOTAL row, one
/// FILE row per print file, one ENVELOPE row per envelope class, one
/// WEIGHT row per weight class (what postage is paid on) and one INSERT
/// row per selective insert (what each feeder must hold).
fn ticket_rows(
    pieces: &[Piece],
    files: &[PrintFile],
    settings: &PrintSettings,
) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = pieces
        .iter()
        .map(|p| {
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
        })
        .collect();
    // A totals row: its kind, what it counts, and the column that names it.
    let total = |kind: &str, ps: Vec<&Piece>, named: (usize, &str)| {
        let mut row = vec![String::new(); TICKET_COLUMNS.len()];
        row[0] = kind.to_string();
        row[1] = format!("{} pieces", ps.len());
        row[5] = ps.iter().map(|p| p.pages).sum::<usize>().to_string();
        row[6] = ps.iter().map(|p| p.sheets).sum::<usize>().to_string();
        // Plus 0.0: an empty sum of f64 is -0.0.
        row[11] = format!("{:.1}", 0.0 + ps.iter().map(|p| p.weight).sum::<f64>());
        row[13] = ps.iter().filter(|p| p.divert).count().to_string();
        row[named.0] = named.1.to_string();
        row
    };
    rows.push(total("TOTAL", pieces.iter().collect(), (0, "TOTAL")));
    for f in files {
        let ps = pieces.iter().filter(|p| p.print_file == f.file.path);
        rows.push(total("FILE", ps.collect(), (2, &f.file.path)));
    }
    for e in &settings.envelopes {
        let ps = pieces.iter().filter(|p| p.envelope == e.name);
        rows.push(total("ENVELOPE", ps.collect(), (7, &e.name)));
    }
    let mut classes: Vec<&str> = settings
        .weight_classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for p in pieces {
        if !classes.contains(&p.weight_class.as_str()) {
            classes.push(&p.weight_class);
        }
    }
    for c in classes {
        let ps: Vec<&Piece> = pieces.iter().filter(|p| p.weight_class == c).collect();
        if !ps.is_empty() {
            rows.push(total("WEIGHT", ps, (12, c)));
        }
    }
    for i in &settings.inserts {
        let ps = pieces.iter().filter(|p| p.inserts.contains(&i.code));
        rows.push(total("INSERT", ps.collect(), (10, &i.code)));
    }
    rows
}

/// The job ticket: one row per piece, then totals.
fn write_ticket(
    out: &Path,
    pieces: &[Piece],
    files: &[PrintFile],
    settings: &PrintSettings,
    name: &str,
) -> Result<Vec<FileEntry>, String> {
    let header = TICKET_COLUMNS;
    let rows = ticket_rows(pieces, files, settings);
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(header).map_err(|e| e.to_string())?;
    for r in &rows {
        csv.write_record(r).map_err(|e| e.to_string())?;
    }
    let csv = csv.into_inner().map_err(|e| e.to_string())?;
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Object(
                header
                    .iter()
                    .map(|h| h.to_string())
                    .zip(r.iter().map(|v| Value::String(v.clone())))
                    .collect(),
            )
        })
        .collect();
    let mut json = serde_json::to_vec_pretty(&json_rows).expect("JSON serializes");
    json.push(b'\n');
    let mut entries = Vec::new();
    for (rel, bytes) in [
        (format!("print/{name}.csv"), csv),
        (format!("print/{name}.json"), json),
    ] {
        crate::util::fs::write_atomic(&out.join(&rel), &bytes, true)
            .map_err(|e| format!("{rel}: {e}"))?;
        entries.push(FileEntry::of(rel, &bytes));
    }
    Ok(entries)
}

/// Combines PDFs into one, pages in order, padding each part to the given
/// page count with blank pages of its last page's size, and stores identical
/// streams once. Catalogs, structure trees and outlines of the parts are
/// left behind (a print file is for printing; a proof for reading). With a
/// title, the result gets an Info dictionary.
pub fn combine(parts: &[(Vec<u8>, usize)], title: Option<&str>) -> Result<Vec<u8>, String> {
    combine_marked(parts, title, None, Plex::Simplex)
}

/// [`combine`], with OMR marks on the front of every sheet.
fn combine_marked(
    parts: &[(Vec<u8>, usize)],
    title: Option<&str>,
    marks: Option<&SheetMarks>,
    plex: Plex,
) -> Result<Vec<u8>, String> {
    let mut out = Document::with_version("1.7");
    let pages_id = out.new_object_id();
    let mut kids: Vec<Object> = Vec::new();
    let mut own_pages: Vec<usize> = Vec::with_capacity(parts.len());
    let mut next_id = out.max_id + 1;
    for (bytes, padded) in parts {
        let own = append_part(&mut out, pages_id, bytes, *padded, &mut next_id, &mut kids)?;
        own_pages.push(own);
    }
    out.max_id = out.max_id.max(next_id);
    if let Some(marks) = marks.filter(|m| m.omr.is_some() || m.code.is_some()) {
        mark_sheets(&mut out, &kids, parts, &own_pages, marks, plex)?;
    }
    let count = kids.len() as i64;
    out.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = out.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    out.trailer.set("Root", catalog);
    if let Some(title) = title {
        let info = out.add_object(dictionary! {
            "Title" => Object::string_literal(title),
            "Creator" => Object::string_literal("letterpress"),
        });
        out.trailer.set("Info", info);
    }
    out.prune_objects();
    dedupe_streams(&mut out);
    let mut buf = Vec::new();
    out.save_to(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Appends the pages of the PDF `bytes` to `out` under `pages_id` (their
/// inherited attributes made their own, objects renumbered from
/// `next_id`), padded to `padded` pages with blanks of the last page's
/// size; returns its own page count.
fn append_part(
    out: &mut Document,
    pages_id: ObjectId,
    bytes: &[u8],
    padded: usize,
    next_id: &mut u32,
    kids: &mut Vec<Object>,
) -> Result<usize, String> {
    let mut doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
    for page_id in doc.get_pages().into_values() {
        let mut page = doc
            .get_dictionary(page_id)
            .map_err(|e| e.to_string())?
            .clone();
        for key in [&b"MediaBox"[..], b"Resources", b"CropBox", b"Rotate"] {
            if page.get(key).is_err() {
                if let Some(v) = inherited(&doc, page_id, key) {
                    page.set(key, v);
                }
            }
        }
        page.remove(b"StructParents");
        doc.objects.insert(page_id, Object::Dictionary(page));
    }
    doc.renumber_objects_with(*next_id);
    *next_id = doc.max_id + 1;
    let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
    let last_box = pages
        .last()
        .and_then(|id| doc.get_dictionary(*id).ok())
        .and_then(|d| d.get(b"MediaBox").ok().cloned());
    for (id, obj) in doc.objects {
        if matches!(obj.type_name().ok(), Some(b"Catalog") | Some(b"Pages")) {
            continue;
        }
        out.objects.insert(id, obj);
    }
    for id in &pages {
        if let Some(Object::Dictionary(d)) = out.objects.get_mut(id) {
            d.set("Parent", pages_id);
        }
        kids.push(Object::Reference(*id));
    }
    for _ in pages.len()..padded {
        let media = last_box.clone().unwrap_or_else(|| {
            Object::Array(vec![0.into(), 0.into(), 595.276.into(), 841.89.into()])
        });
        out.max_id = out.max_id.max(*next_id);
        let blank = out.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "MediaBox" => media,
            "Resources" => dictionary! {},
        });
        *next_id = out.max_id + 1;
        kids.push(Object::Reference(blank));
    }
    Ok(pages.len())
}

/// Puts each sheet's OMR marks and DataMatrix code on the front of every
/// sheet (and on a blank back that padding added), counting sheets by
/// piece: a household's piece of several letters is one set.
fn mark_sheets(
    out: &mut Document,
    kids: &[Object],
    parts: &[(Vec<u8>, usize)],
    own_pages: &[usize],
    marks: &SheetMarks,
    plex: Plex,
) -> Result<(), String> {
    let per_sheet = if plex == Plex::Duplex { 2 } else { 1 };
    // Where each part starts, and the pages padding added.
    let mut starts = Vec::with_capacity(parts.len());
    let mut padding = std::collections::HashSet::new();
    let mut page = 0;
    for (i, (_, padded)) in parts.iter().enumerate() {
        starts.push(page);
        padding.extend(page + own_pages[i]..page + padded);
        page += padded;
    }
    let mut sheet_in_file = 0;
    let mut part = 0;
    for (piece, inserts, count) in marks.pieces {
        let Some(&first) = starts.get(part) else {
            break;
        };
        let pages: usize = parts[part..(part + count).min(parts.len())]
            .iter()
            .map(|p| p.1)
            .sum();
        part += count;
        let sheets = pages.div_ceil(per_sheet);
        for s in 0..sheets {
            sheet_in_file += 1;
            let at = first + s * per_sheet;
            let front = match kids.get(at) {
                Some(Object::Reference(id)) => *id,
                _ => continue,
            };
            let height = page_height(out, front);
            let mut ops = String::new();
            if let Some(omr) = marks.omr {
                ops.push_str(&omr.content(Omr::marks(sheet_in_file, s + 1 == sheets), height));
            }
            if let Some(code) = marks.code {
                let payload = Code::payload(marks.run_id, *piece, s + 1, sheets, inserts);
                ops.push_str(&code.content(&payload, height)?);
            }
            // A blank padding page (the back of a letter's last sheet)
            // carries the sheet's marks too.
            if per_sheet == 2 && padding.contains(&(at + 1)) {
                if let Some(Object::Reference(id)) = kids.get(at + 1) {
                    mark_page(out, *id, ops.clone())?;
                }
            }
            mark_page(out, front, ops)?;
        }
    }
    Ok(())
}

/// Draws a sheet's marks (PDF operators) over a page: its content is
/// wrapped in `q`/`Q` so the marks are drawn in the page's default
/// coordinates.
fn mark_page(doc: &mut Document, page: ObjectId, ops: String) -> Result<(), String> {
    let open = doc.add_object(lopdf::Stream::new(dictionary! {}, b"q\n".to_vec()));
    let close = doc.add_object(lopdf::Stream::new(
        dictionary! {},
        format!("Q\n{ops}").into_bytes(),
    ));
    let dict = match doc.objects.get_mut(&page) {
        Some(Object::Dictionary(d)) => d,
        _ => return Err("a page is not a dictionary".into()),
    };
    let mut contents = vec![Object::Reference(open)];
    match dict.get(b"Contents") {
        Ok(Object::Array(a)) => contents.extend(a.iter().cloned()),
        Ok(other) => contents.push(other.clone()),
        Err(_) => {}
    }
    contents.push(Object::Reference(close));
    dict.set("Contents", Object::Array(contents));
    Ok(())
}

/// The height of a page in points (A4 if it cannot be read).
fn page_height(doc: &Document, page: ObjectId) -> f64 {
    match doc
        .get_dictionary(page)
        .ok()
        .and_then(|d| d.get(b"MediaBox").ok())
    {
        Some(Object::Array(a)) if a.len() == 4 => match &a[3] {
            Object::Real(r) => f64::from(*r),
            Object::Integer(i) => *i as f64,
            _ => 841.89,
        },
        _ => 841.89,
    }
}

/// Keeps one copy of streams that are byte-identical (dictionary and data)
/// and points every reference at it.
fn dedupe_streams(doc: &mut Document) {
    // Keyed by a 128-bit hash of dictionary and data, not by copies of them.
    let mut first: HashMap<u128, ObjectId> = HashMap::new();
    let mut alias: HashMap<ObjectId, ObjectId> = HashMap::new();
    for (id, obj) in &doc.objects {
        if let Object::Stream(s) = obj {
            let key = typst::utils::hash128(&(format!("{:?}", s.dict), &s.content));
            match first.get(&key) {
                Some(keep) => {
                    alias.insert(*id, *keep);
                }
                None => {
                    first.insert(key, *id);
                }
            }
        }
    }
    if alias.is_empty() {
        return;
    }
    fn redirect(o: &mut Object, alias: &HashMap<ObjectId, ObjectId>) {
        match o {
            Object::Reference(r) => {
                if let Some(k) = alias.get(r) {
                    *r = *k;
                }
            }
            Object::Array(a) => a.iter_mut().for_each(|x| redirect(x, alias)),
            Object::Dictionary(d) => d.iter_mut().for_each(|(_, x)| redirect(x, alias)),
            Object::Stream(s) => s.dict.iter_mut().for_each(|(_, x)| redirect(x, alias)),
            _ => {}
        }
    }
    for obj in doc.objects.values_mut() {
        redirect(obj, &alias);
    }
    for id in alias.keys() {
        doc.objects.remove(id);
    }
}

/// A page attribute set on the page or one of its ancestors.
fn inherited(doc: &Document, page: ObjectId, key: &[u8]) -> Option<Object> {
    let mut current = page;
    for _ in 0..32 {
        let node = doc.get_dictionary(current).ok()?;
        if let Ok(v) = node.get(key) {
            return Some(v.clone());
        }
        current = node.get(b"Parent").ok()?.as_reference().ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> PrintSettings {
        serde_yaml::from_str(yaml).expect("the test settings parse")
    }

    fn letters(pages: &[usize]) -> Vec<Letter> {
        pages
            .iter()
            .enumerate()
            .map(|(i, &pages)| Letter {
                sequence: i as u32 + 1,
                parts: vec![Part {
                    record_id: format!("C-{}", i + 1),
                    path: format!("pdf/C-{}.pdf", i + 1),
                    pages,
                }],
                postcode: String::new(),
                envelope: None,
                barcode: String::new(),
                inserts: Vec::new(),
                divert: false,
                weight: None,
            })
            .collect()
    }

    #[test]
    fn duplex_pads_to_whole_sheets_and_pages_run_on_within_a_file() {
        let s = settings("plex: duplex\nenvelopes: [{name: DL, max_sheets: 1}, {name: C4}]\n");
        let (pieces, groups) = place(&s, &letters(&[1, 2, 3]), "print");
        let shape: Vec<_> = pieces
            .iter()
            .map(|p| {
                (
                    p.first_page,
                    p.last_page,
                    p.pages,
                    p.sheets,
                    p.envelope.as_str(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [(1, 2, 2, 1, "DL"), (3, 4, 2, 1, "DL"), (5, 8, 4, 2, "C4")]
        );
        assert_eq!(groups, [vec![0, 1, 2]]);
        assert!(pieces.iter().all(|p| p.print_file == "print/print-001.pdf"));
    }

    #[test]
    fn a_households_letters_each_start_a_sheet_and_make_one_piece() {
        let s = settings("plex: duplex\n");
        let mut l = letters(&[3, 1]);
        let second = l.remove(1).parts.remove(0);
        l[0].parts.push(second);
        let (pieces, _) = place(&s, &l, "print");
        assert_eq!(pieces.len(), 1);
        let p = &pieces[0];
        assert_eq!((p.pages, p.sheets), (6, 3), "3 pages pad to 4, 1 to 2");
        assert_eq!(p.records, ["C-1", "C-2"]);
        assert_eq!(p.record_ids(), "C-1+C-2");
    }

    #[test]
    fn simplex_counts_a_sheet_a_page() {
        let s = settings("plex: simplex\n");
        let (pieces, _) = place(&s, &letters(&[1, 3]), "print");
        let sheets: Vec<_> = pieces.iter().map(|p| (p.pages, p.sheets)).collect();
        assert_eq!(sheets, [(1, 1), (3, 3)]);
    }

    #[test]
    fn a_new_file_starts_before_a_piece_would_pass_the_limit_never_inside_one() {
        let s = settings("plex: simplex\nmax_sheets_per_file: 4\n");
        // 3 + 2 > 4: the second piece opens file 2; a piece larger than the
        // limit still goes whole into a file of its own.
        let (pieces, groups) = place(&s, &letters(&[3, 2, 2, 6, 1]), "reprint");
        assert_eq!(groups, [vec![0], vec![1, 2], vec![3], vec![4]]);
        let files: Vec<_> = pieces
            .iter()
            .map(|p| (p.print_file.as_str(), p.first_page))
            .collect();
        assert_eq!(
            files,
            [
                ("print/reprint-001.pdf", 1),
                ("print/reprint-002.pdf", 1),
                ("print/reprint-002.pdf", 3),
                ("print/reprint-003.pdf", 1),
                ("print/reprint-004.pdf", 1),
            ]
        );
    }

    #[test]
    fn a_letter_keeps_its_envelope_and_one_too_thick_for_all_is_unclassified() {
        let s = settings("plex: simplex\nenvelopes: [{name: DL, max_sheets: 2}]\n");
        let mut l = letters(&[1, 5]);
        l[0].envelope = Some("C5".into());
        let (pieces, _) = place(&s, &l, "print");
        assert_eq!(pieces[0].envelope, "C5");
        assert_eq!(pieces[1].envelope, "unclassified");
    }

    #[test]
    fn the_ticket_totals_agree_with_its_rows() {
        let s = settings(
            "plex: duplex\nmax_sheets_per_file: 2\n\
             envelopes: [{name: DL, max_sheets: 1, weight: 5}, {name: C4, weight: 15}]\n\
             weight_classes: [{name: light, max: 12}, {name: heavy}]\n",
        );
        let (pieces, groups) = place(&s, &letters(&[2, 1, 4]), "print");
        let weights: Vec<(f64, &str)> = pieces
            .iter()
            .map(|p| (p.weight, p.weight_class.as_str()))
            .collect();
        assert_eq!(weights, [(10.0, "light"), (10.0, "light"), (25.0, "heavy")]);
        let files: Vec<PrintFile> = groups
            .iter()
            .enumerate()
            .map(|(n, g)| PrintFile {
                file: FileEntry::of(format!("print/print-{:03}.pdf", n + 1), b""),
                pieces: g.len(),
                pages: g.iter().map(|&i| pieces[i].pages).sum(),
                sheets: g.iter().map(|&i| pieces[i].sheets).sum(),
                mrdf: None,
            })
            .collect();
        let rows = ticket_rows(&pieces, &files, &s);
        let totals: Vec<Vec<&str>> = rows[3..]
            .iter()
            .map(|r| {
                [0, 1, 2, 5, 6, 7, 11, 12]
                    .iter()
                    .map(|&i| r[i].as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            totals,
            [
                vec!["TOTAL", "3 pieces", "", "8", "4", "", "45.0", ""],
                vec![
                    "FILE",
                    "2 pieces",
                    "print/print-001.pdf",
                    "4",
                    "2",
                    "",
                    "20.0",
                    ""
                ],
                vec![
                    "FILE",
                    "1 pieces",
                    "print/print-002.pdf",
                    "4",
                    "2",
                    "",
                    "25.0",
                    ""
                ],
                vec!["ENVELOPE", "2 pieces", "", "4", "2", "DL", "20.0", ""],
                vec!["ENVELOPE", "1 pieces", "", "4", "2", "C4", "25.0", ""],
                vec!["WEIGHT", "2 pieces", "", "4", "2", "", "20.0", "light"],
                vec!["WEIGHT", "1 pieces", "", "4", "2", "", "25.0", "heavy"],
            ]
        );
    }

    #[test]
    fn inserts_are_selected_by_flag_value_or_list_and_weighed() {
        let s = settings(
            "inserts:\n\
             - {code: A, name: a, weight: 3, field: flags.a}\n\
             - {code: B, name: b, weight: 7, field: offers, value: Savings}\n\
             divert_field: review\n",
        );
        let record = |v: Value| v.as_object().unwrap().clone();
        let cases = [
            (
                serde_json::json!({"flags": {"a": "Yes"}, "offers": ["savings ", "isa"]}),
                vec!["A", "B"],
                false,
            ),
            (
                serde_json::json!({"flags": {"a": 0}, "offers": "Savings", "review": true}),
                vec!["B"],
                true,
            ),
            (
                serde_json::json!({"flags": {"a": 1.5}, "offers": ["isa"], "review": "no"}),
                vec!["A"],
                false,
            ),
            (serde_json::json!({"offers": null}), vec![], false),
        ];
        for (data, inserts, divert) in cases {
            assert_eq!(
                chosen(&s, &record(data.clone())),
                (inserts.iter().map(|c| c.to_string()).collect(), divert),
                "{data}"
            );
        }
        let inserts = vec!["A".to_string(), "B".to_string()];
        assert_eq!(weigh(&s, 2, &inserts, "C5/6"), (24.5, "letter".to_string()));
        assert_eq!(
            weigh(&s, 150, &inserts, "C4"),
            (775.0, "parcel".to_string())
        );
    }
}
