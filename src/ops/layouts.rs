//! `layouts`: list the layout versions, check their approvals, show one,
//! approve one, start a new one. The decisions (which version is the
//! default, whether an approved version's files still match its approval)
//! are made here; the CLI only prints them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout::approval::{self, Standing};
use crate::layout::catalog::{Catalog, Layout};
use crate::model::approval::{Approval, APPROVAL_FILE};
use crate::model::layout::{LayoutRef, Status};
use crate::util::clock::Date;

/// One version in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The layout's name.
    pub name: String,
    /// The version number.
    pub version: u32,
    /// `draft`, `approved` or `retired`.
    pub status: String,
    /// Whether a reference without a version means this one today.
    pub default: bool,
    /// The layout's title.
    pub title: String,
    /// `in effect`, `from YYYY-MM-DD`, ... (see `LayoutMeta::effective`).
    pub effective: String,
    /// The approval standing in words (approved, drifted, not approved).
    pub standing: String,
    /// False for an approved version whose approval does not hold (its
    /// files changed, or the approval file is missing).
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
}

impl Listing {
    /// Versions whose approval does not hold, plus broken folders.
    pub fn problems(&self) -> usize {
        self.versions.iter().filter(|l| !l.ok).count() + self.broken.len()
    }
}

/// Lists every version under `layouts`, checking each one's approval as of
/// `day` (the default version is the one a run on `day` would use).
pub fn list(layouts: &Path, day: Date) -> Result<Listing> {
    let catalog = Catalog::discover(layouts)?;
    let mut versions = Vec::new();
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
            // A version whose files or approval cannot be read is listed
            // with why, as a problem, rather than hiding the others.
            let (ok, standing) = match l.read_files().and_then(|f| approval::standing(l, &f)) {
                Ok(s) => (
                    l.meta.status != Status::Approved || s.is_approved(),
                    s.describe(),
                ),
                Err(e) => (false, e.to_string()),
            };
            versions.push(Listed {
                name: name.clone(),
                version: *v,
                status: l.meta.status.to_string(),
                default: default == Some(*v),
                title: l.meta.title.clone(),
                effective: l.meta.effective(),
                ok,
                standing,
                warnings: warnings(l),
            });
        }
    }
    let broken = catalog.broken.into_values().flatten().collect();
    Ok(Listing { versions, broken })
}

/// One layout version in full, for `layouts show`.
#[derive(Debug)]
pub struct Shown {
    /// The version.
    pub layout: Layout,
    /// Its approval standing.
    pub standing: Standing,
    /// The digest of its files now.
    pub digest: String,
    /// The day it was looked at, for "in effect on".
    pub day: Date,
}

/// The version `reference` means on `day`.
pub fn show(layouts: &Path, reference: &LayoutRef, day: Date) -> Result<Shown> {
    let layout = crate::ops::run::find_layout(layouts, reference, day)?;
    let files = layout.read_files()?;
    let standing = approval::standing(&layout, &files)?;
    Ok(Shown {
        digest: files.digest.clone(),
        layout,
        standing,
        day,
    })
}

/// Approves version `reference` (which must name its version) by `by` on
/// `on`: records the digest of its files in its `approval.yaml`, keeping
/// earlier approvals in its history. Returns the approval and its file.
pub fn approve(
    layouts: &Path,
    reference: &LayoutRef,
    by: &str,
    note: Option<&str>,
    on: Date,
) -> Result<(Approval, PathBuf)> {
    let Some(version) = reference.version else {
        return Err(Error::Usage(format!(
            "name the version to approve: {}@N",
            reference.name
        )));
    };
    let catalog = Catalog::discover(layouts)?;
    let found = catalog
        .layouts
        .get(&reference.name)
        .and_then(|v| v.get(&version))
        .ok_or_else(|| Error::Layout(format!("no layout version {reference}")))?;
    let approval = approval::approve(found, by, note, on)?;
    Ok((approval, found.dir.join(APPROVAL_FILE)))
}

/// Starts layout `name` at version 1, a draft with a letter, an email, texts
/// and sample data; returns the files written.
pub fn new(layouts: &Path, name: &str) -> Result<Vec<PathBuf>> {
    crate::layout::scaffold::new_layout(layouts, name)
}
