//! `reprint`: exactly the named pieces of a finished print run again, the
//! same letters with the same pages and piece numbers, in a new print file
//! with its own ticket, recorded in `print/reprints.jsonl` (a chained log,
//! see [`crate::util::jsonl`]; `verify` checks it).
//!
//! A reprint holds the run folder's lock while it works, and takes its
//! number under it: two reprints (or reconciles) at once never both write
//! "reprint 1"; the second waits (`--lock-wait`) or is refused, and takes
//! the next number. A run whose manifest or journal was edited after the
//! run, or whose reprint record is broken, is refused before anything is
//! written.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::journal;
use crate::model::file::FileEntry;
use crate::model::manifest::{Document, Manifest};
use crate::model::print::{Envelope, Piece, Plex, PrintSettings};
use crate::output::print::{produce_named, Letter, Part};
use crate::util::clock::now_rfc3339;
use crate::util::fs::FileProblem;
use crate::util::jsonl;

/// The record of reprints in a run folder, one JSON object a line.
pub const REPRINTS_FILE: &str = "print/reprints.jsonl";

/// One reprint, as recorded in [`REPRINTS_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reprint {
    /// 1 for the first reprint of the run.
    pub reprint: usize,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The reprinted pieces' sequence numbers.
    pub pieces: Vec<u32>,
    /// Its print files and ticket, with their hashes.
    pub files: Vec<FileEntry>,
}

/// The reprints recorded in the folder of run `run_id`, every line of
/// the record checked (an error names the first broken one).
pub fn reprints(run: &Path, run_id: &str) -> Result<Vec<Reprint>> {
    jsonl::read_chained(&run.join(REPRINTS_FILE), &origin(run_id))
}

/// The first link of the reprint record of run `run_id`.
fn origin(run_id: &str) -> String {
    jsonl::origin(REPRINTS_FILE, run_id)
}

/// The pieces of the run's journal that `pieces` (sequence numbers) and
/// `records` (record ids) name, in mailing order, each once, with their
/// letters (several for a household's piece).
fn pick<'a>(
    documents: &'a [Document],
    pieces: &[u32],
    records: &[String],
) -> Result<Vec<(Vec<&'a Document>, &'a Piece)>> {
    // Each piece's letters in journal order, by piece number.
    let mut known: BTreeMap<u32, Vec<(&Document, &Piece)>> = BTreeMap::new();
    for d in documents {
        if let Some(p) = &d.piece {
            known.entry(p.sequence).or_default().push((d, p));
        }
    }
    let mut chosen: Vec<u32> = Vec::new();
    let mut unknown = Vec::new();
    for n in pieces {
        match known.contains_key(n) {
            true => chosen.push(*n),
            false => unknown.push(format!("piece {n}")),
        }
    }
    for id in records {
        let piece = documents
            .iter()
            .filter(|d| d.record_id.as_ref() == Some(id))
            .find_map(|d| d.piece.as_ref());
        match piece {
            Some(p) => chosen.push(p.sequence),
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
    chosen.sort();
    chosen.dedup();
    Ok(chosen
        .into_iter()
        .map(|n| {
            let letters = &known[&n];
            (letters.iter().map(|(d, _)| *d).collect(), letters[0].1)
        })
        .collect())
}

/// A letter of a piece to reprint, refused when its file no longer matches
/// the manifest.
fn checked_part(run: &Path, d: &Document, p: &Piece) -> Result<Part> {
    let rel = d.path.clone().unwrap_or_default();
    match d.all_files().first().map(|f| f.check(run)) {
        Some(Ok(())) => {}
        Some(Err(FileProblem::Unreadable(e))) => return Err(Error::Input(format!("{rel}: {e}"))),
        _ => {
            return Err(Error::Input(format!(
                "{rel} (piece {}) no longer matches the manifest; it is not reprinted (`letterpress verify` lists what changed)",
                p.sequence
            )))
        }
    }
    Ok(Part {
        record_id: d.record_id.clone().unwrap_or_default(),
        path: rel,
        pages: d.pages,
        record_at: None,
    })
}

/// A reprint's print settings: the run's plex and inserter marks, one
/// file, each piece keeping its envelope class.
fn reprint_settings<'a>(m: &Manifest, chosen: impl Iterator<Item = &'a Piece>) -> PrintSettings {
    let mut envelopes: Vec<Envelope> = Vec::new();
    for p in chosen {
        if !envelopes.iter().any(|e| e.name == p.envelope) {
            envelopes.push(Envelope {
                name: p.envelope.clone(),
                max_sheets: None,
                weight: 0.0,
                divert: false,
            });
        }
    }
    PrintSettings {
        plex: m.print.as_ref().map_or(Plex::Simplex, |p| p.plex),
        max_sheets_per_file: usize::MAX,
        envelopes,
        // The same inserter marks as the original pieces.
        omr: m.print.as_ref().and_then(|p| p.omr.clone()),
        datamatrix: m.print.as_ref().and_then(|p| p.datamatrix.clone()),
        ..PrintSettings::default()
    }
}

/// A finished print run, read for a command that writes to it: its
/// manifest unedited, a print run, and its journal as sealed.
pub(crate) fn print_run(run: &Path, command: &str) -> Result<(Manifest, Vec<Document>)> {
    let m = crate::manifest::read_intact(run, command)?;
    if m.print.is_none() {
        return Err(Error::Usage(format!(
            "{} was not a print run (run --print)",
            run.display()
        )));
    }
    let documents = journal::read_sealed(run, &m.documents, command)?;
    Ok((m, documents))
}

/// Reprints pieces of a finished print run: the same letters (so the same
/// pages, piece numbers and marks) in a new print file with its own ticket,
/// recorded in [`REPRINTS_FILE`]. `pieces` are sequence numbers; `records`
/// record ids. A letter whose file no longer matches the manifest is
/// refused. Holds the run folder's lock on `lock`'s terms.
pub fn reprint(
    run: &Path,
    pieces: &[u32],
    records: &[String],
    lock: crate::util::lock::LockTerms,
) -> Result<Reprint> {
    let _lock = crate::manifest::folder::lock(run, "reprint", lock)?;
    if let Some(why) = crate::ops::release::refusal(run)? {
        return Err(Error::Usage(format!(
            "reprint refuses {}: {why}",
            run.display()
        )));
    }
    let (m, documents) = print_run(run, "reprint")?;
    reprint_locked(run, &m, &documents, pieces, records)
}

/// [`reprint`] for a caller that holds the run folder's lock and has read
/// the run.
pub(crate) fn reprint_locked(
    run: &Path,
    m: &Manifest,
    documents: &[Document],
    pieces: &[u32],
    records: &[String],
) -> Result<Reprint> {
    let (mut record_log, done): (_, Vec<Reprint>) =
        jsonl::Chained::open(&run.join(REPRINTS_FILE), &origin(&m.run_id))?;
    let chosen = pick(documents, pieces, records)?;
    let mut letters = Vec::new();
    for (docs, p) in &chosen {
        let mut parts = Vec::new();
        for d in docs {
            parts.push(checked_part(run, d, p)?);
        }
        // The piece's letters in the order the piece lists them.
        if !p.records.is_empty() {
            parts.sort_by_key(|part| p.records.iter().position(|r| *r == part.record_id));
        }
        letters.push(Letter {
            sequence: p.sequence,
            parts,
            postcode: p.postcode.clone(),
            envelope: Some(p.envelope.clone()),
            barcode: p.barcode.clone(),
            inserts: p.inserts.clone(),
            divert: p.divert,
            weight: Some((p.weight, p.weight_class.clone())).filter(|(_, c)| !c.is_empty()),
        });
    }
    let mut settings = reprint_settings(m, chosen.iter().map(|(_, p)| *p));
    // Made for a print shop: the reprint is PDF/X for it too.
    if let Some(used) = m.print.as_ref().and_then(|p| p.print_shop.as_ref()) {
        let c = crate::output::print::pdfx::kept(run, used, &m.as_of)
            .map_err(|e| Error::Usage(format!("reprint refuses {}: {e}", run.display())))?;
        settings.conformance = Some(std::sync::Arc::new(c));
    }
    let n = done.len() + 1;
    let stem = format!("reprint-{n:03}");
    let (placed, output) = produce_named(
        run,
        &settings,
        letters,
        &stem,
        &format!("{stem}-ticket"),
        &m.run_id,
        None,
    )
    .map_err(|e| Error::Output(format!("reprint: {e}")))?;
    drop(placed);
    let mut files: Vec<FileEntry> = Vec::new();
    for f in output.files {
        files.push(f.file);
        files.extend(f.mrdf);
    }
    files.extend(output.tickets);
    let record = Reprint {
        reprint: n,
        at: now_rfc3339(),
        pieces: chosen.iter().map(|(_, p)| p.sequence).collect(),
        files,
    };
    let journal = run.join(REPRINTS_FILE);
    record_log
        .push(&record)
        .and_then(|()| record_log.sync())
        .map_err(|e| Error::io(&journal, e))?;
    Ok(record)
}
