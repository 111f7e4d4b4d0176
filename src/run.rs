//! A batch run from start to finish, and the schema-only `validate`.
//!
//! This module ties the stages together: read records ([`crate::input`]),
//! check them ([`crate::schema`]), route them over the channels
//! ([`crate::route`]), render them in parallel ([`crate::render::pdf`],
//! [`crate::render::email`]), write the files ([`crate::output`]) and the
//! manifest ([`crate::manifest`]). It is the library entry point a scheduler
//! or another program calls; the CLI is a thin shell over it.
//!
//! Everything that can stop a run as a whole (usage, a layout version that
//! is not approved, has drifted from its approval or is not in effect, an
//! unreadable input, an output folder holding another run) is checked before
//! the first file is written; that includes rendering one sample record in
//! memory on every channel, so a template that fails for every record is a
//! layout error (exit 2). After that, a problem with one record fails that
//! record's document only.
//!
//! Parallelism: one plain thread per worker with a 64 MiB stack pulls
//! records from a bounded channel, Typst keeps rayon for its own layout work
//! (rayon over whole documents would nest documents inside each other's
//! layout, with deep stacks and a cache eviction can no longer bound), and
//! the memoization cache is evicted every [`EVICT_EVERY`] documents so memory
//! stays flat.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::approval::{self, Standing};
use crate::clock::{now_rfc3339, Date};
use crate::error::{Error, Result, EXIT_OK, EXIT_PARTIAL};
use crate::input::{Format, Input, InputSummary, RawRecord};
use crate::journal::{self, Journal};
use crate::layout::{Catalog, Layout, LayoutFiles, LayoutMeta, LayoutRef, Status};
use crate::locale::{self, Rules, Texts};
use crate::lock::Lock;
use crate::manifest::{self, DocStatus, Document, Manifest, Shard};
use crate::output::{self, FileNamer};
use crate::render::email::EmailRenderer;
use crate::render::pdf::{Renderer, Standard};
use crate::route::{self, Channel, Decision, Route, Suppressions};
use crate::schema::{check_record, Origin};

/// Evict Typst's memoization cache after this many documents.
pub const EVICT_EVERY: usize = 50;

/// How long a run stopped by a signal lets the records in hand finish
/// (a letter takes milliseconds; a record stuck in a slow template is left
/// to `--resume`, well inside the 30 s Kubernetes and Slurm give by default).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Records handed to a worker at a time.
const BATCH: usize = 8;

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
    /// The channels to render; `None` for the layout's.
    pub channels: Option<Vec<Channel>>,
    /// A suppression list (record ids and email addresses).
    pub suppress: Option<PathBuf>,
    /// Render a version that is not approved (draft, retired, drifted, or
    /// out of its effective dates) as a marked review copy.
    pub allow_draft: bool,
    /// Also produce print files in mailing order and a job ticket
    /// (see [`crate::print`]).
    pub print: bool,
    /// A presort tool's sequence file (one record id a line) that sets the
    /// mailing order instead of the layout's sort key.
    pub sequence: Option<PathBuf>,
    /// Render only the records at these input positions (all are still
    /// read and checked, so ids and file names come out as in a full run);
    /// used by `verify --rerender`.
    pub only: Option<std::collections::BTreeSet<usize>>,
    /// Continue an interrupted run in `out` (see [`crate::journal`]); with
    /// no interrupted run there, start one. A finished run is left as it is.
    pub resume: bool,
    /// Render only this shard of the input (see [`Shard::owns`]).
    pub shard: Option<Shard>,
    /// The longest one record may take on all its channels; a record that
    /// takes longer fails (see [`render_all`]).
    pub doc_timeout: std::time::Duration,
    /// How progress is shown while the run goes.
    pub progress: crate::progress::ProgressMode,
    /// How log lines (progress, warnings) are written.
    pub log_format: crate::progress::LogFormat,
    /// Set (by a signal handler, or by the caller) to stop the run between
    /// records; see [`crate::stop`].
    pub stop: crate::stop::StopFlag,
}

/// The default of [`RunOptions::doc_timeout`]: far above any real letter
/// (a 67-page statement takes well under a second), low enough that a
/// runaway template does not hold a batch for long.
pub const DOC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The mark on every page of a draft run.
pub const DRAFT_MARK: &str = "DRAFT - NOT APPROVED";

/// The outcome of a finished run.
#[derive(Debug)]
pub struct RunReport {
    /// The manifest as written (its document entries are in the journal,
    /// [`crate::journal::documents`]).
    pub manifest: Manifest,
    /// The first few failure reasons, for a summary.
    pub failures: Vec<String>,
    /// What a resumed run kept from before, if it resumed.
    pub resumed: Option<manifest::Resumed>,
    /// True when `--resume` found the run already finished and did nothing.
    pub already_finished: bool,
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
    record: Map<String, Value>,
    locale: &'static Rules,
    route: Route,
    /// The mail piece number in a print run.
    sequence: Option<u32>,
    /// Its IMb (payload, bars) or why it cannot have one.
    imb: Option<std::result::Result<(String, String), String>>,
}

/// A mail piece of a print run, as planned before rendering.
struct Planned {
    sequence: u32,
    postcode: String,
    /// The IMb payload and bars, or why the record cannot have one.
    imb: Option<std::result::Result<(String, String), String>>,
}

/// Mail pieces of a print run by input position.
type Pieces = HashMap<usize, Planned>;

/// Checks records in input order: schema, record id, duplicates, file names,
/// then routes them over the run's channels.
struct Checker<'a> {
    layout: &'a Layout,
    origin: Origin,
    channels: &'a [Channel],
    suppressions: &'a Suppressions,
    texts: &'a Texts,
    pieces: Option<&'a Pieces>,
    /// 128-bit hash of every record id seen so far, with its line: about 40
    /// bytes a record instead of the id itself. Two different ids would have
    /// to collide in 128 bits to be taken for duplicates, and even then the
    /// record fails visibly, it is never lost.
    seen: HashMap<u128, u64>,
    namer: FileNamer,
    wording: crate::wording::Wording,
}

/// What checking and routing a record needs besides the record.
#[derive(Clone, Copy)]
struct Plan<'a> {
    layout: &'a Layout,
    channels: &'a [Channel],
    suppressions: &'a Suppressions,
    texts: &'a Texts,
    pieces: Option<&'a Pieces>,
}

impl<'a> Checker<'a> {
    fn new(plan: Plan<'a>, format: Format) -> Self {
        let origin = if format == Format::Csv {
            Origin::Text
        } else {
            Origin::Json
        };
        Checker {
            layout: plan.layout,
            origin,
            channels: plan.channels,
            suppressions: plan.suppressions,
            texts: plan.texts,
            pieces: plan.pieces,
            seen: HashMap::new(),
            namer: FileNamer::default(),
            wording: crate::wording::Wording::new(
                &plan.layout.meta.required_text,
                &plan.layout.meta.forbidden_text,
            ),
        }
    }

    /// Turns a raw record into a job, or into failed documents (one per channel).
    fn check(&mut self, raw: RawRecord) -> Checked {
        let (index, line) = (raw.index, raw.line);
        let channels = self.channels;
        let fail = |id: Option<String>, why: String| {
            let who = match &id {
                Some(id) => format!("record {id} (line {line})"),
                None => format!("record at line {line}"),
            };
            Checked::Failed(
                channels
                    .iter()
                    .map(|c| {
                        let why = format!("{who}: {why}");
                        Document::without_file(
                            index,
                            line,
                            id.clone(),
                            c.name(),
                            DocStatus::Failed,
                            why,
                        )
                    })
                    .collect(),
            )
        };
        let record = match raw.data {
            Ok(record) => record,
            Err(why) => return fail(None, why),
        };
        let id = id_of(&record, &self.layout.meta.id_field);
        // Matched before the schema check, so that an entry of the list that
        // names an invalid record is not reported as matching nobody.
        let address = self.layout.meta.email.as_ref().and_then(|e| {
            record
                .get(&e.to_field)
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let suppressed = self
            .suppressions
            .check(id.as_deref().unwrap_or(""), address.as_deref());
        let record = match check_record(record, &self.layout.meta.fields, self.origin) {
            Ok(record) => record,
            Err(problems) => return fail(id, problems.join("; ")),
        };
        let Some(id) = id else {
            let field = &self.layout.meta.id_field;
            return fail(None, format!("field `{field}`: not a usable record id"));
        };
        let meta = &self.layout.meta;
        let to_field = meta.email.as_ref().map(|e| e.to_field.as_str());
        let declared = |k: &str| Some(k) != to_field && meta.fields.iter().any(|f| f.name == k);
        if let Some(why) = self.wording.forbidden_in_record(&record, declared) {
            return fail(Some(id), why);
        }
        let key = typst::utils::hash128(&id);
        if let Some(first) = self.seen.get(&key) {
            let why = format!("duplicate record id (first used at line {first})");
            return fail(Some(id), why);
        }
        self.seen.insert(key, line);
        let stem = self.namer.name(&id);
        let locale = record_locale(&self.layout.meta, self.texts, &record);
        let route = route::route(&self.layout.meta, &record, channels, suppressed);
        let planned = self.pieces.and_then(|p| p.get(&index));
        let sequence = planned.map(|p| p.sequence);
        let imb = planned.and_then(|p| p.imb.clone());
        Checked::Ready(Box::new(Job {
            index,
            line,
            id,
            stem,
            record,
            locale,
            route,
            sequence,
            imb,
        }))
    }
}

/// The outcome of checking one record.
enum Checked {
    /// Valid: render it (boxed: a job is much larger than a failure).
    Ready(Box<Job>),
    /// Invalid: these are its manifest entries, one per channel.
    Failed(Vec<Document>),
}

pub(crate) fn id_of(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The record's locale: its `locale_field` resolved (see [`crate::locale`]),
/// else the layout's default.
/// A locale whose language the layout's texts do not have falls back to the
/// default too.
pub(crate) fn record_locale(
    meta: &LayoutMeta,
    texts: &Texts,
    record: &Map<String, Value>,
) -> &'static Rules {
    meta.locale_field
        .as_ref()
        .and_then(|f| record.get(f))
        .and_then(Value::as_str)
        .and_then(locale::resolve)
        .filter(|r| texts.speaks(r.tag))
        .or_else(|| locale::rules(&meta.default_locale))
        .unwrap_or(&locale::RULES[0])
}

/// Loads the catalog and picks the layout a command names.
pub fn find_layout(layouts_dir: &Path, r: &LayoutRef, day: Date) -> Result<Layout> {
    Ok(Catalog::discover(layouts_dir)?.resolve(r, day)?.clone())
}

/// Why a layout version may not render for customers on `day`, if it may not.
fn review_problem(layout: &Layout, standing: &Standing, day: Date) -> Option<String> {
    if layout.meta.status == Status::Draft {
        return Some(format!(
            "it is a draft (after review, `letterpress layouts approve {} --by NAME` approves it)",
            layout.id()
        ));
    }
    if layout.meta.status != Status::Approved {
        return Some(format!("it is {}", layout.meta.status));
    }
    match standing {
        Standing::Unapproved => return Some(
            "it has no approval record (`letterpress layouts approve NAME@N --by NAME` writes one)"
                .into(),
        ),
        Standing::Drifted { .. } => return Some(format!("its files {}", standing.describe())),
        Standing::Approved(_) => {}
    }
    if !layout.meta.in_effect(day) {
        return Some(format!(
            "it is not in effect on {day} (effective {})",
            layout.meta.effective()
        ));
    }
    if let Some(since) = layout.approved_since.filter(|since| *since > day) {
        return Some(format!(
            "it is not in effect on {day}: its files were approved on {since}, after that date, and a letter dated {day} cannot use wording approved later"
        ));
    }
    None
}

/// The renderers and places of one run, shared by all workers.
struct Stage {
    pdf: Option<Renderer>,
    email: Option<EmailRenderer>,
    out: PathBuf,
    as_of: Date,
    /// Tags this run's temporary files (a shard's, in shared folders).
    temp_tag: String,
}

/// Runs a batch: renders every record of `opts.data` with the chosen layout
/// version into `opts.out`, on each channel, then writes the manifest.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    check_jobs(opts.jobs)?;
    if opts.shard.is_some() && opts.print {
        return Err(Error::Usage(
            "--print cannot be combined with --shard: print files put every letter of the batch in one mailing order, so make them in one unsharded run".into(),
        ));
    }
    let folder = run_folder(opts);
    let manifest_path = folder.join(manifest::MANIFEST_FILE);
    if manifest_path.exists() {
        if opts.resume {
            return finished(&folder, started);
        }
        return Err(Error::Output(format!(
            "`{}` already holds the manifest of a finished run; choose a new --out folder",
            folder.display()
        )));
    }
    let previous = RunState::load(&folder)?;
    if let (Some(prev), false) = (&previous, opts.resume) {
        return Err(Error::Output(format!(
            "`{}` holds a run that did not finish (started {}); add --resume to continue it, or choose a new --out folder",
            folder.display(),
            prev.started_at
        )));
    }
    // A resumed run keeps the date its first attempt used.
    let as_of = opts
        .as_of
        .or_else(|| previous.as_ref().and_then(|p| Date::parse(&p.as_of)))
        .unwrap_or_else(Date::today_utc);

    // Everything that can stop the run is checked before anything is written.
    let layout = find_layout(&opts.layouts_dir, &opts.layout, as_of)?;
    let files = layout.read_files()?;
    let standing = approval::standing(&layout, &files)?;
    let mut notices = Vec::new();
    let draft = match review_problem(&layout, &standing, as_of) {
        None => false,
        Some(why) if opts.allow_draft => {
            notices.push(format!(
                "draft run: {} may not go to customers because {why}; every page is marked DRAFT - NOT APPROVED",
                layout.id()
            ));
            true
        }
        Some(why) => {
            return Err(Error::Layout(format!(
                "{} cannot run because {why}. Only approved versions whose files match their approval run for customers (`letterpress layouts check` lists them; --allow-draft renders a marked review copy)",
                layout.id()
            )))
        }
    };
    let channels = run_channels(&layout, opts.channels.as_deref())?;
    if opts.print && !channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let suppressions = match &opts.suppress {
        Some(path) => Suppressions::load(path)?,
        None => Suppressions::default(),
    };
    let suppress_entry = match &opts.suppress {
        Some(path) => Some(manifest::SuppressEntry {
            path: path.display().to_string(),
            sha256: output::sha256_hex(&std::fs::read(path).map_err(|e| Error::io(path, e))?),
            entries: suppressions.len(),
        }),
        None => None,
    };
    let digest = files.digest.clone();
    let sample = files.get(SAMPLE_FILE).map(<[u8]>::to_vec);
    let texts = Arc::new(load_texts(&layout, &files)?);
    let email = match (&layout.meta.email, channels.contains(&Channel::Email)) {
        (Some(settings), true) => Some(
            EmailRenderer::new(
                &layout,
                settings,
                |rel| files.get(rel).map(<[u8]>::to_vec),
                texts.clone(),
                as_of,
                &digest,
                draft,
            )
            .map_err(|e| Error::Layout(format!("{}: {e}", layout.id())))?,
        ),
        _ => None,
    };
    let pdf = if channels.contains(&Channel::Pdf) {
        Some(Renderer::new(
            &layout,
            files,
            &texts,
            as_of,
            &opts.standards,
            draft.then_some(DRAFT_MARK),
        )?)
    } else {
        None
    };
    let stage = Stage {
        pdf,
        email,
        out: opts.out.clone(),
        as_of,
        temp_tag: opts
            .shard
            .map_or(String::new(), |s| format!("s{}of{}-", s.index, s.count)),
    };
    let mut warnings = preflight(&layout, &stage, sample)?;
    warnings.extend(notices);
    let input = Input::new(&opts.data, opts.format)?;
    let summary = input.scan()?;
    input.check_shape(&summary, &layout.meta.id_field)?;
    let options = manifest::Options {
        doc_timeout_seconds: opts.doc_timeout.as_secs_f64(),
        pdf_standards: opts.standards.iter().map(|s| s.name().to_owned()).collect(),
        jobs: opts.jobs,
        channels: channels.iter().map(|c| c.name().to_owned()).collect(),
        suppress: suppress_entry,
        print: opts.print,
        sequence: opts.sequence.as_ref().map(|p| p.display().to_string()),
    };
    let mut state = RunState {
        run_id: run_id(&started_at, &summary, &digest),
        started_at,
        as_of: as_of.to_string(),
        command: opts.command.clone(),
        draft,
        layout: layout.id(),
        layout_digest: digest.clone(),
        input_sha256: summary.sha256.clone(),
        options,
        shard: opts.shard,
        resumed: Vec::new(),
    };

    // From here on, files are written.
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let _lock = Lock::take(&folder.join(journal::LOCK_FILE), "run")?;
    let reopened = match RunState::load(&folder)? {
        Some(prev) => {
            let changed = prev.differences(&state);
            if !changed.is_empty() {
                return Err(Error::Usage(format!(
                    "cannot resume the run in `{}`: {} changed since it started. Resume with the same input, layout and options, or start a new --out folder",
                    folder.display(),
                    changed.join(", ")
                )));
            }
            state.run_id = prev.run_id;
            state.started_at = prev.started_at;
            state.command = prev.command;
            state.options.jobs = prev.options.jobs;
            state.resumed = prev.resumed;
            true
        }
        None => false,
    };
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let mut dirs = vec![opts.out.clone()];
    for c in &channels {
        let dir = opts.out.join(c.name());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        dirs.push(dir);
    }
    // A killed run leaves temporary files: remove this run's (a shard's
    // only, as other shards may be writing into the same folders).
    for dir in &dirs {
        output::remove_stale_temp_files(dir, &stage.temp_tag).map_err(|e| Error::io(dir, e))?;
    }
    let (mut journal, resumed) = if reopened {
        let (journal, found) = Journal::reopen(&folder, &opts.out, channels.len())?;
        let resumed = manifest::Resumed {
            at: now_rfc3339(),
            kept_records: found.kept_records,
            cut: found.cut,
        };
        state.resumed.push(resumed.clone());
        (journal, Some((resumed, found.done_through)))
    } else {
        (Journal::create(&folder, &opts.out)?, None)
    };
    state.save(&folder)?;

    let mut plan = Plan {
        layout: &layout,
        channels: &channels,
        suppressions: &suppressions,
        texts: &texts,
        pieces: None,
    };
    let pieces = if opts.print {
        Some(mailing_order(
            plan,
            &input,
            opts.sequence.as_deref(),
            &opts.stop,
        )?)
    } else {
        None
    };
    plan.pieces = pieces.as_ref();
    let pick = Pick {
        only: opts.only.as_ref(),
        shard: opts.shard,
        done_through: resumed.as_ref().and_then(|(_, d)| *d),
    };
    let workers = Workers {
        stage: Arc::new(stage),
        jobs: opts.jobs,
        limit: opts.doc_timeout,
        stop: opts.stop.clone(),
    };
    let total = match opts.shard {
        Some(s) => summary.records.div_ceil(s.count as usize),
        None => summary.records,
    };
    let kept = resumed.as_ref().map_or(0, |(r, _)| r.kept_records);
    let mut watch = Watch {
        progress: crate::progress::Progress::new(opts.progress, opts.log_format, total, kept),
        samples: Vec::new(),
        start: Instant::now(),
        kept_documents: journal.tally().totals.documents,
        last_sample: None,
    };
    let rendered = render_all(plan, &input, &workers, pick, &mut journal, &mut watch);
    watch.sample(&journal, true);
    watch.progress.finish();
    if let Rendered::Stopped(signal) = rendered? {
        journal.sync()?;
        return Err(stopped(
            signal,
            journal.tally().totals.records,
            total,
            opts.shard,
        ));
    }
    let (mut documents, tally) = journal.finish()?;
    let print = match &pieces {
        Some(pieces) => {
            let (print, entry) = print_files(&layout, opts, &folder, pieces, &state.run_id)?;
            documents = entry;
            Some(print)
        }
        None => None,
    };
    let mut manifest = Manifest {
        manifest_version: manifest::MANIFEST_VERSION,
        manifest_digest: String::new(),
        run_id: state.run_id.clone(),
        engine: manifest::Engine::current(),
        started_at: state.started_at.clone(),
        finished_at: now_rfc3339(),
        as_of: as_of.to_string(),
        draft,
        command: state.command.clone(),
        options: state.options.clone(),
        layout: manifest::LayoutEntry {
            name: layout.meta.name.clone(),
            version: layout.meta.version,
            status: layout.meta.status.to_string(),
            title: layout.meta.title.clone(),
            digest,
            approval: standing.approval().map(|a| manifest::ApprovalEntry {
                by: a.approved_by.clone(),
                at: a.approved_on.clone(),
                note: a.note.clone(),
                digest: a.digest.clone(),
                files_match: standing.is_approved(),
            }),
            effective: layout.meta.effective(),
        },
        input: manifest::InputEntry {
            path: opts.data.display().to_string(),
            format: input.format.name().into(),
            sha256: summary.sha256.clone(),
            bytes: summary.bytes,
            records: summary.records,
        },
        totals: tally.totals,
        print,
        shard: opts.shard,
        shards: Vec::new(),
        unmatched_suppressions: suppressions.unmatched(),
        resumed: state.resumed.clone(),
        documents,
    };
    let json = manifest.seal();
    output::write_atomic(&manifest_path, &json, true).map_err(|e| Error::io(&manifest_path, e))?;
    let links = if opts.shard.is_some() { "../" } else { "" };
    crate::report::write(&folder, &manifest, &watch.samples, links)?;
    let state_path = folder.join(journal::STATE_FILE);
    std::fs::remove_file(&state_path).map_err(|e| Error::io(&state_path, e))?;
    output::sync_dir(&folder).map_err(|e| Error::io(&folder, e))?;
    Ok(RunReport {
        manifest,
        manifest_path,
        failures: tally.failures,
        resumed: resumed.map(|(r, _)| r),
        already_finished: false,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    })
}

/// The most rendering workers a run takes: four per core (at least 4),
/// and never more than 256. Each worker holds a 64 MiB stack and renders one
/// record at a time; past the cores, more workers only add memory.
pub fn max_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).clamp(4, 256)
}

/// Refuses a number of workers the run cannot use, before anything is
/// written.
fn check_jobs(jobs: usize) -> Result<()> {
    let max = max_jobs();
    if jobs == 0 || jobs > max {
        return Err(Error::Usage(format!(
            "--jobs {jobs}: give 1 to {max} rendering workers (at most 4 per core, 256 in all; each holds a 64 MiB stack and more workers than cores add memory, not speed)"
        )));
    }
    Ok(())
}

/// The error of a run stopped by `signal` after `done` records of `total`
/// (0 when the count is not known yet).
fn stopped(signal: i32, done: usize, total: usize, shard: Option<Shard>) -> Error {
    use crate::stop::count;
    let done = match (shard, total) {
        (Some(s), _) => format!("{} records of shard {s}", count(done)),
        (None, 0) => format!("{} records", count(done)),
        (None, total) => format!("{} of {} records", count(done), count(total)),
    };
    Error::Stopped {
        signal,
        message: format!(
            "stopped by {} after {done}; resume with --resume",
            crate::stop::signal_name(signal),
        ),
    }
}

/// The folder of a run's manifest, journal, state and lock: `--out`, or a
/// shard's folder inside it.
pub fn run_folder(opts: &RunOptions) -> PathBuf {
    match &opts.shard {
        Some(shard) => opts.out.join(shard.folder()),
        None => opts.out.clone(),
    }
}

/// The report of a run that had already finished (`--resume` on it).
fn finished(folder: &Path, started: Instant) -> Result<RunReport> {
    let manifest_path = folder.join(manifest::MANIFEST_FILE);
    let manifest = manifest::load(&manifest_path)?;
    let failures = journal::documents(folder)?
        .filter_map(|d| d.ok())
        .filter(|d| d.status == DocStatus::Failed)
        .filter_map(|d| d.error)
        .take(10)
        .collect();
    Ok(RunReport {
        manifest,
        manifest_path,
        failures,
        resumed: None,
        already_finished: true,
        seconds: started.elapsed().as_secs_f64(),
        warnings: Vec::new(),
    })
}

/// What a run records when it starts, so that `--resume` can tell whether
/// it is asked to continue the same run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunState {
    run_id: String,
    started_at: String,
    as_of: String,
    command: Vec<String>,
    draft: bool,
    layout: String,
    layout_digest: String,
    input_sha256: String,
    options: manifest::Options,
    shard: Option<Shard>,
    #[serde(default)]
    resumed: Vec<manifest::Resumed>,
}

/// The first 12 characters of a hash, enough to tell two apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl RunState {
    /// The state of an unfinished run in `folder`, if there is one.
    fn load(folder: &Path) -> Result<Option<RunState>> {
        let path = folder.join(journal::STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Output(format!(
                    "{}: {e}; this file describes an unfinished run: remove the folder to start afresh",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn save(&self, folder: &Path) -> Result<()> {
        let path = folder.join(journal::STATE_FILE);
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        output::write_atomic(&path, &json, true).map_err(|e| Error::io(&path, e))
    }

    /// What differs between the run that started and the one asked to
    /// resume it, in words.
    fn differences(&self, now: &RunState) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{what} (was {a}, now {b})"));
            }
        };
        check(
            "the input file",
            format!("SHA-256 {}", short(&self.input_sha256)),
            format!("SHA-256 {}", short(&now.input_sha256)),
        );
        check(
            "the layout version",
            self.layout.clone(),
            now.layout.clone(),
        );
        check(
            "the layout's files",
            format!("digest {}", short(&self.layout_digest)),
            format!("digest {}", short(&now.layout_digest)),
        );
        check("--as-of", self.as_of.clone(), now.as_of.clone());
        check(
            "--allow-draft",
            self.draft.to_string(),
            now.draft.to_string(),
        );
        let (a, b) = (&self.options, &now.options);
        check("--channels", a.channels.join(","), b.channels.join(","));
        check(
            "--pdf-standard",
            a.pdf_standards.join(","),
            b.pdf_standards.join(","),
        );
        let list = |s: &Option<manifest::SuppressEntry>| {
            s.as_ref().map_or("none".into(), |s| {
                format!("{} with SHA-256 {}", s.path, short(&s.sha256))
            })
        };
        check("--suppress", list(&a.suppress), list(&b.suppress));
        check("--print", a.print.to_string(), b.print.to_string());
        check(
            "--doc-timeout",
            a.doc_timeout_seconds.to_string(),
            b.doc_timeout_seconds.to_string(),
        );
        let seq = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
        check("--sequence", seq(&a.sequence), seq(&b.sequence));
        let shard = |s: &Option<Shard>| s.map_or("none".into(), |s| s.to_string());
        check("--shard", shard(&self.shard), shard(&now.shard));
        out
    }
}

/// The channels of a run: `--channels` if given, else the layout's.
fn run_channels(layout: &Layout, asked: Option<&[Channel]>) -> Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for c in asked.map_or_else(|| layout.meta.default_channels(), <[Channel]>::to_vec) {
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    if channels.is_empty() {
        return Err(Error::Usage(
            "--channels must name at least one channel".into(),
        ));
    }
    if channels.contains(&Channel::Email) && layout.meta.email.is_none() {
        return Err(Error::Usage(format!(
            "{} has no email channel (no `email` section in its layout.yaml); run it with --channels pdf",
            layout.id()
        )));
    }
    Ok(channels)
}

/// The layout's wording from `texts.yaml` (none when it has no such file).
pub(crate) fn load_texts(layout: &Layout, files: &LayoutFiles) -> Result<Texts> {
    let default = locale::rules(&layout.meta.default_locale).unwrap_or(&locale::RULES[0]);
    match files.get(TEXTS_FILE) {
        Some(yaml) => {
            Texts::parse(yaml, default).map_err(|e| Error::Layout(format!("{}: {e}", layout.id())))
        }
        None => Ok(Texts::default()),
    }
}

/// Numbers the records that get a letter in mailing order: by the presort
/// tool's sequence file when given (ids in it first, in its order; any
/// other letter after them in the layout's order), else by the layout's
/// `print.sort` key, then the record id.
fn mailing_order(
    plan: Plan,
    input: &Input,
    sequence: Option<&Path>,
    stop: &crate::stop::StopFlag,
) -> Result<Pieces> {
    if !plan.channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let settings = plan.layout.meta.print.clone().unwrap_or_default();
    let presorted: HashMap<String, usize> = match sequence {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("sequence file `{}`: {e}", path.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .enumerate()
            .map(|(i, id)| (id.to_owned(), i))
            .collect(),
        None => HashMap::new(),
    };
    let mut checker = Checker::new(plan, input.format);
    let mut letters = Vec::new();
    for raw in input.records()? {
        if let Some(signal) = stop.requested() {
            return Err(stopped(signal, 0, 0, None));
        }
        if let Checked::Ready(job) = checker.check(raw?) {
            let prints = job
                .route
                .decisions
                .iter()
                .any(|(c, d)| *c == Channel::Pdf && matches!(d, Decision::Render(_)));
            if prints {
                let key: Vec<String> = settings
                    .sort
                    .iter()
                    .map(|f| crate::print::field_text(&job.record, f))
                    .collect();
                let postcode = crate::print::field_text(&job.record, &settings.postcode_field);
                let zip = settings
                    .imb
                    .as_ref()
                    .map(|i| crate::print::field_text(&job.record, &i.zip_field));
                let first = presorted.get(&job.id).copied().unwrap_or(usize::MAX);
                letters.push((first, key, job.id, job.index, postcode, zip));
            }
        }
    }
    letters.sort();
    Ok(letters
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, _, index, postcode, zip))| {
            let sequence = i as u32 + 1;
            let imb = settings
                .imb
                .as_ref()
                .zip(zip)
                .map(|(s, zip)| s.barcode(sequence, &zip));
            (
                index,
                Planned {
                    sequence,
                    postcode,
                    imb,
                },
            )
        })
        .collect())
}

/// Combines the run's letters into print files and a job ticket, and links
/// each letter's entry in the journal to its piece (rewriting the journal).
fn print_files(
    layout: &Layout,
    opts: &RunOptions,
    folder: &Path,
    pieces: &Pieces,
    run_id: &str,
) -> Result<(crate::print::PrintOutput, journal::DocumentsFile)> {
    let settings = layout.meta.print.clone().unwrap_or_default();
    let mut letters = Vec::new();
    for d in journal::documents(folder)? {
        let d = d?;
        if d.channel != "pdf" || d.status != DocStatus::Rendered {
            continue;
        }
        let Some(planned) = pieces.get(&d.index) else {
            continue;
        };
        let barcode = match &planned.imb {
            Some(Ok((payload, _))) => payload.clone(),
            _ => String::new(),
        };
        if let (Some(record_id), Some(path)) = (d.record_id, d.path) {
            letters.push(crate::print::Letter {
                barcode,
                sequence: planned.sequence,
                record_id,
                path,
                pages: d.pages,
                postcode: planned.postcode.clone(),
                envelope: None,
            });
        }
    }
    let (placed, output) = crate::print::produce(&opts.out, &settings, letters, run_id)
        .map_err(|e| Error::Output(format!("print files: {e}")))?;
    let mut by_id: HashMap<String, crate::print::Piece> = placed
        .into_iter()
        .map(|p| (p.record_id.clone(), p))
        .collect();
    let entry = journal::rewrite(folder, |d| {
        if d.channel == "pdf" {
            d.piece = d.record_id.as_deref().and_then(|id| by_id.remove(id));
        }
    })?;
    Ok((output, entry))
}

/// The layout file holding its wording per locale.
pub const TEXTS_FILE: &str = "texts.yaml";

/// The layout file holding a sample record for [`preflight`], if any.
pub const SAMPLE_FILE: &str = "sample.json";

/// Renders one sample record in memory on every channel of the run before
/// anything is written, so a template that cannot work for any record (an
/// unknown function, a field name the schema does not have) stops the run as
/// a layout error instead of failing every record. Returns Typst's warnings
/// on the sample. The sample is the layout's `sample.json` (as read with the
/// other layout files) when it has one, else a record that fills every
/// declared field (see [`crate::schema::sample_record`]); it is rendered in
/// the layout's default locale, its email to a placeholder address.
fn preflight(layout: &Layout, stage: &Stage, sample: Option<Vec<u8>>) -> Result<Vec<String>> {
    let (record, what) = match sample {
        Some(bytes) => {
            let record: Map<String, Value> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Layout(format!("{}: {SAMPLE_FILE}: {e}", layout.id())))?;
            (record, SAMPLE_FILE.to_string())
        }
        None => (
            crate::schema::sample_record(&layout.meta.fields, &stage.as_of.to_string()),
            "a sample record built from its field schema".to_string(),
        ),
    };
    let fail = |why: String| {
        Error::Layout(format!(
            "{} cannot render {what}: {why} (fix the template, or add a realistic {SAMPLE_FILE} to the layout)",
            layout.id()
        ))
    };
    let rules = locale::rules(&layout.meta.default_locale).unwrap_or(&locale::RULES[0]);
    let mut warnings = Vec::new();
    if let Some(pdf) = &stage.pdf {
        warnings = pdf
            .render_with_warnings("sample", &record, rules)
            .map_err(&fail)?
            .warnings;
    }
    if let Some(email) = &stage.email {
        let to: lettre::Address = "sample@example.com".parse().expect("valid address");
        email
            .render("sample", &record, &to, rules, stage.as_of)
            .map_err(|e| fail(format!("email: {e}")))?;
    }
    Ok(warnings)
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

/// Which records a run renders.
#[derive(Clone, Copy)]
struct Pick<'a> {
    /// Only these input positions (`verify --rerender`).
    only: Option<&'a std::collections::BTreeSet<usize>>,
    /// Only this shard's records.
    shard: Option<Shard>,
    /// Records up to this input position are already in the journal (resume).
    done_through: Option<usize>,
}

impl Pick<'_> {
    fn takes(&self, index: usize, id: Option<&str>) -> bool {
        self.done_through.is_none_or(|d| index > d)
            && self.only.is_none_or(|set| set.contains(&index))
            && self.shard.is_none_or(|s| s.owns(id, index))
    }
}

/// A record on its way to a worker: to render, or already failed.
enum Item {
    Job(Box<Job>),
    Failed(Vec<Document>),
}

/// What the run's watching thread keeps besides the journal: the progress
/// display and throughput samples for the report.
struct Watch {
    progress: crate::progress::Progress,
    samples: Vec<crate::report::Sample>,
    start: Instant,
    /// Documents the journal held before this attempt (a resume).
    kept_documents: usize,
    last_sample: Option<Instant>,
}

impl Watch {
    /// Updates the display; takes a throughput sample once a second (and
    /// when `force`d, at the end).
    fn sample(&mut self, journal: &Journal, force: bool) {
        let t = &journal.tally().totals;
        self.progress.update(t.records, t.failed);
        let due = self
            .last_sample
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if due || force {
            self.last_sample = Some(Instant::now());
            self.samples.push(crate::report::Sample {
                seconds: self.start.elapsed().as_secs_f64(),
                documents: t.documents.saturating_sub(self.kept_documents),
            });
        }
    }
}

/// The rendering workers of a run.
struct Workers {
    stage: Arc<Stage>,
    jobs: usize,
    /// Per-record time limit.
    limit: std::time::Duration,
    /// Set when the run must stop taking records (a signal).
    stop: crate::stop::StopFlag,
}

/// What a worker is doing, shared with the watchdog.
#[derive(Default)]
struct Slot {
    /// The batch in hand: its number, the entries done so far, the items
    /// left, and the item being rendered with its start.
    busy: Option<Busy>,
    /// Set by the watchdog when the worker overran: it must drop its work.
    abandoned: bool,
}

struct Busy {
    seq: u64,
    docs: Vec<Document>,
    rest: std::collections::VecDeque<Item>,
    current: Option<(Instant, Pending)>,
}

/// The record a worker is rendering: enough to fail it if it overruns.
struct Pending {
    index: usize,
    line: u64,
    id: String,
    channels: Vec<Channel>,
}

impl Pending {
    fn of(job: &Job) -> Pending {
        Pending {
            index: job.index,
            line: job.line,
            id: job.id.clone(),
            channels: job.route.decisions.iter().map(|(c, _)| *c).collect(),
        }
    }
}

type Slots = Arc<Mutex<Slot>>;

/// The numbered batches of records on their way to the workers.
type Batches = Arc<Mutex<mpsc::Receiver<(u64, Vec<Item>)>>>;

/// A finished batch: its entries, or the environment error that stopped it.
type Done = (u64, std::result::Result<Vec<Document>, String>);

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The entries a record gets when it overran the time limit, one per channel.
fn timed_out(job: &Pending, limit: std::time::Duration) -> Vec<Document> {
    job.channels
        .iter()
        .map(|channel| {
            Document::without_file(
                job.index,
                job.line,
                Some(job.id.clone()),
                channel.name(),
                DocStatus::Failed,
                format!(
                    "record {} (line {}): rendering took longer than the limit of {} s (--doc-timeout); the template may loop or grow without end on this record's data",
                    job.id,
                    job.line,
                    limit.as_secs_f64()
                ),
            )
        })
        .collect()
}

/// What the workers share besides their slots: the batches, the way back,
/// the count of documents for cache eviction, and the halt flag that an
/// environment error sets (every worker then drops its work).
#[derive(Clone)]
struct Lanes {
    rx: Batches,
    tx: mpsc::Sender<Done>,
    done: Arc<AtomicUsize>,
    halt: Arc<std::sync::atomic::AtomicBool>,
}

/// One rendering worker: takes batches until the reader is done, or until
/// the watchdog abandons it. A worker that replaces an abandoned one first
/// finishes the batch its slot already holds. After a halt it takes no
/// more records (it drains the batches, so the reader never blocks).
fn work(stage: Arc<Stage>, slot: Slots, lanes: Lanes) {
    let halted = || lanes.halt.load(Ordering::SeqCst);
    loop {
        // Take the next item of the batch in hand, or hand the batch in.
        let item = {
            let mut s = lock(&slot);
            if s.abandoned {
                return;
            }
            if halted() {
                s.busy = None;
            }
            match s.busy.as_mut() {
                Some(busy) => match busy.rest.pop_front() {
                    Some(Item::Failed(docs)) => {
                        busy.docs.extend(docs);
                        continue;
                    }
                    Some(Item::Job(job)) => {
                        busy.current = Some((Instant::now(), Pending::of(&job)));
                        job
                    }
                    None => {
                        let busy = s.busy.take().expect("busy");
                        if lanes.tx.send((busy.seq, Ok(busy.docs))).is_err() {
                            return;
                        }
                        continue;
                    }
                },
                None => {
                    drop(s);
                    let next = lanes.rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, items)) = next else { return };
                    if !halted() {
                        lock(&slot).busy = Some(Busy {
                            seq,
                            docs: Vec::with_capacity(items.len() * 2),
                            rest: items.into(),
                            current: None,
                        });
                    }
                    continue;
                }
            }
        };
        let result = render_one(&stage, *item);
        if lanes.done.fetch_add(1, Ordering::Relaxed) % EVICT_EVERY == EVICT_EVERY - 1 {
            typst::comemo::evict(1);
        }
        let mut s = lock(&slot);
        if s.abandoned {
            return;
        }
        let busy = s.busy.as_mut().expect("busy while rendering");
        busy.current = None;
        match result {
            Ok(docs) => busy.docs.extend(docs),
            Err(why) => {
                // Not the record's fault: stop the run, journal nothing of
                // this batch, leave it to --resume.
                lanes.halt.store(true, Ordering::SeqCst);
                let seq = busy.seq;
                s.busy = None;
                let _ = lanes.tx.send((seq, Err(why)));
            }
        }
    }
}

/// How [`render_all`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendered {
    /// Every picked record is in the journal.
    All,
    /// A signal stopped the reader; the records read before it are in the
    /// journal, the rest is left for `--resume`.
    Stopped(i32),
}

/// Renders the picked records with the workers and appends their entries
/// to the journal in input order (per record, in the order of the run's
/// channels).
///
/// Every record is read and checked in order (so duplicate ids and file
/// names come out the same whatever is picked); picked ones travel to the
/// workers in numbered batches, and the caller's thread puts the finished
/// batches back in order: the reorder window is bounded by the channel
/// (`2 × jobs` batches) plus those being rendered.
///
/// The caller's thread is also the watchdog. Typst cannot be interrupted,
/// so a record that takes longer than the limit is failed by the watchdog,
/// which abandons its worker (the thread finishes the record in the
/// background and throws the result away, or ends with the process) and
/// starts a new worker on the rest of that batch. The run goes on with the
/// same number of working threads.
///
/// Stopping: when the stop flag is set (a signal), the reader takes no more
/// records, the workers finish the batches already handed out, and they are
/// journaled; records still rendering after [`STOP_GRACE`] are dropped,
/// not failed, and left to `--resume` with the rest. When a document cannot be written (an environment error, see
/// [`Error::Environment`]), or the journal itself cannot, the run halts:
/// the batches before the failing one are journaled, no later one is, and
/// the workers finish the record in hand and stop; the error names the
/// file and the cause, and `--resume` renders the rest.
fn render_all(
    plan: Plan,
    input: &Input,
    workers: &Workers,
    pick: Pick,
    journal: &mut Journal,
    watch: &mut Watch,
) -> Result<Rendered> {
    let records = input.records()?;
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<Item>)>(workers.jobs * 2);
    let (doc_tx, doc_rx) = mpsc::channel::<Done>();
    let lanes = Lanes {
        rx: Arc::new(Mutex::new(job_rx)),
        tx: doc_tx,
        done: Arc::new(AtomicUsize::new(0)),
        halt: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let spawn = |slot: Slots| {
        let (stage, lanes) = (workers.stage.clone(), lanes.clone());
        std::thread::Builder::new()
            .name("render".into())
            .stack_size(WORKER_STACK)
            .spawn(move || work(stage, slot, lanes))
            .map(drop)
            .map_err(|e| Error::Output(format!("cannot start a worker thread: {e}")))
    };
    let mut slots: Vec<Slots> = Vec::with_capacity(workers.jobs);
    for _ in 0..workers.jobs {
        let slot = Slots::default();
        spawn(slot.clone())?;
        slots.push(slot);
    }
    // Batches the reader sent, once it has finished.
    let total = AtomicUsize::new(usize::MAX);
    let halt = lanes.halt.clone();

    std::thread::scope(|scope| -> Result<Rendered> {
        let total = &total;
        let halt = &halt;
        let stop = &workers.stop;
        let reader = scope.spawn(move || -> Result<Option<i32>> {
            let mut checker = Checker::new(plan, input.format);
            // Records travel in small batches: an email takes a fraction of
            // a millisecond, and handing each over alone costs about as much.
            let mut batch = Vec::with_capacity(BATCH);
            let mut seq = 0;
            let mut stopped = None;
            let result = (|| {
                for raw in records {
                    if halt.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    if let Some(signal) = stop.requested() {
                        stopped = Some(signal);
                        break;
                    }
                    let checked = checker.check(raw?);
                    let (index, id) = match &checked {
                        Checked::Ready(job) => (job.index, Some(job.id.as_str())),
                        Checked::Failed(docs) => docs
                            .first()
                            .map_or((0, None), |d| (d.index, d.record_id.as_deref())),
                    };
                    if !pick.takes(index, id) {
                        continue;
                    }
                    batch.push(match checked {
                        Checked::Ready(job) => Item::Job(job),
                        Checked::Failed(docs) => Item::Failed(docs),
                    });
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if job_tx.send((seq, full)).is_err() {
                            return Ok(());
                        }
                        seq += 1;
                    }
                }
                if !batch.is_empty() && job_tx.send((seq, batch)).is_ok() {
                    seq += 1;
                }
                Ok(())
            })();
            total.store(seq as usize, Ordering::SeqCst);
            result.map(|()| stopped)
        });
        // Put the batches back in input order as they come; watch the clock.
        let mut order = InOrder::default();
        // When a signal asked to stop, and whether the grace ran out.
        let mut stopping: Option<(i32, Instant)> = None;
        let mut cut_short = false;
        let tick = Duration::from_millis(100).min(workers.limit);
        loop {
            match doc_rx.recv_timeout(tick) {
                Ok((seq, docs)) => order.take(seq, docs, journal, halt),
                Err(mpsc::RecvTimeoutError::Timeout) => order.tick(journal, halt),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            watch.sample(journal, false);
            if order.next as usize == total.load(Ordering::SeqCst) {
                break;
            }
            if stopping.is_none() {
                stopping = workers.stop.requested().map(|sig| (sig, Instant::now()));
            }
            if let Some((_, at)) = stopping {
                // The records in hand had their chance to finish: leave
                // them to --resume (they are not failed; a thread still
                // rendering one throws its result away).
                if at.elapsed() > STOP_GRACE && !cut_short {
                    cut_short = true;
                    halt.store(true, Ordering::SeqCst);
                    for slot in &slots {
                        let mut s = lock(slot);
                        if s.busy.is_some() {
                            s.abandoned = true;
                        }
                    }
                }
            }
            if halt.load(Ordering::SeqCst) {
                // Wait for the records in hand (and their files) to finish,
                // so nothing is written after the run returns.
                let idle = slots.iter().all(|slot| {
                    let s = lock(slot);
                    s.abandoned || s.busy.as_ref().is_none_or(|b| b.current.is_none())
                });
                if idle && reader.is_finished() {
                    break;
                }
            }
            if reader.is_finished() && total.load(Ordering::SeqCst) == usize::MAX {
                break; // the reader failed; its error is below
            }
            for slot in slots.iter_mut() {
                let mut s = lock(slot);
                let overran = s
                    .busy
                    .as_ref()
                    .and_then(|b| b.current.as_ref())
                    .is_some_and(|(start, _)| start.elapsed() > workers.limit);
                if !overran {
                    continue;
                }
                s.abandoned = true;
                let mut busy = s.busy.take().expect("overran while busy");
                drop(s);
                let (_, pending) = busy.current.take().expect("overran while rendering");
                busy.docs.extend(timed_out(&pending, workers.limit));
                let fresh = Slots::new(Mutex::new(Slot {
                    busy: Some(busy),
                    abandoned: false,
                }));
                spawn(fresh.clone())?;
                *slot = fresh;
            }
        }
        let stopped = reader.join().expect("reader thread does not panic")?;
        // A halted worker sent its error before its slot went idle: take it.
        while let Ok((seq, docs)) = doc_rx.try_recv() {
            order.take(seq, docs, journal, halt);
        }
        if let Some(e) = order.failure {
            // Best effort: on a full disk the journal may not take even its
            // buffered lines; a torn last line is cut by --resume.
            let _ = journal.sync();
            return Err(e);
        }
        if let (true, Some((signal, _))) = (cut_short, stopping) {
            return Ok(Rendered::Stopped(signal));
        }
        if !order.waiting.is_empty() || (order.next as usize) < total.load(Ordering::SeqCst) {
            return Err(Error::Output(
                "a rendering worker stopped before its batch was done".into(),
            ));
        }
        Ok(stopped.map_or(Rendered::All, Rendered::Stopped))
    })
}

/// Finished batches put back in input order for the journal, and the first
/// environment error (a batch that could not be written, or the journal
/// itself), after which nothing more is journaled.
#[derive(Default)]
struct InOrder {
    waiting: std::collections::BTreeMap<u64, std::result::Result<Vec<Document>, String>>,
    next: u64,
    failure: Option<Error>,
}

impl InOrder {
    fn take(
        &mut self,
        seq: u64,
        batch: std::result::Result<Vec<Document>, String>,
        journal: &mut Journal,
        halt: &std::sync::atomic::AtomicBool,
    ) {
        self.waiting.insert(seq, batch);
        while let Some(batch) = self.waiting.remove(&self.next) {
            if self.failure.is_none() {
                let done = match batch {
                    Ok(docs) => journal.append(&docs).map_err(journal_error),
                    Err(why) => Err(Error::Environment(why)),
                };
                self.fail(done, halt);
            }
            self.next += 1;
        }
    }

    /// Keeps the journal durable while the run waits for a batch.
    fn tick(&mut self, journal: &mut Journal, halt: &std::sync::atomic::AtomicBool) {
        if self.failure.is_none() {
            let done = journal.tick().map_err(journal_error);
            self.fail(done, halt);
        }
    }

    fn fail(&mut self, done: Result<()>, halt: &std::sync::atomic::AtomicBool) {
        if let Err(e) = done {
            halt.store(true, Ordering::SeqCst);
            self.failure = Some(e);
        }
    }
}

fn journal_error(e: Error) -> Error {
    Error::Environment(format!(
        "the run stopped: cannot write its journal ({e}); the records after its last complete line are left for --resume"
    ))
}

/// Why a document was not made: the record's own data or the template
/// (the document fails), or the environment (the run stops).
enum Failure {
    Record(String),
    Environment(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Record(why)
    }
}

/// Renders one record on each channel its route says. The error is an
/// environment error (a file that cannot be written), which stops the run.
fn render_one(stage: &Stage, job: Job) -> std::result::Result<Vec<Document>, String> {
    let mut docs = Vec::with_capacity(job.route.decisions.len());
    for (channel, decision) in &job.route.decisions {
        let entry = |status, why: String| {
            Document::without_file(
                job.index,
                job.line,
                Some(job.id.clone()),
                channel.name(),
                status,
                why,
            )
        };
        let doc = match decision {
            Decision::Suppress(why) => entry(DocStatus::Suppressed, why.clone()),
            Decision::Elsewhere(why) => entry(DocStatus::RoutedElsewhere, why.clone()),
            Decision::Fail(why) => entry(
                DocStatus::Failed,
                format!("record {} (line {}): {why}", job.id, job.line),
            ),
            Decision::Render(note) => {
                let result = match channel {
                    Channel::Pdf => render_pdf(stage, &job),
                    Channel::Email => render_email(stage, &job),
                };
                match result {
                    Ok(mut doc) => {
                        doc.note = note.clone();
                        doc
                    }
                    Err(Failure::Record(why)) => entry(
                        DocStatus::Failed,
                        format!("record {} (line {}): {why}", job.id, job.line),
                    ),
                    Err(Failure::Environment(why)) => return Err(why),
                }
            }
        };
        docs.push(doc);
    }
    Ok(docs)
}

/// A rendered document's entry, before its channel's details.
fn rendered(job: &Job, channel: Channel, path: String, bytes: &[u8]) -> Document {
    Document {
        index: job.index,
        line: job.line,
        record_id: Some(job.id.clone()),
        channel: channel.name().into(),
        locale: Some(job.locale.tag.into()),
        to: None,
        subject: None,
        message_id: None,
        sha256: Some(output::sha256_hex(bytes)),
        bytes: bytes.len() as u64,
        path: Some(path),
        pages: 0,
        status: DocStatus::Rendered,
        error: None,
        note: None,
        files: Vec::new(),
        piece: None,
    }
}

/// Writes `bytes` to `<out>/<rel>` atomically. Failing to is never the
/// record's fault (a full disk, a folder that cannot be written).
fn write(stage: &Stage, rel: &str, bytes: &[u8]) -> std::result::Result<(), Failure> {
    let path = stage.out.join(rel);
    output::write_atomic_tagged(&path, bytes, false, &stage.temp_tag).map_err(|e| {
        let folder = path.parent().unwrap_or(&stage.out);
        Failure::Environment(format!(
            "the run stopped: cannot write to {} ({e}) while writing {}; no record was failed for it. Fix the folder (space, permissions, mount), then run the same command with --resume",
            folder.display(),
            path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        ))
    })
}

fn render_pdf(stage: &Stage, job: &Job) -> std::result::Result<Document, Failure> {
    let renderer = stage.pdf.as_ref().expect("pdf channel prepared");
    let bars = match &job.imb {
        Some(Ok((_, bars))) => Some(bars.as_str()),
        Some(Err(why)) => return Err(Failure::Record(why.clone())),
        None => None,
    };
    let pdf = renderer.render_piece(&job.id, &job.record, job.locale, job.sequence, bars)?;
    let rel = format!("pdf/{}.pdf", job.stem);
    write(stage, &rel, &pdf.pdf)?;
    let mut doc = rendered(job, Channel::Pdf, rel, &pdf.pdf);
    doc.pages = pdf.pages;
    Ok(doc)
}

fn render_email(stage: &Stage, job: &Job) -> std::result::Result<Document, Failure> {
    let renderer = stage.email.as_ref().expect("email channel prepared");
    let to = job
        .route
        .to
        .as_ref()
        .expect("routed to email with an address");
    let email = renderer.render(&job.id, &job.record, to, job.locale, stage.as_of)?;
    let mut files = Vec::new();
    for (ext, bytes) in [
        ("html", email.html.as_bytes()),
        ("txt", email.text.as_bytes()),
    ] {
        let rel = format!("email/{}.{ext}", job.stem);
        write(stage, &rel, bytes)?;
        files.push(manifest::FileEntry {
            sha256: output::sha256_hex(bytes),
            bytes: bytes.len() as u64,
            path: rel,
        });
    }
    let rel = format!("email/{}.eml", job.stem);
    write(stage, &rel, &email.eml)?;
    let mut doc = rendered(job, Channel::Email, rel, &email.eml);
    doc.to = Some(email.to);
    doc.subject = Some(email.subject);
    doc.message_id = Some(email.message_id);
    doc.files = files;
    Ok(doc)
}

/// What `validate` is asked to check: the run it prepares for.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The folder holding the layouts.
    pub layouts_dir: PathBuf,
    /// Which layout version (any status: validation sends nothing).
    pub layout: LayoutRef,
    /// The data file.
    pub data: PathBuf,
    /// Its format, when not taken from the extension.
    pub format: Option<Format>,
    /// The date the run will use (picks the version, as `run` does);
    /// `None` for today (UTC).
    pub as_of: Option<Date>,
    /// The channels of the run; `None` for the layout's.
    pub channels: Option<Vec<Channel>>,
    /// The run's suppression list.
    pub suppress: Option<PathBuf>,
    /// The run makes print files: plan the mailing order and the IMb of
    /// every piece, as the run will.
    pub print: bool,
    /// The presort sequence file of a print run.
    pub sequence: Option<PathBuf>,
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
    /// The invalid records, each with its reason (one entry a record: the
    /// first channel's, which names the record, its line and the reason).
    pub invalid: Vec<Document>,
    /// Suppression list entries that matched no record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched_suppressions: Vec<route::Unmatched>,
}

/// Checks every record of the data as `run` would before rendering,
/// through the same code (the run's [`Checker`]): the schema and the
/// characters of every value, record ids and duplicates, file names, the
/// contact preference, the locale, the email address and the fallback to
/// print, the suppression list, forbidden wording in the data, and with
/// `print` the mailing order and each piece's IMb. A record `validate`
/// passes is never failed by `run` for anything it could see without
/// rendering; only the template itself (and what it makes of the data,
/// such as a page count) is left to the run.
pub fn validate(opts: &ValidateOptions) -> Result<ValidationReport> {
    let as_of = opts.as_of.unwrap_or_else(Date::today_utc);
    let layout = find_layout(&opts.layouts_dir, &opts.layout, as_of)?;
    let files = layout.read_files()?;
    let texts = load_texts(&layout, &files)?;
    let channels = run_channels(&layout, opts.channels.as_deref())?;
    if opts.print && !channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let suppressions = match &opts.suppress {
        Some(path) => Suppressions::load(path)?,
        None => Suppressions::default(),
    };
    let input = Input::new(&opts.data, opts.format)?;
    let summary = input.scan()?;
    input.check_shape(&summary, &layout.meta.id_field)?;
    let mut plan = Plan {
        layout: &layout,
        channels: &channels,
        suppressions: &suppressions,
        texts: &texts,
        pieces: None,
    };
    let stop = crate::stop::StopFlag::new();
    let pieces = if opts.print {
        Some(mailing_order(
            plan,
            &input,
            opts.sequence.as_deref(),
            &stop,
        )?)
    } else {
        None
    };
    plan.pieces = pieces.as_ref();
    let mut checker = Checker::new(plan, input.format);
    let mut report = ValidationReport {
        layout: layout.id(),
        records: 0,
        valid: 0,
        invalid: Vec::new(),
        unmatched_suppressions: Vec::new(),
    };
    for raw in input.records()? {
        report.records += 1;
        match checker.check(raw?) {
            Checked::Ready(job) => match job.failure() {
                None => report.valid += 1,
                Some(doc) => report.invalid.push(doc),
            },
            Checked::Failed(mut docs) => report.invalid.extend(docs.drain(..1)),
        }
    }
    report.unmatched_suppressions = suppressions.unmatched();
    Ok(report)
}

impl Job {
    /// The entry of the first channel on which this checked record is
    /// bound to fail before it is rendered (its route fails it, or its
    /// letter cannot have its IMb), if there is one.
    fn failure(&self) -> Option<Document> {
        self.route.decisions.iter().find_map(|(channel, d)| {
            let why = match (channel, d) {
                (_, Decision::Fail(why)) => why,
                (Channel::Pdf, Decision::Render(_)) => match &self.imb {
                    Some(Err(why)) => why,
                    _ => return None,
                },
                _ => return None,
            };
            Some(Document::without_file(
                self.index,
                self.line,
                Some(self.id.clone()),
                channel.name(),
                DocStatus::Failed,
                format!("record {} (line {}): {why}", self.id, self.line),
            ))
        })
    }
}
