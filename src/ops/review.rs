//! The review workspace's work, for any face (the web face is the
//! binary's `review` module): who a logged-in user is in the trust list,
//! the versions awaiting them, the material of one version (its proof set
//! with every page drawn as an image, and its diff against the version in
//! effect), and a decision signed by the workspace's key for them, with
//! what they opened.
//!
//! A user decides in a role only when both say so: the trust list names a
//! person with their login holding that role, and the identity provider's
//! groups claim gives them a group that the workspace's entry maps to it.
//! The list stays the record of who may decide; the provider takes the
//! role away the day someone leaves the team.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::catalog::{Catalog, Layout};
use crate::layout::decisions::sign::Sign;
use crate::layout::decisions::write::{Request, Written};
use crate::layout::decisions::State;
use crate::layout::trust::{Trust, AUTHOR};
use crate::model::decision::{Kind, Login, Opened, Person, Record};
use crate::model::layout::LayoutRef;
use crate::ops::diff::{DiffOptions, DiffReport};
use crate::ops::proof::{ProofOptions, ProofReport};
use crate::util::clock::Date;

/// A logged-in user as the trust list sees them.
#[derive(Debug, Clone)]
pub struct Reviewer {
    /// How they logged in.
    pub login: Login,
    /// Their person in the trust list (by `login`), if any.
    pub person: Option<Person>,
    /// The roles they decide in: held in the trust list and given by a
    /// group of the provider's.
    pub roles: Vec<String>,
}

impl Reviewer {
    /// Who `login` is, with the groups the provider gave them.
    pub fn new(trust: &Trust, login: Login, groups: &[String]) -> Reviewer {
        let person = trust.by_login(&login.subject).cloned();
        let given: BTreeSet<&String> = trust
            .list
            .workspace
            .iter()
            .flat_map(|ws| groups.iter().filter_map(|g| ws.groups.get(g)))
            .collect();
        let roles = person
            .as_ref()
            .map(|p| {
                p.roles
                    .iter()
                    .filter(|r| given.contains(r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Reviewer {
            login,
            person,
            roles,
        }
    }

    fn is(&self, person_id: Option<&str>) -> bool {
        self.person
            .as_ref()
            .map(|p| p.id.as_str())
            .is_some_and(|id| Some(id) == person_id)
    }
}

/// A version in a reviewer's queue.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// `NAME@N`.
    pub id: String,
    /// The layout's name and the version.
    pub reference: LayoutRef,
    /// The layout's title.
    pub title: String,
    /// Who submitted it, and when (RFC 3339).
    pub author: String,
    /// When it was submitted.
    pub submitted: String,
    /// Where the policy stands: `1 of 2 approvals`.
    pub policy: String,
    /// The roles it still needs.
    pub missing: Vec<String>,
    /// How much changed: files changed, added or removed against the
    /// version in effect (`NAME@N`), or that none is in effect.
    pub changed: String,
}

/// The versions awaiting `who`'s decision on `day` (submitted, needing a
/// role of theirs, not submitted or approved by them), and for an author
/// the versions they may submit.
pub fn queue(
    layouts: &Path,
    trust: &Trust,
    who: &Reviewer,
    day: Date,
) -> Result<(Vec<Waiting>, Vec<String>)> {
    let catalog = Catalog::load(layouts, Some(trust))?;
    let mut waiting = Vec::new();
    let mut to_submit = Vec::new();
    for (name, versions) in &catalog.layouts {
        let in_effect = catalog
            .resolve(
                &LayoutRef {
                    name: name.clone(),
                    version: None,
                },
                day,
            )
            .ok();
        for layout in versions.values() {
            match &layout.state {
                State::Pending {
                    submission,
                    approvals,
                    missing,
                } => {
                    let entries = &layout.review.entries;
                    let mine = who.is(entries[*submission].person.as_deref())
                        || approvals
                            .iter()
                            .any(|&i| who.is(entries[i].person.as_deref()));
                    if mine || !missing.iter().any(|r| who.roles.contains(r)) {
                        continue;
                    }
                    let needed = trust.rule(name).approvals.len();
                    let sub = &entries[*submission].record;
                    waiting.push(Waiting {
                        id: layout.id(),
                        reference: reference(layout),
                        title: layout.meta.title.clone(),
                        author: sub.signer.name.clone(),
                        submitted: sub.at.clone(),
                        policy: format!("{} of {needed} approvals", approvals.len()),
                        missing: missing.clone(),
                        changed: changed(layout, in_effect)?,
                    });
                }
                State::NotSubmitted | State::Rejected { .. }
                    if who.roles.iter().any(|r| r == AUTHOR) =>
                {
                    to_submit.push(layout.id());
                }
                _ => {}
            }
        }
    }
    Ok((waiting, to_submit))
}

fn reference(layout: &Layout) -> LayoutRef {
    LayoutRef {
        name: layout.meta.name.clone(),
        version: Some(layout.meta.version),
    }
}

/// `3 files changed against welcome-letter@3`.
fn changed(layout: &Layout, in_effect: Option<&Layout>) -> Result<String> {
    let Some(old) = in_effect.filter(|o| o.meta.version != layout.meta.version) else {
        return Ok("no version in effect to compare with".into());
    };
    let (a, b) = (old.read_files()?.hashes, layout.read_files()?.hashes);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let n = keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).count();
    Ok(format!(
        "{n} file{} changed against {}",
        if n == 1 { "" } else { "s" },
        old.id()
    ))
}

/// What a reviewer looks at before deciding about one version.
#[derive(Debug)]
pub struct Material {
    /// The version (`NAME@N`) and its layout digest.
    pub id: String,
    /// Its layout digest.
    pub digest: String,
    /// The proof set (with every pick's pages drawn as PNG images).
    pub proof: ProofReport,
    /// The comparison with the version in effect, if one is.
    pub diff: Option<DiffReport>,
    /// The folder holding it all.
    pub dir: PathBuf,
    /// The day it was prepared for: its diff compares against the version
    /// in effect then, and a decision's evidence is checked for that day.
    pub as_of: Date,
}

impl Material {
    /// Everything a reviewer must open before approving: the proof records,
    /// their pages, the changed sentences (as [`Opened`] names them).
    pub fn items(&self) -> Opened {
        let mut all = Opened::default();
        for p in &self.proof.picks {
            all.records.push(p.record_id.clone());
            for n in 1..=p.images.len() {
                all.pages.push(page_name(&p.record_id, n));
            }
        }
        for (s, _) in self.sentences() {
            all.sentences.push(s);
        }
        all
    }

    /// The changed sentences, `+ ...` appearing and `- ...` disappearing,
    /// with the number of sample letters that carry each.
    pub fn sentences(&self) -> Vec<(String, usize)> {
        let Some(d) = &self.diff else {
            return Vec::new();
        };
        let plus = d.appearing.iter().map(|(s, n)| (format!("+ {s}"), *n));
        let minus = d.disappearing.iter().map(|(s, n)| (format!("- {s}"), *n));
        plus.chain(minus).collect()
    }

    /// What of [`Material::items`] is not in `opened`, by name.
    pub fn unopened(&self, opened: &Opened) -> Vec<String> {
        let all = self.items();
        let records = all
            .records
            .into_iter()
            .filter(|r| !opened.records.contains(r));
        let pages = all.pages.into_iter().filter(|p| !opened.pages.contains(p));
        let sentences = all
            .sentences
            .into_iter()
            .filter(|s| !opened.sentences.contains(s));
        records
            .map(|r| format!("proof record {r}"))
            .chain(pages)
            .chain(sentences.map(|s| format!("changed sentence \"{s}\"")))
            .collect()
    }
}

/// `R001 page 2`.
pub fn page_name(record: &str, n: usize) -> String {
    format!("{record} page {n}")
}

/// Makes the material of version `reference` from the sample `data` as
/// of `as_of` into `dir` (emptied first): the proof set
/// (`dir/proof.pdf`, `.json`, the email and web pages, `dir/pages/`), and
/// the diff against the version in effect on `as_of` (`dir/diff.json`).
pub fn material(
    layouts: &Path,
    trust: Option<&Path>,
    reference: &LayoutRef,
    data: &Path,
    dir: &Path,
    as_of: Date,
) -> Result<Material> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut opts = ProofOptions::new(reference.clone(), data, dir.join("proof.pdf"));
    opts.layouts_dir = layouts.to_path_buf();
    opts.trust = trust.map(Path::to_path_buf);
    opts.as_of = as_of;
    opts.images = Some(dir.join("pages"));
    let proof = crate::ops::proof::proof(&opts)?;
    let shown = crate::ops::layouts::show(layouts, trust, reference, as_of)?;
    let name = LayoutRef {
        name: reference.name.clone(),
        version: None,
    };
    let in_effect = Trust::find(trust)?
        .map(|t| Catalog::load(layouts, Some(&t)))
        .transpose()?
        .and_then(|c| c.resolve(&name, as_of).ok().map(|l| l.meta.version))
        .filter(|v| Some(*v) != reference.version);
    let diff = match in_effect {
        Some(v) => {
            let old = LayoutRef {
                name: reference.name.clone(),
                version: Some(v),
            };
            let mut d = DiffOptions::new(old, reference.clone(), data);
            d.layouts_dir = layouts.to_path_buf();
            d.as_of = as_of;
            let report = crate::ops::diff::diff(&d)?;
            report.write(&dir.join("diff.html"))?;
            Some(report)
        }
        None => None,
    };
    Ok(Material {
        id: shown.layout.id(),
        digest: shown.digest,
        proof,
        diff,
        dir: dir.to_path_buf(),
        as_of,
    })
}

/// Records `kind` about the version of `material` for `who`, signed by
/// the workspace's key `signer`, with the proof set, the diff and what
/// they opened as its evidence. An approval needs every item of the
/// material opened. `confirm` sees the record before it is signed.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    layouts: &Path,
    trust: Option<&Path>,
    material: &Material,
    who: &Reviewer,
    kind: Kind,
    reason: Option<String>,
    opened: &Opened,
    signer: &dyn Sign,
    confirm: &dyn Fn(&Record) -> bool,
) -> Result<Written> {
    let reference: LayoutRef = material.id.parse().map_err(Error::Usage)?;
    if kind == Kind::Approved {
        let left = material.unopened(opened);
        if !left.is_empty() {
            return Err(Error::Usage(format!(
                "open everything before approving; not yet opened: {}",
                left.join("; ")
            )));
        }
    }
    let role = match kind {
        Kind::Submitted => Some(AUTHOR.to_owned()),
        _ => None,
    };
    let fits = |r: &String| who.roles.contains(r);
    if role.as_ref().is_some_and(|r| !fits(r))
        || (role.is_none() && who.roles.iter().all(|r| r == AUTHOR))
    {
        return Err(Error::Layout(format!(
            "{} holds no role, in both the trust list and the identity provider's groups, that may make a {} of {}",
            who.login.name,
            kind.noun(),
            material.id
        )));
    }
    let proof_json = material.proof.evidence.clone();
    let diff_json = material
        .diff
        .as_ref()
        .map(|_| material.dir.join("diff.json"));
    let mut evidence = match kind {
        Kind::Submitted | Kind::Revoked => None,
        _ => crate::ops::layouts::evidence(
            layouts,
            trust,
            &reference,
            (Some(&proof_json), diff_json.as_deref()),
            material.as_of,
        )?,
    };
    if let Some(e) = evidence.as_mut() {
        e.opened = Some(opened.clone());
    }
    let request = Request {
        kind,
        reason,
        role: role.or_else(|| only_role(who)),
        from: None,
        evidence,
        login: Some(who.login.clone()),
    };
    crate::ops::layouts::decide(layouts, trust, &reference, &request, signer, confirm)
}

/// The reviewer's one non-author role, when they have exactly one.
fn only_role(who: &Reviewer) -> Option<String> {
    let roles: Vec<&String> = who.roles.iter().filter(|r| *r != AUTHOR).collect();
    match roles.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}
