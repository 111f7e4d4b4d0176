//! `purge RUN_DIR --documents`: a finished run's documents deleted once
//! their retention time is over, the audit record kept.
//!
//! Personal data is kept no longer than needed, but what was sent to whom
//! must stay provable. After the retention time (`--retention-days`, counted
//! from the day the run finished; a bank's rules decide it, so there is no
//! default), `purge` deletes the letters, emails, web letters and print
//! files, and keeps the manifest, the journals, the report and the job
//! tickets. It first writes `purged.json` (when, the retention, and each
//! deleted file with its SHA-256), durably, then deletes: a purge killed
//! half-way is finished by running it again. `verify` then reports those
//! files as purged (with the date), not missing, still checks everything
//! else, and `verify --rerender` can still show that the same inputs give
//! the recorded bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::file::FileEntry;
use crate::model::manifest::MANIFEST_FILE;
use crate::util::clock::{now_rfc3339, Date};

/// The record of a purge, in the run folder.
pub const PURGED_FILE: &str = "purged.json";

/// What a purge deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purged {
    /// When (RFC 3339).
    pub purged_at: String,
    /// The retention time it applied, in days.
    pub retention_days: u32,
    /// Each deleted file (relative to the run folder) and its SHA-256.
    pub files: BTreeMap<String, String>,
}

/// What `purge` did.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    /// Files deleted now.
    pub deleted: usize,
    /// Files recorded as purged (now and before).
    pub purged: usize,
    /// Bytes freed now.
    pub bytes: u64,
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

/// Purges the documents of the finished run in `run` whose retention of
/// `retention_days` is over on `today`; see the module docs.
pub fn purge(run: &Path, retention_days: u32, today: Date) -> Result<PurgeReport> {
    let refuse = |why: String| Error::Usage(format!("purge refuses {}: {why}", run.display()));
    let (manifest, intact) = crate::manifest::read_checked(&run.join(MANIFEST_FILE), "purge")?;
    if !intact {
        return Err(refuse(
            "its manifest was edited after the run (`letterpress verify` says more)".into(),
        ));
    }
    if manifest.shard.is_some() {
        return Err(refuse(
            "it is one shard of a run; purge the merged run".into(),
        ));
    }
    let finished = Date::parse(manifest.finished_at.get(..10).unwrap_or("")).ok_or_else(|| {
        refuse(format!(
            "its finish date `{}` cannot be read",
            manifest.finished_at
        ))
    })?;
    let due = finished.unix_days() + i64::from(retention_days);
    if today.unix_days() < due {
        return Err(refuse(format!(
            "it finished on {finished}; with a retention of {retention_days} days its documents are kept {} more days",
            due - today.unix_days()
        )));
    }
    let mut files: Vec<FileEntry> = Vec::new();
    for d in crate::manifest::journal::documents(run)? {
        files.extend(d?.all_files());
    }
    if let Some(print) = &manifest.print {
        files.extend(print.files.iter().map(|f| f.file.clone()));
    }
    for r in crate::ops::reprint::reprints(run) {
        files.extend(r.files.iter().filter(|f| f.path.ends_with(".pdf")).cloned());
    }
    let mut record = purged(run)?.unwrap_or(Purged {
        purged_at: now_rfc3339(),
        retention_days,
        files: BTreeMap::new(),
    });
    record
        .files
        .extend(files.iter().map(|f| (f.path.clone(), f.sha256.clone())));
    let json = serde_json::to_vec_pretty(&record).expect("JSON serializes");
    let path = run.join(PURGED_FILE);
    crate::util::fs::write_atomic(&path, &json, true).map_err(|e| Error::io(&path, e))?;
    let mut report = PurgeReport {
        purged: record.files.len(),
        ..PurgeReport::default()
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in &files {
        let file = run.join(&f.path);
        match std::fs::remove_file(&file) {
            Ok(()) => {
                report.deleted += 1;
                report.bytes += f.bytes;
                if let Some(dir) = file.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
                    dirs.push(dir.to_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&file, e)),
        }
    }
    for dir in &dirs {
        crate::util::fs::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(report)
}
