//! A batch run from start to finish, and the schema-only `validate`.
//!
//! This module ties the stages together: read records ([`crate::input`]),
//! check them ([`crate::schema`]), render them in parallel
//! ([`crate::render::pdf`]), write the files ([`crate::output`]) and the
//! manifest ([`crate::manifest`]). It is the library entry point a scheduler
//! or another program calls; the CLI is a thin shell over it.
//!
//! Everything that can stop a run as a whole (usage, layout, unreadable
//! input, an output folder holding another run) is checked before the first
//! file is written; that includes rendering one sample record in memory, so a
//! template that fails for every record is a layout error (exit 2). After
//! that, a problem with one record fails that record only.
//!
//! Parallelism follows `shared/notes/typst.md`: one plain thread per worker
//! with a 64 MiB stack pulls records from a bounded channel, Typst keeps rayon
//! for its own layout work, and the memoization cache is evicted every
//! [`EVICT_EVERY`] documents so memory stays flat.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::clock::{now_rfc3339, Date};
use crate::error::{Error, Result, EXIT_OK, EXIT_PARTIAL};
use crate::input::{Format, Input, InputSummary, RawRecord};
use crate::layout::{Catalog, Layout, LayoutRef, Status};
use crate::manifest::{self, DocStatus, Document, Manifest, Totals};
use crate::output::{self, FileNamer};
use crate::render::pdf::{Renderer, Standard};
use crate::schema::{check_record, Origin};

/// Evict Typst's memoization cache after this many documents.
pub const EVICT_EVERY: usize = 50;

/// Stack size of a rendering worker (deeply nested layouts need more than 2 MiB).
const WORKER_STACK: usize = 64 << 20;

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder holding the layouts.
    pub layouts_dir: PathBuf,
    /// Which layout version.
    pub layout: LayoutRef,
    /// The data file.
    pub data: PathBuf,
    /// Its format, when not taken from the extension.
    pub format: Option<Format>,
    /// The output folder.
    pub out: PathBuf,
    /// The templates' date; `None` for today (UTC).
    pub as_of: Option<Date>,
    /// Number of rendering workers.
    pub jobs: usize,
    /// PDF standards on top of tagged PDF.
    pub standards: Vec<Standard>,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
}

/// The outcome of a finished run.
#[derive(Debug)]
pub struct RunReport {
    /// The manifest as written.
    pub manifest: Manifest,
    /// Where it was written.
    pub manifest_path: PathBuf,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Typst's warnings on the layout, from the sample render (e.g. an
    /// unknown font family): worth a layout author's attention.
    pub warnings: Vec<String>,
}

impl RunReport {
    /// 0 when every record rendered, 1 when some failed.
    pub fn exit_code(&self) -> i32 {
        if self.manifest.totals.failed == 0 {
            EXIT_OK
        } else {
            EXIT_PARTIAL
        }
    }
}

/// A record that passed every check and waits to be rendered.
struct Job {
    index: usize,
    line: u64,
    id: String,
    stem: String,
    json: Vec<u8>,
}

/// Checks records in input order: schema, record id, duplicates, file names.
struct Checker<'a> {
    layout: &'a Layout,
    origin: Origin,
    /// 128-bit hash of every record id seen so far, with its line: about 40
    /// bytes a record instead of the id itself. Two different ids would have
    /// to collide in 128 bits to be taken for duplicates, and even then the
    /// record fails visibly, it is never lost.
    seen: HashMap<u128, u64>,
    namer: FileNamer,
}

impl<'a> Checker<'a> {
    fn new(layout: &'a Layout, format: Format) -> Self {
        let origin = if format == Format::Csv {
            Origin::Text
        } else {
            Origin::Json
        };
        Checker {
            layout,
            origin,
            seen: HashMap::new(),
            namer: FileNamer::default(),
        }
    }

    /// Turns a raw record into a job, or into a failed document.
    fn check(&mut self, raw: RawRecord) -> Checked {
        let (index, line) = (raw.index, raw.line);
        let fail = |id: Option<String>, why: String| {
            let who = match &id {
                Some(id) => format!("record {id} (line {line})"),
                None => format!("record at line {line}"),
            };
            Checked::Failed(failed(index, line, id, format!("{who}: {why}")))
        };
        let record = match raw.data {
            Ok(record) => record,
            Err(why) => return fail(None, why),
        };
        let id = id_of(&record, &self.layout.meta.id_field);
        let record = match check_record(record, &self.layout.meta.fields, self.origin) {
            Ok(record) => record,
            Err(problems) => return fail(id, problems.join("; ")),
        };
        let Some(id) = id else {
            let field = &self.layout.meta.id_field;
            return fail(None, format!("field `{field}`: not a usable record id"));
        };
        let key = typst::utils::hash128(&id);
        if let Some(first) = self.seen.get(&key) {
            let why = format!("duplicate record id (first used at line {first})");
            return fail(Some(id), why);
        }
        self.seen.insert(key, line);
        let stem = self.namer.name(&id);
        let json = serde_json::to_vec(&Value::Object(record)).expect("JSON values serialize");
        Checked::Ready(Job {
            index,
            line,
            id,
            stem,
            json,
        })
    }
}

/// The outcome of checking one record.
enum Checked {
    /// Valid: render it.
    Ready(Job),
    /// Invalid: this is its manifest entry.
    Failed(Document),
}

fn id_of(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn failed(index: usize, line: u64, record_id: Option<String>, error: String) -> Document {
    Document {
        index,
        line,
        record_id,
        channel: "pdf".into(),
        path: None,
        sha256: None,
        bytes: 0,
        pages: 0,
        status: DocStatus::Failed,
        error: Some(error),
    }
}

/// Loads the catalog and picks the layout a command names.
pub fn find_layout(layouts_dir: &Path, r: &LayoutRef) -> Result<Layout> {
    Ok(Catalog::discover(layouts_dir)?.resolve(r)?.clone())
}

/// Runs a batch: renders every record of `opts.data` with the chosen layout
/// version into `opts.out`, then writes the manifest.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let as_of = opts.as_of.unwrap_or_else(Date::today_utc);
    if opts.jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }

    // Everything that can stop the run is checked before anything is written.
    let layout = find_layout(&opts.layouts_dir, &opts.layout)?;
    if layout.meta.status != Status::Approved {
        return Err(Error::Layout(format!(
            "{} is {}; only approved layout versions can be run (`letterpress layouts list` shows which are)",
            layout.id(),
            layout.meta.status
        )));
    }
    let files = layout.read_files()?;
    let digest = files.digest.clone();
    let sample = files
        .files
        .iter()
        .find(|(rel, _)| rel == SAMPLE_FILE)
        .map(|(_, b)| b.clone());
    let renderer = Renderer::new(&layout, files, as_of, &opts.standards)?;
    let warnings = preflight(&layout, &renderer, sample, as_of)?;
    let input = Input::new(&opts.data, opts.format)?;
    let summary = input.scan()?;
    let manifest_path = opts.out.join(manifest::MANIFEST_FILE);
    if manifest_path.exists() {
        return Err(Error::Output(format!(
            "`{}` already holds the manifest of another run; choose a new --out folder",
            opts.out.display()
        )));
    }
    let pdf_dir = opts.out.join("pdf");
    std::fs::create_dir_all(&pdf_dir).map_err(|e| Error::io(&pdf_dir, e))?;
    // A run killed before its manifest leaves no manifest, final files that
    // this run overwrites, and perhaps temporary files: remove those.
    for dir in [&opts.out, &pdf_dir] {
        output::remove_stale_temp_files(dir).map_err(|e| Error::io(dir, e))?;
    }

    let documents = render_all(&layout, &input, &renderer, &pdf_dir, opts.jobs)?;
    let totals = Totals::of(&documents);
    let manifest = Manifest {
        manifest_version: manifest::MANIFEST_VERSION,
        run_id: run_id(&started_at, &summary, &digest),
        engine: manifest::Engine::current(),
        started_at,
        finished_at: now_rfc3339(),
        as_of: as_of.to_string(),
        command: opts.command.clone(),
        options: manifest::Options {
            pdf_standards: opts.standards.iter().map(|s| s.name().to_owned()).collect(),
            jobs: opts.jobs,
        },
        layout: manifest::LayoutEntry {
            name: layout.meta.name.clone(),
            version: layout.meta.version,
            status: layout.meta.status.to_string(),
            title: layout.meta.title.clone(),
            digest,
        },
        input: manifest::InputEntry {
            path: opts.data.display().to_string(),
            format: input.format.name().into(),
            sha256: summary.sha256.clone(),
            bytes: summary.bytes,
            records: summary.records,
        },
        totals,
        documents,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    json.push(b'\n');
    output::write_atomic(&manifest_path, &json, true).map_err(|e| Error::io(&manifest_path, e))?;
    Ok(RunReport {
        manifest,
        manifest_path,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    })
}

/// The layout file holding a sample record for [`preflight`], if any.
pub const SAMPLE_FILE: &str = "sample.json";

/// Renders one sample record in memory before the run writes anything, so a
/// template that cannot work for any record (an unknown function, a field
/// name the schema does not have) stops the run as a layout error instead of
/// failing every record. Returns Typst's warnings on the sample. The sample
/// is the layout's `sample.json` (as read with the other layout files) when
/// it has one, else a record that fills every declared field (see
/// [`crate::schema::sample_record`]).
fn preflight(
    layout: &Layout,
    renderer: &Renderer,
    sample: Option<Vec<u8>>,
    as_of: Date,
) -> Result<Vec<String>> {
    let (json, what) = match sample {
        Some(bytes) => (bytes, SAMPLE_FILE.to_string()),
        None => {
            let record = crate::schema::sample_record(&layout.meta.fields, &as_of.to_string());
            let json = serde_json::to_vec(&Value::Object(record)).expect("JSON values serialize");
            (
                json,
                "a sample record built from its field schema".to_string(),
            )
        }
    };
    renderer.render_with_warnings("sample", json).map(|r| r.warnings).map_err(|why| {
        Error::Layout(format!(
            "{} cannot render {what}: {why} (fix the template, or add a realistic {SAMPLE_FILE} to the layout)",
            layout.id()
        ))
    })
}

/// A run id unique to this run: a hash of its start time, process and inputs.
fn run_id(started_at: &str, input: &InputSummary, digest: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{started_at}|{nanos}|{}|{}|{digest}",
        std::process::id(),
        input.sha256
    );
    let h = output::sha256_hex(seed.as_bytes());
    format!("{}-{}", started_at.replace([':', '-'], ""), &h[..12])
}

/// Renders every record with `jobs` workers; returns the documents in input order.
fn render_all(
    layout: &Layout,
    input: &Input,
    renderer: &Renderer,
    pdf_dir: &Path,
    jobs: usize,
) -> Result<Vec<Document>> {
    let records = input.records()?;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(jobs * 4);
    let job_rx = std::sync::Mutex::new(job_rx);
    let (doc_tx, doc_rx) = mpsc::channel::<Document>();
    let done = AtomicUsize::new(0);

    std::thread::scope(|scope| -> Result<Vec<Document>> {
        for n in 0..jobs {
            let (job_rx, doc_tx, done) = (&job_rx, doc_tx.clone(), &done);
            std::thread::Builder::new()
                .name(format!("render-{n}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || loop {
                    let job = match job_rx.lock().expect("no panics while locked").recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    };
                    let doc = render_one(renderer, pdf_dir, job);
                    if done.fetch_add(1, Ordering::Relaxed) % EVICT_EVERY == EVICT_EVERY - 1 {
                        typst::comemo::evict(1);
                    }
                    if doc_tx.send(doc).is_err() {
                        break;
                    }
                })
                .map_err(|e| Error::Output(format!("cannot start a worker thread: {e}")))?;
        }
        let reader_docs = doc_tx;
        let reader = scope.spawn(move || -> Result<()> {
            let mut checker = Checker::new(layout, input.format);
            for raw in records {
                match checker.check(raw?) {
                    Checked::Ready(job) => job_tx.send(job).expect("workers outlive the reader"),
                    Checked::Failed(doc) => reader_docs
                        .send(doc)
                        .expect("collector outlives the reader"),
                }
            }
            Ok(())
        });
        let mut docs: Vec<Document> = doc_rx.iter().collect();
        reader.join().expect("reader thread does not panic")?;
        docs.sort_by_key(|d| d.index);
        Ok(docs)
    })
}

fn render_one(renderer: &Renderer, pdf_dir: &Path, job: Job) -> Document {
    let Job {
        index,
        line,
        id,
        stem,
        json,
    } = job;
    let fail = |why: String| {
        failed(
            index,
            line,
            Some(id.clone()),
            format!("record {id} (line {line}): {why}"),
        )
    };
    let rendered = match renderer.render(&id, json) {
        Ok(r) => r,
        Err(why) => return fail(why),
    };
    let path = pdf_dir.join(format!("{stem}.pdf"));
    if let Err(e) = output::write_atomic(&path, &rendered.pdf, false) {
        return fail(format!("cannot write {}: {e}", path.display()));
    }
    Document {
        index,
        line,
        record_id: Some(id),
        channel: "pdf".into(),
        path: Some(format!("pdf/{stem}.pdf")),
        sha256: Some(output::sha256_hex(&rendered.pdf)),
        bytes: rendered.pdf.len() as u64,
        pages: rendered.pages,
        status: DocStatus::Rendered,
        error: None,
    }
}

/// The result of `validate`: every record checked, nothing rendered.
#[derive(Debug, serde::Serialize)]
pub struct ValidationReport {
    /// The layout version checked against.
    pub layout: String,
    /// Number of records read.
    pub records: usize,
    /// Number of valid records.
    pub valid: usize,
    /// The invalid records, each with its reason.
    pub invalid: Vec<Document>,
}

/// Checks every record of `data` against the layout's schema without
/// rendering. Any layout status is accepted: validation sends nothing.
pub fn validate(
    layouts_dir: &Path,
    r: &LayoutRef,
    data: &Path,
    format: Option<Format>,
) -> Result<ValidationReport> {
    let layout = find_layout(layouts_dir, r)?;
    let input = Input::new(data, format)?;
    input.scan()?;
    let mut checker = Checker::new(&layout, input.format);
    let mut report = ValidationReport {
        layout: layout.id(),
        records: 0,
        valid: 0,
        invalid: Vec::new(),
    };
    for raw in input.records()? {
        report.records += 1;
        match checker.check(raw?) {
            Checked::Ready(_) => report.valid += 1,
            Checked::Failed(doc) => report.invalid.push(doc),
        }
    }
    Ok(report)
}
