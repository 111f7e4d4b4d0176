//! What a purge keeps, rewritten without the personal data the audit
//! record no longer needs once the documents are gone (see the module docs
//! of [`super`]). What stays: record ids, channels, statuses, layout
//! version, file names and hashes, sizes, pages, Message-IDs, piece
//! numbers, dates, the keyed hash of a postal address, and reasons with the
//! rule they name. What goes: email addresses and subjects (journal,
//! delivery journal), values quoted in reasons and server replies, an
//! attachment's name (it may hold an account number), postcodes and the
//! routing part of a barcode (job tickets, and the pieces in the journal),
//! and the entries of the
//! suppression list that matched nobody (manifest).
//!
//! Every new file is written under a temporary name first; then the
//! renames are listed in the purge record, durably, and made, the manifest
//! and the final purge record last (see [`super::finish_renames`]).
//! Rewriting what was rewritten before gives the same bytes, so a second
//! purge changes nothing.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::journal::{documents, Lines, DOCUMENTS_FILE};
use crate::model::file::FileEntry;
use crate::model::manifest::{Document, Manifest, MANIFEST_FILE};
use crate::output::delivery::{JournalEntry, JOURNAL_FILE};
use crate::util::digest::sha256_hex;
use crate::util::jsonl;
use crate::util::text::redact;

use super::{finish_renames, record_bytes, save, Purged, PURGED_FILE};

/// The renames of one purge, from temporary names to final ones.
type Renames = Vec<(String, String)>;

/// Rewrites the run's kept files without personal data; see the module docs.
pub(super) fn rewrite(run: &Path, mut m: Manifest, record: &mut Purged) -> Result<()> {
    let mut renames: Renames = Vec::new();
    let before = m.documents.sha256.clone();
    m.documents = journal(run, &mut renames)?;
    record.masked.entry(DOCUMENTS_FILE.into()).or_insert(before);
    delivery(run, &m.run_id, record, &mut renames)?;
    if let Some(print) = m.print.as_mut() {
        for t in &mut print.tickets {
            *t = ticket(run, t, record, &mut renames)?;
        }
    }
    reprints(run, &m.run_id, record, &mut renames)?;
    for u in &mut m.unmatched_suppressions {
        u.entry = "…".into();
    }
    // The final record, and the manifest that names it.
    let mut done = record.clone();
    done.finishing.clear();
    let done_bytes = record_bytes(&done);
    m.purged = Some(FileEntry::of(PURGED_FILE, &done_bytes));
    let manifest_bytes = m.seal();
    renames.push((
        temp(run, MANIFEST_FILE, &manifest_bytes)?,
        MANIFEST_FILE.into(),
    ));
    renames.push((temp(run, PURGED_FILE, &done_bytes)?, PURGED_FILE.into()));
    record.finishing = renames;
    save(run, record)?;
    finish_renames(run, &record.finishing)?;
    record.finishing.clear();
    crate::manifest::report::write(run, &m, &[], "")?;
    Ok(())
}

/// The temporary name of `rel` for this purge.
fn temp_name(rel: &str) -> String {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let temp = format!("{}purge-{name}", crate::util::fs::TEMP_PREFIX);
    match dir {
        "" => temp,
        d => format!("{d}/{temp}"),
    }
}

/// Writes `bytes` durably to `rel`'s temporary name; returns that name.
fn temp(run: &Path, rel: &str, bytes: &[u8]) -> Result<String> {
    let name = temp_name(rel);
    let mut file =
        crate::util::fs::create_inside(run, &name).map_err(|e| Error::io(run.join(&name), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(run.join(&name), e))?;
    Ok(name)
}

/// A journal entry as the purged run keeps it.
fn mask_document(d: &mut Document) {
    d.to = None;
    d.subject = None;
    d.error = d.error.as_deref().map(redact);
    d.note = d.note.as_deref().map(redact);
    if let Some(a) = d.attachment.as_mut() {
        a.name = "…".into();
    }
    if let Some(p) = d.piece.as_mut() {
        p.postcode = String::new();
        p.barcode = tracking_only(&p.barcode);
    }
}

/// The journal without personal data, under its temporary name; returns
/// its entry for the manifest.
fn journal(run: &Path, renames: &mut Renames) -> Result<crate::model::manifest::DocumentsFile> {
    let name = temp_name(DOCUMENTS_FILE);
    let file =
        crate::util::fs::create_inside(run, &name).map_err(|e| Error::io(run.join(&name), e))?;
    let mut out = Lines::new(run.join(&name), file);
    for d in documents(run)? {
        let mut d = d?;
        mask_document(&mut d);
        out.push(&d)?;
    }
    let entry = out.finish()?;
    renames.push((name, DOCUMENTS_FILE.into()));
    Ok(entry)
}

/// The delivery journal without addresses or quoted values, chained anew.
fn delivery(run: &Path, run_id: &str, record: &mut Purged, renames: &mut Renames) -> Result<()> {
    let origin = jsonl::origin(JOURNAL_FILE, run_id);
    let entries: Vec<JournalEntry> = jsonl::read_chained(&run.join(JOURNAL_FILE), &origin)?;
    if entries.is_empty() {
        return Ok(());
    }
    let masked = entries.into_iter().map(|mut e| {
        e.to = String::new();
        e.reply = redact(&e.reply);
        e
    });
    rechain(run, JOURNAL_FILE, &origin, masked, record, renames)
}

/// Writes `values` as the chained log `rel` anew, under its temporary
/// name, recording the log's hash before and the rename.
fn rechain<T: serde::Serialize>(
    run: &Path,
    rel: &str,
    origin: &str,
    values: impl IntoIterator<Item = T>,
    record: &mut Purged,
    renames: &mut Renames,
) -> Result<()> {
    let before = crate::util::fs::read_inside(run, rel).map_err(|e| Error::io(run.join(rel), e))?;
    let name = temp_name(rel);
    let io = |e| Error::io(run.join(&name), e);
    let file = crate::util::fs::create_inside(run, &name).map_err(io)?;
    let mut out = jsonl::Chained::new(file, origin);
    for v in values {
        out.push(&v).map_err(io)?;
    }
    out.sync().map_err(io)?;
    record
        .masked
        .entry(rel.into())
        .or_insert_with(|| sha256_hex(&before));
    renames.push((name, rel.into()));
    Ok(())
}

/// A job ticket (CSV or JSON) without postcodes, and with only the
/// tracking code of each barcode; returns its new entry.
fn ticket(
    run: &Path,
    t: &FileEntry,
    record: &mut Purged,
    renames: &mut Renames,
) -> Result<FileEntry> {
    let bytes =
        crate::util::fs::read_inside(run, &t.path).map_err(|e| Error::io(run.join(&t.path), e))?;
    let masked = if t.path.ends_with(".json") {
        mask_ticket_json(&bytes)
    } else {
        mask_ticket_csv(&bytes)
    }
    .map_err(|e| Error::Input(format!("{}: {e}", t.path)))?;
    record
        .masked
        .entry(t.path.clone())
        .or_insert(t.sha256.clone());
    renames.push((temp(run, &t.path, &masked)?, t.path.clone()));
    Ok(FileEntry::of(t.path.clone(), &masked))
}

/// A barcode without its routing part (`tracking-routing` → `tracking`).
fn tracking_only(barcode: &str) -> String {
    barcode.split('-').next().unwrap_or("").to_owned()
}

fn mask_ticket_csv(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (postcode, barcode) = (col("postcode"), col("barcode"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).map_err(|e| e.to_string())?;
    for row in rdr.records() {
        let row = row.map_err(|e| e.to_string())?;
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| match i {
                _ if Some(i) == postcode => String::new(),
                _ if Some(i) == barcode => tracking_only(c),
                _ => c.to_owned(),
            })
            .collect();
        out.write_record(&cells).map_err(|e| e.to_string())?;
    }
    out.into_inner().map_err(|e| e.to_string())
}

fn mask_ticket_json(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    for row in &mut rows {
        if let Some(p) = row.get_mut("postcode") {
            *p = "".into();
        }
        if let Some(b) = row.get_mut("barcode") {
            *b = tracking_only(b.as_str().unwrap_or("")).into();
        }
    }
    let mut out = serde_json::to_vec_pretty(&rows).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// The reprints' tickets masked, and the reprint record chained anew with
/// their new hashes.
fn reprints(run: &Path, run_id: &str, record: &mut Purged, renames: &mut Renames) -> Result<()> {
    let rel = crate::ops::reprint::REPRINTS_FILE;
    let mut all = crate::ops::reprint::reprints(run, run_id)?;
    if all.is_empty() {
        return Ok(());
    }
    for r in &mut all {
        for f in &mut r.files {
            if f.path.contains("-ticket.") {
                *f = ticket(run, f, record, renames)?;
            }
        }
    }
    rechain(run, rel, &jsonl::origin(rel, run_id), all, record, renames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_lose_postcodes_and_routing_codes_and_masking_twice_changes_nothing() {
        let csv = b"sequence,record_id,postcode,barcode\n1,C-1,SW1A 1AA,01234567094987654321-12345\nTOTAL,1 pieces,,\n";
        let once = mask_ticket_csv(csv).unwrap();
        assert_eq!(
            String::from_utf8(once.clone()).unwrap(),
            "sequence,record_id,postcode,barcode\n1,C-1,,01234567094987654321\nTOTAL,1 pieces,,\n"
        );
        assert_eq!(mask_ticket_csv(&once).unwrap(), once);
        let json = br#"[{"sequence":"1","postcode":"SW1A 1AA","barcode":"0123-45"}]"#;
        let once = mask_ticket_json(json).unwrap();
        let text = String::from_utf8(once.clone()).unwrap();
        assert!(
            text.contains("\"postcode\": \"\"") && text.contains("\"barcode\": \"0123\""),
            "{text}"
        );
        assert_eq!(mask_ticket_json(&once).unwrap(), once);
    }
}
