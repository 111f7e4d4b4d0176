//! The mailing order of a print run, planned before rendering, and the
//! print files made from the letters after it (see [`crate::output::print`]).

use std::collections::HashMap;
use std::path::Path;

use crate::check::record::{Checked, Checker, Pieces, Plan, Planned};
use crate::check::route::Decision;
use crate::error::{Error, Result};
use crate::input::{field_text, Input, RawRecord};
use crate::layout::catalog::Layout;
use crate::manifest::journal;
use crate::model::manifest::DocumentsFile;
use crate::model::print::{Conformance, PrintOutput, PrintSettings, PrintShop, SpoolAt};
use crate::model::vocab::{Channel, DocStatus, Format};
use crate::output::file_names::FileNamer;
use crate::output::print::household;
use crate::output::print::{export_run, Letter, Pages, Part};
use crate::render::pdf::Renderer;
use crate::util::stop::StopFlag;

use super::pages::Kept;

/// Numbers the records that get a letter in mailing order (keeping their
/// checked records in a spool in the given run folder, for the print
/// files): by the presort
/// tool's sequence file when given (ids in it first, in its order; any
/// other letter after them in the layout's order), else by the layout's
/// `print.sort` key, then the record id.
pub fn mailing_order(
    plan: Plan,
    input: &Input,
    (sequence, household): (Option<&Path>, bool),
    spool: Option<&Path>,
    stop: &StopFlag,
) -> Result<Pieces> {
    if !plan.channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let settings = plan.layout.meta.print.clone().unwrap_or_default();
    let households = households(plan.layout, &settings, household)?;
    let id_field = plan.layout.meta.id_field.clone();
    let presorted = presorted(sequence)?;
    let mut checker = Checker::new(plan, input.format);
    let mut spool = spool.map(Spool::create).transpose()?;
    // The file names the records get, in input order as the run gives them.
    let mut namer = FileNamer::default();
    let mut letters = Vec::new();
    for raw in input.records()? {
        if let Some(signal) = stop.requested() {
            return Err(super::stopped(signal, 0, 0, None));
        }
        let raw = raw?;
        let (index, line) = (raw.index, raw.line);
        let data = match (&spool, &raw.data) {
            (Some(_), Ok(data)) => Some(data.clone()),
            _ => None,
        };
        let Checked::Ready(job) = checker.check(raw) else {
            continue;
        };
        let stem = namer.name(&job.id);
        let prints = job
            .route
            .decisions
            .iter()
            .any(|(c, d)| *c == Channel::Pdf && matches!(d, Decision::Render(_)));
        if prints {
            let key: Vec<String> = settings
                .sort
                .iter()
                .map(|f| field_text(&job.record, f))
                .collect();
            let first = presorted.get(&job.id).copied().unwrap_or(usize::MAX);
            let letter = Unplanned {
                postcode: field_text(&job.record, &settings.postcode_field),
                routing: settings.routing(&job.record),
                chosen: crate::output::print::chosen(&settings, &job.record),
                member: households
                    .as_ref()
                    .map(|h| household::member(h, &id_field, &job.record)),
                record_at: match (&mut spool, data) {
                    (Some(spool), Some(record)) => spool.keep(&Spooled {
                        index,
                        line,
                        stem,
                        record,
                    })?,
                    _ => SpoolAt::default(),
                },
            };
            letters.push((first, key, job.id, job.index, letter));
        }
    }
    spool.map(Spool::finish).transpose()?;
    letters.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
    Ok(number(
        &settings,
        letters.into_iter().map(|l| (l.3, l.4)).collect(),
    ))
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

/// What the mailing order knows of a letter before it has a piece.
struct Unplanned {
    postcode: String,
    /// The fields its postal barcode is made from.
    routing: Option<(String, String)>,
    /// Its inserts and whether it asks to be diverted.
    chosen: (Vec<String>, bool),
    /// With `--household`: its household.
    member: Option<household::Member>,
    /// Where the spool keeps its record.
    record_at: SpoolAt,
}

/// Numbers the pieces of letters given in mailing order (input position
/// and what is known of it): one piece a letter, or with householding the
/// pieces [`household::group`] makes, each with its first letter's
/// postcode and IMb, the inserts any of its letters selects and a divert
/// if any asks for one.
fn number(settings: &PrintSettings, letters: Vec<(usize, Unplanned)>) -> Pieces {
    let piece_of: Vec<usize> = match letters.iter().all(|(_, l)| l.member.is_some()) {
        true if !letters.is_empty() => {
            household::group(letters.iter().filter_map(|(_, l)| l.member.as_ref()))
        }
        _ => (0..letters.len()).collect(),
    };
    let count = piece_of.iter().max().map_or(0, |m| m + 1);
    let mut firsts: Vec<Option<usize>> = vec![None; count];
    let mut inserts: Vec<Vec<String>> = vec![Vec::new(); count];
    let mut divert = vec![false; count];
    for (i, &p) in piece_of.iter().enumerate() {
        firsts[p].get_or_insert(i);
        let (codes, d) = &letters[i].1.chosen;
        inserts[p].extend(codes.iter().cloned());
        divert[p] |= *d;
    }
    // A piece's inserts in the order the layout declares them, each once.
    for codes in &mut inserts {
        let declared = |c: &String| settings.inserts.iter().position(|i| &i.code == c);
        codes.sort_by_key(declared);
        codes.dedup();
    }
    let imb: Vec<_> = firsts
        .iter()
        .enumerate()
        .map(|(p, first)| {
            let l = &letters[first.expect("every piece has a letter")].1;
            let sequence = p as u32 + 1;
            l.routing
                .as_ref()
                .and_then(|r| settings.postal(sequence, r))
        })
        .collect();
    letters
        .iter()
        .enumerate()
        .map(|(i, (index, _))| {
            let p = piece_of[i];
            let first = &letters[firsts[p].expect("a letter")].1;
            let planned = Planned {
                sequence: p as u32 + 1,
                position: i,
                postcode: first.postcode.clone(),
                imb: imb[p].clone(),
                inserts: inserts[p].clone(),
                divert: divert[p],
                record_at: letters[i].1.record_at,
            };
            (*index, planned)
        })
        .collect()
}

/// The name of the record spool in the run folder.
pub const SPOOL_FILE: &str = "print-records.jsonl";

/// The records of a print run's letters as read (before their checks),
/// one JSON line each with their place in the input and the stem of their
/// files' names, kept in the run folder while the run lasts: the letters
/// are rendered from them in mailing order, and a letter an earlier
/// attempt rendered is laid out again from them for the print files (see
/// [`crate::output::print::Pages`]), without the records staying in
/// memory. Written anew by every attempt (a resumed run plans again),
/// removed once the print files are made; it is not part of the run's
/// output.
struct Spool {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    at: u64,
}

impl Spool {
    fn create(folder: &Path) -> Result<Spool> {
        let path = folder.join(SPOOL_FILE);
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Spool {
            path,
            out: std::io::BufWriter::new(file),
            at: 0,
        })
    }

    /// Writes a record; returns where it is.
    fn keep(&mut self, record: &Spooled) -> Result<SpoolAt> {
        use std::io::Write;
        let mut line = serde_json::to_vec(record).expect("JSON serializes");
        line.push(b'\n');
        self.out
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, e))?;
        let at = SpoolAt {
            offset: self.at,
            len: line.len() as u32,
            hash: typst::utils::hash128(&line),
        };
        self.at += line.len() as u64;
        Ok(at)
    }

    fn finish(mut self) -> Result<()> {
        use std::io::Write;
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// A spooled record: where it is in the input, its files' stem and the
/// record as read.
#[derive(serde::Serialize, serde::Deserialize)]
struct Spooled {
    index: usize,
    line: u64,
    stem: String,
    record: serde_json::Map<String, serde_json::Value>,
}

/// Reads a record back from the spool and checks it again as it was
/// checked in input order (the checks that depend on the records before,
/// duplicate ids and file names, were passed then: the stem is the one it
/// got).
fn spooled(
    file: &std::fs::File,
    at: SpoolAt,
    checker: &mut Checker,
) -> std::result::Result<Checked, String> {
    let buf = spool_line(file, at)?;
    let s: Spooled = serde_json::from_slice(&buf).map_err(|e| format!("{SPOOL_FILE}: {e}"))?;
    let raw = RawRecord {
        index: s.index,
        line: s.line,
        data: Ok(s.record),
    };
    Ok(match checker.check(raw) {
        Checked::Ready(mut job) => {
            job.stem = s.stem;
            Checked::Ready(job)
        }
        failed => failed,
    })
}

/// A line of the spool, checked to be the one written there.
fn spool_line(file: &std::fs::File, at: SpoolAt) -> std::result::Result<Vec<u8>, String> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; at.len as usize];
    file.read_exact_at(&mut buf, at.offset)
        .map_err(|e| format!("{SPOOL_FILE}: {e}"))?;
    if typst::utils::hash128(&buf) != at.hash {
        return Err(format!(
            "{SPOOL_FILE}: the record at byte {} is not the one the run wrote there (the file was changed while the run went on); start the run again",
            at.offset
        ));
    }
    Ok(buf)
}

/// The letters of a print run in mailing order, read back from the record
/// spool (see [`Spool`]) and checked again, to be rendered in that order:
/// each letter's pages then go to the print files as they come (see
/// [`super::pages`]), and are not laid out a second time.
pub fn in_mailing_order<'a>(
    folder: &Path,
    pieces: &Pieces,
    mut checker: Checker<'a>,
) -> Result<impl Iterator<Item = Result<Checked>> + Send + 'a> {
    let path = folder.join(SPOOL_FILE);
    let spool = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let mut at = vec![SpoolAt::default(); pieces.len()];
    for p in pieces.values() {
        at[p.position] = p.record_at;
    }
    Ok(at
        .into_iter()
        .map(move |at| spooled(&spool, at, &mut checker).map_err(Error::Output)))
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

/// The run's rendered letters as mail pieces in mailing order, from the
/// journal and the plan.
fn rendered_letters(
    folder: &Path,
    pieces: &Pieces,
    by_sequence: &HashMap<u32, &Planned>,
) -> Result<Vec<Letter>> {
    // The rendered letters, by piece and their place in mailing order: one
    // flat list, so memory is a few words a letter.
    let mut rendered: Vec<(u32, usize, Part)> = Vec::new();
    for d in journal::documents(folder)? {
        let d = d?;
        if d.channel != Channel::Pdf.name() || d.status != DocStatus::Rendered {
            continue;
        }
        let Some(planned) = pieces.get(&d.index) else {
            continue;
        };
        if let (Some(record_id), Some(path)) = (d.record_id, d.path) {
            let part = Part {
                record_id,
                path,
                pages: d.pages,
                record_at: Some(planned.record_at),
            };
            rendered.push((planned.sequence, planned.position, part));
        }
    }
    rendered.sort_by_key(|(sequence, position, _)| (*sequence, *position));
    let mut letters: Vec<Letter> = Vec::new();
    for (sequence, _, part) in rendered {
        if let Some(last) = letters.last_mut().filter(|l| l.sequence == sequence) {
            last.parts.push(part);
            continue;
        }
        let planned = by_sequence[&sequence];
        letters.push(Letter {
            sequence,
            parts: vec![part],
            barcode: match &planned.imb {
                Some(Ok(postal)) => postal.payload.clone(),
                _ => String::new(),
            },
            postcode: planned.postcode.clone(),
            envelope: None,
            inserts: planned.inserts.clone(),
            divert: planned.divert,
            weight: None,
        });
    }
    Ok(letters)
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
    (pieces, shop, kept): (&Pieces, Option<(PrintShop, Conformance)>, Kept),
    (plan, format): (Plan, Format),
    (run_id, held): (&str, bool),
) -> Result<(PrintOutput, DocumentsFile)> {
    let mut settings = layout.meta.print.clone().unwrap_or_default();
    if let Some((shop, conformance)) = shop {
        crate::output::print::pdfx::keep(out, &conformance).map_err(Error::Output)?;
        shop.apply(&mut settings, conformance);
    }
    let by_sequence: HashMap<u32, &Planned> = pieces.values().map(|p| (p.sequence, p)).collect();
    let letters = rendered_letters(folder, pieces, &by_sequence)?;
    let spool_path = folder.join(SPOOL_FILE);
    let spool = std::fs::File::open(&spool_path).map_err(|e| Error::io(&spool_path, e))?;
    let pages = RunPages::new(
        &letters,
        (&kept, renderer),
        spool,
        &by_sequence,
        (plan, format),
    );
    let ticket = match held {
        true => crate::ops::release::HELD_TICKET,
        false => crate::ops::release::TICKET,
    };
    let made = crate::output::print::produce_named(
        out,
        &settings,
        letters,
        "print",
        ticket,
        run_id,
        Some(&pages),
    );
    let (placed, mut output) = made.map_err(|e| Error::Output(format!("print files: {e}")))?;
    output.laid_out_again = Some(pages.again.values().map(|(l, _)| l.len()).sum());
    drop(pages);
    std::fs::remove_file(&spool_path).map_err(|e| Error::io(&spool_path, e))?;
    kept.remove()?;
    // Each rendered letter's entry links to its piece, found by the piece
    // number its record was planned with (no map of record ids: a few
    // bytes a piece).
    let at: HashMap<u32, usize> = placed
        .iter()
        .enumerate()
        .map(|(i, p)| (p.sequence, i))
        .collect();
    let entry = journal::rewrite(folder, |d| {
        if d.channel != Channel::Pdf.name() || d.status != DocStatus::Rendered {
            return;
        }
        let piece = pieces
            .get(&d.index)
            .and_then(|planned| at.get(&planned.sequence))
            .map(|&i| &placed[i])
            .filter(|p| {
                let id = d.record_id.as_deref();
                id == Some(p.record_id.as_str()) || p.records.iter().any(|r| Some(r.as_str()) == id)
            });
        d.piece = piece.cloned();
    })?;
    Ok((output, entry))
}

/// A print run's pages for its print files: the runs kept from the
/// letters' one layout (see [`super::pages`]), and those that were not
/// kept whole (an earlier attempt rendered some of their letters) laid
/// out again from the record spool, all of their letters, to the same
/// bytes.
struct RunPages<'a> {
    kept: &'a Kept,
    renderer: &'a Renderer,
    spool: std::fs::File,
    by_sequence: &'a HashMap<u32, &'a Planned>,
    checking: (Plan<'a>, Format),
    tidy: super::render::Tidy,
    /// By piece number (from 1): its first page in its run.
    first_page: Vec<u32>,
    /// The runs not kept whole: their letters (piece number, each
    /// letter's record in the spool and id) and pages.
    again: HashMap<usize, Again>,
}

/// A run to lay out again: its letters (piece number, where the spool
/// keeps the record, record id) and its pages as rendered.
type Again = (Vec<(u32, SpoolAt, String)>, usize);

impl<'a> RunPages<'a> {
    /// The pages of `letters` (the run's rendered letters in mailing
    /// order).
    fn new(
        letters: &[Letter],
        (kept, renderer): (&'a Kept, &'a Renderer),
        spool: std::fs::File,
        by_sequence: &'a HashMap<u32, &'a Planned>,
        checking: (Plan<'a>, Format),
    ) -> RunPages<'a> {
        let last = letters.last().map_or(0, |l| l.sequence as usize);
        let mut first_page = vec![0; last];
        // Each run's pages and letters as rendered.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for l in letters {
            let run = export_run(l.sequence);
            if runs.len() <= run {
                runs.resize(run + 1, (0, 0));
            }
            first_page[l.sequence as usize - 1] = runs[run].0 as u32;
            runs[run].0 += l.parts.iter().map(|p| p.pages).sum::<usize>();
            runs[run].1 += l.parts.len();
        }
        let mut again: HashMap<usize, Again> = HashMap::new();
        for l in letters {
            let run = export_run(l.sequence);
            if kept.counts(run) == Some(runs[run]) {
                continue;
            }
            let entry = again.entry(run).or_insert((Vec::new(), runs[run].0));
            for part in &l.parts {
                let at = part.record_at.unwrap_or_default();
                entry.0.push((l.sequence, at, part.record_id.clone()));
            }
        }
        RunPages {
            kept,
            renderer,
            spool,
            by_sequence,
            checking,
            tidy: super::render::Tidy::default(),
            first_page,
            again,
        }
    }

    /// Lays the letters of a run out again from the spool and exports them
    /// together.
    fn again(&self, (letters, expected): &Again) -> std::result::Result<Vec<u8>, String> {
        let mut checker = Checker::new(self.checking.0, self.checking.1);
        let mut docs = Vec::with_capacity(letters.len());
        for (sequence, at, record_id) in letters {
            let bars = match &self.by_sequence[sequence].imb {
                Some(Ok(postal)) => Some(postal),
                _ => None,
            };
            let Checked::Ready(job) = spooled(&self.spool, *at, &mut checker)? else {
                return Err(format!("record {record_id}: no longer passes its checks"));
            };
            let doc = self
                .renderer
                .layout_piece(&job.record, job.locale, *sequence, bars)
                .map_err(|e| format!("record {record_id}: {e}"))?;
            docs.push(doc);
            self.tidy.after_record();
        }
        let laid: usize = docs.iter().map(|d| d.pages().len()).sum();
        if laid != *expected {
            let first = letters.first().map_or("", |l| l.2.as_str());
            return Err(format!(
                "the letters from record {first} on, laid out again for the print file, have {laid} pages, not the {expected} they had when rendered"
            ));
        }
        self.renderer.export_together(docs)
    }
}

impl Pages for RunPages<'_> {
    fn pages(&self, letters: &[&Letter]) -> std::result::Result<(Vec<u8>, usize), String> {
        let sequence = letters.first().map_or(1, |l| l.sequence);
        let run = export_run(sequence);
        let first = self.first_page[sequence as usize - 1] as usize;
        match self.again.get(&run) {
            None => Ok((self.kept.read(run)?, first)),
            Some(letters) => self.again(letters).map(|pdf| (pdf, first)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_line_changed_after_it_was_written_is_refused() {
        let dir = std::env::temp_dir().join(format!("lp-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spool = Spool::create(&dir).unwrap();
        let mut record = serde_json::Map::new();
        record.insert("customer_id".into(), "C-1".into());
        record.insert("last_name".into(), "Lee".into());
        let line = |record| Spooled {
            index: 3,
            line: 4,
            stem: "C-1".into(),
            record,
        };
        let first = spool.keep(&line(record.clone())).unwrap();
        let second = spool.keep(&line(record)).unwrap();
        spool.finish().unwrap();
        let path = dir.join(SPOOL_FILE);
        let file = std::fs::File::open(&path).unwrap();
        assert!(spool_line(&file, first).is_ok());
        assert!(spool_line(&file, second).is_ok());
        // The same length, another name: the hash tells.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("Lee", "Lex", 1)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let why = spool_line(&file, first).unwrap_err();
        assert!(why.contains("not the one the run wrote"), "{why}");
        assert!(spool_line(&file, second).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
