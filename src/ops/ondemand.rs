//! Documents on demand: one record on one channel, from the layout version
//! approved and in effect on the day, with the same checks and the same
//! bytes as a batch run of that record (`letterpress serve` answers
//! `POST /v1/documents` with it). A [`Desks`] keeps each version's
//! renderers ready between requests and notices within a second when the
//! layouts folder or the trust list changes (a revocation, a new version).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::check::record::{Checked, Checker, Plan};
use crate::check::route::{Decision, Suppressions};
use crate::error::Error;
use crate::input::RawRecord;
use crate::layout::catalog::Catalog;
use crate::layout::trust::Trust;
use crate::model::file::FileEntry;
use crate::model::layout::LayoutRef;
use crate::model::manifest::Document;
use crate::model::vocab::{Channel, DocStatus, Format};
use crate::ops::run::render::Put;
use crate::ops::run::{ready, Ready};
use crate::output::file_names::FileNamer;
use crate::util::clock::Date;

/// How often the layouts folder and the trust list are looked at again.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// At most this many versions × days are kept ready.
const KEEP_READY: usize = 32;

/// Why a document was not made; each is an answer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such layout or version.
    Unknown(String),
    /// The version may not go to customers on the day (not approved, not
    /// in effect, retired, changed since approval), or its files cannot
    /// be used.
    NotCleared(String),
    /// The record fails its checks, as it would in a batch (`field`: the
    /// field the first problem names).
    Invalid {
        /// Why, as a run's manifest would say.
        why: String,
        /// The field, when the reason names one.
        field: Option<String>,
    },
    /// The environment (the journal's disk): nothing was served.
    Environment(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Unknown(why)
            | Refused::NotCleared(why)
            | Refused::Environment(why)
            | Refused::Invalid { why, .. } => f.write_str(why),
        }
    }
}

/// A document made on demand.
#[derive(Debug)]
pub struct Made {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: &'static str,
    /// Its entry, as a run's journal would have it.
    pub entry: Document,
}

/// A desk's name, version asked for and day.
type DeskKey = (String, Option<u32>, Date);

/// The layout versions kept ready, by name, version asked for and day.
pub struct Desks {
    layouts: PathBuf,
    trust: Option<PathBuf>,
    ready: Mutex<HashMap<DeskKey, Arc<Desk>>>,
    /// When the folder was last looked at, and what it looked like.
    looked: Mutex<(Option<Instant>, u128)>,
}

impl Desks {
    /// Versions of the layouts in `layouts`, checked against the trust list
    /// `trust` (found as the other commands find it).
    pub fn new(layouts: &Path, trust: Option<&Path>) -> crate::error::Result<Desks> {
        let trust = Trust::find(trust)?.map(|t| t.path);
        Ok(Desks {
            layouts: layouts.to_path_buf(),
            trust,
            ready: Mutex::default(),
            looked: Mutex::new((None, 0)),
        })
    }

    /// The layouts folder.
    pub fn layouts(&self) -> &Path {
        &self.layouts
    }

    /// The trust list the versions are checked against, if there is one.
    pub fn trust(&self) -> Option<&Path> {
        self.trust.as_deref()
    }

    /// The desk of layout `name` (version `version`, or the one in effect)
    /// for day `as_of`, made ready if it is not.
    pub fn desk(
        &self,
        name: &str,
        version: Option<u32>,
        as_of: Date,
    ) -> Result<Arc<Desk>, Refused> {
        self.look_again();
        let key = (name.to_owned(), version, as_of);
        if let Some(desk) = lock(&self.ready).get(&key) {
            return Ok(desk.clone());
        }
        let r = LayoutRef {
            name: name.to_owned(),
            version,
        };
        self.known(&r)?;
        let ready =
            ready(&self.layouts, self.trust.as_deref(), &r, as_of).map_err(|e| match e {
                Error::Layout(why) => Refused::NotCleared(why),
                other => Refused::NotCleared(other.to_string()),
            })?;
        let desk = Arc::new(Desk {
            ready,
            as_of,
            no_list: Suppressions::default(),
        });
        let mut all = lock(&self.ready);
        if all.len() >= KEEP_READY {
            all.clear();
        }
        all.insert(key, desk.clone());
        Ok(desk)
    }

    /// Makes ready the version of every layout in effect on `as_of`; the
    /// ones that cannot be, with why.
    pub fn warm(&self, as_of: Date) -> crate::error::Result<Vec<(String, Refused)>> {
        let trust = Trust::find(self.trust.as_deref())?;
        let names: Vec<String> = Catalog::load(&self.layouts, trust.as_ref())?
            .layouts
            .into_keys()
            .collect();
        Ok(names
            .into_iter()
            .filter_map(|n| self.desk(&n, None, as_of).err().map(|why| (n, why)))
            .collect())
    }

    /// Refuses a layout or version that does not exist (as against one
    /// that may not be used).
    fn known(&self, r: &LayoutRef) -> Result<(), Refused> {
        let catalog =
            Catalog::discover(&self.layouts).map_err(|e| Refused::NotCleared(e.to_string()))?;
        let versions = catalog.layouts.get(&r.name);
        match (versions, r.version) {
            (None, _) if !catalog.broken.contains_key(&r.name) => {
                Err(Refused::Unknown(format!("no layout named `{}`", r.name)))
            }
            (Some(v), Some(n)) if !v.contains_key(&n) => Err(Refused::Unknown(format!(
                "layout `{}` has no version {n}",
                r.name
            ))),
            _ => Ok(()),
        }
    }

    /// Forgets every ready desk when the layouts folder or the trust list
    /// changed since it was last looked at (at most once a [`LOOK_AGAIN`]).
    fn look_again(&self) {
        let mut looked = lock(&self.looked);
        if looked.0.is_some_and(|at| at.elapsed() < LOOK_AGAIN) {
            return;
        }
        let now = fingerprint(&self.layouts, self.trust.as_deref());
        if looked.0.is_some() && now != looked.1 {
            lock(&self.ready).clear();
        }
        *looked = (Some(Instant::now()), now);
    }
}

/// A hash of the name, size and modification time of every file under
/// `layouts` and of the trust list.
fn fingerprint(layouts: &Path, trust: Option<&Path>) -> u128 {
    let mut seen = Vec::new();
    let entries = walkdir::WalkDir::new(layouts)
        .sort_by_file_name()
        .into_iter()
        .filter_map(std::result::Result::ok)
        .map(|e| e.into_path());
    for path in entries.chain(trust.map(Path::to_path_buf)) {
        let meta = std::fs::metadata(&path).ok();
        let stamp = meta.as_ref().map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            (m.len(), t.map(|t| t.as_nanos()))
        });
        seen.push((path, stamp));
    }
    typst::utils::hash128(&seen)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One layout version ready for one day.
pub struct Desk {
    ready: Ready,
    as_of: Date,
    no_list: Suppressions,
}

impl Desk {
    /// `NAME@N`.
    pub fn layout_id(&self) -> String {
        self.ready.layout.id()
    }

    /// The field holding a record's id.
    pub fn id_field(&self) -> &str {
        &self.ready.layout.meta.id_field
    }

    /// The digest of the version's files.
    pub fn digest(&self) -> &str {
        &self.ready.digest
    }

    /// The day its documents are made for.
    pub fn as_of(&self) -> Date {
        self.as_of
    }

    /// The channels it can make.
    pub fn channels(&self) -> &[Channel] {
        &self.ready.channels
    }

    /// Checks `record` as a run would and makes its document on `channel`.
    /// The customer's contact preference does not matter here (the caller
    /// asked for this channel); an email still needs a valid address.
    pub fn make(&self, record: Map<String, Value>, channel: Channel) -> Result<Made, Refused> {
        if !self.ready.channels.contains(&channel) {
            return Err(Refused::Invalid {
                why: format!("{} has no {} channel", self.layout_id(), channel.name()),
                field: Some("channel".into()),
            });
        }
        let channels = [channel];
        let plan = Plan {
            layout: &self.ready.layout,
            channels: &channels,
            suppressions: &self.no_list,
            texts: &self.ready.texts,
            pieces: None,
            known: None,
            history: None,
            address_key: None,
        };
        let raw = RawRecord {
            index: 0,
            line: 1,
            data: Ok(record),
        };
        let mut job = match Checker::new(plan, Format::Json).check(raw) {
            Checked::Failed(docs) => return Err(invalid(docs.first())),
            Checked::Ready(job) => job,
        };
        match &job.route.decisions[0].1 {
            Decision::Render(_) => {}
            Decision::Elsewhere(_) if channel != Channel::Email || job.route.to.is_some() => {}
            Decision::Elsewhere(why)
            | Decision::Fail(why)
            | Decision::Hold(why)
            | Decision::Suppress(why) => {
                return Err(Refused::Invalid {
                    why: why.clone(),
                    field: None,
                })
            }
        }
        job.route.decisions = vec![(channel, Decision::Render(None))];
        job.stem = FileNamer::default().name(&job.id);
        let kept = Kept::default();
        let docs = self
            .ready
            .stage
            .render(*job, &kept)
            .map_err(Refused::Environment)?
            .docs;
        self.ready.stage.tidy.after_record();
        let entry = docs.into_iter().next().expect("one channel, one document");
        if entry.status != DocStatus::Rendered {
            return Err(invalid(Some(&entry)));
        }
        let bytes = kept.take(entry.path.as_deref().unwrap_or_default());
        Ok(Made {
            bytes,
            media_type: media_type(channel),
            entry,
        })
    }
}

/// The media type of a channel's document.
pub fn media_type(channel: Channel) -> &'static str {
    match channel {
        Channel::Pdf => "application/pdf",
        Channel::Email => "message/rfc822",
        Channel::Web => "text/html; charset=utf-8",
    }
}

/// The refusal of a record whose entry failed.
fn invalid(doc: Option<&Document>) -> Refused {
    let why = doc
        .and_then(|d| d.error.clone())
        .unwrap_or_else(|| "the record failed its checks".into());
    Refused::Invalid {
        field: named_field(&why),
        why,
    }
}

/// The field a reason names first (``field `NAME`: ...``).
pub fn named_field(why: &str) -> Option<String> {
    let rest = &why[why.find("field `")? + 7..];
    Some(rest[..rest.find('`')?].to_owned())
}

/// The files of one document, kept in memory.
#[derive(Default)]
struct Kept(std::cell::RefCell<Vec<(String, Vec<u8>)>>);

impl Put for Kept {
    fn put(&self, rel: &str, bytes: &[u8]) -> Result<FileEntry, String> {
        self.0.borrow_mut().push((rel.to_owned(), bytes.to_vec()));
        Ok(FileEntry::of(rel, bytes))
    }
}

impl Kept {
    /// The bytes kept as `rel`.
    fn take(self, rel: &str) -> Vec<u8> {
        self.0
            .into_inner()
            .into_iter()
            .find(|(r, _)| r == rel)
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_a_reason_names_is_found() {
        assert_eq!(
            named_field("field `address.city`: missing; field `x`: bad").as_deref(),
            Some("address.city")
        );
        assert_eq!(named_field("no field here"), None);
        assert_eq!(named_field("field `unclosed"), None);
    }
}
