//! `letterpress manifest merge`: shard manifests into one run manifest.
//!
//! After stage 5. N machines run `run --shard K/N --out DIR` on one input
//! into one shared folder; each writes its documents into `DIR/pdf` and
//! `DIR/email` and its manifest and journal into `DIR/shard-K-of-N/`.
//! Merging checks that the shards belong together and cover the input
//! exactly once, then writes `DIR/documents.jsonl` (the entries of all
//! shards, in input order) and `DIR/manifest.json`, which are what a single
//! machine's run of the same batch would have written, apart from run id,
//! timings, command line, and a `shards` list naming the shard manifests
//! and journals with their hashes (so `verify` checks them too).
//!
//! It refuses, saying why and writing nothing, when: a shard has not
//! finished (its folder has no manifest); shards come from different splits
//! (K/N with different N), repeat one another, or are missing; they used
//! another input file, layout version or layout digest, as-of date or
//! options; a shard's journal does not match its manifest; or two shards
//! hold the same record.

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::journal::{self, Documents, Tally, DOCUMENTS_FILE};
use crate::manifest::{self, report};
use crate::model::file::FileEntry;
use crate::model::manifest::{
    Document, DocumentsFile, Manifest, Totals, APPROVAL_DIR, MANIFEST_FILE, MANIFEST_VERSION,
};
use crate::util::digest::sha256_hex;
use crate::util::fs::{commit, temp_path, write_atomic};

/// The outcome of a merge.
#[derive(Debug, Serialize)]
pub struct MergeReport {
    /// The merged manifest's path.
    pub manifest: PathBuf,
    /// Number of shards merged.
    pub shards: usize,
    /// The merged totals.
    pub totals: Totals,
}

/// A shard found on disk.
struct Found {
    folder: PathBuf,
    manifest: Manifest,
}

/// Finds the shard folders among `paths`: a shard folder itself, or a run
/// folder holding `shard-K-of-N` folders.
fn find(paths: &[PathBuf]) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for path in paths {
        let mut folders = Vec::new();
        if path.join(MANIFEST_FILE).is_file() || is_shard_folder(path) {
            folders.push(path.clone());
        } else {
            let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(path, e))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) && is_shard_folder(&entry.path()) {
                    folders.push(entry.path());
                }
            }
            folders.sort();
            if folders.is_empty() {
                return Err(Error::Input(format!(
                    "{}: neither a shard folder nor a run folder holding shard-K-of-N folders",
                    path.display()
                )));
            }
        }
        for folder in folders {
            let manifest_path = folder.join(MANIFEST_FILE);
            if !manifest_path.is_file() {
                return Err(Error::Input(format!(
                    "{}: this shard has not finished (no {MANIFEST_FILE}); run it again with --resume, then merge",
                    folder.display()
                )));
            }
            let (manifest, intact) = manifest::read_checked(&manifest_path, "merge")?;
            if !intact {
                return Err(Error::Input(format!(
                    "{}: edited after its run (its content does not match its manifest_digest)",
                    manifest_path.display()
                )));
            }
            found.push(Found { folder, manifest });
        }
    }
    Ok(found)
}

fn is_shard_folder(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("shard-"))
        .is_some_and(|rest| rest.contains("-of-"))
}

/// What must be the same in every shard of one batch, in words.
fn batch_key(m: &Manifest) -> Vec<(&'static str, String)> {
    let mut options = m.options.clone();
    options.jobs = 0;
    vec![
        ("input file", format!("SHA-256 {}", m.input.sha256)),
        (
            "layout",
            format!(
                "{}@{} digest {}",
                m.layout.name, m.layout.version, m.layout.digest
            ),
        ),
        ("as-of date", m.as_of.clone()),
        ("draft", m.draft.to_string()),
        (
            "options",
            serde_json::to_string(&options).expect("options serialize"),
        ),
        ("engine", m.engine.version.clone()),
    ]
}

/// Merges the shards found in `paths` into `out` (default: the run folder
/// the shards are in); see the module docs. `command` is recorded in the
/// merged manifest as the command that made it.
pub fn merge(paths: &[PathBuf], out: Option<&Path>, command: &[String]) -> Result<MergeReport> {
    let mut shards = find(paths)?;
    if shards.is_empty() {
        return Err(Error::Usage("name at least one shard or run folder".into()));
    }
    let out = run_folder(&shards, out)?;
    check_complete(&shards)?;
    let merged_path = out.join(MANIFEST_FILE);
    if merged_path.exists() {
        return Err(Error::Output(format!(
            "{} exists already: this run was merged before",
            merged_path.display()
        )));
    }
    shards.sort_by_key(|s| s.manifest.shard.map(|s| s.index));

    // Merge the journals by input position into a temporary file.
    let tmp = temp_path(&out.join(DOCUMENTS_FILE), "merge-");
    let merged = merge_journals(&shards, &tmp).and_then(|(documents, tally)| {
        let records = shards[0].manifest.input.records;
        if tally.totals.records != records {
            return Err(Error::Input(format!(
                "the shards hold {} records, the input has {records}",
                tally.totals.records
            )));
        }
        merged_manifest(&shards, documents, tally, command)
    });
    let mut merged = match merged {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    commit(&tmp, &out.join(DOCUMENTS_FILE), true)
        .map_err(|e| Error::io(out.join(DOCUMENTS_FILE), e))?;
    // The approval the run rests on, as the first shard copied it.
    for rel in approval_copies(&shards[0].folder)? {
        let from = shards[0].folder.join(&rel);
        let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
        let to = out.join(&rel);
        std::fs::create_dir_all(out.join(APPROVAL_DIR)).map_err(|e| Error::io(&to, e))?;
        write_atomic(&to, &bytes, true).map_err(|e| Error::io(&to, e))?;
    }
    let json = merged.seal();
    write_atomic(&merged_path, &json, true).map_err(|e| Error::io(&merged_path, e))?;
    report::write(&out, &merged, &[], "")?;
    Ok(MergeReport {
        manifest: merged_path,
        shards: shards.len(),
        totals: merged.totals,
    })
}

/// The files of a shard's `approval/` folder (`approval/NAME`), in order.
fn approval_copies(folder: &Path) -> Result<Vec<String>> {
    let dir = folder.join(APPROVAL_DIR);
    let mut names = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io(&dir, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    names.sort();
    Ok(names
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| format!("{APPROVAL_DIR}/{n}"))
        .collect())
}

/// The folder each shard's documents are in: the one above its own.
fn shard_root(f: &Found) -> PathBuf {
    f.folder.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The run folder the merged manifest goes to: `out`, or the shards' run
/// folder; every shard must be inside it.
fn run_folder(shards: &[Found], out: Option<&Path>) -> Result<PathBuf> {
    let out = match out {
        Some(out) => out.to_path_buf(),
        None => shard_root(&shards[0]),
    };
    for s in shards {
        if std::fs::canonicalize(shard_root(s)).ok() != std::fs::canonicalize(&out).ok() {
            return Err(Error::Usage(format!(
                "{} is not inside {}: shards of one batch write into one run folder (the same --out), and the merged manifest goes there",
                s.folder.display(),
                out.display()
            )));
        }
    }
    Ok(out)
}

/// Checks that the shards belong together (one split, one batch) and that
/// each shard of the split is there exactly once.
fn check_complete(shards: &[Found]) -> Result<()> {
    let not_a_shard = |s: &Found| {
        Error::Input(match s.manifest.shards.is_empty() {
            true => format!("{}: not a shard (its run had no --shard)", s.folder.display()),
            false => format!(
                "{}: merged already, from {} shard files: nothing to merge (`letterpress verify` checks it; to merge again, remove its manifest.json and documents.jsonl first)",
                s.folder.display(),
                s.manifest.shards.len()
            ),
        })
    };
    let first = shards[0]
        .manifest
        .shard
        .ok_or_else(|| not_a_shard(&shards[0]))?;
    let key = batch_key(&shards[0].manifest);
    let mut seen = vec![None::<PathBuf>; first.count as usize];
    for s in shards {
        let shard = s.manifest.shard.ok_or_else(|| not_a_shard(s))?;
        if shard.count != first.count {
            return Err(Error::Input(format!(
                "{} is shard {shard} but {} is shard {first}: shards of different splits do not merge",
                s.folder.display(),
                shards[0].folder.display()
            )));
        }
        for ((what, a), (_, b)) in key.iter().zip(batch_key(&s.manifest)) {
            if *a != b {
                return Err(Error::Input(format!(
                    "shard {shard} ({}) used another {what} than shard {first}: {b} against {a}",
                    s.folder.display()
                )));
            }
        }
        let slot = &mut seen[shard.index as usize - 1];
        if let Some(other) = slot {
            return Err(Error::Input(format!(
                "shard {shard} is given twice: {} and {}",
                other.display(),
                s.folder.display()
            )));
        }
        *slot = Some(s.folder.clone());
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_none())
        .map(|(i, _)| format!("{}/{}", i + 1, first.count))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Input(format!(
            "shard {} missing: every shard must have finished before the merge",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The run manifest of the merged shards (sorted by shard), listing each
/// shard's manifest and journal with their hashes.
fn merged_manifest(
    shards: &[Found],
    documents: DocumentsFile,
    tally: Tally,
    command: &[String],
) -> Result<Manifest> {
    let mut listed = Vec::new();
    for s in shards {
        for name in [MANIFEST_FILE, DOCUMENTS_FILE]
            .into_iter()
            .map(str::to_owned)
            .chain(approval_copies(&s.folder)?)
        {
            let path = s.folder.join(&name);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let rel = path
                .strip_prefix(shard_root(s))
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            listed.push(FileEntry::of(rel, &bytes));
        }
    }
    let head = &shards[0].manifest;
    let ids: Vec<&str> = shards.iter().map(|s| s.manifest.run_id.as_str()).collect();
    Ok(Manifest {
        manifest_version: MANIFEST_VERSION,
        manifest_digest: String::new(),
        run_id: format!("merged-{}", &sha256_hex(ids.join("|").as_bytes())[..12]),
        engine: head.engine.clone(),
        started_at: shards
            .iter()
            .map(|s| s.manifest.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: crate::util::clock::now_rfc3339(),
        as_of: head.as_of.clone(),
        draft: head.draft,
        command: command.to_vec(),
        options: head.options.clone(),
        layout: head.layout.clone(),
        input: head.input.clone(),
        totals: tally.totals,
        print: None,
        shard: None,
        shards: listed,
        unmatched_suppressions: head.unmatched_suppressions.clone(),
        resumed: Vec::new(),
        documents,
        purged: None,
    })
}

/// The head of one shard's journal, ordered for a min-heap on input position.
struct Head {
    index: usize,
    shard: usize,
    doc: Document,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        (self.index, self.shard) == (other.index, other.shard)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.index, other.shard).cmp(&(self.index, self.shard))
    }
}

/// K-way merge of the shards' journals into `tmp`; checks each journal's
/// hash and that no record is in two shards.
fn merge_journals(shards: &[Found], tmp: &Path) -> Result<(DocumentsFile, Tally)> {
    let mut readers: Vec<Documents> = shards
        .iter()
        .map(|s| journal::documents(&s.folder))
        .collect::<Result<_>>()?;
    let mut heap = BinaryHeap::new();
    let pull = |readers: &mut Vec<Documents>, i: usize, heap: &mut BinaryHeap<Head>| {
        if let Some(doc) = readers[i].next() {
            let doc = doc?;
            heap.push(Head {
                index: doc.index,
                shard: i,
                doc,
            });
        }
        Ok::<(), Error>(())
    };
    for i in 0..readers.len() {
        pull(&mut readers, i, &mut heap)?;
    }
    let mut out = journal::Lines::create(tmp.to_path_buf())?;
    let mut tally = Tally::default();
    let mut last: Option<(usize, usize)> = None;
    while let Some(head) = heap.pop() {
        if let Some((index, shard)) = last {
            if index == head.index && shard != head.shard {
                let name = |i: usize| {
                    shards[i]
                        .manifest
                        .shard
                        .map_or("?".into(), |s| s.to_string())
                };
                return Err(Error::Input(format!(
                    "the record at input position {} ({}) is in shard {} and in shard {}: the shards overlap",
                    head.index,
                    head.doc.record_id.as_deref().unwrap_or("no id"),
                    name(shard),
                    name(head.shard)
                )));
            }
        }
        last = Some((head.index, head.shard));
        out.push(&head.doc)?;
        tally.add(&head.doc);
        pull(&mut readers, head.shard, &mut heap)?;
    }
    for (s, r) in shards.iter().zip(&readers) {
        if r.sha256() != s.manifest.documents.sha256 {
            return Err(Error::Input(format!(
                "{}: its {DOCUMENTS_FILE} does not match its manifest (altered or cut short); `letterpress verify` on the shard says more",
                s.folder.display()
            )));
        }
    }
    Ok((out.finish()?, tally))
}
