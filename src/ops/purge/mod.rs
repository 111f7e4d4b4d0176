//! `purge RUN_DIR --documents`: a finished run's documents deleted once
//! their retention time is over, the audit record kept without the
//! personal data it no longer needs.
//!
//! Personal data is kept no longer than needed, but what was sent to whom
//! must stay provable. After the retention time (`--retention-days`, counted
//! from the day the run finished; a bank's rules decide it, so there is no
//! default), `purge`:
//!
//! 1. holds the run folder's lock and the `send` lock, so no `send`,
//!    `reprint`, `reconcile` or `run --resume` works beside it;
//! 2. checks what it is about to act on as `verify` does, and does nothing
//!    (exit 2, naming the file and line) when something does not hold: the
//!    manifest unedited, the journal the one it sealed, the chained logs
//!    (deliveries, reprints, piece outcomes) unbroken, the purge record the
//!    one the manifest names, and every path relative and inside the run
//!    folder;
//! 3. writes `purged.json` (when, the retention, each file to delete with
//!    its SHA-256) durably, then deletes the letters, emails, web letters
//!    and print files, one folder at a time without following a symbolic
//!    link ([`crate::util::fs::remove_inside`]);
//! 4. rewrites what it keeps without the personal data the record no longer
//!    needs ([`mask`]): the journal and the delivery journal keep ids,
//!    hashes, statuses, dates and reasons, but no email address or subject,
//!    and no value quoted in a reason; the job tickets keep no postcode and
//!    only the tracking part of a barcode; the manifest keeps no
//!    suppression list entry; the report is written again from what is
//!    kept. The manifest records the new hashes and the purge record's, and
//!    is sealed again.
//!
//! A purge killed at any point is finished by running it again: step 4
//! writes every new file under a temporary name first, then lists the
//! renames in `purged.json` (durably), then makes them, the manifest and
//! the final purge record last. `verify` reports the deleted files as
//! purged (with the date), not missing, and checks everything else.

mod mask;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::file::FileEntry;
use crate::model::manifest::Manifest;
use crate::util::clock::{now_rfc3339, Date};
use crate::util::lock::LockTerms;

/// The record of a purge, in the run folder.
pub const PURGED_FILE: &str = "purged.json";

/// What a purge deleted and rewrote.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Purged {
    /// When (RFC 3339).
    pub purged_at: String,
    /// The retention time it applied, in days.
    pub retention_days: u32,
    /// Each deleted file (relative to the run folder) and its SHA-256.
    pub files: BTreeMap<String, String>,
    /// Each file rewritten without personal data: its SHA-256 before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, String>,
    /// The manifest's digest as the run sealed it.
    #[serde(default)]
    pub manifest_digest: String,
    /// While a purge finishes: the renames still to make, in order
    /// (temporary name, final name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finishing: Vec<(String, String)>,
}

/// What to purge.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// The finished run's folder.
    pub run: PathBuf,
    /// The retention time in days, from the day the run finished.
    pub retention_days: u32,
    /// Today (the retention is over on or after the due day).
    pub today: Date,
    /// How the locks are held and waited for.
    pub lock: LockTerms,
}

/// What `purge` did.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct PurgeReport {
    /// Files deleted now.
    pub deleted: usize,
    /// Files recorded as purged (now and before).
    pub purged: usize,
    /// Bytes freed now.
    pub bytes: u64,
    /// Files kept but rewritten without personal data (now and before).
    pub masked: usize,
}

/// Reads the run's purge record, if it has one.
pub fn purged(run: &Path) -> Result<Option<Purged>> {
    let path = run.join(PURGED_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Input(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Purges the documents of the finished run in `opts.run` whose retention
/// is over on `opts.today`; see the module docs.
pub fn purge(opts: &PurgeOptions) -> Result<PurgeReport> {
    let run = &opts.run;
    let _run = crate::manifest::folder::lock(run, "purge", opts.lock)?;
    let send_lock = run.join(crate::output::delivery::LOCK_FILE);
    let _send = crate::util::lock::Lock::take(&send_lock, "purge", opts.lock, None)?;
    if let Some(unfinished) = purged(run)?.filter(|p| !p.finishing.is_empty()) {
        finish_renames(run, &unfinished.finishing)?;
    }
    let manifest = due(opts)?;
    let files = checked_files(run, &manifest)?;
    let mut record = match purged(run)? {
        Some(r) => r,
        None => Purged {
            purged_at: now_rfc3339(),
            retention_days: opts.retention_days,
            files: BTreeMap::new(),
            masked: BTreeMap::new(),
            manifest_digest: manifest.manifest_digest.clone(),
            finishing: Vec::new(),
        },
    };
    let mut report = delete(run, &files, &mut record)?;
    mask::rewrite(run, manifest, &mut record)?;
    report.masked = record.masked.len();
    Ok(report)
}

/// The run's manifest, intact and past its retention, with its purge
/// record the one it names.
fn due(opts: &PurgeOptions) -> Result<Manifest> {
    let run = &opts.run;
    let refuse = |why: String| Error::Usage(format!("purge refuses {}: {why}", run.display()));
    let manifest = crate::manifest::read_intact(run, "purge")?;
    let finished = Date::parse(manifest.finished_at.get(..10).unwrap_or("")).ok_or_else(|| {
        refuse(format!(
            "its finish date `{}` cannot be read",
            manifest.finished_at
        ))
    })?;
    let due = finished.unix_days() + i64::from(opts.retention_days);
    if opts.today.unix_days() < due {
        return Err(refuse(format!(
            "it finished on {finished}; with a retention of {} its documents are kept {}",
            crate::util::text::count(opts.retention_days as usize, "day", "days"),
            crate::util::text::count(
                (due - opts.today.unix_days()) as usize,
                "more day",
                "more days"
            ),
        )));
    }
    let record = std::fs::read(run.join(PURGED_FILE)).ok();
    let sealed = manifest.purged.as_ref().map(|f| f.sha256.as_str());
    let found = record.as_ref().map(|b| crate::util::digest::sha256_hex(b));
    if found.as_deref() != sealed {
        return Err(refuse(format!(
            "{PURGED_FILE} is not the purge record the manifest names (edited, or left by a purge that did not finish and was changed since); nothing was done"
        )));
    }
    Ok(manifest)
}

/// The files to delete, after checking every record that names them: the
/// journal as sealed, the print files, and the reprints (a chained log);
/// every path inside the run folder. The deliveries' and pieces' logs are
/// checked too, as [`mask`] rewrites them.
fn checked_files(run: &Path, m: &Manifest) -> Result<Vec<FileEntry>> {
    let mut files: Vec<FileEntry> = Vec::new();
    crate::manifest::journal::check_sealed(run, &m.documents, "purge", |d| {
        files.extend(d.all_files())
    })?;
    if let Some(print) = &m.print {
        files.extend(print.files.iter().map(|f| f.file.clone()));
    }
    let reprints = crate::ops::reprint::reprints(run, &m.run_id)?;
    for r in &reprints {
        files.extend(r.files.iter().filter(|f| f.path.ends_with(".pdf")).cloned());
    }
    for name in [
        crate::output::delivery::JOURNAL_FILE,
        crate::model::print::PIECES_FILE,
    ] {
        let origin = crate::util::jsonl::origin(name, &m.run_id);
        crate::util::jsonl::read_chained::<serde::de::IgnoredAny>(&run.join(name), &origin)?;
    }
    for f in &files {
        crate::util::fs::check_inside(run, &f.path).map_err(|why| {
            Error::Input(format!(
                "purge refuses {}: a record names a file outside the run folder, or one reached through a symbolic link: {why}; nothing was done",
                run.display()
            ))
        })?;
    }
    Ok(files)
}

/// Records the files in `record` durably, then deletes them.
fn delete(run: &Path, files: &[FileEntry], record: &mut Purged) -> Result<PurgeReport> {
    record
        .files
        .extend(files.iter().map(|f| (f.path.clone(), f.sha256.clone())));
    save(run, record)?;
    let mut report = PurgeReport {
        purged: record.files.len(),
        ..PurgeReport::default()
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in files {
        match crate::util::fs::remove_inside(run, &f.path) {
            Ok(()) => {
                report.deleted += 1;
                report.bytes += f.bytes;
                let dir = run.join(&f.path);
                if let Some(dir) = dir.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
                    dirs.push(dir.to_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(run.join(&f.path), e)),
        }
    }
    for dir in &dirs {
        crate::util::fs::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(report)
}

/// Writes the purge record, atomically and durably.
fn save(run: &Path, record: &Purged) -> Result<()> {
    let path = run.join(PURGED_FILE);
    crate::util::fs::write_atomic(&path, &record_bytes(record), true)
        .map_err(|e| Error::io(&path, e))
}

/// The purge record's bytes.
fn record_bytes(record: &Purged) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(record).expect("JSON serializes");
    json.push(b'\n');
    json
}

/// Makes the renames an interrupted purge listed, those not made yet.
fn finish_renames(run: &Path, renames: &[(String, String)]) -> Result<()> {
    for (temp, path) in renames {
        for rel in [temp, path] {
            crate::util::fs::check_relative(rel)
                .map_err(|why| Error::Input(format!("{PURGED_FILE}: {why}; nothing was done")))?;
        }
        if !temp.contains(crate::util::fs::TEMP_PREFIX) {
            return Err(Error::Input(format!(
                "{PURGED_FILE}: `{temp}` is not a temporary file of a purge; nothing was done"
            )));
        }
        let (from, to) = (run.join(temp), run.join(path));
        match std::fs::rename(&from, &to) {
            Ok(()) => crate::util::fs::sync_dir(to.parent().unwrap_or(run))
                .map_err(|e| Error::io(&to, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&from, e)),
        }
    }
    Ok(())
}
