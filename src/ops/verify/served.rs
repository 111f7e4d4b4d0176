//! `verify --served`: a day's on-demand journal checked (its chain, its
//! entries against the layouts folder), and documents a customer presents
//! found in it by their SHA-256 (see [`crate::manifest::served`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout::catalog::Catalog;
use crate::manifest::served::origin;
use crate::model::manifest::ServedEntry;
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;

/// What `verify --served` found.
#[derive(Debug, Serialize)]
pub struct ServedReport {
    /// Entries in the journal.
    pub entries: usize,
    /// What does not hold, one line each.
    pub problems: Vec<String>,
    /// Each document given, with the entry it was served as (if any).
    pub documents: Vec<Found>,
}

/// A document given and where the journal has it.
#[derive(Debug, Serialize)]
pub struct Found {
    /// The file.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The journal's entry with that SHA-256 (the first), without its
    /// personal data beyond the record id.
    pub served: Option<ServedAs>,
}

/// Where and how a document was served.
#[derive(Debug, Serialize)]
pub struct ServedAs {
    /// Its line in the journal (from 1).
    pub line: usize,
    /// When.
    pub served_at: String,
    /// To which client.
    pub client: String,
    /// Its record id.
    pub record_id: Option<String>,
    /// The channel.
    pub channel: String,
    /// The layout version.
    pub layout: String,
    /// The day it was made for.
    pub as_of: String,
}

/// Checks the journal in `day_dir` (`STATE/on-demand/YYYY-MM-DD`) against
/// the layouts in `layouts`, and looks up `documents` in it.
pub fn served(day_dir: &Path, layouts: &Path, documents: &[PathBuf]) -> Result<ServedReport> {
    let day = day_dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| Date::parse(n).is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--served {}: not a day's folder of the on-demand journal (STATE/on-demand/YYYY-MM-DD)",
                day_dir.display()
            ))
        })?;
    let path = day_dir.join(crate::manifest::journal::DOCUMENTS_FILE);
    let mut problems = Vec::new();
    let entries: Vec<ServedEntry> = match crate::util::jsonl::read_chained(&path, &origin(day)) {
        Ok(e) => e,
        Err(e) => {
            problems.push(e.to_string());
            Vec::new()
        }
    };
    let catalog = Catalog::discover(layouts)?;
    let mut digests: HashMap<String, Option<String>> = HashMap::new();
    for (n, e) in entries.iter().enumerate() {
        if e.document.index != n {
            problems.push(format!(
                "line {}: index {} where {n} was due",
                n + 1,
                e.document.index
            ));
        }
        let digest = digests.entry(e.layout.clone()).or_insert_with(|| {
            let r: crate::model::layout::LayoutRef = e.layout.parse().ok()?;
            let layout = catalog.layouts.get(&r.name)?.get(&r.version?)?;
            Some(layout.read_files().ok()?.digest)
        });
        match digest {
            Some(d) if *d == e.layout_digest => {}
            Some(d) => problems.push(format!(
                "line {}: {} has digest {d} in {}, the journal says {}",
                n + 1,
                e.layout,
                layouts.display(),
                e.layout_digest
            )),
            None => problems.push(format!(
                "line {}: {} is not in {}",
                n + 1,
                e.layout,
                layouts.display()
            )),
        }
    }
    let mut found = Vec::new();
    for file in documents {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let sha256 = sha256_hex(&bytes);
        let served = entries
            .iter()
            .position(|e| e.document.sha256.as_deref() == Some(sha256.as_str()))
            .map(|i| {
                let e = &entries[i];
                ServedAs {
                    line: i + 1,
                    served_at: e.served_at.clone(),
                    client: e.client.clone(),
                    record_id: e.document.record_id.clone(),
                    channel: e.document.channel.clone(),
                    layout: e.layout.clone(),
                    as_of: e.as_of.clone(),
                }
            });
        if served.is_none() {
            problems.push(format!(
                "{}: no document with its SHA-256 ({sha256}) was served that day",
                file.display()
            ));
        }
        found.push(Found {
            file: file.display().to_string(),
            sha256,
            served,
        });
    }
    Ok(ServedReport {
        entries: entries.len(),
        problems,
        documents: found,
    })
}
