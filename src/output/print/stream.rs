//! Print files written as a stream: each mail piece's letters are read,
//! marked and written out before the next piece is read, so the letters'
//! content is never held together. Kept until the end: the page list (4
//! bytes a page), the object offsets (5 bytes an object) and a digest per
//! distinct stream that a later letter may share.
//!
//! A letter's pages come from a [`Source`]: its own PDF, or a PDF that
//! several letters were exported in together. The objects its pages reach
//! are renumbered into the print file (a source's catalog, structure tree
//! and outline stay behind: a print file is for printing); an object of the
//! source that an earlier letter of it reached (a font subset shared by the
//! letters exported together) is written once, identical streams of
//! different sources (a logo, a colour profile) too, and every object is
//! serialised with lopdf's own writer.
//!
//! With document parts on, the file carries the PDF/VT document part
//! structure (ISO 16612-2): a `DPartRoot` in the catalog whose root node
//! holds one `DPart` per mail piece, with its first and last page and its
//! metadata (`DPM`: run id, piece, records, sheets, envelope), and every
//! page names its `DPart`. With a print shop's output condition ([`Pdfx`])
//! the file is PDF/VT-1 on PDF/X-4 (see [`super::pdfx`]): without one it
//! makes no PDF/X claim.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream};

use crate::model::print::{Conformance, Plex};

use super::{Code, Omr, SheetMarks};

/// Object offsets kept per block of this many.
const BLOCK: usize = 1 << 16;

/// Bytes an object's offset is kept in: 5 (a print file of up to 1 TB),
/// against 8 for a `u64`: with four or five objects a page, 15 MB less
/// for a print file of a million pages.
const OFFSET_BYTES: usize = 5;

/// A writer that counts what goes through it: the objects' offsets.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The marks and metadata of one mail piece.
pub struct PieceMarks<'a> {
    /// The print run's marks.
    pub marks: &'a SheetMarks<'a>,
    /// The piece number.
    pub piece: u32,
    /// Its insert codes.
    pub inserts: &'a [String],
    /// Its document part metadata, for PDF/VT.
    pub dpm: Dictionary,
}

/// A PDF whose pages go into the stream: a letter's own, or several
/// letters laid out and exported together (whose fonts they share).
pub struct Source {
    doc: Document,
    pages: Vec<ObjectId>,
    page_set: HashSet<ObjectId>,
    /// Its objects written so far, with their ids in the stream: a font
    /// that a later letter of the same source uses is written once.
    taken: HashMap<ObjectId, u32>,
}

impl Source {
    /// Reads a PDF.
    pub fn load(bytes: &[u8]) -> Result<Source, String> {
        let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        Ok(Source {
            doc,
            page_set: pages.iter().copied().collect(),
            pages,
            taken: HashMap::new(),
        })
    }

    /// Its page count.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }
}

/// One letter of a mail piece: its source (an index into the sources
/// given with it), its pages there, and the page count it is padded to
/// with blank pages of its last page's size.
pub struct Take {
    pub source: usize,
    pub pages: std::ops::Range<usize>,
    pub padded: usize,
}

/// A print file's PDF/X-4 and PDF/VT-1 conformance: the shop's output
/// condition, the file's id and title.
pub struct Pdfx {
    pub conformance: std::sync::Arc<Conformance>,
    pub id: [u8; 16],
    pub title: String,
}

/// A PDF written piece by piece; see the module docs.
pub struct PdfStream<W: Write> {
    out: Counted<W>,
    /// Byte offset of every object written, by id (0: none written), in
    /// blocks, so that growing never copies (and holds twice) them all;
    /// [`OFFSET_BYTES`] each, little-endian.
    offsets: Vec<Box<[u8]>>,
    next_id: u32,
    pages_id: u32,
    kids: Vec<u32>,
    /// Streams written so far that a later letter may share (fonts,
    /// images, colour profiles; not page content, which is each letter's
    /// own), by a 128-bit digest: about 20 bytes a stream.
    shared: HashMap<u128, u32>,
    /// With document parts: the root node's id and the leaves.
    parts: Option<(u32, Vec<u32>)>,
    plex: Plex,
    sheet_in_file: usize,
    pdfx: Option<Pdfx>,
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

impl<W: Write> PdfStream<W> {
    /// Starts a PDF on `out`; `dparts` adds the PDF/VT document parts,
    /// `pdfx` makes it PDF/VT-1 on PDF/X-4.
    pub fn new(
        out: W,
        plex: Plex,
        dparts: bool,
        pdfx: Option<Pdfx>,
    ) -> Result<PdfStream<W>, String> {
        let header: &[u8] = match pdfx {
            Some(_) => b"%PDF-1.6\n%\xE2\xE3\xCF\xD3\n",
            None => b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n",
        };
        let mut s = PdfStream {
            out: Counted {
                inner: out,
                bytes: 0,
            },
            offsets: Vec::new(),
            next_id: 1,
            pages_id: 0,
            kids: Vec::new(),
            shared: HashMap::new(),
            parts: None,
            plex,
            sheet_in_file: 0,
            pdfx,
        };
        s.out.write_all(header).map_err(io)?;
        s.pages_id = s.reserve();
        if dparts {
            let node = s.reserve();
            s.parts = Some((node, Vec::new()));
        }
        Ok(s)
    }

    fn reserve(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Records where object `id` starts (here) and writes its header.
    fn begin(&mut self, id: u32) -> Result<(), String> {
        let (block, at) = (id as usize / BLOCK, id as usize % BLOCK);
        while self.offsets.len() <= block {
            self.offsets
                .push(vec![0; BLOCK * OFFSET_BYTES].into_boxed_slice());
        }
        let offset = self.out.bytes.to_le_bytes();
        if offset[OFFSET_BYTES..].iter().any(|&b| b != 0) {
            return Err("a print file larger than 1 TB: lower max_sheets_per_file".into());
        }
        self.offsets[block][at * OFFSET_BYTES..][..OFFSET_BYTES]
            .copy_from_slice(&offset[..OFFSET_BYTES]);
        writeln!(self.out, "{id} 0 obj").map_err(io)
    }

    fn write_object(&mut self, id: u32, object: &Object) -> Result<(), String> {
        self.begin(id)?;
        lopdf::Writer::write_object(&mut self.out, object).map_err(|e| e.to_string())?;
        self.out.write_all(b"\nendobj\n").map_err(io)
    }

    /// An object's offset (0: not written).
    fn offset(&self, id: usize) -> u64 {
        let Some(block) = self.offsets.get(id / BLOCK) else {
            return 0;
        };
        let mut bytes = [0; 8];
        bytes[..OFFSET_BYTES].copy_from_slice(&block[id % BLOCK * OFFSET_BYTES..][..OFFSET_BYTES]);
        u64::from_le_bytes(bytes)
    }

    /// Writes a dictionary `<<{head}{refs}{tail}>>` whose array holds
    /// references to `ids` (the page tree's kids, the document parts'
    /// leaves): written as they are listed, never made into one object in
    /// memory (about 50 bytes an entry, a million for a million pages).
    fn write_refs(&mut self, id: u32, head: &str, ids: &[u32], tail: &str) -> Result<(), String> {
        self.begin(id)?;
        write!(self.out, "<<{head}").map_err(io)?;
        for (i, r) in ids.iter().enumerate() {
            let sep = if i % 10 == 9 { "\n" } else { " " };
            write!(self.out, "{r} 0 R{sep}").map_err(io)?;
        }
        write!(self.out, "{tail}>>\nendobj\n").map_err(io)
    }

    /// Writes one mail piece: its letters (see [`Take`]), with the sheet
    /// marks and, with document parts, its `DPart`.
    pub fn add_piece(
        &mut self,
        sources: &mut [Source],
        letters: &[Take],
        marks: Option<PieceMarks>,
    ) -> Result<(), String> {
        // A document part needs the piece's metadata: none without marks.
        let leaf = match self.parts.is_some() && marks.is_some() {
            true => Some(self.reserve()),
            false => None,
        };
        let mut pages: Vec<(u32, Dictionary)> = Vec::new();
        let mut padding = BTreeSet::new();
        let mut objects: BTreeMap<u32, Object> = BTreeMap::new();
        for take in letters {
            let source = sources
                .get_mut(take.source)
                .ok_or("a letter without its source")?;
            let ids = source
                .pages
                .get(take.pages.clone())
                .ok_or("a letter's pages are not in its source")?
                .to_vec();
            let (own, media) = self.take_letter(source, &ids, &mut pages, &mut objects)?;
            for _ in own..take.padded {
                let id = self.reserve();
                padding.insert(pages.len());
                let media = media.clone().unwrap_or_else(|| {
                    Object::Array(vec![0.into(), 0.into(), 595.276.into(), 841.89.into()])
                });
                pages.push((
                    id,
                    dictionary! { "Type" => "Page", "MediaBox" => media, "Resources" => dictionary! {} },
                ));
            }
        }
        if let Some(m) = &marks {
            self.mark(&mut pages, &padding, m, &mut objects)?;
        }
        for (id, object) in &objects {
            self.write_object(*id, object)?;
        }
        let first = self.kids.len();
        for (id, mut page) in pages {
            page.set("Parent", Object::Reference((self.pages_id, 0)));
            if let Some(pdfx) = &self.pdfx {
                print_boxes(&mut page, pdfx.conformance.used.bleed);
            }
            if let Some(leaf) = leaf {
                page.set("DPart", Object::Reference((leaf, 0)));
            }
            self.kids.push(id);
            self.write_object(id, &Object::Dictionary(page))?;
        }
        if let (Some(leaf), Some(m)) = (leaf, marks) {
            let node = self.parts.as_ref().map_or(0, |p| p.0);
            let dict = dictionary! {
                "Type" => "DPart",
                "Parent" => Object::Reference((node, 0)),
                "Start" => Object::Reference((self.kids[first], 0)),
                "End" => Object::Reference((self.kids[self.kids.len() - 1], 0)),
                "DPM" => m.dpm,
            };
            self.write_object(leaf, &Object::Dictionary(dict))?;
            if let Some((_, leaves)) = &mut self.parts {
                leaves.push(leaf);
            }
        }
        Ok(())
    }

    /// Reads one letter: its pages (their inherited attributes made their
    /// own) go to `pages`, the objects they reach and this stream has not
    /// written yet to `objects`, all renumbered into this file, shared
    /// streams pointed at their first copy. Returns its own page count and
    /// its last page's size.
    fn take_letter(
        &mut self,
        source: &mut Source,
        page_ids: &[ObjectId],
        pages: &mut Vec<(u32, Dictionary)>,
        objects: &mut BTreeMap<u32, Object>,
    ) -> Result<(usize, Option<Object>), String> {
        let doc = &source.doc;
        let map = &mut source.taken;
        let dicts = own_pages(doc, page_ids, self.pdfx.is_some())?;
        // What an earlier letter of the same source took (a shared font, and
        // all it reaches) is written: the walk stops there.
        let new = reachable(doc, &dicts, &source.page_set, map);
        let mut contents = Vec::new();
        for d in &dicts {
            if let Ok(c) = d.get(b"Contents") {
                refs(c, &mut contents);
            }
        }
        if let Some(pdfx) = &self.pdfx {
            device_colour(doc, &dicts, (&new, &contents), pdfx.conformance.components)?;
        }
        // A stream already written (the same dictionary and data) is
        // shared: its references point at the first copy.
        let mut keys: HashMap<ObjectId, u128> = HashMap::new();
        let mut shared = BTreeSet::new();
        for id in &new {
            if contents.contains(id) {
                continue; // a page's own content
            }
            if let Ok(Object::Stream(stream)) = doc.get_object(*id) {
                let mut object = Object::Stream(stream.clone());
                renumber(&mut object, map, false);
                let key = stream_key(&object);
                match self.shared.get(&key) {
                    Some(&first) => {
                        map.insert(*id, first);
                        shared.insert(*id);
                    }
                    None => {
                        keys.insert(*id, key);
                    }
                }
            }
        }
        for id in page_ids
            .iter()
            .chain(new.iter().filter(|id| !shared.contains(id)))
        {
            let fresh = self.reserve();
            map.insert(*id, fresh);
        }
        for id in new.iter().filter(|id| !shared.contains(id)) {
            let Ok(object) = doc.get_object(*id) else {
                continue;
            };
            if let Some(key) = keys.get(id) {
                self.shared.insert(*key, map[id]);
            }
            let mut object = object.clone();
            renumber(&mut object, map, true);
            objects.insert(map[id], object);
        }
        let media = dicts.last().and_then(|d| d.get(b"MediaBox").ok().cloned());
        let own = dicts.len();
        for (id, mut page) in page_ids.iter().zip(dicts) {
            let mut object = Object::Dictionary(std::mem::take(&mut page));
            renumber(&mut object, map, true);
            if let Object::Dictionary(d) = object {
                pages.push((map[id], d));
            }
        }
        Ok((own, media))
    }

    /// Puts each sheet's OMR marks and DataMatrix code on the front of every
    /// sheet of the piece (and on a blank back that padding added).
    fn mark(
        &mut self,
        pages: &mut [(u32, Dictionary)],
        padding: &BTreeSet<usize>,
        m: &PieceMarks,
        objects: &mut BTreeMap<u32, Object>,
    ) -> Result<(), String> {
        let marks = m.marks;
        if marks.omr.is_none() && marks.code.is_none() {
            return Ok(());
        }
        let per_sheet = if self.plex == Plex::Duplex { 2 } else { 1 };
        let sheets = pages.len().div_ceil(per_sheet);
        for s in 0..sheets {
            self.sheet_in_file += 1;
            let at = s * per_sheet;
            let height = page_height(&pages[at].1);
            let mut ops = String::new();
            if let Some(omr) = marks.omr {
                ops.push_str(&omr.content(Omr::marks(self.sheet_in_file, s + 1 == sheets), height));
            }
            if let Some(code) = marks.code {
                let payload = Code::payload(marks.run_id, m.piece, s + 1, sheets, m.inserts);
                ops.push_str(&code.content(&payload, height)?);
            }
            let open = self.stream(b"q\n".to_vec(), true, objects);
            let close = self.stream(format!("Q\n{ops}").into_bytes(), false, objects);
            mark_page(&mut pages[at].1, open, close);
            // A blank padding page carries its sheet's marks too.
            if per_sheet == 2 && padding.contains(&(at + 1)) {
                mark_page(&mut pages[at + 1].1, open, close);
            }
        }
        Ok(())
    }

    /// A content stream; with `share`, one copy for every identical one.
    fn stream(
        &mut self,
        content: Vec<u8>,
        share: bool,
        objects: &mut BTreeMap<u32, Object>,
    ) -> u32 {
        let mut stream = Stream::new(dictionary! {}, content);
        // Compressed when it pays (lopdf keeps a short one as it is).
        let _ = stream.compress();
        let s = Object::Stream(stream);
        let key = stream_key(&s);
        if let Some(&id) = self.shared.get(&key).filter(|_| share) {
            return id;
        }
        let id = self.reserve();
        if share {
            self.shared.insert(key, id);
        }
        objects.insert(id, s);
        id
    }

    /// Writes the page tree, the document parts, the catalog, the Info
    /// dictionary (with a title) and the cross-reference table; returns
    /// the output.
    pub fn finish(mut self, title: Option<&str>) -> Result<W, String> {
        let kids = std::mem::take(&mut self.kids);
        let count = kids.len();
        self.write_refs(
            self.pages_id,
            &format!("/Type/Pages/Count {count}/Kids["),
            &kids,
            "]",
        )?;
        drop(kids);
        let mut catalog =
            dictionary! { "Type" => "Catalog", "Pages" => Object::Reference((self.pages_id, 0)) };
        if let Some((node, leaves)) = self.parts.take() {
            let root = self.reserve();
            let head = format!("/Type/DPart/Parent {root} 0 R/DParts[[");
            self.write_refs(node, &head, &leaves, "]]")?;
            drop(leaves);
            let dict = dictionary! {
                "Type" => "DPartRoot",
                "DPartRootNode" => Object::Reference((node, 0)),
                "RecordLevel" => 1,
                "NodeNameList" => vec![Object::Name(b"Job".to_vec()), Object::Name(b"MailPiece".to_vec())],
            };
            self.write_object(root, &Object::Dictionary(dict))?;
            catalog.set("DPartRoot", Object::Reference((root, 0)));
        }
        let pdfx = self.pdfx.take();
        if let Some(pdfx) = &pdfx {
            self.output_intent(pdfx, &mut catalog)?;
        }
        let catalog_id = self.reserve();
        self.write_object(catalog_id, &Object::Dictionary(catalog))?;
        let mut trailer = dictionary! { "Root" => Object::Reference((catalog_id, 0)) };
        if let Some(pdfx) = &pdfx {
            let info = self.reserve();
            self.write_object(info, &Object::Dictionary(pdfx_info(pdfx)))?;
            trailer.set("Info", Object::Reference((info, 0)));
            let id = Object::String(pdfx.id.to_vec(), lopdf::StringFormat::Hexadecimal);
            trailer.set("ID", vec![id.clone(), id]);
        } else if let Some(title) = title {
            let info = self.reserve();
            let dict = dictionary! {
                "Title" => Object::string_literal(title),
                "Creator" => Object::string_literal("letterpress"),
            };
            self.write_object(info, &Object::Dictionary(dict))?;
            trailer.set("Info", Object::Reference((info, 0)));
        }
        let size = self.next_id;
        trailer.set("Size", size as i64);
        let start = self.out.bytes;
        write!(self.out, "xref\n0 {size}\n0000000000 65535 f\r\n").map_err(io)?;
        for id in 1..size as usize {
            let offset = self.offset(id);
            match offset {
                0 => self.out.write_all(b"0000000000 65535 f\r\n"),
                at => write!(self.out, "{at:010} 00000 n\r\n"),
            }
            .map_err(io)?;
        }
        self.out.write_all(b"trailer\n").map_err(io)?;
        lopdf::Writer::write_object(&mut self.out, &Object::Dictionary(trailer))
            .map_err(|e| e.to_string())?;
        write!(self.out, "\nstartxref\n{start}\n%%EOF\n").map_err(io)?;
        self.out.flush().map_err(io)?;
        Ok(self.out.inner)
    }
}

/// A print page's boxes for PDF/X: its media box is the trimmed page
/// (`TrimBox`); with bleed, the media box and `BleedBox` grow by it on
/// every side.
fn print_boxes(page: &mut Dictionary, bleed_mm: f64) {
    let Ok(Object::Array(media)) = page.get(b"MediaBox") else {
        return;
    };
    let n: Vec<f32> = media
        .iter()
        .map(|o| match o {
            Object::Real(r) => *r,
            Object::Integer(i) => *i as f32,
            _ => 0.0,
        })
        .collect();
    if n.len() != 4 {
        return;
    }
    page.set("TrimBox", media.clone());
    if bleed_mm > 0.0 {
        let b = (bleed_mm * 72.0 / 25.4) as f32;
        let grown: Vec<Object> = [n[0] - b, n[1] - b, n[2] + b, n[3] + b]
            .into_iter()
            .map(Object::Real)
            .collect();
        page.set("MediaBox", grown.clone());
        page.set("BleedBox", grown);
    }
}

/// Refuses a letter whose pages use a device colour space the output
/// intent does not allow (see [`super::pdfx::forbidden`]): named in their
/// dictionaries (a transparency group's blending space) or in the objects
/// they reach (colour space resources, images, shadings), or set by an
/// operator of their content or of a form they draw (`rg`, `k`).
fn device_colour(
    doc: &Document,
    dicts: &[Dictionary],
    (reached, contents): (&BTreeSet<ObjectId>, &[ObjectId]),
    components: u8,
) -> Result<(), String> {
    let (bad, ops) = super::pdfx::forbidden(components);
    fn names(o: &Object, bad: &[&[u8]]) -> Option<String> {
        match o {
            Object::Name(n) if bad.contains(&n.as_slice()) => {
                Some(String::from_utf8_lossy(n).into_owned())
            }
            Object::Array(a) => a.iter().find_map(|x| names(x, bad)),
            Object::Dictionary(d) => d.iter().find_map(|(_, x)| names(x, bad)),
            Object::Stream(s) => s.dict.iter().find_map(|(_, x)| names(x, bad)),
            _ => None,
        }
    }
    let found = dicts
        .iter()
        .find_map(|d| d.iter().find_map(|(_, x)| names(x, bad)))
        .or_else(|| {
            reached
                .iter()
                .filter_map(|id| doc.get_object(*id).ok())
                .find_map(|o| names(o, bad))
        })
        .or_else(|| {
            let forms = reached.iter().filter(|id| {
                doc.get_dictionary(**id).is_ok_and(|d| {
                    d.get(b"Subtype")
                        .is_ok_and(|s| s == &Object::Name(b"Form".to_vec()))
                })
            });
            contents
                .iter()
                .chain(forms)
                .find_map(|id| painted(doc, *id, ops))
        });
    match found {
        Some(space) => Err(format!(
            "a letter uses {space} colour, which a PDF/X-4 file whose output intent is {} may not contain: give the layout colours the intent allows (ICC-based, or gray), or make the files for a print shop profile of that colour space, and finish the run with --resume",
            match components {
                4 => "CMYK",
                3 => "RGB",
                _ => "gray",
            }
        )),
        None => Ok(()),
    }
}

impl<W: Write> PdfStream<W> {
    /// Writes the output intent (the shop's profile embedded) and the XMP
    /// metadata, and names them in the catalog.
    fn output_intent(&mut self, pdfx: &Pdfx, catalog: &mut Dictionary) -> Result<(), String> {
        let c = &pdfx.conformance;
        let mut profile = Stream::new(
            dictionary! { "N" => i64::from(c.components) },
            c.profile.clone(),
        );
        let _ = profile.compress();
        let profile_id = self.reserve();
        self.write_object(profile_id, &Object::Stream(profile))?;
        let text = |s: &str| Object::String(s.as_bytes().to_vec(), lopdf::StringFormat::Literal);
        let intent = dictionary! {
            "Type" => "OutputIntent",
            "S" => "GTS_PDFX",
            "OutputConditionIdentifier" => text(&c.used.condition),
            "OutputCondition" => text(&c.used.info),
            "RegistryName" => text(&c.used.registry),
            "Info" => text(&c.used.info),
            "DestOutputProfile" => Object::Reference((profile_id, 0)),
        };
        let intent_id = self.reserve();
        self.write_object(intent_id, &Object::Dictionary(intent))?;
        catalog.set("OutputIntents", vec![Object::Reference((intent_id, 0))]);
        let (date, _) = super::pdfx::dates(&c.date);
        let xmp = super::pdfx::xmp(&pdfx.title, PRODUCER, &date, &pdfx.id);
        let meta = Stream::new(
            dictionary! { "Type" => "Metadata", "Subtype" => "XML" },
            xmp.into_bytes(),
        );
        let meta_id = self.reserve();
        self.write_object(meta_id, &Object::Stream(meta))?;
        catalog.set("Metadata", Object::Reference((meta_id, 0)));
        Ok(())
    }
}

/// Who made a print file, in its metadata.
const PRODUCER: &str = concat!("letterpress ", env!("CARGO_PKG_VERSION"));

/// A PDF/X print file's Info dictionary: as its XMP says (poppler and
/// older tools read the versions here).
fn pdfx_info(pdfx: &Pdfx) -> Dictionary {
    let (_, date) = super::pdfx::dates(&pdfx.conformance.date);
    let text = |s: &str| Object::string_literal(s);
    dictionary! {
        "Title" => text(&pdfx.title),
        "Creator" => text(PRODUCER),
        "Producer" => text(PRODUCER),
        "CreationDate" => text(&date),
        "ModDate" => text(&date),
        "Trapped" => "False",
        "GTS_PDFXVersion" => text("PDF/X-4"),
        "GTS_PDFVTVersion" => text("PDF/VT-1"),
    }
}

/// The first of `ops` that a content stream uses, as the colour space it
/// sets (`rg` sets DeviceRGB).
fn painted(doc: &Document, id: ObjectId, ops: &[&str]) -> Option<String> {
    let Ok(Object::Stream(stream)) = doc.get_object(id) else {
        return None;
    };
    let data = stream
        .decompressed_content()
        .unwrap_or_else(|_| stream.content.clone());
    // Parsing every page's content costs a tenth of a print run: parsed
    // only when one of the operators shows as a word at all.
    if !ops.iter().any(|o| has_word(&data, o.as_bytes())) {
        return None;
    }
    lopdf::content::Content::decode_iter(&data)
        .map_while(Result::ok)
        .find(|op| ops.contains(&op.operator.as_str()))
        .map(|op| match op.operator.as_str() {
            "rg" | "RG" => "DeviceRGB".to_owned(),
            "k" | "K" => "DeviceCMYK".to_owned(),
            _ => op.operator,
        })
}

/// Whether `word` stands in content `data` between delimiters (white
/// space, brackets, a name's slash) or its ends.
fn has_word(data: &[u8], word: &[u8]) -> bool {
    let delimiter = |b: u8| b.is_ascii_whitespace() || b"[]<>()/{}%".contains(&b);
    let n = word.len();
    let mut at = 0;
    while let Some(i) = data[at..].iter().position(|&b| b == word[0]) {
        let i = at + i;
        let before = i == 0 || delimiter(data[i - 1]);
        let after = data.get(i + n).is_none_or(|&b| delimiter(b));
        if before && after && data.get(i..i + n) == Some(word) {
            return true;
        }
        at = i + 1;
    }
    false
}

/// A letter's page dictionaries, their inherited attributes made their
/// own, without parent or structure links.
/// With `pdfx`, without annotations (Typst's links) or actions.
fn own_pages(doc: &Document, page_ids: &[ObjectId], pdfx: bool) -> Result<Vec<Dictionary>, String> {
    let mut dicts = Vec::with_capacity(page_ids.len());
    for id in page_ids {
        let mut page = doc.get_dictionary(*id).map_err(|e| e.to_string())?.clone();
        for key in [&b"MediaBox"[..], b"Resources", b"CropBox", b"Rotate"] {
            if page.get(key).is_err() {
                if let Some(v) = inherited(doc, *id, key) {
                    page.set(key, v);
                }
            }
        }
        page.remove(b"StructParents");
        page.remove(b"Parent");
        if pdfx {
            page.remove(b"Annots");
            page.remove(b"AA");
        }
        dicts.push(page);
    }
    Ok(dicts)
}

/// The objects a letter's pages reach (pages themselves aside: a link to
/// another letter's page of the same source is left behind), but for those
/// already `taken`, and what only they reach.
fn reachable(
    doc: &Document,
    dicts: &[Dictionary],
    page_ids: &HashSet<ObjectId>,
    taken: &HashMap<ObjectId, u32>,
) -> BTreeSet<ObjectId> {
    let mut reach = BTreeSet::new();
    let mut todo: Vec<ObjectId> = Vec::new();
    for d in dicts {
        for (_, v) in d.iter() {
            refs(v, &mut todo);
        }
    }
    while let Some(id) = todo.pop() {
        if page_ids.contains(&id) || taken.contains_key(&id) || !reach.insert(id) {
            continue;
        }
        if let Ok(o) = doc.get_object(id) {
            refs(o, &mut todo);
        }
    }
    reach
}

/// Every reference in an object.
fn refs(o: &Object, out: &mut Vec<ObjectId>) {
    match o {
        Object::Reference(r) => out.push(*r),
        Object::Array(a) => a.iter().for_each(|x| refs(x, out)),
        Object::Dictionary(d) => d.iter().for_each(|(_, x)| refs(x, out)),
        Object::Stream(s) => s.dict.iter().for_each(|(_, x)| refs(x, out)),
        _ => {}
    }
}

/// Points references at their new ids. A reference to an object left
/// behind (not reached from a page) becomes null with `drop`, and stays as
/// it is without.
fn renumber(o: &mut Object, map: &HashMap<ObjectId, u32>, drop: bool) {
    match o {
        Object::Reference(r) => match map.get(r) {
            Some(id) => *o = Object::Reference((*id, 0)),
            None if drop => *o = Object::Null,
            None => {}
        },
        Object::Array(a) => a.iter_mut().for_each(|x| renumber(x, map, drop)),
        Object::Dictionary(d) => d.iter_mut().for_each(|(_, x)| renumber(x, map, drop)),
        Object::Stream(s) => s.dict.iter_mut().for_each(|(_, x)| renumber(x, map, drop)),
        _ => {}
    }
}

/// A stream's identity: a 128-bit hash of its dictionary and data.
fn stream_key(o: &Object) -> u128 {
    match o {
        Object::Stream(s) => typst::utils::hash128(&(format!("{:?}", s.dict), &s.content)),
        _ => 0,
    }
}

/// Wraps a page's content in `q`/`Q` and draws the marks after it.
fn mark_page(page: &mut Dictionary, open: u32, close: u32) {
    let mut contents = vec![Object::Reference((open, 0))];
    match page.get(b"Contents") {
        Ok(Object::Array(a)) => contents.extend(a.iter().cloned()),
        Ok(other) => contents.push(other.clone()),
        Err(_) => {}
    }
    contents.push(Object::Reference((close, 0)));
    page.set("Contents", Object::Array(contents));
}

/// The height of a page in points (A4 if it cannot be read).
fn page_height(page: &Dictionary) -> f64 {
    match page.get(b"MediaBox") {
        Ok(Object::Array(a)) if a.len() == 4 => match &a[3] {
            Object::Real(r) => f64::from(*r),
            Object::Integer(i) => *i as f64,
            _ => 841.89,
        },
        _ => 841.89,
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
