//! The mailing order of a print run, planned before rendering, and the
//! print files made from the letters after it (see [`crate::output::print`]).

use std::collections::HashMap;
use std::path::Path;

use crate::check::record::{Checked, Checker, Pieces, Plan, Planned};
use crate::check::route::Decision;
use crate::error::{Error, Result};
use crate::input::{field_text, Input};
use crate::layout::catalog::Layout;
use crate::manifest::journal;
use crate::model::manifest::DocumentsFile;
use crate::model::print::{PrintOutput, PrintSettings};
use crate::model::vocab::{Channel, DocStatus};
use crate::output::print::household;
use crate::output::print::{Letter, Part};
use crate::util::stop::StopFlag;

/// Numbers the records that get a letter in mailing order: by the presort
/// tool's sequence file when given (ids in it first, in its order; any
/// other letter after them in the layout's order), else by the layout's
/// `print.sort` key, then the record id.
pub fn mailing_order(
    plan: Plan,
    input: &Input,
    sequence: Option<&Path>,
    household: bool,
    stop: &StopFlag,
) -> Result<Pieces> {
    if !plan.channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let settings = plan.layout.meta.print.clone().unwrap_or_default();
    let households = match (household, &settings.household) {
        (false, _) => None,
        (true, Some(h)) => Some(h.clone()),
        (true, None) => {
            return Err(Error::Usage(format!(
                "--household: layout {} has no print.household section saying how a household is found and who may share an envelope (see docs/print.md)",
                plan.layout.id()
            )))
        }
    };
    let id_field = plan.layout.meta.id_field.clone();
    let presorted = presorted(sequence)?;
    let mut checker = Checker::new(plan, input.format);
    let mut letters = Vec::new();
    for raw in input.records()? {
        if let Some(signal) = stop.requested() {
            return Err(super::stopped(signal, 0, 0, None));
        }
        let Checked::Ready(job) = checker.check(raw?) else {
            continue;
        };
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
                zip: settings
                    .imb
                    .as_ref()
                    .map(|i| field_text(&job.record, &i.zip_field)),
                chosen: crate::output::print::chosen(&settings, &job.record),
                member: households
                    .as_ref()
                    .map(|h| household::member(h, &id_field, &job.record)),
            };
            letters.push((first, key, job.id, job.index, letter));
        }
    }
    letters.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
    Ok(number(
        &settings,
        letters.into_iter().map(|l| (l.3, l.4)).collect(),
    ))
}

/// What the mailing order knows of a letter before it has a piece.
struct Unplanned {
    postcode: String,
    zip: Option<String>,
    /// Its inserts and whether it asks to be diverted.
    chosen: (Vec<String>, bool),
    /// With `--household`: its household.
    member: Option<household::Member>,
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
            settings
                .imb
                .as_ref()
                .zip(l.zip.as_ref())
                .map(|(s, zip)| s.barcode(sequence, zip))
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
            };
            (*index, planned)
        })
        .collect()
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

/// Combines the run's letters into print files and a job ticket, and links
/// each letter's entry in the journal to its piece (rewriting the journal).
pub fn print_files(
    layout: &Layout,
    out: &Path,
    folder: &Path,
    pieces: &Pieces,
    run_id: &str,
) -> Result<(PrintOutput, DocumentsFile)> {
    let settings = layout.meta.print.clone().unwrap_or_default();
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
            };
            rendered.push((planned.sequence, planned.position, part));
        }
    }
    rendered.sort_by_key(|(sequence, position, _)| (*sequence, *position));
    let by_sequence: HashMap<u32, &Planned> = pieces.values().map(|p| (p.sequence, p)).collect();
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
                Some(Ok((payload, _))) => payload.clone(),
                _ => String::new(),
            },
            postcode: planned.postcode.clone(),
            envelope: None,
            inserts: planned.inserts.clone(),
            divert: planned.divert,
            weight: None,
        });
    }
    let (placed, output) = crate::output::print::produce(out, &settings, letters, run_id)
        .map_err(|e| Error::Output(format!("print files: {e}")))?;
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
