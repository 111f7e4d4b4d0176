//! `layouts`: list the layout versions, check their decisions, show one,
//! decide about one (submit, approve, reject, revoke), export one for an
//! examiner, start a new one. The decisions (which version is the default,
//! whether a version may run, what may be decided) are made here and in
//! [`crate::layout::decisions`]; the CLI only prints them.

mod evidence;
mod export;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use evidence::evidence;
pub use export::{export, Exported};

use crate::error::{Error, Result};
use crate::layout::catalog::{Catalog, Layout};
use crate::layout::decisions::sign::Sign;
use crate::layout::decisions::write::{self, Request, Written};
use crate::layout::decisions::{self, Review, Standing, State};
use crate::layout::trust::Trust;
use crate::model::decision::Record;
use crate::model::layout::{LayoutRef, Status};
use crate::util::clock::Date;

/// One version in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The layout's name.
    pub name: String,
    /// The version number.
    pub version: u32,
    /// Where it stands by its decisions: `approved`, `submitted`,
    /// `rejected`, `not submitted`, ... (`retired` when its `layout.yaml`
    /// says so).
    pub status: String,
    /// Whether a reference without a version means this one today.
    pub default: bool,
    /// The layout's title.
    pub title: String,
    /// `in effect`, `from YYYY-MM-DD`, ... (see `LayoutMeta::effective`).
    pub effective: String,
    /// Where it stands, in words: who approved it and from when, who
    /// must still approve it, why it may not be used.
    pub standing: String,
    /// False when something needs a person: a decision about it fails its
    /// checks, its layout's chain is broken, its files changed since it
    /// was approved, it has only an unsigned approval of an earlier
    /// letterpress. (Not submitted, waiting and rejected are not problems.)
    pub ok: bool,
    /// What a reviewer should know that does not stop the version (a weak
    /// password for the attached letter).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What `layouts check` warns of in a version: an attached letter whose
/// password is a date (a date of birth falls to a few thousand guesses).
fn warnings(l: &Layout) -> Vec<String> {
    let password = l
        .meta
        .email
        .as_ref()
        .and_then(|e| e.encrypt.as_ref())
        .map(|e| e.password_field.as_str());
    let dated = l.meta.fields.iter().find(|f| {
        Some(f.name.as_str()) == password && f.kind == crate::model::layout::FieldType::Date
    });
    dated
        .map(|f| {
            format!(
                "the attached letter's password is the date field `{}`: a date of birth is one of the 36,500 days of a century and falls to an offline guess in seconds; use a secret the bank gives each customer (email.encrypt.password_field)",
                f.name
            )
        })
        .into_iter()
        .collect()
}

/// Every layout version under a folder, and the folders that are not one.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// By name, then version.
    pub versions: Vec<Listed>,
    /// Folders that look like layout versions but cannot be read, with why.
    pub broken: Vec<(PathBuf, String)>,
    /// Decision records that fail their checks, and broken chains, each
    /// in a sentence (also those about versions that no longer run).
    pub decisions: Vec<String>,
    /// The trust list the decisions were checked against: path and SHA-256.
    pub trust: Option<(PathBuf, String)>,
}

impl Listing {
    /// Versions that need a person, broken folders, and decision records
    /// that fail their checks.
    pub fn problems(&self) -> usize {
        self.versions.iter().filter(|l| !l.ok).count() + self.broken.len() + self.decisions.len()
    }
}

/// Lists every version under `layouts`, with where each stands by its
/// decisions (checked against the trust list at `trust`, or found as
/// [`Trust::find`] does) as of `day` (the default version is the one a run
/// on `day` would use).
pub fn list(layouts: &Path, trust: Option<&Path>, day: Date) -> Result<Listing> {
    let trust = Trust::find(trust)?;
    let catalog = Catalog::load(layouts, trust.as_ref())?;
    let mut versions = Vec::new();
    let mut chains: Vec<&Review> = Vec::new();
    for (name, by_version) in &catalog.layouts {
        let reference = LayoutRef {
            name: name.clone(),
            version: None,
        };
        let default = catalog
            .resolve(&reference, day)
            .ok()
            .map(|l| l.meta.version);
        for (v, l) in by_version {
            if !chains.iter().any(|c| std::ptr::eq(*c, l.review.as_ref())) {
                chains.push(l.review.as_ref());
            }
            versions.push(listed(l, default == Some(*v)));
        }
    }
    let decisions = chains
        .iter()
        .flat_map(|c| {
            let broken = c
                .broken
                .iter()
                .map(|why| format!("layout {}: {why}", c.layout));
            broken.chain(c.entries.iter().filter_map(|e| e.problem.clone()))
        })
        .collect();
    let broken = catalog.broken.into_values().flatten().collect();
    Ok(Listing {
        versions,
        broken,
        decisions,
        trust: trust.map(|t| (t.path, t.sha256)),
    })
}

/// One version for the listing. A version whose files cannot be read is
/// listed with why, as a problem, rather than hiding the others.
fn listed(l: &Layout, default: bool) -> Listed {
    let retired = l.meta.status == Status::Retired;
    let (ok, standing) = match l.read_files().map(|f| decisions::standing(l, &f)) {
        // A retired version never runs: retiring it (a change of its
        // layout.yaml) or any later change is no risk to a customer; a
        // decision that fails its checks still needs a person.
        Ok(s) if retired => (
            !matches!(s.state, State::Broken(_) | State::Problem(_)),
            format!("retired, it never runs; {}", s.describe()),
        ),
        Ok(s) => (!needs_a_person(&s), s.describe()),
        Err(e) => (false, e.to_string()),
    };
    // A data mapping that cannot work is a problem before any data comes.
    let (ok, standing) = match crate::input::Input::check_mapping(&l.meta) {
        Ok(()) => (ok, standing),
        Err(e) => (false, format!("{e}; {standing}")),
    };
    Listed {
        name: l.meta.name.clone(),
        version: l.meta.version,
        status: match retired {
            true => "retired".into(),
            false => l.state.short().into(),
        },
        default,
        title: l.meta.title.clone(),
        effective: l.meta.effective(),
        ok,
        standing,
        warnings: warnings(l),
    }
}

/// Whether a version's standing needs a person (see [`Listed::ok`]).
fn needs_a_person(s: &Standing) -> bool {
    match &s.state {
        State::Broken(_) | State::Problem(_) | State::Legacy => true,
        State::Approved(_) => !s.changes.is_empty(),
        _ => false,
    }
}

/// One layout version in full, for `layouts show`.
#[derive(Debug)]
pub struct Shown {
    /// The version.
    pub layout: Layout,
    /// Where it stands.
    pub standing: Standing,
    /// The digest of its files now.
    pub digest: String,
    /// The day it was looked at, for "in effect on".
    pub day: Date,
    /// The trust list, if there is one.
    pub trust: Option<Trust>,
}

/// The version `reference` means on `day`.
pub fn show(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    day: Date,
) -> Result<Shown> {
    let trust = Trust::find(trust)?;
    let layout = crate::ops::run::find_layout(layouts, trust.as_ref(), reference, day)?;
    let files = layout.read_files()?;
    let standing = decisions::standing(&layout, &files);
    Ok(Shown {
        digest: files.digest.clone(),
        layout,
        standing,
        day,
        trust,
    })
}

/// Records a decision about version `reference` (which must name its
/// version), signed by `signer` now. `confirm` sees the record (and its
/// words) before it is signed and may decline.
pub fn decide(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    request: &Request,
    signer: &dyn Sign,
    confirm: &dyn Fn(&Record) -> bool,
) -> Result<Written> {
    decide_at(
        layouts,
        trust,
        reference,
        request,
        signer,
        &crate::util::clock::now_rfc3339(),
        confirm,
    )
}

/// [`decide`] at the time `at` (RFC 3339, UTC), as a signer states it: for
/// programs that record decisions taken elsewhere, and for tests. The
/// checks that bound a signer's time (key validity, not before the
/// submission, not in the future) apply as to every record.
pub fn decide_at(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    request: &Request,
    signer: &dyn Sign,
    at: &str,
    confirm: &dyn Fn(&Record) -> bool,
) -> Result<Written> {
    let Some(version) = reference.version else {
        return Err(Error::Usage(format!(
            "name the version: {}@N",
            reference.name
        )));
    };
    let trust = Trust::find(trust)?.ok_or_else(|| {
        Error::Usage(format!(
            "no trust list: decisions are checked against one (--trust, LETTERPRESS_TRUST, or {} here)",
            crate::layout::trust::TRUST_FILE
        ))
    })?;
    let catalog = Catalog::load(layouts, Some(&trust))?;
    let found = catalog
        .layouts
        .get(&reference.name)
        .and_then(|v| v.get(&version))
        .ok_or_else(|| Error::Layout(format!("no layout version {reference}")))?;
    write::decide(found, &trust, signer, request, at, confirm)
}

/// Starts layout `name` at version 1, a draft with a letter, an email, texts
/// and sample data; returns the files written.
pub fn new(layouts: &Path, name: &str) -> Result<Vec<PathBuf>> {
    crate::layout::scaffold::new_layout(layouts, name)
}
