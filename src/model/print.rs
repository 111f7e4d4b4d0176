//! Print production's vocabulary: the `print` settings of `layout.yaml`
//! (plex, envelopes, window, OMR, DataMatrix, IMb, inserts, weights) and the pieces and print
//! files a print run records in its manifest. Making them is
//! [`crate::output::print`].

use serde::{Deserialize, Serialize};

use crate::model::file::FileEntry;

/// Paper handling of a print run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
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
    /// The empty envelope's weight in grams (0 when not given).
    #[serde(default)]
    pub weight: f64,
    /// Pieces of this class are pulled off the inserter (divert flag in the
    /// Mail Run Data File), e.g. to be inserted by hand.
    #[serde(default)]
    pub divert: bool,
}

/// A selective insert: a feeder of the inserter that adds an enclosure to
/// the pieces whose record selects it.
///
/// The record selects it by `field` (a dotted path): without `value`, when
/// the field is true, `yes`, `y`, `1` or a non-zero number; with `value`,
/// when the field equals it or is a list that contains it (case and white
/// space around ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insert {
    /// The code the inserter knows the feeder by, e.g. `B1`; letters,
    /// digits, `-` and `_`.
    pub code: String,
    /// What it is, for the ticket's readers.
    pub name: String,
    /// Its weight in grams.
    pub weight: f64,
    /// The record field that selects it.
    pub field: String,
    /// The value (or list element) that selects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A postage weight class: pieces up to `max` grams (no limit when absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightClass {
    /// The class's name, as the postal tariff calls it.
    pub name: String,
    /// The heaviest piece of the class, in grams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
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
    /// A Royal Mail Mailmark barcode per piece (4-state, and 2D if asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailmark: Option<MailmarkSettings>,
    /// Selective inserts, one per feeder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inserts: Vec<Insert>,
    /// The weight of one printed sheet in grams (an A4 sheet of 80 g/m²
    /// weighs 5 g).
    #[serde(default = "default_sheet_weight")]
    pub sheet_weight: f64,
    /// Postage weight classes, lightest first.
    #[serde(default = "default_weight_classes")]
    pub weight_classes: Vec<WeightClass>,
    /// A record field that, when true (as for [`Insert::field`]), has the
    /// piece diverted off the inserter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divert_field: Option<String>,
    /// Which letters `--household` may put into one envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<Household>,
    /// Not in `layout.yaml`: with `--print-shop`, the PDF/X output
    /// condition the print files are made for.
    #[serde(skip)]
    pub conformance: Option<std::sync::Arc<Conformance>>,
}

/// What a print file needs to be PDF/VT-1 on PDF/X-4: the print shop's
/// output intent with its profile, bleed, and the date it is stamped with.
#[derive(Debug, Clone)]
pub struct Conformance {
    /// What the manifest records.
    pub used: PrintShopUsed,
    /// The ICC output profile's bytes.
    pub profile: Vec<u8>,
    /// Its colour space's components: 1 (gray), 3 (RGB) or 4 (CMYK).
    pub components: u8,
    /// The files' creation and modification date (the run's as-of date,
    /// `YYYY-MM-DD`), so the same run gives the same metadata.
    pub date: String,
}

/// Householding (`run --print --household`): the letters of records with
/// the same household key go into one mail piece, when they may.
///
/// The key is the record's `field` when given (empty: not householded),
/// else its postal address (the object `address_field`, default
/// `address`), normalised: letters in lower case, punctuation dropped,
/// white space collapsed, spaces taken out of the postcode. Letters share
/// an envelope only if they are for the same customer (`customer_field`,
/// default the layout's `id_field`) or if every one of them consents
/// (`consent_field` true, as for [`Insert::field`]): one customer's letter
/// never goes into another's envelope without it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Household {
    /// An explicit household key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The address object the key is made of when there is no `field`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_field: Option<String>,
    /// Who the letter is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_field: Option<String>,
    /// The customer agrees to share an envelope with their household.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_field: Option<String>,
}

fn default_sheet_weight() -> f64 {
    5.0
}

/// Letter, large letter, and anything heavier, as most postal tariffs
/// (Royal Mail, Deutsche Post) draw the lines at 100 g and 750 g.
fn default_weight_classes() -> Vec<WeightClass> {
    vec![
        WeightClass {
            name: "letter".into(),
            max: Some(100.0),
        },
        WeightClass {
            name: "large letter".into(),
            max: Some(750.0),
        },
        WeightClass {
            name: "parcel".into(),
            max: None,
        },
    ]
}

/// A piece's postal barcode: the payload the ticket and the Mail Run Data
/// File show, and what its template gets in `/letterpress/piece.json`
/// under `key` (`imb`: the bars; `mailmark`: bars, content and 2D code).
#[derive(Debug, Clone, PartialEq)]
pub struct Postal {
    /// The IMb's `tracking-routing`, or the Mailmark 4-state content.
    pub payload: String,
    /// The key in piece.json.
    pub key: &'static str,
    /// Its value there.
    pub value: serde_json::Value,
}

/// Royal Mail Mailmark on each piece (see the book's "Print production"):
/// the 4-state barcode C or L from format, version 1, class, supply chain
/// id, item id (`item_id_offset` + the piece number) and the record's
/// postcode plus delivery point suffix; with `two_d`, the Mailmark 2D code
/// (Data Matrix) too. Templates get them at
/// `json("/letterpress/piece.json").mailmark` and draw them with
/// `mailmark(..)` and `mailmark-2d(..)` from `/letterpress/print.typ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailmarkSettings {
    /// `L` (long: supply chain id of 6 digits, the default) or `C`
    /// (consolidator: 2 digits).
    #[serde(default = "mailmark_l")]
    pub barcode: String,
    /// `0` null or test, `1` letter (the default), `2` large letter, ...
    /// as Royal Mail's specification numbers them.
    #[serde(default = "mailmark_letter")]
    pub format: String,
    /// The class code Royal Mail gave the mailing (`0`-`9`, `A`-`E`).
    pub class: String,
    /// The supply chain id Royal Mail issued (digits; zero-padded to 2, 6
    /// or 7 digits as the barcode needs).
    pub supply_chain_id: String,
    /// Added to the piece number to make the 8-digit item id, which must
    /// stay unique for the supply chain id for 90 days: give each run its
    /// own range.
    #[serde(default)]
    pub item_id_offset: u64,
    /// The record field with the destination postcode.
    #[serde(default = "default_postcode")]
    pub postcode_field: String,
    /// The record field with the delivery point suffix (`9Z` when absent
    /// or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dps_field: Option<String>,
    /// The record field with the country: a piece whose country is given
    /// and is not the United Kingdom is international (`XY11`).
    #[serde(default = "default_country")]
    pub country_field: String,
    /// Also the Mailmark 2D code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_d: Option<Mailmark2d>,
}

/// The Mailmark 2D code's own fields (the rest is the 4-state barcode's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailmark2d {
    /// The information type id (one character; default `0`).
    #[serde(default = "mailmark_zero")]
    pub information_type: String,
    /// The service type (`0`-`6`; default `0`).
    #[serde(default = "mailmark_zero")]
    pub service_type: String,
    /// The return-to-sender postcode (optional).
    #[serde(default)]
    pub return_postcode: String,
}

/// The key a Mailmark identifies its piece by, `MAILMARK <supply chain
/// id>/<item id>` (the id without leading zeros), from the 4-state
/// barcode's content (22 or 26 characters, as the ticket shows it) or the
/// 2D code's (`JGB ...`, as a scanner reads it); `None` for anything else.
/// Royal Mail keeps an item id unique for its supply chain id for 90 days.
/// Trailing spaces (of a short postcode, of the 2D code's reserved field)
/// may have been trimmed.
pub fn mailmark_key(scanned: &str) -> Option<String> {
    let s = scanned.trim_end();
    let (scid, item) = if s.starts_with("JGB ") && s.len() >= 31 {
        (s.get(7..14)?.to_owned(), s.get(14..22)?.to_owned())
    } else {
        // An item abroad ends `XY11` and 5 spaces.
        let len = s.len() + if s.ends_with("XY11") { 5 } else { 0 };
        let (scid_len, full) = match len {
            20..=22 => (2, 22),
            24..=26 => (6, 26),
            _ => return None,
        };
        let s = format!("{s:<full$}");
        let b = s.as_bytes();
        // Format and version, and a postcode (which always has letters).
        if !(b'0'..=b'4').contains(&b[0])
            || !(b'1'..=b'4').contains(&b[1])
            || !b[full - 9..].iter().any(u8::is_ascii_alphabetic)
        {
            return None;
        }
        (
            s.get(3..3 + scid_len)?.to_owned(),
            s.get(3 + scid_len..11 + scid_len)?.to_owned(),
        )
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    (digits(&scid) && digits(&item)).then(|| {
        let scid = scid.trim_start_matches('0');
        let scid = if scid.is_empty() { "0" } else { scid };
        format!("MAILMARK {scid}/{item}")
    })
}

fn default_country() -> String {
    "address.country".into()
}

fn mailmark_l() -> String {
    "L".into()
}

fn mailmark_letter() -> String {
    "1".into()
}

fn mailmark_zero() -> String {
    "0".into()
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

/// A DataMatrix (ECC 200) code on the front of every sheet, encoding
/// `<run id>|<piece>|<sheet>/<sheets>`, drawn as vector modules at `left`,
/// `top` (mm from the page's top-left corner), each module `module` mm.
/// Leave at least two modules of white around it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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

/// OMR inserter marks: a column of short horizontal bars near the left
/// edge of the front of every sheet (blank padding sheets included), read
/// by the inserting machine. From the top, one position per mark: start
/// (always), end of set (last sheet of a piece), three bits of the sheet
/// number in the print file (1-based, modulo 8, lowest bit first), parity
/// (makes the number of bars even) and safety (always). Geometry in mm.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Print files are written as a stream, so this is a size a print shop
/// handles well, not a limit of memory.
fn default_max_sheets() -> usize {
    1_000
}

fn default_envelopes() -> Vec<Envelope> {
    vec![
        Envelope {
            name: "C5/6".into(),
            max_sheets: Some(5),
            weight: 4.5,
            divert: false,
        },
        Envelope {
            name: "C4".into(),
            max_sheets: Some(50),
            weight: 15.0,
            divert: false,
        },
        Envelope {
            name: "hand insert".into(),
            max_sheets: None,
            weight: 0.0,
            divert: true,
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
            mailmark: None,
            inserts: Vec::new(),
            sheet_weight: default_sheet_weight(),
            weight_classes: default_weight_classes(),
            divert_field: None,
            household: None,
            conformance: None,
        }
    }
}

/// One mail piece in a print file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Piece {
    /// 1-based position in mailing order.
    pub sequence: u32,
    /// The record (the first, for a household's piece).
    pub record_id: String,
    /// Every record of a household's piece, in order (empty for a piece of
    /// one letter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
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
    /// The codes of the selective inserts it gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inserts: Vec<String>,
    /// Its weight in grams: sheets, inserts and envelope.
    #[serde(default)]
    pub weight: f64,
    /// Its postage weight class.
    #[serde(default)]
    pub weight_class: String,
    /// Whether the inserter pulls it out (hand insert, or the record asks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub divert: bool,
}

impl Piece {
    /// The piece's id as its DataMatrix code and the Mail Run Data File
    /// give it: `<run id>|<piece>`.
    pub fn id(&self, run_id: &str) -> String {
        format!("{run_id}|{}", self.sequence)
    }

    /// The records of the piece joined by `+`, as the ticket and the Mail
    /// Run Data File list them.
    pub fn record_ids(&self) -> String {
        match self.records.is_empty() {
            true => self.record_id.clone(),
            false => self.records.join("+"),
        }
    }
}

/// A written print file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintFile {
    /// The file (relative to the output folder), its SHA-256 and size.
    #[serde(flatten)]
    pub file: FileEntry,
    /// Pieces in it.
    pub pieces: usize,
    /// Pages, padding included.
    pub pages: usize,
    /// Sheets.
    pub sheets: usize,
    /// Its Mail Run Data File for the inserter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrdf: Option<FileEntry>,
}

/// What `print` produced: files, pieces, and the ticket's files.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintOutput {
    /// Simplex or duplex.
    pub plex: Plex,
    /// The print files.
    pub files: Vec<PrintFile>,
    /// The job ticket files (CSV and JSON), with their hashes.
    pub tickets: Vec<FileEntry>,
    /// Bytes of the print files per piece, for the README's figure.
    pub bytes_per_piece: u64,
    /// With `--household`: letters, pieces, and pieces saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<Householded>,
    /// The OMR marks the files carry, so that a reprint carries them too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omr: Option<Omr>,
    /// The DataMatrix the files carry, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datamatrix: Option<Code>,
    /// With `--print-shop`: the output condition the files are PDF/X-4
    /// (and PDF/VT-1) for. Absent: the files make no PDF/X claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_shop: Option<PrintShopUsed>,
    /// A run's letters laid out a second time for the print files: 0 when
    /// every page came from the letters' one layout; those an earlier
    /// attempt rendered, when the run was resumed. Absent for a reprint
    /// (its pages come from the letters' own PDFs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laid_out_again: Option<usize>,
}

/// A print shop's file (`run --print --print-shop FILE`, YAML): its output
/// condition, and optionally its bleed and its sheet and envelope settings,
/// which replace the layout's for the print files. See the book's chapter
/// "Print production".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintShop {
    /// The shop's name, for the manifest.
    #[serde(default)]
    pub name: Option<String>,
    /// The output intent every print file carries.
    pub output_intent: OutputIntentSpec,
    /// Bleed around the trimmed page, in mm (default 0).
    #[serde(default)]
    pub bleed: f64,
    /// The shop's envelope classes, instead of the layout's.
    #[serde(default)]
    pub envelopes: Option<Vec<Envelope>>,
    /// The weight of one sheet in grams, instead of the layout's.
    #[serde(default)]
    pub sheet_weight: Option<f64>,
    /// The most sheets in one print file, instead of the layout's.
    #[serde(default)]
    pub max_sheets_per_file: Option<usize>,
}

/// A PDF/X output intent as a print shop gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputIntentSpec {
    /// The ICC output profile, relative to the print shop's file (and
    /// inside its folder).
    pub profile: String,
    /// The characterized printing condition's identifier, e.g. `FOGRA39`.
    pub condition: String,
    /// The registry the identifier is from (default
    /// `http://www.color.org`).
    #[serde(default = "color_org")]
    pub registry: String,
    /// A human-readable description of the condition.
    pub info: String,
}

fn color_org() -> String {
    "http://www.color.org".into()
}

/// The print shop a print run's files were made for, as the manifest
/// records it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintShopUsed {
    /// The print shop's file as given.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The shop's name, if it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the files claim: `PDF/X-4` and `PDF/VT-1`.
    pub conformance: Vec<String>,
    /// The output condition identifier, e.g. `FOGRA39`.
    pub condition: String,
    /// The registry the identifier is from.
    pub registry: String,
    /// The condition's description.
    pub info: String,
    /// The embedded output profile, as the shop's file names it.
    pub profile: String,
    /// Its SHA-256.
    pub profile_sha256: String,
    /// Its colour space: `CMYK`, `RGB` or `GRAY`.
    pub profile_colour_space: String,
    /// The copy of the profile kept in the run folder, which reprints
    /// embed (after checking its SHA-256), and `verify` checks.
    pub kept: FileEntry,
    /// Bleed in mm.
    pub bleed: f64,
}

/// What householding saved.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Householded {
    /// Letters printed.
    pub letters: usize,
    /// Mail pieces they went into.
    pub pieces: usize,
    /// Pieces (and postage) saved: letters minus pieces.
    pub saved: usize,
}

/// The journal of what became of each mail piece, in a print run's folder,
/// appended by `reconcile` from the inserter's result files.
pub const PIECES_FILE: &str = "print/pieces.jsonl";

/// What the inserter reports for a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// In its envelope, on its way.
    Inserted,
    /// Pulled off the inserter.
    Diverted,
    /// Spoiled by the machine.
    Damaged,
    /// Reported missing, or never seen in a result file that should have
    /// named it.
    Missing,
}

impl Outcome {
    /// Every outcome, as the result file writes it.
    pub const ALL: [Outcome; 4] = [
        Outcome::Inserted,
        Outcome::Diverted,
        Outcome::Damaged,
        Outcome::Missing,
    ];

    /// Whether the outcome closes `piece`: inserted, or diverted when its
    /// Mail Run Data File asked for that (a hand insert). Any other piece
    /// is printed again.
    pub fn closes(self, piece: &Piece) -> bool {
        self == Outcome::Inserted || (self == Outcome::Diverted && piece.divert)
    }

    /// The word in result files and the journal.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Inserted => "inserted",
            Outcome::Diverted => "diverted",
            Outcome::Damaged => "damaged",
            Outcome::Missing => "missing",
        }
    }
}

/// One line of [`PIECES_FILE`]: a piece's outcome as one result file
/// told it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PieceEvent {
    /// The piece (sequence number).
    pub piece: u32,
    /// What became of it.
    pub outcome: Outcome,
    /// The result file, as given.
    pub source: String,
    /// Its SHA-256: a file is reconciled once.
    pub source_sha256: String,
    /// The line of the result file; none when the file did not name the
    /// piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The reprint that prints it again, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprint: Option<usize>,
    /// When it was recorded (RFC 3339, UTC).
    pub at: String,
}

impl PieceEvent {
    /// Whether this outcome closes `piece`; see [`Outcome::closes`].
    pub fn closes(&self, piece: &Piece) -> bool {
        self.outcome.closes(piece)
    }
}

/// What the mailing order knows of a letter's piece before it is
/// rendered: its postcode for the ticket, the fields its postal barcode is
/// made from, the selective inserts it gets and whether it is diverted. A
/// letter's own, or a household's piece's (its first letter's postcode and
/// barcode fields, the inserts any of its letters selects, diverted if any
/// asks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PieceFacts {
    /// The postcode the ticket shows.
    pub postcode: String,
    /// The record fields its postal barcode is made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<(String, String)>,
    /// The codes of its selective inserts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inserts: Vec<String>,
    /// Whether it is diverted off the inserter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub divert: bool,
}

/// A print run's mailing order, planned before rendering: each letter's
/// place in mailing order and its piece's number, and where the run's
/// record spool keeps its record. About 16 bytes a letter and 4 a record:
/// what else the run needs of a letter is in the spool (see the book's
/// "Print production").
#[derive(Debug, Default)]
pub struct Pieces {
    /// By input position: the letter's place in mailing order
    /// ([`Pieces::NONE`]: the record has no letter).
    place: Vec<u32>,
    /// By place: its piece's number, from 1.
    sequence: Vec<u32>,
    /// By place: where the spool keeps its line.
    offset: Vec<u64>,
    /// With householding, by piece number - 1: each piece's facts.
    households: Option<Vec<PieceFacts>>,
}

impl Pieces {
    /// No place: a record without a letter.
    const NONE: u32 = u32::MAX;

    /// The plan of `letters` (input position and spool offset, in mailing
    /// order) of a batch of `records`, their pieces numbered as
    /// `sequence` says (by place), with householding each piece's facts.
    pub fn new(
        records: usize,
        letters: impl Iterator<Item = (usize, u64)>,
        sequence: Vec<u32>,
        households: Option<Vec<PieceFacts>>,
    ) -> Pieces {
        let mut place = vec![Self::NONE; records];
        let mut offset = Vec::with_capacity(sequence.len());
        for (p, (index, at)) in letters.enumerate() {
            place[index] = p as u32;
            offset.push(at);
        }
        Pieces {
            place,
            sequence,
            offset,
            households,
        }
    }

    /// Letters in the plan.
    pub fn letters(&self) -> usize {
        self.sequence.len()
    }

    /// The place in mailing order of the letter of the record at input
    /// position `index`, if it has one.
    pub fn place_of(&self, index: usize) -> Option<usize> {
        self.place
            .get(index)
            .filter(|&&p| p != Self::NONE)
            .map(|&p| p as usize)
    }

    /// The piece number of the record at input position `index`.
    pub fn sequence_of(&self, index: usize) -> Option<u32> {
        self.place_of(index).map(|p| self.sequence[p])
    }

    /// The piece number of the letter at `place`.
    pub fn sequence(&self, place: usize) -> u32 {
        self.sequence[place]
    }

    /// Where the spool keeps the letter at `place`.
    pub fn offset(&self, place: usize) -> u64 {
        self.offset[place]
    }

    /// A household's piece's facts (with householding).
    pub fn household(&self, sequence: u32) -> Option<&PieceFacts> {
        self.households
            .as_ref()
            .and_then(|h| h.get(sequence as usize - 1))
    }

    /// Whether the pieces are households' (letters of one piece may be
    /// apart in mailing order).
    pub fn householded(&self) -> bool {
        self.households.is_some()
    }
}
