//! `run`: a batch from start to finish, as one library call.
//!
//! The phases follow the data's path: [`prepare`] the layout version, its
//! renderers and the input (everything that can stop a run as a whole is
//! checked here, before the first file is written: usage, a version that is
//! not approved, has drifted or is not in effect, an unreadable input, a
//! template that fails on a sample record); [`open`] the run folder (the
//! lock, the state that lets a killed run resume, the journal); [`render`]
//! every record with the worker [`pool`] into the journal; and [`finish`]
//! with the print files, the manifest and the report. After `prepare`, a
//! problem with one record fails that record's documents only; the
//! environment (a full disk, a signal) stops the run cleanly, to be resumed.
//!
//! Parallelism: the pool's workers are plain threads with 64 MiB stacks;
//! Typst keeps rayon for its own layout work (rayon over whole documents
//! would nest documents inside each other's layout, with deep stacks and a
//! cache that eviction no longer bounds), and its memoization cache is
//! evicted every [`render::EVICT_EVERY`] records, or sooner when memory
//! grew ([`render::Tidy`]), so memory stays flat.

pub mod order;
pub mod pages;
pub mod pool;
pub mod render;
pub mod rows;
mod spool;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::check::record::{Checked, Checker, Plan};
use crate::check::route::Suppressions;
use crate::check::schema::sample_record;
use crate::contacts::{Contacts, Verdicts};
use crate::error::{Error, Result, EXIT_OK, EXIT_PARTIAL};
use crate::input::{Input, InputSummary};
use crate::layout::catalog::{Catalog, Layout};
use crate::layout::decisions::{self, Standing};
use crate::layout::files::LayoutFiles;
use crate::layout::locale;
use crate::layout::texts::Texts;
use crate::layout::trust::Trust;
use crate::manifest::folder::{RunState, LOCK_FILE, STATE_FILE};
use crate::manifest::journal::{self, Done, Journal};
use crate::manifest::report::Sample;
use crate::model::layout::{LayoutRef, Status};
use crate::model::manifest::{self as m, Manifest, Shard, APPROVAL_DIR, TRUST_COPY};
use crate::model::print::{Conformance, PrintShop};
use crate::model::vocab::DocStatus;
use crate::model::vocab::{Channel, Format, Standard};
use crate::output::documents::Place;
use crate::output::file_names::FileNamer;
use crate::render::email::EmailRenderer;
use crate::render::pdf::Renderer;
use crate::util::clock::{now_rfc3339, Date};
use crate::util::digest::sha256_hex;
use crate::util::fs::{remove_stale_temp_files, sync_dir, write_atomic};
use crate::util::lock::Lock;
use crate::util::stop::{count, signal_name, StopFlag};

use render::{Item, Stage};

/// How long a run stopped by a signal lets the records in hand finish
/// (a letter takes milliseconds; a record stuck in a slow template is left
/// to `--resume`, well inside the 30 s Kubernetes and Slurm give by default).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Records handed to a worker at a time: an email takes a fraction of a
/// millisecond, and handing each over alone costs about as much.
const BATCH: usize = 8;

/// Stack size of a rendering worker (deeply nested layouts need more than 2 MiB).
const WORKER_STACK: usize = 64 << 20;

/// The default of [`RunOptions::doc_timeout`]: far above any real letter
/// (a 67-page statement takes well under a second), low enough that a
/// runaway template does not hold a batch for long.
pub const DOC_TIMEOUT: Duration = Duration::from_secs(60);

/// The mark on every page of a draft run.
pub const DRAFT_MARK: &str = "DRAFT - NOT APPROVED";

/// The layout file holding its wording per locale.
pub const TEXTS_FILE: &str = "texts.yaml";

/// The layout file holding a sample record for the pre-run check, if any.
pub const SAMPLE_FILE: &str = "sample.json";

/// What a run reports while it goes, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records this run handles (for a shard, an even share of the input).
    pub total: usize,
    /// Records done before this attempt (a resume).
    pub kept: usize,
    /// Records done so far, those kept included.
    pub done: usize,
    /// Documents failed so far.
    pub failed: usize,
    /// The last report: rendering is over.
    pub finished: bool,
}

/// Receives a run's [`Progress`] about ten times a second, from the thread
/// that writes the journal (the CLI draws a bar or writes log lines).
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl Observer {
    /// An observer calling `f`.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Observer {
        Observer(Some(Arc::new(f)))
    }

    fn tell(&self, p: Progress) {
        if let Some(f) = &self.0 {
            f(p);
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(..)"
        } else {
            "Observer(none)"
        })
    }
}

/// What a run is asked to do. [`RunOptions::new`] gives the defaults of
/// everything but the layout, the data and the output folder.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder holding the layouts (default `layouts`).
    pub layouts_dir: PathBuf,
    /// The trust list the layout's decisions are checked against; `None`
    /// for `trust.yaml` in the working folder, if there is one (without a
    /// trust list no version is approved). See [`crate::layout::trust`].
    pub trust: Option<PathBuf>,
    /// Which layout version.
    pub layout: LayoutRef,
    /// The data file.
    pub data: PathBuf,
    /// Its format, when not taken from the extension.
    pub format: Option<Format>,
    /// The query whose rows are the records, when `data` is a
    /// `postgresql://` URL.
    pub query: Option<String>,
    /// The number of records the data must hold (a control total from its
    /// sender); a different count stops the run before anything is
    /// written (exit 2).
    pub expect_records: Option<usize>,
    /// The output folder.
    pub out: PathBuf,
    /// The templates' date; `None` for today (UTC), or the first attempt's
    /// date when resuming.
    pub as_of: Option<Date>,
    /// Number of rendering workers (default one per core; at most
    /// [`max_jobs`]).
    pub jobs: usize,
    /// PDF standards on top of tagged PDF (default none).
    pub standards: Vec<Standard>,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    /// The channels to render; `None` for the layout's.
    pub channels: Option<Vec<Channel>>,
    /// A suppression list (record ids and email addresses).
    pub suppress: Option<PathBuf>,
    /// The contact history to route with (see [`crate::contacts`]).
    pub contacts: Option<PathBuf>,
    /// The key its postal addresses are hashed with (needed with
    /// `contacts`; see [`crate::contacts::key`]).
    pub address_key: Option<crate::contacts::AddressKey>,
    /// Render a version that is not approved (not submitted, waiting for
    /// review, rejected, revoked, changed since it was submitted, retired,
    /// or out of its effective dates) as a marked review copy.
    pub allow_draft: bool,
    /// Also produce print files in mailing order and a job ticket
    /// (see [`crate::output::print`]).
    pub print: bool,
    /// With `print`: combine the letters of a household into one mail
    /// piece (see [`crate::output::print`]; default false).
    pub household: bool,
    /// A presort tool's sequence file (one record id a line) that sets the
    /// mailing order instead of the layout's sort key.
    pub sequence: Option<PathBuf>,
    /// With `print`: the print shop's file, whose output condition makes
    /// the print files PDF/VT-1 on PDF/X-4 (see
    /// [`crate::output::print::pdfx`]).
    pub print_shop: Option<PathBuf>,
    /// Render only the records at these input positions (all are still
    /// read and checked, so ids and file names come out as in a full run);
    /// used by `verify --rerender`.
    pub only: Option<BTreeSet<usize>>,
    /// Continue an interrupted run in `out` (see [`crate::manifest::journal`]);
    /// with no interrupted run there, start one. A finished run is left as
    /// it is.
    pub resume: bool,
    /// Render only this shard of the input (see [`Shard::owns`]).
    pub shard: Option<Shard>,
    /// The longest one record may take on all its channels (default
    /// [`DOC_TIMEOUT`]); a record that takes longer fails.
    pub doc_timeout: Duration,
    /// Who is told of the run's progress (default nobody).
    pub observer: Observer,
    /// Set (by a signal handler, or by the caller) to stop the run between
    /// records; see [`crate::util::stop`].
    pub stop: StopFlag,
    /// How the run's lock is held and waited for; see
    /// [`crate::util::lock`].
    pub lock: crate::util::lock::LockTerms,
}

impl RunOptions {
    /// A run of `layout` over `data` into `out`, everything else as by
    /// default.
    pub fn new(layout: LayoutRef, data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            layouts_dir: PathBuf::from("layouts"),
            trust: None,
            layout,
            data: data.into(),
            format: None,
            query: None,
            expect_records: None,
            out: out.into(),
            as_of: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            standards: Vec::new(),
            command: Vec::new(),
            channels: None,
            suppress: None,
            contacts: None,
            address_key: None,
            allow_draft: false,
            print: false,
            household: false,
            sequence: None,
            print_shop: None,
            only: None,
            resume: false,
            shard: None,
            doc_timeout: DOC_TIMEOUT,
            observer: Observer::default(),
            stop: StopFlag::new(),
            lock: crate::util::lock::LockTerms::default(),
        }
    }
}

/// The outcome of a finished run.
#[derive(Debug)]
pub struct RunReport {
    /// The manifest as written (its document entries are in the journal,
    /// [`crate::manifest::journal::documents`]).
    pub manifest: Manifest,
    /// The first few failure reasons, for a summary.
    pub failures: Vec<String>,
    /// What a resumed run kept from before, if it resumed.
    pub resumed: Option<m::Resumed>,
    /// True when `--resume` found the run already finished and did nothing.
    pub already_finished: bool,
    /// Where it was written.
    pub manifest_path: PathBuf,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Things worth a person's attention that did not stop the run: Typst's
    /// warnings on the sample record (an unknown font family), a draft
    /// run.
    pub warnings: Vec<String>,
    /// Set when the folder's lock was taken over from a holder that had
    /// gone (a process of this host that no longer runs, or a lease that
    /// expired: a killed run, a lost node): says whose.
    pub lock_taken_over: Option<String>,
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

/// Runs a batch: renders every record of `opts.data` with the chosen layout
/// version into `opts.out`, on each channel, then writes the manifest.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let folder = run_folder(opts);
    let previous = match refuse_or_resume(opts, &folder)? {
        Resumable::Finished => return finished(&folder, started),
        Resumable::State(previous) => previous,
    };
    let prepared = prepare(opts, previous.as_deref())?;
    let mut opened = open(opts, &folder, &prepared)?;
    let mailing = match opts.print {
        true => Some(order::mailing_order(
            (prepared.plan(None), prepared.summary.records),
            &prepared.input,
            (opts.sequence.as_deref(), opts.household),
            Some(&folder),
            &opts.stop,
        )?),
        false => None,
    };
    let rendered = render(opts, &prepared, mailing.as_ref(), &mut opened, started)?;
    finish(opts, &folder, prepared, opened, mailing, rendered, started)
}

/// What the run folder says before anything is read.
enum Resumable {
    /// A finished run, and `--resume` asks for nothing more.
    Finished,
    /// The state of an unfinished run to resume, or none.
    State(Option<Box<RunState>>),
}

/// Refuses what cannot run at all (too many workers, print with shards, a
/// folder holding a finished run or an unfinished one without `--resume`).
fn refuse_or_resume(opts: &RunOptions, folder: &Path) -> Result<Resumable> {
    check_jobs(opts.jobs)?;
    if opts.shard.is_some() && opts.print {
        return Err(Error::Usage(
            "--print cannot be combined with --shard: print files put every letter of the batch in one mailing order, so make them in one unsharded run".into(),
        ));
    }
    if folder.join(m::MANIFEST_FILE).exists() {
        if opts.resume {
            return Ok(Resumable::Finished);
        }
        return Err(Error::Output(format!(
            "`{}` already holds the manifest of a finished run; choose a new --out folder",
            folder.display()
        )));
    }
    let previous = RunState::load(folder)?;
    if let (Some(prev), false) = (&previous, opts.resume) {
        return Err(Error::Output(format!(
            "`{}` holds a run that did not finish (started {}); add --resume to continue it, or choose a new --out folder",
            folder.display(),
            prev.started_at
        )));
    }
    Ok(Resumable::State(previous.map(Box::new)))
}

/// Everything a run needs, read and checked before anything is written.
struct Prepared {
    layout: Layout,
    standing: Standing,
    trust: Option<Trust>,
    channels: Vec<Channel>,
    suppressions: Suppressions,
    history: Option<Verdicts>,
    address_key: Option<crate::contacts::AddressKey>,
    texts: Arc<Texts>,
    stage: Arc<Stage>,
    input: Input,
    summary: InputSummary,
    state: RunState,
    warnings: Vec<String>,
    print_shop: Option<(PrintShop, Conformance)>,
}

impl Prepared {
    /// What checking a record needs.
    /// What checking a record needs; in a print run's passes after its
    /// mailing order is planned, with its pieces and verdicts.
    fn plan<'a>(&'a self, mailing: Option<&'a order::Mailing>) -> Plan<'a> {
        Plan {
            layout: &self.layout,
            channels: &self.channels,
            suppressions: &self.suppressions,
            texts: &self.texts,
            pieces: mailing.map(|m| &m.pieces),
            known: mailing.map(|m| &m.known),
            history: self.history.as_ref(),
            address_key: self.address_key.as_ref(),
        }
    }
}

/// A layout version cleared to run: approved for the day, or a draft run.
pub(crate) struct Cleared {
    pub layout: Layout,
    pub files: LayoutFiles,
    pub standing: Standing,
    pub trust: Option<Trust>,
    /// Not approved for the day: a marked review copy (`allow_draft`).
    pub draft: bool,
    /// The demo trust list's warning, a draft run's reason.
    pub warnings: Vec<String>,
}

/// Finds the layout version `r` names for a letter dated `day`, with its
/// decisions checked against the trust list, and clears it to run: an
/// error says why it may not, unless `allow_draft` makes it a draft run.
pub(crate) fn clear(
    layouts_dir: &Path,
    trust: Option<&Path>,
    r: &LayoutRef,
    day: Date,
    allow_draft: bool,
) -> Result<Cleared> {
    let trust = Trust::find(trust)?;
    let layout = find_layout(layouts_dir, trust.as_ref(), r, day)?;
    let files = layout.read_files()?;
    let standing = decisions::standing(&layout, &files);
    let mut warnings: Vec<String> = trust.iter().filter_map(Trust::demo_warning).collect();
    let draft = match review_problem(&layout, &standing, day) {
        None => false,
        Some(why) if allow_draft => {
            warnings.push(format!(
                "draft run: {} may not go to customers because {why}; every page is marked DRAFT - NOT APPROVED",
                layout.id()
            ));
            true
        }
        Some(why) => {
            return Err(Error::Layout(format!(
                "{} cannot run because {why}. Only versions approved by signed decisions of the people the trust list names, with their files as approved, run for customers (`letterpress layouts check` lists them; --allow-draft renders a marked review copy)",
                layout.id()
            )))
        }
    };
    Ok(Cleared {
        layout,
        files,
        standing,
        trust,
        draft,
        warnings,
    })
}

/// Picks the layout version, checks its standing, builds its renderers,
/// renders a sample record and reads the input once (hash, shape); writes
/// nothing.
fn prepare(opts: &RunOptions, previous: Option<&RunState>) -> Result<Prepared> {
    let started_at = now_rfc3339();
    // A resumed run keeps the date its first attempt used.
    let as_of = opts
        .as_of
        .or_else(|| previous.and_then(|p| Date::parse(&p.as_of)))
        .unwrap_or_else(Date::today_utc);
    let Cleared {
        layout,
        files,
        standing,
        trust,
        draft,
        mut warnings,
    } = clear(
        &opts.layouts_dir,
        opts.trust.as_deref(),
        &opts.layout,
        as_of,
        opts.allow_draft,
    )?;
    let channels = print_channels(opts, &layout)?;
    let print_shop = print_shop(opts, as_of)?;
    let (suppressions, suppress_entry) = suppression_list(opts.suppress.as_deref())?;
    let history = history(opts, previous, &layout)?;
    let digest = files.digest.clone();
    let sample = files.get(SAMPLE_FILE).map(<[u8]>::to_vec);
    let texts = Arc::new(load_texts(&layout, &files)?);
    let stage = stage(opts, &layout, files, &texts, &channels, as_of, draft)?;
    warnings.splice(0..0, preflight(&layout, &stage, sample)?);
    let input = Input::new(&opts.data, opts.format, opts.query.as_deref(), &layout.meta)?;
    let summary = input.scan()?;
    input.check_shape(&summary, &layout.meta.id_field)?;
    input.check_count(&summary, opts.expect_records)?;
    let state = RunState {
        run_id: run_id(&started_at, &summary, &digest),
        started_at,
        as_of: as_of.to_string(),
        command: opts.command.clone(),
        draft,
        layout: layout.id(),
        layout_digest: digest,
        // A database's rows may change between an attempt and its resume:
        // the query stands for them here, and the rows ledger checks the
        // rows already rendered (see [`rows`]).
        input_sha256: match input.query() {
            Some(q) => sha256_hex(format!("{}\n{q}", input.path.display()).as_bytes()),
            None => summary.sha256.clone(),
        },
        options: options_of(opts, &channels, suppress_entry),
        shard: opts.shard,
        resumed: Vec::new(),
        history: history.clone(),
    };
    Ok(Prepared {
        layout,
        standing,
        trust,
        channels,
        suppressions,
        history,
        address_key: opts.address_key.clone(),
        texts,
        stage: Arc::new(stage),
        input,
        summary,
        state,
        warnings,
        print_shop,
    })
}

/// The print shop's file and profile, read before anything renders.
fn print_shop(opts: &RunOptions, as_of: Date) -> Result<Option<(PrintShop, Conformance)>> {
    let Some(path) = &opts.print_shop else {
        return Ok(None);
    };
    if !opts.print {
        return Err(Error::Usage(
            "--print-shop says what the print files are made for: it needs --print".into(),
        ));
    }
    crate::output::print::pdfx::load(path, &as_of.to_string())
        .map(Some)
        .map_err(Error::Usage)
}

/// The options of `opts` that the manifest records.
fn options_of(
    opts: &RunOptions,
    channels: &[Channel],
    suppress: Option<m::SuppressEntry>,
) -> m::Options {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    m::Options {
        doc_timeout_seconds: opts.doc_timeout.as_secs_f64(),
        pdf_standards: opts.standards.iter().map(|s| s.name().to_owned()).collect(),
        jobs: opts.jobs,
        channels: channels.iter().map(|c| c.name().to_owned()).collect(),
        suppress,
        print: opts.print,
        sequence: path(&opts.sequence),
        household: opts.household,
        print_shop: path(&opts.print_shop),
        contacts: path(&opts.contacts),
        address_key: opts
            .contacts
            .as_ref()
            .and(opts.address_key.as_ref())
            .map(|k| k.id().to_owned()),
        layouts: Some(opts.layouts_dir.display().to_string()),
        working_dir: std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
    }
}

/// Records every letter the run rendered in the contact history (`sent`,
/// by postal address key, with its piece in a print run), so that a letter
/// that comes back can be matched to its customer and address. Idempotent:
/// a resumed run records the same events.
fn record_letters(db: &Path, folder: &Path, run_id: &str) -> Result<()> {
    // In batches, so a run of millions keeps its memory flat; a batch is a
    // transaction, and a resumed run adds what a killed one did not.
    const BATCH: usize = 10_000;
    let now = now_rfc3339();
    let mut contacts = Contacts::open(db)?;
    let mut events = Vec::with_capacity(BATCH);
    for d in crate::manifest::journal::documents(folder)? {
        let d = d?;
        let (Some(postal), Some(id), DocStatus::Rendered) = (&d.postal, &d.record_id, d.status)
        else {
            continue;
        };
        events.push(crate::contacts::Event {
            key: format!("run {run_id} {}", d.index),
            customer_id: Some(id.clone()),
            address: postal.clone(),
            channel: "post".into(),
            kind: crate::contacts::EventKind::Sent,
            at: now.clone(),
            run_id: Some(run_id.to_owned()),
            piece: d.piece.as_ref().map(|p| p.sequence),
            message_id: None,
            source: "run".into(),
            detail: d.path.clone(),
            // The IMb's tracking code, or the Mailmark's supply chain and
            // item ids: what a returned piece is scanned back by.
            barcode: d.piece.as_ref().and_then(|p| {
                crate::model::print::mailmark_key(&p.barcode).or_else(|| {
                    p.barcode
                        .split('-')
                        .next()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                })
            }),
        });
        if events.len() == BATCH {
            contacts.record(&events)?;
            events.clear();
        }
    }
    contacts.record(&events)?;
    Ok(())
}

/// The run's channels; a print run needs the pdf channel.
fn print_channels(opts: &RunOptions, layout: &Layout) -> Result<Vec<Channel>> {
    let channels = run_channels(layout, opts.channels.as_deref())?;
    if opts.print && !channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    Ok(channels)
}

/// What the contact history says about emailing, for a run with
/// `--contacts`. A resumed run routes by the history as its first attempt
/// read it (kept in the run state), not by what was imported since.
fn history(
    opts: &RunOptions,
    previous: Option<&RunState>,
    layout: &Layout,
) -> Result<Option<Verdicts>> {
    Ok(
        match (previous.and_then(|p| p.history.clone()), &opts.contacts) {
            (Some(h), _) => Some(h),
            (None, Some(db)) => Some(crate::contacts::routing_history(
                db,
                opts.address_key.as_ref(),
                layout.meta.contacts.soft_bounces,
            )?),
            (None, None) => None,
        },
    )
}

/// The suppression list of a run and its manifest entry.
fn suppression_list(path: Option<&Path>) -> Result<(Suppressions, Option<m::SuppressEntry>)> {
    let Some(path) = path else {
        return Ok((Suppressions::default(), None));
    };
    let list = Suppressions::load(path)?;
    let entry = m::SuppressEntry {
        path: path.display().to_string(),
        sha256: sha256_hex(&std::fs::read(path).map_err(|e| Error::io(path, e))?),
        entries: list.len(),
    };
    Ok((list, Some(entry)))
}

/// The renderers of the run's channels and the place its documents go.
fn stage(
    opts: &RunOptions,
    layout: &Layout,
    files: LayoutFiles,
    texts: &Arc<Texts>,
    channels: &[Channel],
    as_of: Date,
    draft: bool,
) -> Result<Stage> {
    let email = match (&layout.meta.email, channels.contains(&Channel::Email)) {
        (Some(settings), true) => Some(
            EmailRenderer::new(
                layout,
                settings,
                |rel| files.get(rel).map(<[u8]>::to_vec),
                texts.clone(),
                as_of,
                &files.digest,
                draft,
            )
            .map_err(|e| Error::Layout(format!("{}: {e}", layout.id())))?,
        ),
        _ => None,
    };
    let attaches = layout
        .meta
        .email
        .as_ref()
        .is_some_and(|e| e.attach.is_some())
        && channels.contains(&Channel::Email);
    let pdf = match channels.contains(&Channel::Pdf) || channels.contains(&Channel::Web) || attaches
    {
        true => Some(Renderer::new(
            layout,
            files,
            texts,
            as_of,
            &opts.standards,
            draft.then_some(DRAFT_MARK),
        )?),
        false => None,
    };
    Ok(Stage {
        pdf,
        email,
        web: channels.contains(&Channel::Web),
        place: Place {
            out: opts.out.clone(),
            temp_tag: opts
                .shard
                .map_or(String::new(), |s| format!("s{}of{}-", s.index, s.count)),
        },
        as_of,
        tidy: render::Tidy::default(),
    })
}

/// A layout version cleared for customers on a day, with the renderers of
/// every channel it has: what documents on demand are made with (see
/// [`crate::ops::ondemand`]), built as a run builds its own so that the
/// bytes are the same.
pub(crate) struct Ready {
    pub layout: Layout,
    pub stage: Stage,
    pub texts: Arc<Texts>,
    pub channels: Vec<Channel>,
    pub digest: String,
}

/// Clears `r` for `as_of` (never as a draft), builds the renderers of the
/// channels it declares (with pdf, and email when it has one) with a
/// run's defaults and renders its sample record once (which also loads
/// the fonts).
pub(crate) fn ready(
    layouts_dir: &Path,
    trust: Option<&Path>,
    r: &LayoutRef,
    as_of: Date,
) -> Result<Ready> {
    let Cleared { layout, files, .. } = clear(layouts_dir, trust, r, as_of, false)?;
    // The channels it declares; the letter always, the email when it has
    // one.
    let mut channels = layout.meta.default_channels();
    for (has, c) in [
        (true, Channel::Pdf),
        (layout.meta.email.is_some(), Channel::Email),
    ] {
        if has && !channels.contains(&c) {
            channels.push(c);
        }
    }
    let mut opts = RunOptions::new(r.clone(), "", "");
    opts.as_of = Some(as_of);
    let digest = files.digest.clone();
    let sample = files.get(SAMPLE_FILE).map(<[u8]>::to_vec);
    let texts = Arc::new(load_texts(&layout, &files)?);
    let stage = stage(&opts, &layout, files, &texts, &channels, as_of, false)?;
    preflight(&layout, &stage, sample)?;
    Ok(Ready {
        layout,
        stage,
        texts,
        channels,
        digest,
    })
}

/// The run folder, opened for writing: its lock, its journal (reopened
/// when resuming) and what a resume kept.
struct Opened {
    lock: Lock,
    journal: Journal,
    state: RunState,
    resumed: Option<(m::Resumed, Done)>,
    /// The rows read from a database, checked on a resume.
    ledger: Option<rows::Ledger>,
}

/// Creates the folders, takes the lock, checks a resume asks for the same
/// run, clears a killed attempt's temporary files, opens the journal and
/// saves the state. From here on, files are written.
fn open(opts: &RunOptions, folder: &Path, prepared: &Prepared) -> Result<Opened> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let lock = Lock::take(
        &folder.join(LOCK_FILE),
        "run",
        opts.lock,
        Some(opts.stop.clone()),
    )?;
    let mut state = prepared.state.clone();
    let reopened = match RunState::load(folder)? {
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
    let mut dirs = vec![opts.out.clone()];
    dirs.extend(prepared.channels.iter().map(|c| opts.out.join(c.name())));
    for dir in &dirs {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // A killed run leaves temporary files: remove this run's (a shard's
        // only, as other shards may be writing into the same folders).
        remove_stale_temp_files(dir, &prepared.stage.place.temp_tag)
            .map_err(|e| Error::io(dir, e))?;
    }
    let (journal, resumed) = if reopened {
        let (journal, found) = Journal::reopen(folder, &opts.out, prepared.channels.len())?;
        let resumed = m::Resumed {
            at: now_rfc3339(),
            kept_records: found.kept_records,
            cut: found.cut,
        };
        state.resumed.push(resumed.clone());
        (journal, Some((resumed, found.done)))
    } else {
        (Journal::create(folder, &opts.out)?, None)
    };
    state.save(folder)?;
    copy_approval(folder, &prepared.standing, prepared.trust.as_ref())?;
    let ledger = match prepared.input.query() {
        Some(_) => {
            let done = resumed.as_ref().map(|(_, d)| d);
            Some(rows::Ledger::open(
                folder,
                done,
                &prepared.layout.meta.id_field,
            )?)
        }
        None => None,
    };
    Ok(Opened {
        lock,
        journal,
        state,
        resumed,
        ledger,
    })
}

/// Renders the records this attempt takes with the pool, into the journal
/// (in the order [`items`] reads them); returns the throughput samples for
/// the report and, in a print run, the pages kept for the print files.
fn render(
    opts: &RunOptions,
    prepared: &Prepared,
    mailing: Option<&order::Mailing>,
    opened: &mut Opened,
    started: Instant,
) -> Result<(Vec<Sample>, Option<pages::Kept>)> {
    let folder = run_folder(opts);
    let pick = Pick {
        only: opts.only.as_ref(),
        shard: opts.shard,
        done: opened.resumed.as_ref().map(|(_, d)| d),
    };
    let total = match opts.shard {
        Some(s) => prepared.summary.records.div_ceil(s.count as usize),
        None => prepared.summary.records,
    };
    let kept = opened.resumed.as_ref().map_or(0, |(r, _)| r.kept_records);
    let exporter = match (mailing, &prepared.stage.pdf) {
        (Some(_), Some(renderer)) => Some(pages::Exporter::create(&folder, renderer)?),
        _ => None,
    };
    let items = items(prepared, mailing, pick, opened.ledger.take())?;
    let mut sink = JournalSink {
        kept_documents: opened.journal.tally().totals.documents,
        journal: &mut opened.journal,
        exporter,
        observer: &opts.observer,
        total,
        kept,
        samples: Vec::new(),
        // The run's start: the report's times are the summary line's.
        start: started,
        last_sample: None,
    };
    let pool = pool::Pool {
        jobs: opts.jobs,
        limit: opts.doc_timeout,
        batch: BATCH,
        stack: WORKER_STACK,
        grace: STOP_GRACE,
    };
    let ended = pool.run(prepared.stage.clone(), items, &mut sink, &opts.stop);
    sink.sample(true);
    let samples = std::mem::take(&mut sink.samples);
    let exporter = sink.exporter.take();
    if let pool::Ended::Stopped(signal) = ended? {
        opened.journal.sync()?;
        if opened.lock.lost() {
            return Err(Error::Output(opened.lock.lost_reason()));
        }
        return Err(stopped(
            signal,
            opened.journal.tally().totals.records,
            total,
            opts.shard,
        ));
    }
    let kept = exporter.map(pages::Exporter::finish).transpose()?;
    Ok((samples, kept))
}

/// The records a run's workers take. Every record is read and checked in
/// input order (so duplicate ids and file names come out the same whatever
/// is picked); the picked ones go to the workers. A print run's letters
/// wait: they follow in mailing order, from the record spool (see
/// [`order::Mailing::in_mailing_order`]), so that their pages reach the
/// print files as they are laid out; its checks take the verdicts the
/// mailing order's pass found, and its names are the ones it gave, so
/// that no id or name of every record is kept again.
fn items<'a>(
    prepared: &'a Prepared,
    mailing: Option<&'a order::Mailing>,
    pick: Pick<'a>,
    mut ledger: Option<rows::Ledger>,
) -> Result<impl Iterator<Item = Result<Item>> + Send + 'a> {
    let mut checker = Checker::new(prepared.plan(mailing), prepared.input.format);
    // Room for every record's id and name at once (none in a print run,
    // whose mailing order's pass gives the verdicts).
    let expect = match mailing {
        Some(_) => 0,
        None => prepared.summary.records,
    };
    checker.reserve(expect);
    let mut namer = Namer {
        names: FileNamer::with_capacity(expect),
        known: mailing.map(|m| &m.known),
    };
    let in_input_order = prepared.input.records()?.filter_map(move |raw| {
        let raw = match (raw, ledger.as_mut()) {
            (Ok(raw), Some(l)) => l.check(&raw).map(|()| raw),
            (raw, _) => raw,
        };
        let item = match checker.check(match raw {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        }) {
            // A letter: it comes in mailing order, named by the spool.
            Checked::Ready(job) if job.sequence.is_some() => return None,
            checked => item(checked, &mut namer),
        };
        pick.picks(&item).then_some(Ok(item))
    });
    let letters = mailing.map(|m| {
        let checker = Checker::new(prepared.plan(Some(m)), prepared.input.format);
        m.in_mailing_order(checker)
    });
    let in_mailing_order = letters.into_iter().flatten().filter_map(move |checked| {
        let item = match checked {
            Ok(Checked::Ready(job)) => Item::Job(job),
            Ok(Checked::Failed(docs)) => Item::Failed(docs),
            Err(e) => return Some(Err(e)),
        };
        pick.picks(&item).then_some(Ok(item))
    });
    Ok(in_input_order.chain(in_mailing_order))
}

/// Names the records' files in input order: as [`FileNamer`] does, or in
/// a print run as its mailing order's pass named them (see
/// [`crate::check::record::Known`]).
struct Namer<'a> {
    names: FileNamer,
    known: Option<&'a crate::check::record::Known>,
}

impl Namer<'_> {
    fn name(&mut self, index: usize, id: &str) -> String {
        match self.known {
            Some(known) => FileNamer::named(id, known.renamed.contains(&index)),
            None => self.names.name(id),
        }
    }
}

/// A checked record as a worker's item, its files named.
fn item(checked: Checked, namer: &mut Namer) -> Item {
    match checked {
        Checked::Ready(mut job) => {
            job.stem = namer.name(job.index, &job.id);
            Item::Job(job)
        }
        Checked::Failed(docs) => Item::Failed(docs),
    }
}

/// A print run's print files and its journal linked to them (see
/// [`order::print_files`]); a held run's ticket waits for its release.
fn print_files(
    opts: &RunOptions,
    folder: &Path,
    prepared: &Prepared,
    mailing: Option<(order::Mailing, pages::Kept)>,
    run_id: &str,
) -> Result<Option<(crate::model::print::PrintOutput, m::DocumentsFile)>> {
    let (Some((mailing, kept)), Some(renderer)) = (mailing, &prepared.stage.pdf) else {
        return Ok(None);
    };
    let layout = (&prepared.layout, renderer);
    let held = prepared
        .trust
        .as_ref()
        .is_some_and(|t| t.rule(&prepared.layout.meta.name).release.is_some());
    let shop = prepared.print_shop.clone();
    order::print_files(
        layout,
        (&opts.out, folder),
        (mailing, shop, kept),
        (prepared.plan(None), prepared.input.format),
        (run_id, held),
    )
    .map(Some)
}

/// Closes the journal, makes the print files, writes the manifest and the
/// report, and removes the state: the run is finished.
fn finish(
    opts: &RunOptions,
    folder: &Path,
    prepared: Prepared,
    opened: Opened,
    mailing: Option<order::Mailing>,
    (samples, kept): (Vec<Sample>, Option<pages::Kept>),
    started: Instant,
) -> Result<RunReport> {
    let Opened {
        lock,
        journal,
        state,
        resumed,
        ledger: _,
    } = opened;
    let (mut documents, tally) = journal.finish()?;
    // Rendering is over: Typst's memoised results go. The letter's renderer
    // stays for the print files, which lay out again the letters an
    // earlier attempt rendered.
    typst::comemo::evict(0);
    let mailing = mailing.map(|m| (m, kept.unwrap_or_else(pages::Kept::none)));
    let print = match print_files(opts, folder, &prepared, mailing, &state.run_id)? {
        Some((print, entry)) => {
            documents = entry;
            Some(print)
        }
        None => None,
    };
    drop(prepared.stage);
    if let Some(db) = &opts.contacts {
        record_letters(db, folder, &state.run_id)?;
    }
    let mut manifest = Manifest {
        manifest_version: m::MANIFEST_VERSION,
        manifest_digest: String::new(),
        run_id: state.run_id.clone(),
        engine: m::Engine::current(),
        started_at: state.started_at.clone(),
        finished_at: now_rfc3339(),
        as_of: state.as_of.clone(),
        draft: state.draft,
        command: state.command.clone(),
        options: state.options.clone(),
        layout: layout_entry(
            &prepared.layout,
            &prepared.standing,
            prepared.trust.as_ref(),
            &state,
        ),
        input: input_entry(opts, &prepared.input, &prepared.summary),
        totals: tally.totals,
        print,
        shard: opts.shard,
        shards: Vec::new(),
        unmatched_suppressions: prepared.suppressions.unmatched(),
        resumed: state.resumed.clone(),
        documents,
        purged: None,
    };
    let manifest_path = folder.join(m::MANIFEST_FILE);
    let json = manifest.seal();
    write_atomic(&manifest_path, &json, true).map_err(|e| Error::io(&manifest_path, e))?;
    let seconds = write_report(opts, folder, &manifest, samples, started)?;
    let state_path = folder.join(STATE_FILE);
    std::fs::remove_file(&state_path).map_err(|e| Error::io(&state_path, e))?;
    rows::Ledger::remove(folder)?;
    sync_dir(folder).map_err(|e| Error::io(folder, e))?;
    let lock_taken_over = lock.warning().map(str::to_owned);
    Ok(RunReport {
        manifest,
        manifest_path,
        failures: tally.failures,
        resumed: resumed.map(|(r, _)| r),
        already_finished: false,
        seconds,
        warnings: prepared.warnings,
        lock_taken_over,
    })
}

/// The manifest's record of the input the run read.
fn input_entry(opts: &RunOptions, input: &Input, summary: &InputSummary) -> m::InputEntry {
    m::InputEntry {
        path: opts.data.display().to_string(),
        format: input.format.name().into(),
        sha256: summary.sha256.clone(),
        bytes: summary.bytes,
        records: summary.records,
        query: input.query().map(str::to_owned),
        expected_records: opts.expect_records,
    }
}

/// Writes the run's report; returns the run's time, at which the report
/// ends, so that its time and rate are the ones the summary line gives.
fn write_report(
    opts: &RunOptions,
    folder: &Path,
    manifest: &Manifest,
    mut samples: Vec<Sample>,
    started: Instant,
) -> Result<f64> {
    let links = if opts.shard.is_some() { "../" } else { "" };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(last) = samples.last().copied() {
        samples.push(Sample { seconds, ..last });
    }
    crate::manifest::report::write(folder, manifest, &samples, links)?;
    Ok(seconds)
}

/// The manifest's record of the layout version and its approval.
fn layout_entry(
    layout: &Layout,
    standing: &Standing,
    trust: Option<&Trust>,
    state: &RunState,
) -> m::LayoutEntry {
    let meta = &layout.meta;
    m::LayoutEntry {
        name: meta.name.clone(),
        version: meta.version,
        status: if state.draft { "draft" } else { "approved" }.into(),
        title: meta.title.clone(),
        digest: state.layout_digest.clone(),
        approval: Some(approval_entry(standing, trust)),
        effective: meta.effective(),
    }
}

/// The signed decisions a run rests on, for its manifest.
fn approval_entry(standing: &Standing, trust: Option<&Trust>) -> m::ApprovalEntry {
    let review = &standing.review;
    let decision = |i: usize| {
        let e = &review.entries[i];
        m::DecisionEntry {
            record: e.file.clone(),
            sha256: e.sha256.clone(),
            signature_sha256: sha256_hex(e.sig.as_deref().unwrap_or_default()),
            by: e.record.signer.name.clone(),
            id: e.record.signer.id.clone(),
            role: e.record.signer.role.clone(),
            at: e.record.at.clone(),
            key: e.record.key.clone(),
        }
    };
    let (submitted, approvals) = decisions::rests_on(&standing.state);
    let approval = standing.state.approval();
    m::ApprovalEntry {
        standing: standing.describe(),
        submitted: submitted.map(decision),
        approvals: approvals.into_iter().map(decision).collect(),
        from: approval.map(|a| a.from.to_string()),
        digest: approval.map(|a| a.digest.clone()),
        files_match: standing.is_approved(),
        chain_head: review
            .head()
            .map(|(seq, sha256)| m::ChainHead { seq, sha256 }),
        trust: trust.map(|t| m::TrustEntry {
            path: t.path.display().to_string(),
            sha256: t.sha256.clone(),
            demo: t.list.demo,
        }),
    }
}

/// Copies the trust list and the decision records (with their
/// signatures) a run rests on into its `approval/` folder.
fn copy_approval(folder: &Path, standing: &Standing, trust: Option<&Trust>) -> Result<()> {
    let dir = folder.join(APPROVAL_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // A run killed while it copied left a temporary file; the folder is
    // this run's (or this shard's) alone, and its lock is held.
    remove_stale_temp_files(&dir, "").map_err(|e| Error::io(&dir, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        write_atomic(&path, bytes, true).map_err(|e| Error::io(&path, e))
    };
    if let Some(t) = trust {
        write(TRUST_COPY, &t.bytes)?;
    }
    let (submitted, approvals) = decisions::rests_on(&standing.state);
    for i in submitted.into_iter().chain(approvals) {
        let e = &standing.review.entries[i];
        write(&e.file, &e.bytes)?;
        write(
            &format!("{}.sig", e.file),
            e.sig.as_deref().unwrap_or_default(),
        )?;
    }
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

/// Where the pool's results go: the journal, in input order, with the
/// progress shown and throughput sampled for the report as it goes.
struct JournalSink<'a> {
    journal: &'a mut Journal,
    /// A print run's letters' pages on their way to the print files.
    exporter: Option<pages::Exporter<'a>>,
    observer: &'a Observer,
    total: usize,
    kept: usize,
    samples: Vec<Sample>,
    start: Instant,
    /// Documents the journal held before this attempt (a resume).
    kept_documents: usize,
    last_sample: Option<Instant>,
}

impl JournalSink<'_> {
    /// Tells the observer; takes a throughput sample once a second (and
    /// when `last`, at the end).
    fn sample(&mut self, last: bool) {
        let t = &self.journal.tally().totals;
        self.observer.tell(Progress {
            total: self.total,
            kept: self.kept,
            done: t.records,
            failed: t.failed,
            finished: last,
        });
        let due = self
            .last_sample
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if due || last {
            self.last_sample = Some(Instant::now());
            self.samples.push(Sample {
                seconds: self.start.elapsed().as_secs_f64(),
                documents: t.documents.saturating_sub(self.kept_documents),
            });
        }
    }
}

fn journal_error(e: Error) -> Error {
    Error::Environment(format!(
        "the run stopped: cannot write its journal ({e}); the records after its last complete line are left for --resume"
    ))
}

impl pool::Sink<render::Outcome> for JournalSink<'_> {
    fn take(&mut self, outs: Vec<render::Outcome>) -> Result<()> {
        let mut docs = Vec::with_capacity(outs.len());
        let mut laid = Vec::new();
        for out in outs {
            docs.extend(out.docs);
            laid.extend(out.laid);
        }
        self.journal.append(&docs).map_err(journal_error)?;
        let Some(exporter) = self.exporter.as_mut() else {
            return Ok(());
        };
        for l in laid {
            exporter.take(l).map_err(|e| {
                Error::Environment(format!(
                    "the run stopped: cannot keep its letters' pages for the print files ({e}); resume with --resume"
                ))
            })?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.sample(false);
        self.journal.tick().map_err(journal_error)
    }
}

/// Which records a run renders.
#[derive(Clone, Copy)]
struct Pick<'a> {
    /// Only these input positions (`verify --rerender`).
    only: Option<&'a BTreeSet<usize>>,
    /// Only this shard's records.
    shard: Option<Shard>,
    /// Records already in the journal (a resume).
    done: Option<&'a Done>,
}

impl Pick<'_> {
    fn picks(&self, item: &Item) -> bool {
        let (index, id) = match item {
            Item::Job(job) => (job.index, Some(job.id.as_str())),
            Item::Failed(docs) => docs
                .first()
                .map_or((0, None), |d| (d.index, d.record_id.as_deref())),
        };
        self.takes(index, id)
    }

    fn takes(&self, index: usize, id: Option<&str>) -> bool {
        self.done.is_none_or(|d| !d.contains(index))
            && self.only.is_none_or(|set| set.contains(&index))
            && self.shard.is_none_or(|s| s.owns(id, index))
    }
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
    let done = match (shard, total) {
        (Some(s), _) => format!("{} records of shard {s}", count(done)),
        (None, 0) => format!("{} records", count(done)),
        (None, total) => format!("{} of {} records", count(done), count(total)),
    };
    Error::Stopped {
        signal,
        message: format!(
            "stopped by {} after {done}; resume with --resume",
            signal_name(signal),
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
    let manifest_path = folder.join(m::MANIFEST_FILE);
    let manifest = crate::manifest::load(&manifest_path)?;
    // A run killed after sealing its manifest but before tidying up: the
    // state file goes and the report is written (without throughput).
    let state_path = folder.join(STATE_FILE);
    if state_path.exists() {
        std::fs::remove_file(&state_path).map_err(|e| Error::io(&state_path, e))?;
        rows::Ledger::remove(folder)?;
        sync_dir(folder).map_err(|e| Error::io(folder, e))?;
    }
    if !folder.join(crate::manifest::report::REPORT_FILE).exists() {
        let links = if manifest.shard.is_some() { "../" } else { "" };
        crate::manifest::report::write(folder, &manifest, &[], links)?;
    }
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
        lock_taken_over: None,
    })
}

/// Loads the catalog, with its decisions checked against `trust`, and
/// picks the layout a command names.
pub fn find_layout(
    layouts_dir: &Path,
    trust: Option<&Trust>,
    r: &LayoutRef,
    day: Date,
) -> Result<Layout> {
    Ok(Catalog::load(layouts_dir, trust)?.resolve(r, day)?.clone())
}

/// Why a layout version may not render for customers on `day`, if it may
/// not: its decisions and files, its effective dates, a `retired` status.
fn review_problem(layout: &Layout, standing: &Standing, day: Date) -> Option<String> {
    if layout.meta.status == Status::Retired {
        return Some("it is retired".into());
    }
    if let Some(why) = standing.refusal(day) {
        return Some(why);
    }
    (!layout.meta.in_effect(day)).then(|| {
        format!(
            "it is not in effect on {day} (effective {})",
            layout.meta.effective()
        )
    })
}

/// The channels of a run: `--channels` if given, else the layout's.
pub fn run_channels(layout: &Layout, asked: Option<&[Channel]>) -> Result<Vec<Channel>> {
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
pub fn load_texts(layout: &Layout, files: &LayoutFiles) -> Result<Texts> {
    let default = locale::rules(&layout.meta.default_locale).unwrap_or(&locale::RULES[0]);
    match files.get(TEXTS_FILE) {
        Some(yaml) => {
            Texts::parse(yaml, default).map_err(|e| Error::Layout(format!("{}: {e}", layout.id())))
        }
        None => Ok(Texts::default()),
    }
}

/// Renders one sample record in memory on every channel of the run before
/// anything is written, so a template that cannot work for any record (an
/// unknown function, a field name the schema does not have) stops the run as
/// a layout error instead of failing every record. Returns Typst's warnings
/// on the sample. The sample is the layout's `sample.json` (as read with the
/// other layout files) when it has one, else a record that fills every
/// declared field (see [`sample_record`]); it is rendered in the layout's
/// default locale, its email to a placeholder address.
fn preflight(layout: &Layout, stage: &Stage, sample: Option<Vec<u8>>) -> Result<Vec<String>> {
    let (record, what) = match sample {
        Some(bytes) => {
            let record: Map<String, Value> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Layout(format!("{}: {SAMPLE_FILE}: {e}", layout.id())))?;
            (record, SAMPLE_FILE.to_string())
        }
        None => (
            sample_record(&layout.meta.fields, &stage.as_of.to_string()),
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
    let mut letter = None;
    if let Some(pdf) = &stage.pdf {
        let rendered = pdf
            .render_with_warnings("sample", &record, rules)
            .map_err(&fail)?;
        warnings = rendered.warnings;
        letter = Some(rendered.pdf);
        if stage.web {
            pdf.render_web(&record, rules)
                .map_err(|e| fail(format!("web letter: {e}")))?;
        }
    }
    if let Some(email) = &stage.email {
        let to: lettre::Address = "sample@example.com".parse().expect("valid address");
        let letter = letter.as_deref().filter(|_| email.attaches_letter());
        email
            .render("sample", &record, &to, rules, stage.as_of, letter)
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
    let h = sha256_hex(seed.as_bytes());
    format!("{}-{}", started_at.replace([':', '-'], ""), &h[..12])
}
