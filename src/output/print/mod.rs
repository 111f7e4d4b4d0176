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
//! the first class whose `max_sheets` it fits). Print files are written as
//! a stream ([`stream`]): a piece at a time, identical objects of the
//! letters (the logo, colour profiles) stored once per file, with PDF/VT
//! document parts, one per piece. The job ticket `print/job-ticket.csv` (and
//! `.json`) has one row per piece, then totals rows whose `sequence` is
//! `TOTAL`, `FILE`, `ENVELOPE`, `WEIGHT` or `INSERT`; each print file has its
//! Mail Run Data File for the inserter (`docs/src/reference/print-files.md`).

pub mod household;
pub mod imb;
pub mod mailmark;
pub mod pdfx;
mod produce;
mod stream;

#[cfg(test)]
use produce::{place, ticket_rows};
pub use produce::{produce, produce_named, produce_stream, MRDF_COLUMNS};

use std::ops::Range;

use lopdf::{dictionary, Object};
use serde_json::{Map, Value};

use crate::model::print::{
    Code, ImbSettings, Insert, MailmarkSettings, Omr, Piece, Plex, Postal, PrintSettings,
};
use stream::{PdfStream, Source, Take};

impl PrintSettings {
    /// The record fields a piece's postal barcode is made from: the ZIP
    /// for the IMb, postcode and DPS for Mailmark.
    pub fn routing(&self, record: &Map<String, Value>) -> Option<(String, String)> {
        use crate::input::field_text;
        if let Some(imb) = &self.imb {
            return Some((field_text(record, &imb.zip_field), String::new()));
        }
        self.mailmark.as_ref().map(|m| {
            let country = field_text(record, &m.country_field).trim().to_lowercase();
            let uk = ["", "gb", "uk", "united kingdom", "great britain"];
            if !uk.contains(&country.as_str()) {
                return (mailmark::INTERNATIONAL.to_owned(), String::new());
            }
            let dps = m.dps_field.as_deref().map(|f| field_text(record, f));
            (
                field_text(record, &m.postcode_field),
                dps.unwrap_or_default(),
            )
        })
    }

    /// A piece's postal barcode from its routing fields (see [`Self::routing`]).
    pub fn postal(
        &self,
        sequence: u32,
        (a, b): &(String, String),
    ) -> Option<Result<Postal, String>> {
        if let Some(imb) = &self.imb {
            return Some(imb.barcode(sequence, a).map(|(payload, bars)| Postal {
                payload,
                key: "imb",
                value: Value::String(bars),
            }));
        }
        self.mailmark.as_ref().map(|m| m.barcode(sequence, a, b))
    }
}

impl MailmarkSettings {
    /// The 4-state content and bars of a piece, and with `two_d` its 2D
    /// code's content (its modules are drawn up when the letter is laid
    /// out, see [`crate::render::pdf`]: not held for every piece of a run).
    pub fn barcode(&self, sequence: u32, postcode: &str, dps: &str) -> Result<Postal, String> {
        let fail = |e: String| format!("Mailmark: {e}");
        let pc = mailmark::postcode_dps(postcode, dps).map_err(fail)?;
        let item = self.item_id_offset + u64::from(sequence);
        if item > 99_999_999 {
            return Err(fail(format!(
                "item id {item} does not fit 8 digits (item_id_offset too large)"
            )));
        }
        let width = if self.barcode == "C" { 2 } else { 6 };
        let scid = padded(&self.supply_chain_id, width).map_err(fail)?;
        let content = format!("{}1{}{scid}{item:08}{pc}", self.format, self.class);
        let bars = mailmark::encode(&content).map_err(fail)?;
        let mut value = serde_json::json!({"bars": bars, "content": content});
        if let Some(d) = &self.two_d {
            let scid = padded(&self.supply_chain_id, 7).map_err(fail)?;
            let rts = d.return_postcode.replace(' ', "").to_uppercase();
            let code = format!(
                "JGB {}1{}{scid}{item:08}{pc}{}{rts:<7}      ",
                d.information_type, self.class, d.service_type
            );
            value["two_d"] = serde_json::json!({ "content": code });
        }
        Ok(Postal {
            payload: content,
            key: "mailmark",
            value,
        })
    }
}

/// Digits zero-padded to `width`, or why they cannot be.
fn padded(digits: &str, width: usize) -> Result<String, String> {
    match digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() && digits.len() <= width
    {
        true => Ok(format!("{digits:0>width$}")),
        false => Err(format!(
            "supply chain id {digits:?} is not 1 to {width} digits"
        )),
    }
}

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

    /// PDF drawing operators for a code on a page `height` pt tall: one
    /// rectangle per horizontal run of dark modules, in module units (a
    /// `cm` scales them), which keeps a sheet's marks to a few hundred
    /// bytes once compressed.
    fn content(&self, payload: &str, height: f64) -> Result<String, String> {
        use std::fmt::Write;
        let code = datamatrix::DataMatrix::encode_str(payload, datamatrix::SymbolList::default())
            .map_err(|e| format!("DataMatrix for {payload:?}: {e:?}"))?;
        let bitmap = code.bitmap();
        let h = bitmap.height();
        let pt = |mm: f64| mm * 72.0 / 25.4;
        let m = pt(self.module);
        let (x0, y0) = (pt(self.left), height - pt(self.top) - h as f64 * m);
        let mut ops = format!("q 0 g {m:.4} 0 0 {m:.4} {x0:.3} {y0:.3} cm\n");
        // Dark modules come row by row, left to right: join each row's
        // neighbours into runs (x, y, length).
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (x, y) in bitmap.pixels() {
            match runs.last_mut() {
                Some((rx, ry, len)) if *ry == y && *rx + *len == x => *len += 1,
                _ => runs.push((x, y, 1)),
            }
        }
        for (x, y, len) in runs {
            // Rows count down from the top; PDF's y goes up.
            let _ = writeln!(ops, "{x} {} {len} 1 re", h - 1 - y);
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
        let mut ops = String::from("q 0 g\n");
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
    /// The rendered PDF, relative to the output folder, where its pages
    /// come from (empty when they come from the run, see [`Pages`]).
    pub path: String,
    /// Its page count.
    pub pages: usize,
    /// Where the run's record spool keeps its record (a print run), to lay
    /// it out again for a print file.
    pub record_at: Option<u64>,
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

/// Combines PDFs into one, pages in order, padding each part to the given
/// page count with blank pages of its last page's size, and stores identical
/// streams once. Catalogs, structure trees and outlines of the parts are
/// left behind (a print file is for printing; a proof for reading). With a
/// title, the result gets an Info dictionary.
pub fn combine(parts: &[(Vec<u8>, usize)], title: Option<&str>) -> Result<Vec<u8>, String> {
    let mut pdf = PdfStream::new(Vec::new(), Plex::Simplex, false, None)?;
    for (bytes, padded) in parts {
        let source = Source::load(bytes)?;
        let take = Take {
            source: 0,
            pages: 0..source.page_count(),
            padded: *padded,
        };
        pdf.add_piece(&mut [source], &[take], None)?;
    }
    pdf.finish(title)
}

/// A piece's PDF/VT document part metadata: run id, piece, records,
/// sheets, envelope.
fn dpm(piece: &Piece, run_id: &str) -> lopdf::Dictionary {
    let records: Vec<Object> = piece
        .record_ids()
        .split('+')
        .map(Object::string_literal)
        .collect();
    dictionary! {
        "RunID" => Object::string_literal(run_id),
        "Piece" => i64::from(piece.sequence),
        "Records" => records,
        "Sheets" => piece.sheets as i64,
        "Envelope" => Object::string_literal(piece.envelope.as_str()),
    }
}

/// Where a print file's pages come from when its letters share their
/// fonts: runs of letters exported together (see
/// [`crate::render::pdf::Renderer::export_together`]), given by the run,
/// which kept them from the letters' one layout or lays them out again.
pub trait Pages: Sync {
    /// The PDF of the run (see [`export_run`]) of a print file's letters
    /// (all or some of the run's), and how many pages in it come before
    /// theirs, which follow one after the other.
    fn pages(&self, letters: &[&Letter]) -> Result<(Vec<u8>, usize), String>;
}

/// The pages of a print run's letters, when they share their fonts.
pub type Together<'a> = &'a dyn Pages;

/// The pieces a print file's letters are exported together in (a run;
/// see [`export_run`]): their fonts are subset once for all of them, where
/// each letter's own PDF carries its own subsets. Measured on 20,000
/// welcome letters (one page each; two runs made while two are written):
/// 32 pages give 4.1 KB a letter, 64 pages 3.8 KB, 128 pages 3.6 KB, 256
/// pages 3.6 KB, and each doubling about 20 MB more peak memory; 32
/// keeps a 100,000-letter run under 200 MB.
pub const EXPORT_PIECES: u32 = 32;

/// The run a piece's letters are exported in: pieces 1 to 32 make the
/// first, and so on. It depends on the piece's number alone, so a run is
/// the same letters, and the same bytes, whether its pages were kept when
/// the letters were rendered or laid out again (a resumed run); a run may
/// span two print files, each taking its own pages from it.
pub fn export_run(sequence: u32) -> usize {
    (sequence.saturating_sub(1) / EXPORT_PIECES) as usize
}

/// A print file's letters split by their runs (see [`export_run`]).
fn export_runs(letters: &[&Letter]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, l) in letters.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if export_run(letters[r.start].sequence) == export_run(l.sequence) => {
                r.end = i + 1;
            }
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::file::FileEntry;
    use crate::model::print::PrintFile;

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
                    record_at: None,
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
        let (pieces, groups) = place(&s, &mut letters(&[1, 2, 3]), "print");
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
        let (pieces, _) = place(&s, &mut l, "print");
        assert_eq!(pieces.len(), 1);
        let p = &pieces[0];
        assert_eq!((p.pages, p.sheets), (6, 3), "3 pages pad to 4, 1 to 2");
        assert_eq!(p.records, ["C-1", "C-2"]);
        assert_eq!(p.record_ids(), "C-1+C-2");
    }

    #[test]
    fn simplex_counts_a_sheet_a_page() {
        let s = settings("plex: simplex\n");
        let (pieces, _) = place(&s, &mut letters(&[1, 3]), "print");
        let sheets: Vec<_> = pieces.iter().map(|p| (p.pages, p.sheets)).collect();
        assert_eq!(sheets, [(1, 1), (3, 3)]);
    }

    #[test]
    fn letters_are_exported_together_in_runs_of_32_pieces_by_number() {
        let mut l = letters(&[1; 70]);
        l.remove(40);
        l.remove(3);
        let refs: Vec<&Letter> = l.iter().collect();
        // Pieces 1-32, 33-64, 65-70 (a piece missing changes no run).
        assert_eq!(export_runs(&refs), vec![0..31, 31..62, 62..68]);
        assert_eq!((export_run(32), export_run(33)), (0, 1));
        // A print file starting inside a run takes the rest of it.
        assert_eq!(export_runs(&refs[40..]), vec![0..22, 22..28]);
        assert!(export_runs(&[]).is_empty());
    }

    #[test]
    fn a_new_file_starts_before_a_piece_would_pass_the_limit_never_inside_one() {
        let s = settings("plex: simplex\nmax_sheets_per_file: 4\n");
        // 3 + 2 > 4: the second piece opens file 2; a piece larger than the
        // limit still goes whole into a file of its own.
        let (pieces, groups) = place(&s, &mut letters(&[3, 2, 2, 6, 1]), "reprint");
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
        let (pieces, _) = place(&s, &mut l, "print");
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
        let (pieces, groups) = place(&s, &mut letters(&[2, 1, 4]), "print");
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
