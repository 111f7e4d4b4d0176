//! `validate`: every check a run makes before rendering, through the run's
//! own checker, without rendering or writing anything.

use std::path::PathBuf;

use crate::check::record::{Checked, Checker, Plan};
use crate::check::route::Suppressions;
use crate::error::{Error, Result};
use crate::input::Input;
use crate::model::layout::LayoutRef;
use crate::model::manifest::Document;
use crate::model::manifest::Unmatched;
use crate::model::vocab::{Channel, Format};
use crate::ops::run::order::mailing_order;
use crate::ops::run::{load_texts, run_channels};
use crate::util::clock::Date;
use crate::util::stop::StopFlag;

/// What `validate` is asked to check: the run it prepares for.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The folder holding the layouts.
    pub layouts_dir: PathBuf,
    /// The trust list (as [`crate::ops::run::RunOptions::trust`]).
    pub trust: Option<PathBuf>,
    /// Which layout version: one the run may use, as `run` decides.
    pub layout: LayoutRef,
    /// Check for a draft run (`run --allow-draft`) of a version that is
    /// not approved for the day, instead of refusing it as `run` would.
    pub allow_draft: bool,
    /// The data file.
    pub data: PathBuf,
    /// Its format, when not taken from the extension.
    pub format: Option<Format>,
    /// The query whose rows are the records, when `data` is a
    /// `postgresql://` URL.
    pub query: Option<String>,
    /// The date the run will use (picks the version, as `run` does);
    /// `None` for today (UTC).
    pub as_of: Option<Date>,
    /// The channels of the run; `None` for the layout's.
    pub channels: Option<Vec<Channel>>,
    /// The run's suppression list.
    pub suppress: Option<PathBuf>,
    /// The contact history to route with (see [`crate::contacts`]).
    pub contacts: Option<PathBuf>,
    /// The key its postal addresses are hashed with (needed with
    /// `contacts`; see [`crate::contacts::key`]).
    pub address_key: Option<crate::contacts::AddressKey>,
    /// The run makes print files: plan the mailing order and the IMb of
    /// every piece, as the run will.
    pub print: bool,
    /// The presort sequence file of a print run.
    pub sequence: Option<PathBuf>,
    /// The print run combines households' letters (`--household`).
    pub household: bool,
    /// The number of records the data must hold (a control total); a
    /// different count is refused before anything is checked further.
    pub expect_records: Option<usize>,
}

impl ValidateOptions {
    /// Checks the records in `data` against `layout` for a run as of today
    /// (UTC) on the layout's channels, without a suppression list or print
    /// files, layouts from `layouts`.
    pub fn new(layout: LayoutRef, data: impl Into<PathBuf>) -> ValidateOptions {
        ValidateOptions {
            layouts_dir: PathBuf::from("layouts"),
            trust: None,
            layout,
            allow_draft: false,
            data: data.into(),
            format: None,
            query: None,
            as_of: None,
            channels: None,
            suppress: None,
            contacts: None,
            address_key: None,
            print: false,
            sequence: None,
            household: false,
            expect_records: None,
        }
    }
}

/// The result of `validate`: every record checked, nothing rendered.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
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
    pub unmatched_suppressions: Vec<Unmatched>,
    /// The records whose route the contact history changed, and why
    /// (with `contacts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
    /// Valid records the suppression list will withhold (with `suppress`).
    pub suppressed: usize,
    /// What the run would warn of: a draft run, the demo trust list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
    let cleared = crate::ops::run::clear(
        &opts.layouts_dir,
        opts.trust.as_deref(),
        &opts.layout,
        as_of,
        opts.allow_draft,
    )?;
    let (layout, files) = (cleared.layout, cleared.files);
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
    let input = Input::new(&opts.data, opts.format, opts.query.as_deref(), &layout.meta)?;
    let summary = input.scan()?;
    input.check_shape(&summary, &layout.meta.id_field)?;
    input.check_count(&summary, opts.expect_records)?;
    let history = opts
        .contacts
        .as_ref()
        .map(|db| {
            let soft = layout.meta.contacts.soft_bounces;
            crate::contacts::routing_history(db, opts.address_key.as_ref(), soft)
        })
        .transpose()?;
    let mut plan = Plan {
        layout: &layout,
        channels: &channels,
        suppressions: &suppressions,
        texts: &texts,
        pieces: None,
        known: None,
        history: history.as_ref(),
        address_key: opts.address_key.as_ref(),
    };
    let order = (opts.sequence.as_deref(), opts.household);
    let mailing = opts
        .print
        .then(|| {
            mailing_order(
                (plan, summary.records),
                &input,
                order,
                None,
                &StopFlag::new(),
            )
        })
        .transpose()?;
    plan.pieces = mailing.as_ref().map(|m| &m.pieces);
    let mut checker = Checker::new(plan, input.format);
    checker.reserve(summary.records);
    let mut report = ValidationReport {
        layout: layout.id(),
        records: 0,
        valid: 0,
        invalid: Vec::new(),
        unmatched_suppressions: Vec::new(),
        history: Vec::new(),
        suppressed: 0,
        warnings: cleared.warnings,
    };
    for raw in input.records()? {
        report.records += 1;
        match checker.check(raw?) {
            Checked::Ready(mut job) => {
                // A letter's postal barcode, or why it cannot have one.
                if let (Some(m), Some(sequence)) = (&mailing, job.sequence) {
                    job.imb = m.postal_of(sequence, &job.record);
                }
                if let Some(why) = &job.history {
                    report
                        .history
                        .push(format!("record {} (line {}): {why}", job.id, job.line));
                }
                match job.failure() {
                    None => report.valid += 1,
                    Some(doc) => report.invalid.push(doc),
                }
                report.suppressed += usize::from(job.listed);
            }
            Checked::Failed(mut docs) => report.invalid.extend(docs.drain(..1)),
        }
    }
    report.unmatched_suppressions = suppressions.unmatched();
    Ok(report)
}
