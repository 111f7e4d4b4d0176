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

use std::collections::HashMap;
use std::path::Path;

use lopdf::{dictionary, Document, Object, ObjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Paper handling of a print run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plex {
    /// One side per sheet.
    #[default]
    Simplex,
    /// Both sides; every letter starts on the front of a sheet.
    Duplex,
}

/// An envelope class: pieces of up to `max_sheets` sheets (no limit when
/// absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The class's name, e.g. `C5/6` or `hand insert`.
    pub name: String,
    /// The most sheets this envelope takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sheets: Option<usize>,
}

/// The `print:` section of `layout.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintSettings {
    /// Simplex or duplex.
    #[serde(default)]
    pub plex: Plex,
    /// Mailing order: record fields (dotted paths), then the record id.
    #[serde(default)]
    pub sort: Vec<String>,
    /// The record field printed as the postcode in the ticket.
    #[serde(default = "default_postcode")]
    pub postcode_field: String,
    /// A print file holds at most this many sheets.
    #[serde(default = "default_max_sheets")]
    pub max_sheets_per_file: usize,
    /// Envelope classes by sheet count, smallest first.
    #[serde(default = "default_envelopes")]
    pub envelopes: Vec<Envelope>,
    /// The envelope window the address must fit, checked on every letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Inserter marks printed on every sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omr: Option<Omr>,
    /// A 2D DataMatrix code printed on every sheet instead of (or besides) OMR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datamatrix: Option<Code>,
    /// A USPS Intelligent Mail barcode per piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imb: Option<ImbSettings>,
}

/// The USPS Intelligent Mail barcode of each piece: the tracking code is
/// barcode id + service type + mailer id + serial, the serial being
/// `serial_offset` + the piece number, zero-padded so that mailer id and
/// serial make 15 digits; the routing code is the record's ZIP (digits of
/// `zip_field`). Templates get the bars at `json("/letterpress/piece.json").imb`
/// and draw them with `imb(..)` from `/letterpress/print.typ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImbSettings {
    /// Two digits, the second 0-4.
    pub barcode_id: String,
    /// Three digits.
    pub service_type: String,
    /// Six or nine digits.
    pub mailer_id: String,
    /// Added to the piece number to make the serial.
    #[serde(default)]
    pub serial_offset: u64,
    /// The record field with the ZIP code (5, 9 or 11 digits; `-` and spaces ignored).
    #[serde(default = "default_zip")]
    pub zip_field: String,
}

fn default_zip() -> String {
    "address.postcode".into()
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
        let bars = crate::imb::encode(&tracking, &routing).map_err(|e| format!("IMb: {e}"))?;
        let payload = if routing.is_empty() {
            tracking
        } else {
            format!("{tracking}-{routing}")
        };
        Ok((payload, bars))
    }
}

/// The engine's Typst module for print marks, served at `/letterpress/print.typ`.
pub const TYPST_MODULE: &str = r#"// Print helpers provided by the letterpress engine.

// A USPS Intelligent Mail barcode from its 65 bars ("F", "A", "D", "T"), as
// the engine serves them at json("/letterpress/piece.json").imb: bars
// 0.02 in wide at 22 bars per inch, full height 0.145 in, tracker 0.05 in.
// Nothing when there are no bars (outside a print run).
#let imb(bars) = if bars == none { none } else {
  let (w, pitch) = (0.02in, 1in / 22)
  let (full, track) = (0.145in, 0.05in)
  let half = (full - track) / 2
  box(width: 65 * pitch, height: full, {
    for (i, b) in bars.clusters().enumerate() {
      let (y, h) = if b == "F" { (0pt, full) } else if b == "A" { (0pt, half + track) } else if b == "D" { (half, half + track) } else { (half, track) }
      place(top + left, dx: i * pitch, dy: y, rect(width: w, height: h, fill: black, stroke: none))
    }
  })
}

// The address block placed where an envelope window shows it, labelled
// <address> so the engine's window check measures it. `window` is
// "din-5008-b" or "din-5008-a" (A4; DL and C5/6 windows: 85 x 45 mm, the
// return line in its top 17.7 mm, the address below) or "us-10" (US
// Letter, tri-folded into a #10 window envelope). `margin` must be the
// page's top-left margins, as `place` measures from there. With `barcode`
// (the bars of piece.json's imb), the Intelligent Mail barcode goes in the
// block, under the address.
#let address-window(recipient, return-line: none, window: "din-5008-b", margin: (left: 25mm, top: 20mm), barcode: none) = {
  let (x, y, w, h, head) = if window == "din-5008-b" { (20mm, 45mm, 85mm, 45mm, 17.7mm) } else if window == "din-5008-a" { (20mm, 27mm, 85mm, 45mm, 17.7mm) } else if window == "us-10" { (0.875in + 0.125in, 2.5in + 0.125in, 4.25in, 0.875in, 0pt) } else { panic("unknown window: " + window) }
  place(top + left, dx: x - margin.left, dy: y - margin.top, box(width: w, height: h, inset: (x: 5mm * int(head > 0pt)), {
    if head > 0pt {
      block(height: head, inset: (top: head - 5mm), text(size: 7pt, return-line))
    }
    [#block(text(size: 9.5pt, recipient)) <address>]
    if barcode != none { v(1mm); imb(barcode) }
  }))
}
"#;

/// A DataMatrix (ECC 200) code on the front of every sheet, encoding
/// `<run id>|<piece>|<sheet>/<sheets>`, drawn as vector modules at `left`,
/// `top` (mm from the page's top-left corner), each module `module` mm.
/// Leave at least two modules of white around it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// From the left edge.
    #[serde(default = "dm_left")]
    pub left: f64,
    /// From the top edge.
    #[serde(default = "dm_top")]
    pub top: f64,
    /// Module size.
    #[serde(default = "dm_module")]
    pub module: f64,
}

fn dm_left() -> f64 {
    5.0
}
fn dm_top() -> f64 {
    255.0
}
fn dm_module() -> f64 {
    0.5
}

impl Code {
    /// The payload of a sheet's code.
    pub fn payload(run_id: &str, piece: u32, sheet: usize, sheets: usize) -> String {
        format!("{run_id}|{piece}|{sheet}/{sheets}")
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
    /// The piece number of each part.
    pub pieces: &'a [u32],
}

/// OMR inserter marks: a column of short horizontal bars near the left
/// edge of the front of every sheet (blank padding sheets included), read
/// by the inserting machine. From the top, one position per mark: start
/// (always), end of set (last sheet of a piece), three bits of the sheet
/// number in the print file (1-based, modulo 8, lowest bit first), parity
/// (makes the number of bars even) and safety (always). Geometry in mm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Omr {
    /// From the left edge to the bars' left ends.
    #[serde(default = "omr_left")]
    pub left: f64,
    /// From the top edge to the first mark.
    #[serde(default = "omr_top")]
    pub top: f64,
    /// Between marks.
    #[serde(default = "omr_pitch")]
    pub pitch: f64,
    /// Bar length.
    #[serde(default = "omr_length")]
    pub length: f64,
    /// Bar thickness.
    #[serde(default = "omr_thickness")]
    pub thickness: f64,
}

fn omr_left() -> f64 {
    4.0
}
fn omr_top() -> f64 {
    120.0
}
fn omr_pitch() -> f64 {
    4.0
}
fn omr_length() -> f64 {
    10.0
}
fn omr_thickness() -> f64 {
    0.5
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

/// An envelope window on the first page, in millimetres from the page's
/// top-left corner: a preset (`din-5008-a`, `din-5008-b`: the address field
/// of DIN 5008 forms A and B, 85 × 45 mm at 20 mm from the left and 27 or
/// 45 mm from the top; `us-10`: a #10 window over a tri-folded US Letter
/// sheet, 4 1/2 × 1 1/8 in at 7/8 in from the left and 2 1/2 in from the
/// top) or explicit `{left, top, width, height}`. The
/// template labels its address block `<address>`; the engine measures the
/// text inside it from the compiled document, and a letter whose address
/// does not lie wholly inside the window fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Window {
    /// A named window.
    Preset(String),
    /// A window in millimetres.
    Area {
        /// From the left edge.
        left: f64,
        /// From the top edge.
        top: f64,
        /// Width.
        width: f64,
        /// Height.
        height: f64,
    },
}

impl Window {
    /// `(left, top, width, height)` in millimetres.
    pub fn area(&self) -> Result<(f64, f64, f64, f64), String> {
        match self {
            Window::Preset(p) if p == "din-5008-b" => Ok((20.0, 45.0, 85.0, 45.0)),
            Window::Preset(p) if p == "din-5008-a" => Ok((20.0, 27.0, 85.0, 45.0)),
            // A #10 envelope's window (4 1/2 x 1 1/8 in, 7/8 in from the
            // left, 1/2 in from the bottom) over a tri-folded US Letter
            // sheet: 2 1/2 in from the sheet's top edge.
            Window::Preset(p) if p == "us-10" => Ok((22.225, 63.5, 114.3, 28.575)),
            Window::Preset(p) => Err(format!(
                "print.window `{p}` is not a known window (din-5008-a, din-5008-b, us-10, or {{left, top, width, height}} in mm)"
            )),
            Window::Area { left, top, width, height } => Ok((*left, *top, *width, *height)),
        }
    }
}

fn default_postcode() -> String {
    "address.postcode".into()
}

/// Combining holds a print file's letters in memory (about 240 KB a letter
/// with lopdf), so files stay at a size a print shop handles well anyway.
fn default_max_sheets() -> usize {
    1_000
}

fn default_envelopes() -> Vec<Envelope> {
    vec![
        Envelope {
            name: "C5/6".into(),
            max_sheets: Some(5),
        },
        Envelope {
            name: "C4".into(),
            max_sheets: Some(50),
        },
        Envelope {
            name: "hand insert".into(),
            max_sheets: None,
        },
    ]
}

impl Default for PrintSettings {
    fn default() -> Self {
        PrintSettings {
            plex: Plex::Simplex,
            sort: Vec::new(),
            postcode_field: default_postcode(),
            max_sheets_per_file: default_max_sheets(),
            envelopes: default_envelopes(),
            window: None,
            omr: None,
            datamatrix: None,
            imb: None,
        }
    }
}

/// The value at a dotted path of a record, as text (empty when absent).
pub fn field_text(record: &Map<String, Value>, path: &str) -> String {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return String::new();
    };
    let mut v = record.get(first);
    for p in parts {
        v = v.and_then(|x| x.get(p));
    }
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// One mail piece in a print file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Piece {
    /// 1-based position in mailing order.
    pub sequence: u32,
    /// The record.
    pub record_id: String,
    /// The print file, relative to the output folder.
    pub print_file: String,
    /// First page in the print file (1-based).
    pub first_page: usize,
    /// Last page, padding included.
    pub last_page: usize,
    /// Pages of the letter, padding included.
    pub pages: usize,
    /// Sheets.
    pub sheets: usize,
    /// Envelope class.
    pub envelope: String,
    /// Postcode, for the shop.
    pub postcode: String,
    /// Postal barcode payload (empty: none yet).
    pub barcode: String,
}

/// A piece waiting to be placed: its letter and what the ticket shows.
pub struct Letter {
    /// Mailing-order number.
    pub sequence: u32,
    /// The record id.
    pub record_id: String,
    /// The rendered PDF, relative to the output folder.
    pub path: String,
    /// Its page count.
    pub pages: usize,
    /// The postcode.
    pub postcode: String,
    /// The envelope class, when already known (a reprint keeps the original's).
    pub envelope: Option<String>,
    /// The postal barcode payload, if any.
    pub barcode: String,
}

/// A written print file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrintFile {
    /// Relative to the output folder.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Pieces in it.
    pub pieces: usize,
    /// Pages, padding included.
    pub pages: usize,
    /// Sheets.
    pub sheets: usize,
}

/// What `print` produced: files, pieces, and the ticket's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrintOutput {
    /// Simplex or duplex.
    pub plex: Plex,
    /// The print files.
    pub files: Vec<PrintFile>,
    /// The job ticket files (CSV and JSON), with their hashes.
    pub tickets: Vec<crate::manifest::FileEntry>,
    /// Bytes of the print files per piece, for the README's figure.
    pub bytes_per_piece: u64,
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
fn produce_named(
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
    crate::output::remove_stale_temp_files(&dir, "")
        .map_err(|e| format!("{}: {e}", dir.display()))?;

    // Place the pieces: padding, sheets, envelope, file.
    let mut pieces = Vec::with_capacity(letters.len());
    let mut groups: Vec<Vec<usize>> = vec![Vec::new()];
    let (mut file_sheets, mut file_pages) = (0usize, 0usize);
    for (i, l) in letters.iter().enumerate() {
        let padded = match settings.plex {
            Plex::Duplex => l.pages + l.pages % 2,
            Plex::Simplex => l.pages,
        };
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
        pieces.push(Piece {
            sequence: l.sequence,
            record_id: l.record_id.clone(),
            print_file: format!("print/{stem}-{file_no:03}.pdf"),
            first_page: file_pages + 1,
            last_page: file_pages + padded,
            pages: padded,
            sheets,
            envelope,
            postcode: l.postcode.clone(),
            barcode: l.barcode.clone(),
        });
        file_sheets += sheets;
        file_pages += padded;
    }

    // Write each print file.
    let mut files = Vec::new();
    for (n, group) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
        let mut parts = Vec::with_capacity(group.len());
        for &i in group {
            let path = out.join(&letters[i].path);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            parts.push((bytes, pieces[i].pages));
        }
        let sequences: Vec<u32> = group.iter().map(|&i| pieces[i].sequence).collect();
        let marks = SheetMarks {
            omr: settings.omr.as_ref(),
            code: settings.datamatrix.as_ref(),
            run_id,
            pieces: &sequences,
        };
        let pdf = combine_marked(&parts, None, Some(&marks), settings.plex)?;
        let rel = format!("print/{stem}-{:03}.pdf", n + 1);
        crate::output::write_atomic(&out.join(&rel), &pdf, true)
            .map_err(|e| format!("{rel}: {e}"))?;
        files.push(PrintFile {
            sha256: crate::output::sha256_hex(&pdf),
            bytes: pdf.len() as u64,
            pieces: group.len(),
            pages: group.iter().map(|&i| pieces[i].pages).sum(),
            sheets: group.iter().map(|&i| pieces[i].sheets).sum(),
            path: rel,
        });
    }
    let tickets = write_ticket(out, &pieces, &files, settings, ticket)?;
    let total: u64 = files.iter().map(|f| f.bytes).sum();
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
        },
    ))
}

/// The job ticket: one row per piece, then totals.
fn write_ticket(
    out: &Path,
    pieces: &[Piece],
    files: &[PrintFile],
    settings: &PrintSettings,
    name: &str,
) -> Result<Vec<crate::manifest::FileEntry>, String> {
    let header = [
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
    ];
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut rows: Vec<Vec<String>> = pieces
        .iter()
        .map(|p| {
            vec![
                p.sequence.to_string(),
                p.record_id.clone(),
                p.print_file.clone(),
                p.first_page.to_string(),
                p.last_page.to_string(),
                p.pages.to_string(),
                p.sheets.to_string(),
                p.envelope.clone(),
                p.postcode.clone(),
                p.barcode.clone(),
            ]
        })
        .collect();
    let total = |kind: &str, file: &str, env: &str, ps: Vec<&Piece>| {
        vec![
            kind.to_string(),
            format!("{} pieces", ps.len()),
            file.to_string(),
            String::new(),
            String::new(),
            ps.iter().map(|p| p.pages).sum::<usize>().to_string(),
            ps.iter().map(|p| p.sheets).sum::<usize>().to_string(),
            env.to_string(),
            String::new(),
            String::new(),
        ]
    };
    rows.push(total("TOTAL", "", "", pieces.iter().collect()));
    for f in files {
        rows.push(total(
            "FILE",
            &f.path,
            "",
            pieces.iter().filter(|p| p.print_file == f.path).collect(),
        ));
    }
    for e in &settings.envelopes {
        rows.push(total(
            "ENVELOPE",
            "",
            &e.name,
            pieces.iter().filter(|p| p.envelope == e.name).collect(),
        ));
    }
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
        crate::output::write_atomic(&out.join(&rel), &bytes, true)
            .map_err(|e| format!("{rel}: {e}"))?;
        entries.push(crate::manifest::FileEntry {
            path: rel,
            sha256: crate::output::sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        });
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
        doc.renumber_objects_with(next_id);
        next_id = doc.max_id + 1;
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        own_pages.push(pages.len());
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
        for _ in pages.len()..*padded {
            let media = last_box.clone().unwrap_or_else(|| {
                Object::Array(vec![0.into(), 0.into(), 595.276.into(), 841.89.into()])
            });
            out.max_id = out.max_id.max(next_id);
            let blank = out.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "MediaBox" => media,
                "Resources" => dictionary! {},
            });
            next_id = out.max_id + 1;
            kids.push(Object::Reference(blank));
        }
    }
    out.max_id = out.max_id.max(next_id);
    if let Some(marks) = marks.filter(|m| m.omr.is_some() || m.code.is_some()) {
        let mut page_no = 0;
        let mut sheet_in_file = 0;
        for (part, (_, padded)) in parts.iter().enumerate() {
            let per_sheet = if plex == Plex::Duplex { 2 } else { 1 };
            let sheets = padded.div_ceil(per_sheet);
            for s in 0..sheets {
                sheet_in_file += 1;
                let front = match kids.get(page_no + s * per_sheet) {
                    Some(Object::Reference(id)) => *id,
                    _ => continue,
                };
                let height = page_height(&out, front);
                let mut ops = String::new();
                if let Some(omr) = marks.omr {
                    ops.push_str(&omr.content(Omr::marks(sheet_in_file, s + 1 == sheets), height));
                }
                if let Some(code) = marks.code {
                    let piece = marks.pieces.get(part).copied().unwrap_or(0);
                    let payload = Code::payload(marks.run_id, piece, s + 1, sheets);
                    ops.push_str(&code.content(&payload, height)?);
                }
                // A blank padding page (the back of the last sheet) carries
                // the sheet's marks too.
                let back = page_no + s * per_sheet + 1;
                let padding =
                    per_sheet == 2 && back < page_no + padded && back >= page_no + own_pages[part];
                if padding {
                    if let Some(Object::Reference(id)) = kids.get(back) {
                        mark_page(&mut out, *id, ops.clone())?;
                    }
                }
                mark_page(&mut out, front, ops)?;
            }
            page_no += padded;
        }
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

/// The record of reprints in a run folder, one JSON object a line.
pub const REPRINTS_FILE: &str = "print/reprints.jsonl";

/// One reprint, as recorded in [`REPRINTS_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reprint {
    /// 1 for the first reprint of the run.
    pub reprint: usize,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The reprinted pieces' sequence numbers.
    pub pieces: Vec<u32>,
    /// Its print files and ticket, with their hashes.
    pub files: Vec<crate::manifest::FileEntry>,
}

/// The reprints recorded in a run folder.
pub fn reprints(run: &Path) -> Vec<Reprint> {
    std::fs::read_to_string(run.join(REPRINTS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Reprints pieces of a finished print run: the same letters (so the same
/// pages, piece numbers and marks) in a new print file with its own ticket,
/// recorded in [`REPRINTS_FILE`]. `pieces` are sequence numbers; `records`
/// record ids. A letter whose file no longer matches the manifest is refused.
pub fn reprint(run: &Path, pieces: &[u32], records: &[String]) -> crate::Result<Reprint> {
    use crate::error::Error;
    let path = run.join(crate::manifest::MANIFEST_FILE);
    let bytes =
        std::fs::read(&path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let m: crate::manifest::Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    if m.print.is_none() {
        return Err(Error::Usage(format!(
            "{} was not a print run (run --print)",
            run.display()
        )));
    }
    let documents = crate::journal::read_all(run)?;
    let known: Vec<(&crate::manifest::Document, &Piece)> = documents
        .iter()
        .filter_map(|d| d.piece.as_ref().map(|p| (d, p)))
        .collect();
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    for n in pieces {
        match known.iter().find(|(_, p)| p.sequence == *n) {
            Some(k) => chosen.push(*k),
            None => unknown.push(format!("piece {n}")),
        }
    }
    for id in records {
        match known.iter().find(|(_, p)| &p.record_id == id) {
            Some(k) => chosen.push(*k),
            None => unknown.push(format!("record {id}")),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::Usage(format!(
            "not pieces of this print run: {}",
            unknown.join(", ")
        )));
    }
    if chosen.is_empty() {
        return Err(Error::Usage(
            "name the pieces to reprint (--pieces or --records)".into(),
        ));
    }
    chosen.sort_by_key(|(_, p)| p.sequence);
    chosen.dedup_by_key(|(_, p)| p.sequence);
    let mut letters = Vec::new();
    for (d, p) in &chosen {
        let rel = d.path.clone().unwrap_or_default();
        let data =
            std::fs::read(run.join(&rel)).map_err(|e| Error::Input(format!("{rel}: {e}")))?;
        if Some(crate::output::sha256_hex(&data)) != d.sha256 {
            return Err(Error::Input(format!(
                "{rel} (piece {}) no longer matches the manifest; it is not reprinted (`letterpress verify` lists what changed)",
                p.sequence
            )));
        }
        letters.push(Letter {
            sequence: p.sequence,
            record_id: p.record_id.clone(),
            path: rel,
            pages: d.pages,
            postcode: p.postcode.clone(),
            envelope: Some(p.envelope.clone()),
            barcode: p.barcode.clone(),
        });
    }
    // The run's plex; one file; each piece keeps its envelope class.
    let mut envelopes: Vec<Envelope> = Vec::new();
    for (_, p) in &chosen {
        if !envelopes.iter().any(|e| e.name == p.envelope) {
            envelopes.push(Envelope {
                name: p.envelope.clone(),
                max_sheets: None,
            });
        }
    }
    let settings = PrintSettings {
        plex: m.print.as_ref().map_or(Plex::Simplex, |p| p.plex),
        max_sheets_per_file: usize::MAX,
        envelopes,
        ..PrintSettings::default()
    };
    let n = reprints(run).len() + 1;
    let stem = format!("reprint-{n:03}");
    let (placed, output) = produce_named(
        run,
        &settings,
        letters,
        &stem,
        &format!("{stem}-ticket"),
        &m.run_id,
    )
    .map_err(|e| Error::Output(format!("reprint: {e}")))?;
    drop(placed);
    let mut files: Vec<crate::manifest::FileEntry> = output
        .files
        .iter()
        .map(|f| crate::manifest::FileEntry {
            path: f.path.clone(),
            sha256: f.sha256.clone(),
            bytes: f.bytes,
        })
        .collect();
    files.extend(output.tickets);
    let record = Reprint {
        reprint: n,
        at: crate::clock::now_rfc3339(),
        pieces: chosen.iter().map(|(_, p)| p.sequence).collect(),
        files,
    };
    let mut line = serde_json::to_vec(&record).expect("serializes");
    line.push(b'\n');
    let journal = run.join(REPRINTS_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal)
        .map_err(|e| Error::io(&journal, e))?;
    std::io::Write::write_all(&mut f, &line)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(&journal, e))?;
    Ok(record)
}
