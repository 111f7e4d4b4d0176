//! PDF letters from a Typst template, rendered in process: stage 3 of the
//! data path for the pdf channel, between the checks ([`crate::check`]) and
//! the files ([`crate::output`]), which write what it returns.
//!
//! A [`Renderer`] is built once per layout version and shared read-only by all
//! worker threads: the Typst standard library, the fonts (Typst's embedded
//! fonts plus the layout's `fonts/`, never system fonts), and every file of
//! the version folder, read into memory and parsed once. Rendering a record
//! builds a tiny [`typst::World`] that borrows all that and serves the record
//! as JSON at the one fixed virtual path [`RECORD_PATH`]; the template reads it
//! with `json("/record.json")`. Record values are therefore data, never Typst
//! markup: `#set text(red)` in a name prints literally.
//!
//! The engine also serves its locale module at [`LOCALE_MODULE`] and, for the
//! record's resolved locale, the formatting rules and the layout's wording at
//! `/letterpress/locale.json` (see [`crate::layout::locale`]). A layout's own files
//! cannot use the `letterpress/` folder.
//!
//! The template sees only its own version folder (read before rendering
//! starts, so nothing on disk is reachable while rendering), `datetime.today()`
//! is the run's as-of date, and `@preview/...` package imports fail with an
//! explanation. After compilation the engine checks that every character has a
//! real glyph, every page has the layout's paper size and the page count stays
//! within the layout's limit; then it exports a tagged PDF whose metadata
//! (title, author, document id = record id, date = as-of date) is fixed, so the
//! same inputs give the same bytes.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Value};
use typst::diag::{FileError, FileResult, Severity, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::layout::{Abs, Frame, FrameItem, Point};
use typst::syntax::{DiagSpan, DiagSpanKind, FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook, TextItem};
use typst::utils::LazyHash;
use typst::{Feature, Library, LibraryExt, World, WorldExt};
use typst_kit::fonts::FontStore;
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

use crate::check::record::letter_format;
use crate::check::wording::Wording;
use crate::error::{Error, Result};
use crate::layout::catalog::Layout;
use crate::layout::files::LayoutFiles;
use crate::layout::locale::{Rules, RULES};
use crate::layout::texts::Texts;
use crate::model::layout::{LargePrintSettings, PageSettings};
use crate::model::print::Postal;
use crate::model::vocab::{LetterFormat, Standard};
use crate::util::clock::Date;

pub mod encrypt;
mod format;
mod web;
pub use format::FORMAT_MODULE;
pub use web::WebLetter;

/// The virtual path at which a template finds its record.
pub const RECORD_PATH: &str = "/record.json";

/// The virtual path of the engine's locale module.
pub const LOCALE_MODULE: &str = "/letterpress/locale.typ";

/// The engine's locale module: formats money, numbers and dates with the
/// rules of [`crate::layout::locale`], as the email channel does.
const LOCALE_TYPST: &str = include_str!("locale.typ");

/// The engine's print module, served at `/letterpress/print.typ`: the
/// Intelligent Mail barcode and the address placed in an envelope window.
const PRINT_TYPST: &str = include_str!("print.typ");

/// The virtual path of the ISO 4217 minor units the locale module uses.
const CURRENCIES_JSON: &str = "/letterpress/currencies.json";

/// The virtual path of the record's locale rules and wording.
const LOCALE_JSON: &str = "/letterpress/locale.json";

/// The record's file id, interned once per process (file ids are never freed).
static RECORD_ID: LazyLock<FileId> = LazyLock::new(|| vpath_id(RECORD_PATH).expect("valid path"));

/// The piece file's id: `{"sequence": n}` in a print run, else null.
static PIECE_ID: LazyLock<FileId> =
    LazyLock::new(|| vpath_id("/letterpress/piece.json").expect("valid path"));

/// The recipient file's id: the name and address block composed by the
/// engine (see [`crate::render::names`]), or null.
static RECIPIENT_ID: LazyLock<FileId> =
    LazyLock::new(|| vpath_id("/letterpress/recipient.json").expect("valid path"));

/// The locale rules' file id.
static LOCALE_ID: LazyLock<FileId> = LazyLock::new(|| vpath_id(LOCALE_JSON).expect("valid path"));

fn vpath_id(path: &str) -> Option<FileId> {
    Some(RootedPath::new(VirtualRoot::Project, VirtualPath::new(path).ok()?).intern())
}

/// A rendered letter.
#[derive(Debug)]
pub struct Rendered {
    /// The PDF file's bytes.
    pub pdf: Vec<u8>,
    /// Its page count.
    pub pages: usize,
    /// Typst's warnings (e.g. an unknown font family, which silently falls
    /// back to another font), one line each with file and line; only filled
    /// by [`Renderer::render_with_warnings`].
    pub warnings: Vec<String>,
    /// The text lines of each page; only filled by [`Renderer::text_lines`]
    /// (which leaves `pdf` empty).
    pub lines: Vec<Vec<String>>,
    /// The laid-out pages, for a print file; only kept by
    /// [`Renderer::render_piece`] when asked.
    pub laid_out: Option<PagedDocument>,
}

/// What [`Renderer::render_inner`] produces besides the checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pdf,
    /// The PDF, and the laid-out pages kept.
    PdfKept,
    PdfAndWarnings,
    Text,
}

/// Everything that stays the same for all letters of one layout version.
pub struct Renderer {
    library: LazyHash<Library>,
    fonts: FontStore,
    /// The main file of standard and of large-print letters.
    mains: [FileId; 2],
    /// `/letterpress/format.json` of standard and of large-print letters.
    formats: [Bytes; 2],
    /// The record field that picks the format.
    accessibility_field: Option<String>,
    large: LargePrintSettings,
    /// What the web letter is compiled with.
    web: web::WebSetup,
    sources: HashMap<FileId, Source>,
    files: HashMap<FileId, Bytes>,
    /// `/letterpress/locale.json` for each supported locale.
    locales: HashMap<&'static str, Bytes>,
    /// `/letterpress/piece.json` outside print runs.
    no_piece: Bytes,
    today: Datetime,
    timestamp: Timestamp,
    standards: PdfStandards,
    page: PageSettings,
    mark: Option<String>,
    /// The envelope window the `<address>` block must fit, in mm.
    window: Option<(f64, f64, f64, f64)>,
    wording: Wording,
    title: String,
    author: Option<String>,
    keywords: Vec<String>,
    recipient: Option<crate::model::layout::RecipientSettings>,
    default_locale: String,
}

/// The virtual file system of a layout version as the renderer serves it:
/// the layout's files, parsed `.typ` sources, its fonts (then Typst's
/// embedded ones) and the engine's modules.
struct Vfs {
    fonts: FontStore,
    sources: HashMap<FileId, Source>,
    files: HashMap<FileId, Bytes>,
    /// The template, once found among the files.
    main: Option<FileId>,
}

impl Vfs {
    /// Reads a layout version's files: fonts under `fonts/` are loaded,
    /// `.typ` files parsed (a syntax error is a layout error naming the
    /// line), and the engine's reserved paths refused.
    fn load(layout: &Layout, files: LayoutFiles) -> Result<Vfs> {
        let layout_err = |msg: String| Error::Layout(format!("{}: {msg}", layout.id()));
        let mut vfs = Vfs {
            fonts: FontStore::new(),
            sources: HashMap::new(),
            files: HashMap::new(),
            main: None,
        };
        for (rel, data) in files.files {
            let vpath = format!("/{rel}");
            if vpath == RECORD_PATH || rel.starts_with("letterpress/") {
                return Err(layout_err(format!(
                    "a layout cannot contain `{rel}`: `record.json` and the `letterpress/` folder are reserved for the engine"
                )));
            }
            let id = vpath_id(&vpath)
                .ok_or_else(|| layout_err(format!("`{rel}` is not a usable file name")))?;
            let bytes = Bytes::new(data);
            let lower = rel.to_ascii_lowercase();
            if lower.starts_with("fonts/")
                && [".ttf", ".otf", ".ttc", ".otc"]
                    .iter()
                    .any(|e| lower.ends_with(e))
            {
                vfs.add_fonts(&bytes)
                    .map_err(|()| layout_err(format!("`{rel}` is not a font Typst can read")))?;
            }
            if lower.ends_with(".typ") {
                let source = parse(id, &rel, &bytes).map_err(layout_err)?;
                vfs.sources.insert(id, source);
            }
            if rel == layout.meta.template {
                vfs.main = Some(id);
            }
            vfs.files.insert(id, bytes);
        }
        vfs.fonts.extend(typst_kit::fonts::embedded());
        Ok(vfs)
    }

    /// Adds every face of a font file; `Err` if it has none.
    fn add_fonts(&mut self, bytes: &Bytes) -> std::result::Result<(), ()> {
        let mut faces = 0;
        for font in Font::iter(bytes.clone()) {
            let info = font.info().clone();
            self.fonts.push((font, info));
            faces += 1;
        }
        if faces == 0 {
            return Err(());
        }
        Ok(())
    }

    /// Adds a Typst source at the virtual path `path`.
    fn add_source(&mut self, path: &str, text: String) -> FileId {
        let id = vpath_id(path).expect("valid path");
        self.files.insert(id, Bytes::new(text.as_bytes().to_vec()));
        self.sources.insert(id, Source::new(id, text));
        id
    }

    /// The main files of a standard letter, a large-print letter and a web
    /// letter: the template itself, or the engine's main files around it
    /// (with the `mark`, in large print). The template must be a `.typ` file.
    fn add_mains(&mut self, layout: &Layout, mark: Option<&str>) -> Result<[FileId; 3]> {
        let template = &layout.meta.template;
        let layout_err = |msg: String| Error::Layout(format!("{}: {msg}", layout.id()));
        let main = self
            .main
            .ok_or_else(|| layout_err(format!("template `{template}` is missing")))?;
        if !self.sources.contains_key(&main) {
            return Err(layout_err(format!(
                "template `{template}` must be a .typ file"
            )));
        }
        let large = &layout.meta.large_print;
        let (standard, web) = match mark {
            None => (main, main),
            Some(mark) => (
                self.add_source(
                    format::MARKED_MAIN,
                    format::main_source(template, Some(mark), None),
                ),
                self.add_source(
                    format::MARKED_WEB_MAIN,
                    format::web_main_source(template, mark),
                ),
            ),
        };
        let large = self.add_source(
            format::LARGE_MAIN,
            format::main_source(template, mark, Some(large)),
        );
        Ok([standard, large, web])
    }

    /// The engine's locale and print modules and the currency table.
    fn add_engine_modules(&mut self) {
        self.add_source(LOCALE_MODULE, LOCALE_TYPST.to_owned());
        self.add_source("/letterpress/print.typ", PRINT_TYPST.to_owned());
        self.add_source(format::FORMAT_MODULE, format::FORMAT_TYPST.to_owned());
        self.files.insert(
            vpath_id(CURRENCIES_JSON).expect("valid path"),
            Bytes::new(crate::layout::locale::currencies_json()),
        );
    }
}

/// Parses the `.typ` file `rel`; a syntax error names its line.
fn parse(id: FileId, rel: &str, bytes: &[u8]) -> std::result::Result<Source, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("`{rel}` is not valid UTF-8"))?
        .to_owned();
    let source = Source::new(id, text);
    if let Some(err) = source.root().errors_and_warnings().0.into_iter().next() {
        let start = match err.span.get() {
            DiagSpanKind::Number { num, sub_range, .. } => {
                source.range(num, sub_range).map(|r| r.start)
            }
            DiagSpanKind::Range { range, .. } => Some(range.start),
            DiagSpanKind::Detached => None,
        };
        let line = start.map_or(0, |s| line_at(source.text().as_bytes(), s));
        return Err(format!("{rel}:{line}: syntax error: {}", err.message));
    }
    Ok(source)
}

/// `/letterpress/locale.json` for each supported locale: its rules and the
/// layout's wording in its language.
fn locale_files(texts: &Texts) -> HashMap<&'static str, Bytes> {
    RULES
        .iter()
        .map(|r| {
            let mut json = r.to_json();
            let sentences = texts.for_locale(r.tag);
            json["pieces"] = crate::layout::texts::pieces_json(&sentences);
            json["texts"] = serde_json::to_value(sentences).expect("texts serialize");
            (
                r.tag,
                Bytes::new(serde_json::to_vec(&json).expect("JSON serializes")),
            )
        })
        .collect()
}

impl Renderer {
    /// Prepares a layout version's files (as read by [`Layout::read_files`])
    /// and wording for rendering with the given as-of date and PDF
    /// standards. A template with a syntax error is a layout error.
    ///
    /// With a `mark` (e.g. `DRAFT - NOT APPROVED`), every page carries it in
    /// large diagonal letters: the engine compiles a small main file that
    /// sets the page foreground and includes the template, and checks every
    /// letter for the mark (a template that sets its own page foreground
    /// would hide it, and that letter fails).
    pub fn new(
        layout: &Layout,
        files: LayoutFiles,
        texts: &Texts,
        as_of: Date,
        standards: &[Standard],
        mark: Option<&str>,
    ) -> Result<Renderer> {
        let layout_err = |msg: String| Error::Layout(format!("{}: {msg}", layout.id()));
        let mut vfs = Vfs::load(layout, files)?;
        vfs.add_engine_modules();
        let mains = vfs.add_mains(layout, mark)?;
        let large = &layout.meta.large_print;
        let Vfs {
            fonts,
            sources,
            files: by_id,
            ..
        } = vfs;
        let locales = locale_files(texts);
        let list: Vec<PdfStandard> = standards
            .iter()
            .map(|s| match s {
                Standard::A2b => PdfStandard::A_2b,
                Standard::Ua1 => PdfStandard::Ua_1,
            })
            .collect();
        let standards = PdfStandards::new(&list)
            .map_err(|e| Error::Usage(format!("--pdf-standard: {}", e.message())))?;
        let today = Datetime::from_ymd(as_of.year, as_of.month, as_of.day)
            .ok_or_else(|| Error::Usage(format!("as-of date {as_of} is out of range")))?;
        let midnight = Datetime::from_ymd_hms(as_of.year, as_of.month, as_of.day, 0, 0, 0)
            .expect("valid date");
        Ok(Renderer {
            library: LazyHash::new(Library::default()),
            fonts,
            mains: [mains[0], mains[1]],
            formats: [
                format::format_json(LetterFormat::Standard.name(), large),
                format::format_json(LetterFormat::LargePrint.name(), large),
            ],
            web: web::WebSetup {
                library: LazyHash::new(
                    Library::builder()
                        .with_features([Feature::Html].into_iter().collect())
                        .build(),
                ),
                main: mains[2],
                format: format::format_json("web", large),
            },
            accessibility_field: layout.meta.accessibility_field.clone(),
            large: large.clone(),
            sources,
            files: by_id,
            locales,
            no_piece: piece_json(None, None),
            today,
            timestamp: Timestamp::new_utc(midnight),
            standards,
            mark: mark.map(str::to_owned),
            window: match layout.meta.print.as_ref().and_then(|p| p.window.as_ref()) {
                Some(w) => Some(w.area().map_err(layout_err)?),
                None => None,
            },
            wording: Wording::new(&layout.meta.required_text, &layout.meta.forbidden_text),
            page: layout.meta.page.clone(),
            title: layout.meta.title.clone(),
            author: layout.meta.pdf.author.clone(),
            keywords: vec![format!("layout:{}", layout.id())],
            recipient: layout.meta.recipient.clone(),
            default_locale: layout.meta.default_locale.clone(),
        })
    }

    /// Renders one letter from its record (checked, see [`crate::check::schema`]).
    /// The error
    /// is a reason a person can act on, naming template lines or characters.
    /// [`Rendered::warnings`] stays empty: formatting them for every record
    /// would be wasted work; see [`Renderer::render_with_warnings`].
    pub fn render(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        locale: &Rules,
    ) -> std::result::Result<Rendered, String> {
        self.render_inner(record_id, record, locale, Mode::Pdf, None)
    }

    /// [`Renderer::render`] for a mail piece: the template finds its
    /// mailing-order number and its IMb bars at `/letterpress/piece.json`
    /// (`sequence`, `imb`). With `keep`, the laid-out pages come back too
    /// ([`Rendered::laid_out`]), for the print files (see
    /// [`Renderer::export_together`]).
    pub fn render_piece(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        locale: &Rules,
        (sequence, postal): (Option<u32>, Option<&Postal>),
        keep: bool,
    ) -> std::result::Result<Rendered, String> {
        let piece = piece_json(sequence, postal);
        let mode = if keep { Mode::PdfKept } else { Mode::Pdf };
        self.render_inner(record_id, record, locale, mode, Some(piece))
    }

    /// Compiles and checks a letter like [`Renderer::render`] but returns
    /// the text lines of each page instead of a PDF (used by `diff`).
    pub fn text_lines(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        locale: &Rules,
    ) -> std::result::Result<Rendered, String> {
        self.render_inner(record_id, record, locale, Mode::Text, None)
    }

    /// [`Renderer::render`], also returning Typst's warnings. Used once per
    /// run, on the sample record.
    pub fn render_with_warnings(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        locale: &Rules,
    ) -> std::result::Result<Rendered, String> {
        self.render_inner(record_id, record, locale, Mode::PdfAndWarnings, None)
    }

    /// The Typst world of one record (with its piece file, when given).
    fn world(
        &self,
        record: &Map<String, Value>,
        locale: &Rules,
        piece: Option<Bytes>,
    ) -> RecordWorld<'_> {
        let piece = piece.unwrap_or_else(|| self.no_piece.clone());
        let json = serde_json::to_vec(record).expect("JSON serializes");
        let recipient = match &self.recipient {
            Some(settings) => serde_json::to_vec(&crate::render::names::recipient(
                settings,
                record,
                &self.default_locale,
            ))
            .expect("JSON serializes"),
            None => b"null".to_vec(),
        };
        let letter = self.format_of(record);
        let format = letter as usize;
        RecordWorld {
            shared: self,
            recipient: Bytes::new(recipient),
            record: Bytes::new(json),
            locale: self.locales[locale.tag].clone(),
            piece,
            format: self.formats[format].clone(),
            letter,
            main: self.mains[format],
            html: false,
        }
    }

    /// The format of a checked record's letter.
    fn format_of(&self, record: &Map<String, Value>) -> LetterFormat {
        letter_format(self.accessibility_field.as_deref(), record).unwrap_or_default()
    }

    /// Lays out a letter of a mail piece again, as [`Renderer::render_piece`]
    /// compiled it (same record, piece number, IMb and as-of date), for a
    /// print file that exports many letters together (see
    /// [`Renderer::export_together`]). The checks are not repeated: the
    /// letter passed them when it was rendered.
    pub fn layout_piece(
        &self,
        record: &Map<String, Value>,
        locale: &Rules,
        sequence: u32,
        postal: Option<&Postal>,
    ) -> std::result::Result<PagedDocument, String> {
        let piece = piece_json(Some(sequence), postal);
        let world = self.world(record, locale, Some(piece));
        typst::compile::<PagedDocument>(&world)
            .output
            .map_err(|errors| describe(&world, &errors))
    }

    /// Lays out one letter as [`Renderer::render`] does (with this
    /// renderer's mark) and draws each page as a PNG image, 2 pixels a
    /// point, for reviewers' screens.
    pub fn page_images(
        &self,
        record: &Map<String, Value>,
        locale: &Rules,
    ) -> std::result::Result<Vec<Vec<u8>>, String> {
        let world = self.world(record, locale, None);
        let doc = typst::compile::<PagedDocument>(&world)
            .output
            .map_err(|errors| describe(&world, &errors))?;
        let opts = typst_render::RenderOptions::default();
        doc.pages()
            .iter()
            .map(|page| {
                typst_render::render(page, &opts)
                    .encode_png()
                    .map_err(|e| format!("cannot draw a page as PNG: {e}"))
            })
            .collect()
    }

    /// Exports the pages of several laid-out letters as one untagged PDF:
    /// each font is subset once for all of them (a letter's own PDF carries
    /// its own subsets, about two thirds of its bytes). Its metadata is
    /// fixed, so the same letters give the same bytes.
    pub fn export_together(
        &self,
        docs: Vec<PagedDocument>,
    ) -> std::result::Result<Vec<u8>, String> {
        let pages: typst::ecow::EcoVec<_> =
            docs.into_iter().flat_map(|d| d.pages().to_vec()).collect();
        let mut doc = PagedDocument::new(pages, Default::default());
        doc.info_mut().title = Some(self.title.as_str().into());
        doc.info_mut().date = Smart::Custom(Some(self.today));
        let options = PdfOptions {
            ident: Smart::Custom("print".to_owned()),
            creator: Smart::Custom(Some(format!("letterpress {}", env!("CARGO_PKG_VERSION")))),
            timestamp: Some(self.timestamp),
            tagged: false,
            ..PdfOptions::default()
        };
        typst_pdf::pdf(&doc, &options).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.message.to_string()).collect();
            format!("exporting letters together: {}", list.join("; "))
        })
    }

    fn render_inner(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        locale: &Rules,
        mode: Mode,
        piece: Option<Bytes>,
    ) -> std::result::Result<Rendered, String> {
        let want_warnings = mode == Mode::PdfAndWarnings;
        let world = self.world(record, locale, piece);
        let result = typst::compile::<PagedDocument>(&world);
        let mut warnings: Vec<String> = Vec::new();
        if want_warnings {
            warnings.extend(result.warnings.iter().map(|d| describe_one(&world, d)));
            warnings.dedup();
        }
        let mut doc = result.output.map_err(|errors| describe(&world, &errors))?;

        self.check(&doc, locale, world.letter)?;
        let pages = doc.pages().len();

        if mode == Mode::Text {
            let lines = doc
                .pages()
                .iter()
                .map(|p| {
                    let mut items = Vec::new();
                    positioned_text(&p.frame, &mut items);
                    lines_of(items)
                })
                .collect();
            return Ok(Rendered {
                pdf: Vec::new(),
                pages,
                warnings,
                lines,
                laid_out: None,
            });
        }
        let options = self.pdf_options(&mut doc, record_id);
        let pdf = typst_pdf::pdf(&doc, &options).map_err(|errors| describe(&world, &errors))?;
        Ok(Rendered {
            pdf,
            pages,
            warnings,
            lines: Vec::new(),
            laid_out: (mode == Mode::PdfKept).then_some(doc),
        })
    }

    /// The checks of a compiled letter: page count and size, the envelope
    /// window, the wording, the draft or proof mark, and a glyph for every
    /// character. The error names what is wrong, for the record's entry.
    fn check(
        &self,
        doc: &PagedDocument,
        locale: &Rules,
        format: LetterFormat,
    ) -> std::result::Result<(), String> {
        let pages = doc.pages().len();
        if pages == 0 {
            return Err("the template produced no pages".into());
        }
        let (limit, key) = match format {
            LetterFormat::Standard => (self.page.max_pages, "page.max_pages"),
            LetterFormat::LargePrint => (
                self.large.page_limit(self.page.max_pages),
                "large_print.max_pages",
            ),
        };
        if pages > limit {
            return Err(format!(
                "the {} letter has {pages} pages, more than the layout's limit of {limit} ({key})",
                format.name()
            ));
        }
        if format == LetterFormat::LargePrint {
            self.check_large(doc)?;
        }
        let (w, h) = self.page.format.size_mm();
        for (i, page) in doc.pages().iter().enumerate() {
            let size = page.frame.size();
            let (pw, ph) = (size.x.to_mm(), size.y.to_mm());
            let fits = |a: f64, b: f64| (pw - a).abs() < 1.0 && (ph - b).abs() < 1.0;
            if !fits(w, h) && !fits(h, w) {
                return Err(format!(
                    "page {} is {pw:.1} × {ph:.1} mm but the layout declares {} ({w} × {h} mm)",
                    i + 1,
                    self.page.format.name()
                ));
            }
        }
        let mut missing = BTreeSet::new();
        for (i, page) in doc.pages().iter().enumerate() {
            missing_glyphs(&page.frame, &mut missing);
            link_problem(&page.frame)
                .map_or(Ok(()), |why| Err(format!("page {}: {why}", i + 1)))?;
        }
        if let Some(window) = self.window {
            check_window(&doc.pages()[0].frame, window)?;
        }
        if !self.wording.is_empty() {
            let mut text = String::new();
            for page in doc.pages() {
                frame_text(&page.frame, &mut text);
                text.push(' ');
            }
            self.wording.check(&text, locale)?;
        }
        if let Some(mark) = &self.mark {
            for (i, page) in doc.pages().iter().enumerate() {
                let mut text = String::new();
                frame_text(&page.frame, &mut text);
                if !text.contains(mark.as_str()) {
                    return Err(format!(
                        "page {} does not show the mark `{mark}`: the template sets its own page foreground, which hides it",
                        i + 1
                    ));
                }
            }
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|c| format!("'{c}' (U+{:04X})", *c as u32))
                .collect();
            return Err(format!(
                "no font of the layout covers the characters {}; add a font that has them to the layout's fonts/",
                list.join(", ")
            ));
        }
        Ok(())
    }

    /// Every text of a large-print letter, outside the address block and
    /// the envelope window, is at least the layout's minimum size.
    fn check_large(&self, doc: &PagedDocument) -> std::result::Result<(), String> {
        let min = Abs::pt(self.large.min_size);
        for (i, page) in doc.pages().iter().enumerate() {
            let window = self
                .window
                .filter(|_| i == 0)
                .map(|(l, t, w, h)| (l, t, l + w, t + h));
            if let Some((size, text)) = format::small_text(&page.frame, min, window) {
                return Err(format!(
                    "large print: text on page {} is {size:.1} pt, below the minimum of {} pt (large_print.min_size): \"{}\"; write its size in the template as size(..) from {}",
                    i + 1,
                    self.large.min_size,
                    text.trim(),
                    format::FORMAT_MODULE,
                ));
            }
        }
        Ok(())
    }

    /// Sets the document's fixed metadata (title, author, keywords, date =
    /// as-of date) and returns the export options (document id = record id,
    /// timestamp = as-of midnight), so the same inputs give the same bytes.
    fn pdf_options(&self, doc: &mut PagedDocument, record_id: &str) -> PdfOptions {
        let info = doc.info_mut();
        if info.title.is_none() {
            info.title = Some(self.title.as_str().into());
        }
        if let Some(author) = &self.author {
            info.author = vec![author.as_str().into()];
        }
        info.keywords
            .extend(self.keywords.iter().map(|k| k.as_str().into()));
        info.keywords.push(format!("record:{record_id}").into());
        info.date = Smart::Custom(Some(self.today));
        PdfOptions {
            ident: Smart::Custom(record_id.to_owned()),
            creator: Smart::Custom(Some(format!("letterpress {}", env!("CARGO_PKG_VERSION")))),
            timestamp: Some(self.timestamp),
            standards: self.standards.clone(),
            ..PdfOptions::default()
        }
    }
}

/// `/letterpress/piece.json`: the piece number and its postal barcode
/// (`imb` and `mailmark` are null but for the one the layout has), with a
/// Mailmark 2D code's modules drawn up from its content here, so a run's
/// plan does not hold them for every piece.
fn piece_json(sequence: Option<u32>, postal: Option<&Postal>) -> Bytes {
    let mut piece = serde_json::json!({"sequence": sequence, "imb": null, "mailmark": null});
    if let Some(p) = postal {
        piece[p.key] = p.value.clone();
        let two_d = piece[p.key]
            .get_mut("two_d")
            .and_then(|d| d.as_object_mut());
        if let Some(two_d) = two_d {
            let content = two_d.get("content").and_then(|c| c.as_str());
            if let Some(modules) = content.and_then(data_matrix_rows) {
                two_d.insert("modules".into(), modules.into());
            }
        }
    }
    Bytes::new(serde_json::to_vec(&piece).expect("JSON serializes"))
}

/// The modules of a Mailmark 2D code (Data Matrix ECC 200, 24 x 24 for up
/// to 51 characters, else 32 x 32), as rows of `0` and `1`, top first;
/// `None` for content no such symbol holds (then the template, which
/// needs the modules, fails the letter, named).
fn data_matrix_rows(content: &str) -> Option<Vec<String>> {
    use datamatrix::{DataMatrix, SymbolList, SymbolSize};
    let sizes = SymbolList::with_whitelist([SymbolSize::Square24, SymbolSize::Square32]);
    let bitmap = DataMatrix::encode_str(content, sizes).ok()?.bitmap();
    let mut rows = vec![vec![b'0'; bitmap.width()]; bitmap.height()];
    for (x, y) in bitmap.pixels() {
        rows[y][x] = b'1';
    }
    Some(
        rows.into_iter()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .collect(),
    )
}

/// The first link on a page that the rule for links refuses
/// ([`crate::check::links`]), as the PDF's link annotation would carry it.
fn link_problem(frame: &Frame) -> Option<String> {
    frame.items().find_map(|(_, item)| match item {
        FrameItem::Group(g) => link_problem(&g.frame),
        FrameItem::Link(typst::model::Destination::Url(url), _) => {
            crate::check::links::check(url.as_str(), crate::check::links::Place::Link).err()
        }
        _ => None,
    })
}

/// Appends the text of a frame as a reader would take it in: runs that
/// continue each other on a line are joined, anything else (a new line,
/// another cell, a group) is separated by a space.
pub fn frame_text(frame: &Frame, out: &mut String) {
    let mut last: Option<(Abs, Abs)> = None;
    for (pos, item) in frame.items() {
        match item {
            FrameItem::Group(g) => {
                out.push(' ');
                frame_text(&g.frame, out);
                out.push(' ');
                last = None;
            }
            FrameItem::Text(text) => {
                let joined = last.is_some_and(|(y, x)| {
                    (y - pos.y).abs() < Abs::pt(0.5) && (pos.x - x).abs() < Abs::pt(1.0)
                });
                if !joined {
                    out.push(' ');
                }
                out.push_str(&text.text);
                last = Some((pos.y, pos.x + text.width()));
            }
            _ => {}
        }
    }
}

/// Checks that the text of the element labelled `<address>` on the first
/// page lies inside the window `(left, top, width, height)` in mm.
fn check_window(
    frame: &Frame,
    (left, top, width, height): (f64, f64, f64, f64),
) -> Result<(), String> {
    // The bounding box (mm) of the text inside the element labelled `<address>`.
    let mut bounds: Option<(f64, f64, f64, f64)> = None;
    let found = walk_text(frame, &mut |p, text, inside| {
        if !inside {
            return;
        }
        let size = text.size.to_mm();
        let (x0, x1) = (p.x.to_mm(), (p.x + text.width()).to_mm());
        // The baseline is at p.y; ascenders and descenders around it.
        let (y0, y1) = (p.y.to_mm() - 0.75 * size, p.y.to_mm() + 0.25 * size);
        bounds = Some(match bounds {
            None => (x0, y0, x1, y1),
            Some((a, b, c, d)) => (a.min(x0), b.min(y0), c.max(x1), d.max(y1)),
        });
    });
    if !found {
        return Err(
            "the layout checks an envelope window but the first page has no block labelled <address>".into(),
        );
    }
    let Some((x0, y0, x1, y1)) = bounds else {
        return Err("the <address> block is empty".into());
    };
    let (right, bottom) = (left + width, top + height);
    let mut off = Vec::new();
    if x0 < left - 0.05 {
        off.push(format!("starts {:.1} mm left of it", left - x0));
    }
    if x1 > right + 0.05 {
        off.push(format!(
            "reaches {:.1} mm beyond its right edge",
            x1 - right
        ));
    }
    if y0 < top - 0.05 {
        off.push(format!("starts {:.1} mm above it", top - y0));
    }
    if y1 > bottom + 0.05 {
        off.push(format!(
            "reaches {:.1} mm below its bottom edge",
            y1 - bottom
        ));
    }
    if off.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the address does not fit the envelope window ({width} × {height} mm at {left} mm from the left, {top} mm from the top): it {}; shorten the address lines",
            off.join(" and ")
        ))
    }
}

/// Calls `each` with the position on the page, the text run and whether it
/// lies inside the element labelled `<address>`, for every text run of a
/// page; returns whether the page has that element.
pub(super) fn walk_text(frame: &Frame, each: &mut dyn FnMut(Point, &TextItem, bool)) -> bool {
    fn walk(
        frame: &Frame,
        at: Point,
        open: &mut Option<typst::introspection::Location>,
        found: &mut bool,
        each: &mut dyn FnMut(Point, &TextItem, bool),
    ) {
        use typst::introspection::Tag;
        for (pos, item) in frame.items() {
            let p = at + *pos;
            match item {
                FrameItem::Group(g) => walk(&g.frame, p, open, found, each),
                FrameItem::Tag(Tag::Start(elem, _))
                    if open.is_none()
                        && elem
                            .label()
                            .is_some_and(|l| l.resolve().as_str() == "address") =>
                {
                    *open = elem.location();
                    *found = true;
                }
                FrameItem::Tag(Tag::End(loc, ..)) if open.as_ref() == Some(loc) => *open = None,
                FrameItem::Text(text) => each(p, text, open.is_some()),
                _ => {}
            }
        }
    }
    let mut found = false;
    walk(frame, Point::zero(), &mut None, &mut found, each);
    found
}

/// Every text run of a frame with its position on the page and its width,
/// in the order the frame draws them.
fn positioned_text(frame: &Frame, out: &mut Vec<(Point, Abs, String)>) {
    walk_text(frame, &mut |p, text, _| {
        out.push((p, text.width(), text.text.to_string()))
    });
}

/// Text runs joined into lines: a run continues the line when it sits on the
/// same baseline to the right of the previous one.
fn lines_of(items: Vec<(Point, Abs, String)>) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut last: Option<(Abs, Abs)> = None;
    for (pos, width, text) in items {
        match last {
            Some((y, end)) if (y - pos.y).abs() < Abs::pt(1.0) && pos.x + Abs::pt(1.0) >= end => {
                let line = lines.last_mut().expect("a line was started");
                if pos.x - end > Abs::pt(1.0) && !line.ends_with(' ') {
                    line.push(' ');
                }
                line.push_str(&text);
            }
            _ => lines.push(text),
        }
        last = Some((pos.y, pos.x + width));
    }
    lines
        .into_iter()
        .map(|l| crate::check::wording::normalize(&l))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Collects the characters shaped to the `.notdef` glyph (a blank box).
fn missing_glyphs(frame: &Frame, out: &mut BTreeSet<char>) {
    for (_, item) in frame.items() {
        match item {
            FrameItem::Group(g) => missing_glyphs(&g.frame, out),
            FrameItem::Text(text) => {
                for glyph in text.glyphs.iter().filter(|g| g.id == 0) {
                    let s = text.text.get(glyph.range()).unwrap_or("");
                    out.extend(s.chars().filter(|c| !c.is_whitespace() && !c.is_control()));
                }
            }
            _ => {}
        }
    }
}

/// Turns Typst's errors into one line: `file:line: message (hint: ..)`, at
/// most three of them joined by `; `.
fn describe(world: &RecordWorld, diags: &[SourceDiagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.severity == Severity::Error);
    let lines: Vec<String> = errors.take(3).map(|d| describe_one(world, d)).collect();
    if lines.is_empty() {
        "typst reported an error without a message".into()
    } else {
        lines.join("; ")
    }
}

/// One diagnostic as `file:line: message (hint: ..)`.
fn describe_one(world: &RecordWorld, d: &SourceDiagnostic) -> String {
    let mut out = String::new();
    // Errors raised inside a native function (e.g. `int("x")`) have no span
    // of their own: locate them by the innermost call instead.
    let spans = std::iter::once(d.span).chain(d.trace.iter().map(|t| t.span.into()));
    if let Some(place) = spans.filter_map(|span| locate(world, span)).next() {
        out.push_str(&place);
        out.push_str(": ");
    }
    out.push_str(&d.message);
    // Hints about the typst CLI's flags do not apply here.
    for hint in d.hints.iter().filter(|h| !h.v.contains("--")) {
        out.push_str(&format!(" (hint: {})", hint.v));
    }
    out
}

/// `path:line` of a diagnostic span, if it points into a file.
fn locate(world: &RecordWorld, span: DiagSpan) -> Option<String> {
    let (id, range) = (span.id()?, world.range(span)?);
    let line = line_at(world.bytes_of(id)?, range.start);
    Some(format!("{}:{line}", id.vpath().get_without_slash()))
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &[u8], offset: usize) -> usize {
    text[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The Typst world of one record: the shared layout plus the record.
struct RecordWorld<'a> {
    shared: &'a Renderer,
    record: Bytes,
    recipient: Bytes,
    locale: Bytes,
    piece: Bytes,
    format: Bytes,
    /// The letter's format, as `format` says it.
    letter: LetterFormat,
    /// The main file: the template, or the engine's large-print main.
    main: FileId,
    /// Compiling the web letter (with the HTML library).
    html: bool,
}

impl RecordWorld<'_> {
    /// The files served per record: the record, its locale, its piece, its
    /// recipient and its format.
    fn own(&self, id: FileId) -> Option<&Bytes> {
        if id == *RECORD_ID {
            Some(&self.record)
        } else if id == *LOCALE_ID {
            Some(&self.locale)
        } else if id == *PIECE_ID {
            Some(&self.piece)
        } else if id == *RECIPIENT_ID {
            Some(&self.recipient)
        } else if id == *format::FORMAT_ID {
            Some(&self.format)
        } else {
            None
        }
    }

    fn bytes_of(&self, id: FileId) -> Option<&[u8]> {
        match self.own(id) {
            Some(bytes) => Some(bytes),
            None => self.shared.files.get(&id).map(|b| &b[..]),
        }
    }

    fn check(&self, id: FileId) -> FileResult<()> {
        if let VirtualRoot::Package(pkg) = id.root() {
            return Err(FileError::Other(Some(
                format!(
                    "package imports are not available in letterpress ({pkg}): a layout must be self-contained, \
                     so copy the package's files into the layout folder and import them by path"
                )
                .into(),
            )));
        }
        Ok(())
    }
}

impl World for RecordWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        if self.html {
            &self.shared.web.library
        } else {
            &self.shared.library
        }
    }

    fn book(&self) -> &LazyHash<FontBook> {
        self.shared.fonts.book()
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        self.check(id)?;
        match self.shared.sources.get(&id) {
            Some(source) => Ok(source.clone()),
            None if self.shared.files.contains_key(&id) || self.own(id).is_some() => {
                Err(FileError::NotSource)
            }
            None => Err(not_found(id)),
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.check(id)?;
        if let Some(bytes) = self.own(id) {
            return Ok(bytes.clone());
        }
        self.shared
            .files
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.shared.fonts.font(index)
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Some(self.shared.today)
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::Other(Some(
        format!(
            "file `{}` is not in the layout folder (templates can read only files of their own layout version)",
            id.vpath().get_with_slash()
        )
        .into(),
    ))
}
