//! The mailing order of a print run, planned before rendering, and the
//! print files made from the letters after it (see [`crate::output::print`]).
//!
//! What the run keeps of a letter in memory is its place in mailing order,
//! its piece number and where the record spool keeps its record (see
//! [`Pieces`], about 16 bytes a letter, 4 a record); everything else goes
//! through files in the run folder, read back a line at a time: the record
//! spool, the exported pages ([`super::pages`]) and the placed pieces. The
//! checks that depend on the records before one (duplicate ids, file
//! names) are made once, when the order is planned, and their verdicts
//! ([`Known`]) serve the passes after.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::check::record::{Checked, Checker, Known, Pieces, Plan};
use crate::check::route::Decision;
use crate::error::{Error, Result};
use crate::input::{field_text, Input, RawRecord};
use crate::layout::catalog::Layout;
use crate::manifest::journal;
use crate::model::manifest::DocumentsFile;
use crate::model::print::{
    Conformance, Piece, PieceFacts, Postal, PrintOutput, PrintSettings, PrintShop,
};
use crate::model::vocab::{Channel, DocStatus, Format};
use crate::output::file_names::FileNamer;
use crate::output::print::household;
use crate::output::print::{export_run, Letter, Pages, Part, EXPORT_PIECES};
use crate::render::pdf::Renderer;
use crate::util::stop::StopFlag;

use super::pages::Kept;
use super::spool::Sealed;

/// The name of the record spool in the run folder.
pub const SPOOL_FILE: &str = "print-records.jsonl";

/// The name of the placed pieces' file in the run folder, while the
/// journal is linked to them.
pub const PIECES_FILE: &str = "print-pieces.jsonl";

/// A print run's mailing order and what its later passes need to read
/// the letters back.
pub struct Mailing {
    /// Each letter's place, piece and spool line.
    pub pieces: Pieces,
    /// The verdicts of the checks that depend on the records before one.
    pub known: Known,
    settings: PrintSettings,
    /// The record spool (none for `validate`, which renders nothing).
    spool: Option<Sealed>,
}

/// A spooled record: where it is in the input, its files' stem, what the
/// mailing order is made of, what its piece is planned with, and the
/// record as read.
#[derive(serde::Serialize, serde::Deserialize)]
struct Spooled {
    index: usize,
    line: u64,
    stem: String,
    id: String,
    /// Its sort fields' values (`print.sort`).
    sort: Vec<String>,
    facts: PieceFacts,
    record: serde_json::Map<String, serde_json::Value>,
}

/// A spooled line without its record, for the passes that need only the
/// rest (serde skips the record's text).
#[derive(serde::Deserialize)]
struct SpooledHead {
    index: usize,
    id: String,
    sort: Vec<String>,
    facts: PieceFacts,
}

/// Numbers the records that get a letter in mailing order (keeping them in
/// a record spool in the given run folder, for rendering and the print
/// files; `records`, the input's count, sizes the checks' tables once): by the presort tool's sequence file when given (ids in it
/// first, in its order; any other letter after them in the layout's
/// order), else by the layout's `print.sort` key, then the record id.
pub fn mailing_order(
    (plan, records): (Plan, usize),
    input: &Input,
    (sequence, household): (Option<&Path>, bool),
    folder: Option<&Path>,
    stop: &StopFlag,
) -> Result<Mailing> {
    if !plan.channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let settings = plan.layout.meta.print.clone().unwrap_or_default();
    let households = households(plan.layout, &settings, household)?;
    let presorted = presorted(sequence)?;
    let mut spool = folder.map(|f| Sealed::create(f, SPOOL_FILE)).transpose()?;
    let read = read_letters(
        (plan, records),
        input,
        (&settings, households.as_ref()),
        &mut spool,
        stop,
    )?;
    // The ids and names of every record are gone (and their memory goes
    // back to the system before the sort takes its own); the order is made
    // from the spool (or, for `validate`, from what the pass kept).
    crate::util::mem::trim();
    let mut sort = Sort {
        keys: Vec::with_capacity(read.key_bytes),
        entries: Vec::with_capacity(read.letters),
        presorted: &presorted,
    };
    match &mut spool {
        Some(spool) => {
            spool.written()?;
            for line in spool.lines::<SpooledHead>()? {
                let (at, s) = line.map_err(Error::Output)?;
                sort.push(&s, at);
            }
        }
        None => read.heads.iter().for_each(|s| sort.push(s, 0)),
    }
    let sorted = sort.sorted();
    let (sequence, pieces) = match read.members {
        Some(members) => {
            let (sequence, facts) =
                number(&settings, sorted.iter().map(|e| e.index as usize), members);
            (sequence, Some(facts))
        }
        None => ((1..=sorted.len() as u32).collect(), None),
    };
    let letters = sorted.iter().map(|e| (e.index as usize, e.at));
    let pieces = Pieces::new(read.records, letters, sequence, pieces);
    drop(sorted);
    crate::util::mem::trim();
    Ok(Mailing {
        pieces,
        known: read.known,
        settings,
        spool,
    })
}

/// What the pass over the input found.
struct Read {
    records: usize,
    /// Letters, and the bytes of their sort keys (see [`sort_key`]).
    letters: usize,
    key_bytes: usize,
    known: Known,
    /// Without a spool: each letter's spooled head.
    heads: Vec<SpooledHead>,
    /// With `--household`: each letter's household and facts, by input
    /// position.
    members: Option<HashMap<usize, (household::Member, PieceFacts)>>,
}

/// Reads and checks every record in input order, naming their files;
/// spools those that get a letter.
fn read_letters(
    (plan, records): (Plan, usize),
    input: &Input,
    (settings, households): (&PrintSettings, Option<&crate::model::print::Household>),
    spool: &mut Option<Sealed>,
    stop: &StopFlag,
) -> Result<Read> {
    let id_field = plan.layout.meta.id_field.clone();
    let mut checker = Checker::new(plan, input.format);
    checker.reserve(records);
    // The file names the records get, in input order as the run gives them.
    let mut namer = FileNamer::with_capacity(records);
    let mut read = Read {
        records: 0,
        letters: 0,
        key_bytes: 0,
        known: Known::default(),
        heads: Vec::new(),
        members: households.map(|_| HashMap::new()),
    };
    for raw in input.records()? {
        if let Some(signal) = stop.requested() {
            return Err(super::stopped(signal, 0, 0, None));
        }
        let raw = raw?;
        read.records = read.records.max(raw.index + 1);
        let (index, line) = (raw.index, raw.line);
        let data = match (&spool, &raw.data) {
            (Some(_), Ok(data)) => Some(data.clone()),
            _ => None,
        };
        let Checked::Ready(job) = checker.check(raw) else {
            continue;
        };
        let stem = namer.name(&job.id);
        if FileNamer::was_renamed(&job.id, &stem) {
            read.known.renamed.insert(index);
        }
        let prints = job
            .route
            .decisions
            .iter()
            .any(|(c, d)| *c == Channel::Pdf && matches!(d, Decision::Render(_)));
        if !prints {
            continue;
        }
        let (inserts, divert) = crate::output::print::chosen(settings, &job.record);
        let facts = PieceFacts {
            postcode: field_text(&job.record, &settings.postcode_field),
            routing: settings.routing(&job.record),
            inserts,
            divert,
        };
        if let (Some(members), Some(h)) = (&mut read.members, households) {
            let member = household::member(h, &id_field, &job.record);
            members.insert(index, (member, facts.clone()));
        }
        let sort: Vec<String> = settings
            .sort
            .iter()
            .map(|f| field_text(&job.record, f))
            .collect();
        read.letters += 1;
        read.key_bytes += key_len(&sort, &job.id);
        match (spool.as_mut(), data) {
            (Some(spool), Some(record)) => {
                spool.push(&Spooled {
                    index,
                    line,
                    stem,
                    id: job.id,
                    sort,
                    facts,
                    record,
                })?;
            }
            _ => read.heads.push(SpooledHead {
                index,
                id: job.id,
                sort,
                facts,
            }),
        }
    }
    read.known.duplicates = checker.into_duplicates();
    Ok(read)
}

/// The letters' sort keys (see [`sort_key`]), all in one buffer, and
/// for each letter where its key is, its input position and spool line:
/// about 55 bytes a letter while the order is made, and nothing a letter
/// allocates of its own.
struct Sort<'a> {
    keys: Vec<u8>,
    entries: Vec<Entry>,
    presorted: &'a HashMap<String, usize>,
}

/// A letter in the sort.
struct Entry {
    /// Its key: `keys[start..start + len]`.
    start: u64,
    len: u32,
    index: u32,
    at: u64,
}

impl Sort<'_> {
    fn push(&mut self, s: &SpooledHead, at: u64) {
        let first = self.presorted.get(&s.id).copied().unwrap_or(usize::MAX);
        let start = self.keys.len();
        sort_key(&mut self.keys, first, &s.sort, &s.id);
        self.entries.push(Entry {
            start: start as u64,
            len: (self.keys.len() - start) as u32,
            index: u32::try_from(s.index).expect("fewer than 4 billion records"),
            at,
        });
    }

    /// The letters in mailing order: by key, then input position.
    fn sorted(self) -> Vec<Entry> {
        let Sort {
            keys, mut entries, ..
        } = self;
        let key = |e: &Entry| &keys[e.start as usize..][..e.len as usize];
        entries.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.index.cmp(&b.index)));
        entries
    }
}

/// The bytes [`sort_key`] writes for a letter.
fn key_len(sort: &[String], id: &str) -> usize {
    let text = |t: &str| t.len() + t.bytes().filter(|&b| b == 0).count() + 2;
    8 + sort.iter().map(|s| text(s)).sum::<usize>() + text(id)
}

/// Writes the sort key of a letter as bytes that sort as the tuple
/// (position in the sequence file, sort fields, record id) sorts: the
/// position big-endian, then each text with its zero bytes escaped
/// (`00 FF`) and ended by `00 00`, so a text sorts before any longer one
/// it begins.
fn sort_key(key: &mut Vec<u8>, first: usize, sort: &[String], id: &str) {
    key.extend_from_slice(&(first as u64).to_be_bytes());
    for text in sort.iter().map(String::as_str).chain([id]) {
        for &b in text.as_bytes() {
            key.push(b);
            if b == 0 {
                key.push(0xFF);
            }
        }
        key.extend_from_slice(&[0, 0]);
    }
}

/// With `--household`, how the layout finds a household.
fn households(
    layout: &Layout,
    settings: &PrintSettings,
    household: bool,
) -> Result<Option<crate::model::print::Household>> {
    match (household, &settings.household) {
        (false, _) => Ok(None),
        (true, Some(h)) => Ok(Some(h.clone())),
        (true, None) => Err(Error::Usage(format!(
            "--household: layout {} has no print.household section saying how a household is found and who may share an envelope (see the book's page \"Print files for the inserter\")",
            layout.id()
        ))),
    }
}

/// Numbers the pieces of householded letters given in mailing order
/// (by input position): the pieces [`household::group`] makes,
/// each with its first letter's postcode and barcode fields, the inserts
/// any of its letters selects (in the order the layout declares them) and
/// a divert if any asks for one. Returns each letter's piece number and
/// each piece's facts.
fn number(
    settings: &PrintSettings,
    letters: impl Iterator<Item = usize>,
    mut members: HashMap<usize, (household::Member, PieceFacts)>,
) -> (Vec<u32>, Vec<PieceFacts>) {
    let ordered: Vec<(household::Member, PieceFacts)> = letters
        .map(|index| members.remove(&index).expect("every letter was read"))
        .collect();
    let piece_of = household::group(ordered.iter().map(|(m, _)| m));
    let mut pieces: Vec<Option<PieceFacts>> = Vec::new();
    for (&p, (_, facts)) in piece_of.iter().zip(ordered) {
        if pieces.len() <= p {
            pieces.resize(p + 1, None);
        }
        match &mut pieces[p] {
            Some(piece) => {
                piece.inserts.extend(facts.inserts);
                piece.divert |= facts.divert;
            }
            none => *none = Some(facts),
        }
    }
    let declared = |c: &String| settings.inserts.iter().position(|i| &i.code == c);
    let pieces = pieces
        .into_iter()
        .map(|p| {
            let mut p = p.expect("every piece has a letter");
            p.inserts.sort_by_key(declared);
            p.inserts.dedup();
            p
        })
        .collect();
    (piece_of.iter().map(|&p| p as u32 + 1).collect(), pieces)
}

impl Mailing {
    /// A letter's postal barcode for its piece: from the piece's first
    /// letter's fields (its own, unless householded), if the layout has
    /// one.
    pub fn postal(
        &self,
        sequence: u32,
        own: &PieceFacts,
    ) -> Option<std::result::Result<Postal, String>> {
        let facts = self.pieces.household(sequence).unwrap_or(own);
        facts
            .routing
            .as_ref()
            .and_then(|r| self.settings.postal(sequence, r))
    }

    /// A letter's barcode fields for `validate`, which has no spool: its
    /// record's own, or its household's piece's.
    pub fn postal_of(
        &self,
        sequence: u32,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<std::result::Result<Postal, String>> {
        let own = PieceFacts {
            routing: self.settings.routing(record),
            ..PieceFacts::default()
        };
        self.postal(sequence, &own)
    }

    fn spool(&self) -> &Sealed {
        self.spool
            .as_ref()
            .expect("a print run has its record spool")
    }

    /// The letter at `place`, read back from the spool and checked again
    /// as it was checked in input order (the checks that depend on the
    /// records before, duplicate ids and file names, were passed then:
    /// the stem is the one it got), with its piece and postal barcode.
    fn letter(&self, place: usize, checker: &mut Checker) -> std::result::Result<Checked, String> {
        let s: Spooled = self.spool().read(self.pieces.offset(place))?;
        let raw = RawRecord {
            index: s.index,
            line: s.line,
            data: Ok(s.record),
        };
        Ok(match checker.check(raw) {
            Checked::Ready(mut job) => {
                job.stem = s.stem;
                job.sequence = Some(self.pieces.sequence(place));
                job.imb = self.postal(self.pieces.sequence(place), &s.facts);
                Checked::Ready(job)
            }
            failed => failed,
        })
    }

    /// The letters in mailing order, read back from the record spool and
    /// checked again (with `checker`, which takes the planning pass's
    /// verdicts), to be rendered in that order: each letter's pages then go
    /// to the print files as they come (see [`super::pages`]), and are not
    /// laid out a second time.
    pub fn in_mailing_order<'a>(
        &'a self,
        mut checker: Checker<'a>,
    ) -> impl Iterator<Item = Result<Checked>> + Send + 'a {
        (0..self.pieces.letters())
            .map(move |place| self.letter(place, &mut checker).map_err(Error::Output))
    }

    /// Removes the record spool: the print files are made.
    fn remove_spool(&mut self) -> Result<()> {
        self.spool
            .take()
            .map(Sealed::remove)
            .transpose()
            .map(|_| ())
    }
}

/// A presort tool's sequence file: record id → position.
fn presorted(sequence: Option<&Path>) -> Result<HashMap<String, usize>> {
    let Some(path) = sequence else {
        return Ok(HashMap::new());
    };
    Ok(std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("sequence file `{}`: {e}", path.display())))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, id)| (id.to_owned(), i))
        .collect())
}

/// The pages of each letter of the run as rendered, by place (0: not
/// rendered), from the journal.
fn rendered_pages(folder: &Path, pieces: &Pieces) -> Result<Vec<u32>> {
    let mut pages = vec![0u32; pieces.letters()];
    for d in journal::documents(folder)? {
        let d = d?;
        if d.channel != Channel::Pdf.name() || d.status != DocStatus::Rendered {
            continue;
        }
        if let Some(place) = pieces.place_of(d.index) {
            pages[place] = u32::try_from(d.pages.max(1)).unwrap_or(u32::MAX);
        }
    }
    Ok(pages)
}

/// The places of the letters in piece order: mailing order, or with
/// householding, by piece number (a household's letters may be apart).
fn piece_order(pieces: &Pieces) -> Option<Vec<u32>> {
    if !pieces.householded() {
        return None;
    }
    let mut order: Vec<u32> = (0..pieces.letters() as u32).collect();
    order.sort_by_key(|&p| (pieces.sequence(p as usize), p));
    Some(order)
}

/// The run's rendered letters as mail pieces in piece order, read from the
/// spool one at a time.
fn rendered_letters<'a>(
    mailing: &'a Mailing,
    pages: &'a [u32],
    order: Option<&'a [u32]>,
) -> impl Iterator<Item = std::result::Result<Letter, String>> + 'a {
    let places: Box<dyn Iterator<Item = usize> + 'a> = match order {
        Some(order) => Box::new(order.iter().map(|&p| p as usize)),
        None => Box::new(0..pages.len()),
    };
    let mut places = places.filter(|&p| pages[p] > 0).peekable();
    std::iter::from_fn(move || {
        let first = places.next()?;
        let sequence = mailing.pieces.sequence(first);
        let mut letter: Option<Letter> = None;
        let mut place = Some(first);
        while let Some(p) = place {
            let s: SpooledHead = match mailing.spool().read(mailing.pieces.offset(p)) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            let part = Part {
                record_id: s.id,
                path: String::new(),
                pages: pages[p] as usize,
                record_at: Some(mailing.pieces.offset(p)),
            };
            match &mut letter {
                Some(l) => l.parts.push(part),
                None => {
                    let facts = mailing
                        .pieces
                        .household(sequence)
                        .cloned()
                        .unwrap_or(s.facts);
                    letter = Some(Letter {
                        sequence,
                        parts: vec![part],
                        barcode: match mailing.postal(sequence, &facts) {
                            Some(Ok(postal)) => postal.payload,
                            _ => String::new(),
                        },
                        postcode: facts.postcode,
                        envelope: None,
                        inserts: facts.inserts,
                        divert: facts.divert,
                        weight: None,
                    });
                }
            }
            place = places.next_if(|&n| mailing.pieces.sequence(n) == sequence);
        }
        letter.map(Ok)
    })
}

/// Combines the run's letters into print files and a job ticket, and links
/// each letter's entry in the journal to its piece (rewriting the journal).
/// The pages come from the runs `kept` when the letters were rendered, or
/// are laid out again from the record spool (checked again with `plan`).
/// A `held` run (its layout's policy asks for a release) names its ticket
/// [`crate::ops::release::HELD_TICKET`]: the print shop's `job-ticket` is
/// written only when a reviewer releases the run.
pub fn print_files(
    (layout, renderer): (&Layout, &Renderer),
    (out, folder): (&Path, &Path),
    (mut mailing, shop, kept): (Mailing, Option<(PrintShop, Conformance)>, Kept),
    (plan, format): (Plan, Format),
    (run_id, held): (&str, bool),
) -> Result<(PrintOutput, DocumentsFile)> {
    let mut settings = layout.meta.print.clone().unwrap_or_default();
    if let Some((shop, conformance)) = shop {
        crate::output::print::pdfx::keep(out, &conformance).map_err(Error::Output)?;
        shop.apply(&mut settings, conformance);
    }
    let pages = rendered_pages(folder, &mailing.pieces)?;
    let order = piece_order(&mailing.pieces);
    let mut placed = Sealed::create(folder, PIECES_FILE)?;
    let mut at: Vec<u64> = Vec::new();
    let run_pages = RunPages {
        mailing: &mailing,
        pages: &pages,
        order: order.as_deref(),
        kept: &kept,
        renderer,
        checking: (plan, format),
        tidy: super::render::Tidy::default(),
        again: AtomicUsize::new(0),
        laid_again: std::sync::Mutex::new(std::collections::HashSet::new()),
    };
    let ticket = match held {
        true => crate::ops::release::HELD_TICKET,
        false => crate::ops::release::TICKET,
    };
    let made = crate::output::print::produce_stream(
        out,
        &settings,
        rendered_letters(&mailing, &pages, order.as_deref()),
        ("print", ticket, run_id),
        Some(&run_pages),
        &mut |piece| {
            let offset = placed.push(&piece).map_err(|e| e.to_string())?;
            let n = piece.sequence as usize;
            if at.len() < n {
                at.resize(n, u64::MAX);
            }
            at[n - 1] = offset;
            Ok(())
        },
    );
    let mut output = made.map_err(|e| Error::Output(format!("print files: {e}")))?;
    output.laid_out_again = Some(run_pages.again.load(Ordering::Relaxed));
    drop(run_pages);
    drop(pages);
    mailing.remove_spool()?;
    kept.remove()?;
    placed.written()?;
    let entry = link_journal(folder, &mailing.pieces, &placed, &at)?;
    placed.remove()?;
    Ok((output, entry))
}

/// Links each rendered letter's entry in the journal to its piece, found
/// by the piece number its record was planned with and read back from the
/// placed pieces' file (`at`: each piece's line, by number).
fn link_journal(
    folder: &Path,
    pieces: &Pieces,
    placed: &Sealed,
    at: &[u64],
) -> Result<DocumentsFile> {
    let mut last: Option<Piece> = None;
    let mut failed: Option<String> = None;
    let entry = journal::rewrite(folder, |d| {
        if d.channel != Channel::Pdf.name() || d.status != DocStatus::Rendered || failed.is_some() {
            return;
        }
        let Some(sequence) = pieces.sequence_of(d.index) else {
            return;
        };
        let offset = at.get(sequence as usize - 1).copied().unwrap_or(u64::MAX);
        if offset == u64::MAX {
            return;
        }
        if last.as_ref().is_none_or(|p| p.sequence != sequence) {
            match placed.read::<Piece>(offset) {
                Ok(p) => last = Some(p),
                Err(e) => {
                    failed = Some(e);
                    return;
                }
            }
        }
        let id = d.record_id.as_deref();
        d.piece = last
            .as_ref()
            .filter(|p| {
                id == Some(p.record_id.as_str()) || p.records.iter().any(|r| Some(r.as_str()) == id)
            })
            .cloned();
    })?;
    match failed {
        Some(why) => Err(Error::Output(why)),
        None => Ok(entry),
    }
}

/// A print run's pages for its print files: the runs kept from the
/// letters' one layout (see [`super::pages`]), and those that were not
/// kept whole (an earlier attempt rendered some of their letters) laid
/// out again from the record spool, all of their letters, to the same
/// bytes.
struct RunPages<'a> {
    mailing: &'a Mailing,
    /// By place: each letter's pages as rendered (0: not rendered).
    pages: &'a [u32],
    /// With householding: the places in piece order.
    order: Option<&'a [u32]>,
    kept: &'a Kept,
    renderer: &'a Renderer,
    checking: (Plan<'a>, Format),
    tidy: super::render::Tidy,
    /// Letters laid out again, and the runs they were in.
    again: AtomicUsize,
    laid_again: std::sync::Mutex<std::collections::HashSet<usize>>,
}

impl RunPages<'_> {
    /// The rendered letters of run `run` (places, in piece order).
    fn run_letters(&self, run: usize) -> Vec<usize> {
        let pieces = &self.mailing.pieces;
        let first = run as u32 * EXPORT_PIECES + 1;
        let last = first + EXPORT_PIECES - 1;
        let places: Vec<usize> = match self.order {
            Some(order) => {
                let start = order.partition_point(|&p| pieces.sequence(p as usize) < first);
                order[start..]
                    .iter()
                    .map(|&p| p as usize)
                    .take_while(|&p| pieces.sequence(p) <= last)
                    .collect()
            }
            None => {
                let end = (last as usize).min(pieces.letters());
                (first as usize - 1..end).collect()
            }
        };
        places.into_iter().filter(|&p| self.pages[p] > 0).collect()
    }

    /// Lays the letters of a run out again from the spool and exports them
    /// together.
    fn again(&self, run: usize, letters: &[usize]) -> std::result::Result<Vec<u8>, String> {
        let plan = Plan {
            known: Some(&self.mailing.known),
            ..self.checking.0
        };
        let mut checker = Checker::new(plan, self.checking.1);
        let mut docs = Vec::with_capacity(letters.len());
        for &place in letters {
            let Checked::Ready(job) = self.mailing.letter(place, &mut checker)? else {
                return Err(format!(
                    "the letter at place {} in mailing order no longer passes its checks",
                    place + 1
                ));
            };
            let bars = job.imb.as_ref().and_then(|b| b.as_ref().ok());
            let sequence = job.sequence.unwrap_or_default();
            let doc = self
                .renderer
                .layout_piece(&job.record, job.locale, sequence, bars)
                .map_err(|e| format!("record {}: {e}", job.id))?;
            docs.push(doc);
            self.tidy.after_record();
        }
        let laid: usize = docs.iter().map(|d| d.pages().len()).sum();
        let expected: usize = letters.iter().map(|&p| self.pages[p] as usize).sum();
        if laid != expected {
            return Err(format!(
                "the letters of piece {} on, laid out again for the print file, have {laid} pages, not the {expected} they had when rendered",
                run as u32 * EXPORT_PIECES + 1
            ));
        }
        if self.laid_again.lock().expect("not poisoned").insert(run) {
            self.again.fetch_add(letters.len(), Ordering::Relaxed);
        }
        self.renderer.export_together(docs)
    }
}

impl Pages for RunPages<'_> {
    fn pages(&self, letters: &[&Letter]) -> std::result::Result<(Vec<u8>, usize), String> {
        let sequence = letters.first().map_or(1, |l| l.sequence);
        let run = export_run(sequence);
        let places = self.run_letters(run);
        let pieces = &self.mailing.pieces;
        // The pages of the run's letters before these.
        let first: usize = places
            .iter()
            .filter(|&&p| pieces.sequence(p) < sequence)
            .map(|&p| self.pages[p] as usize)
            .sum();
        let counts = (
            places.iter().map(|&p| self.pages[p] as usize).sum(),
            places.len(),
        );
        match self.kept.counts(run) == Some(counts) {
            true => Ok((self.kept.read(run)?, first)),
            false => self.again(run, &places).map(|pdf| (pdf, first)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_sort_as_the_fields_do() {
        let key = |first, sort: &[&str], id| {
            let sort: Vec<String> = sort.iter().map(|s| s.to_string()).collect();
            let mut key = Vec::new();
            sort_key(&mut key, first, &sort, id);
            assert_eq!(key.len(), key_len(&sort, id));
            key
        };
        let tuple = |first: usize, sort: &[&str], id: &str| {
            (
                first,
                sort.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                id.to_string(),
            )
        };
        let cases: Vec<(usize, Vec<&str>, &str)> = vec![
            (usize::MAX, vec!["AB1", "x"], "C-2"),
            (usize::MAX, vec!["AB1", ""], "C-9"),
            (usize::MAX, vec!["AB", "zz"], "C-1"),
            (usize::MAX, vec!["AB\0", "a"], "C-1"),
            (usize::MAX, vec!["AB\u{1}", "a"], "C-1"),
            (usize::MAX, vec!["AB1", "x"], "C-10"),
            (3, vec!["ZZ", "z"], "C-5"),
            (0, vec!["ZZ", "z"], "C-6"),
            (usize::MAX, vec!["ab1", "x"], "C-2"),
        ];
        let mut by_key: Vec<usize> = (0..cases.len()).collect();
        by_key.sort_by_key(|&i| key(cases[i].0, &cases[i].1, cases[i].2));
        let mut by_tuple: Vec<usize> = (0..cases.len()).collect();
        by_tuple.sort_by_key(|&i| tuple(cases[i].0, &cases[i].1, cases[i].2));
        assert_eq!(by_key, by_tuple);
    }
}
