//! Batch jobs another program hands over (`letterpress serve`'s
//! `/v1/jobs`): each is an ordinary run folder under `STATE/jobs/ID/run`,
//! with the data beside it and `job.json` saying where the job stands. A
//! job's id is a hash of who submitted it and their idempotency key, so
//! the same key twice is the same job, across restarts too. A job that a
//! restart or SIGTERM interrupted goes back to `queued` and resumes (the
//! run's own `--resume`: every record exactly once). The data is deleted
//! once the job has ended (succeeded, failed or cancelled): the documents
//! and the manifest are what is kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::Input;
use crate::model::layout::LayoutRef;
use crate::model::manifest::{Document, Totals};
use crate::model::vocab::{Channel, DocStatus, Format, Named};
use crate::ops::ondemand::{Desks, Refused};
use crate::ops::run::{Observer, RunOptions};
use crate::util::clock::{now_rfc3339, Date};
use crate::util::digest::sha256_hex;
use crate::util::fs::{sync_dir, write_atomic};
use crate::util::stop::StopFlag;

/// The jobs' folder under a server's state folder.
pub const JOBS_DIR: &str = "jobs";
/// A job's own record, in its folder.
pub const JOB_FILE: &str = "job.json";
/// A job's run folder, in its folder.
pub const RUN_DIR: &str = "run";

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the job lane (also after an interruption).
    Queued,
    /// Being rendered.
    Running,
    /// Every record is in the manifest (some may have failed: see the
    /// totals).
    Succeeded,
    /// The run could not be done (see `error`).
    Failed,
    /// Cancelled before it ended; the records done are in the journal.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// What a job is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobSpec {
    /// `NAME` or `NAME@N`.
    pub layout: String,
    /// The channels (`None`: the layout's).
    pub channels: Option<Vec<String>>,
    /// The day its documents are made for.
    pub as_of: String,
    /// Whether it also makes print files.
    pub print: bool,
    /// The data's format: `csv`, `jsonl` or `json`.
    pub format: String,
}

/// A job as `job.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The name of the token that submitted it.
    pub client: String,
    /// SHA-256 of its idempotency key.
    pub key_sha256: String,
    /// What it does.
    pub spec: JobSpec,
    /// SHA-256 of the data.
    pub data_sha256: String,
    /// The data's size.
    pub data_bytes: u64,
    /// When it was submitted.
    pub submitted_at: String,
    /// Where it stands.
    pub state: JobState,
    /// When it last started running.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Why it failed, or how it was interrupted.
    pub error: Option<String>,
    /// Whether it was asked to stop.
    #[serde(default)]
    pub cancel: bool,
    /// The run's totals once it ended.
    pub totals: Option<Totals>,
}

/// A submission refused.
#[derive(Debug)]
pub enum Refusal {
    /// The layout, version or day cannot be used (see [`Refused`]).
    Layout(Refused),
    /// The same key was used for another submission.
    KeyReused(String),
    /// Something else about the request.
    Invalid(String),
    /// The data cannot be read as its format, or holds no records.
    Data(String),
    /// The state folder cannot be written.
    Environment(Error),
}

/// The jobs under a state folder.
pub struct Jobs {
    root: PathBuf,
    /// The layout versions ready for documents on demand, which a
    /// submission is checked against (and whose folders a job runs with).
    desks: Arc<Desks>,
    /// Rendering workers of a job's run.
    pub workers: usize,
    /// Serialises changes of `job.json` within this process.
    writing: Mutex<()>,
}

impl Jobs {
    /// The jobs under `state`, checked against and run with the layouts
    /// of `desks`.
    pub fn open(state: &Path, desks: Arc<Desks>, workers: usize) -> Result<Jobs> {
        let root = state.join(JOBS_DIR);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Jobs {
            root,
            desks,
            workers,
            writing: Mutex::new(()),
        })
    }

    /// A job's id: a hash of the client and its idempotency key.
    pub fn id_of(client: &str, key: &str) -> String {
        sha256_hex(format!("letterpress job\0{client}\0{key}").as_bytes())[..24].to_owned()
    }

    /// A job's folder.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// A job's run folder.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join(RUN_DIR)
    }

    /// A folder for data on its way in (on the same file system, so it is
    /// moved into its job's folder).
    pub fn incoming(&self) -> Result<PathBuf> {
        let dir = self.root.join(".incoming");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    /// Submits the data in `data` (a file in [`Jobs::incoming`], taken
    /// over) as a job of `client` under `key`: the job and whether it is
    /// new. The same key with the same data and spec is the same job; with
    /// others, a refusal.
    pub fn submit(
        &self,
        client: &str,
        key: &str,
        spec: JobSpec,
        data: &Path,
    ) -> std::result::Result<(Job, bool), Refusal> {
        let id = Self::id_of(client, key);
        let unreadable = |e: Error| {
            let _ = std::fs::remove_file(data);
            Refusal::Data(
                e.to_string()
                    .replace(&data.display().to_string(), "the data"),
            )
        };
        let format = format_of(&spec.format).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let input = Input::plain(data, format).map_err(unreadable)?;
        let summary = input.scan().map_err(unreadable)?;
        if let Some(job) = self.get(&id) {
            let _ = std::fs::remove_file(data);
            return match job.spec == spec && job.data_sha256 == summary.sha256 {
                true => Ok((job, false)),
                false => Err(Refusal::KeyReused(
                    "this Idempotency-Key was used for another job (other data or parameters); use a new key".into(),
                )),
            };
        }
        let id_field = self.admissible(&spec)?;
        input.check_shape(&summary, &id_field).map_err(unreadable)?;
        let job = Job {
            id: id.clone(),
            client: client.to_owned(),
            key_sha256: sha256_hex(key.as_bytes()),
            data_bytes: summary.bytes,
            data_sha256: summary.sha256,
            spec,
            submitted_at: now_rfc3339(),
            state: JobState::Queued,
            started_at: None,
            finished_at: None,
            error: None,
            cancel: false,
            totals: None,
        };
        self.create(job, data).map_err(Refusal::Environment)
    }

    /// Refuses a spec that cannot run: an unknown layout or channel, a
    /// version not cleared for the day. The layout's record id field.
    fn admissible(&self, spec: &JobSpec) -> std::result::Result<String, Refusal> {
        let r: LayoutRef = spec.layout.parse().map_err(Refusal::Invalid)?;
        let day = Date::parse(&spec.as_of).ok_or_else(|| {
            Refusal::Invalid(format!("as_of `{}` is not a date (YYYY-MM-DD)", spec.as_of))
        })?;
        let desk = self
            .desks
            .desk(&r.name, r.version, day)
            .map_err(Refusal::Layout)?;
        for c in spec.channels.iter().flatten() {
            match Channel::parse_named(c) {
                Ok(c) if desk.channels().contains(&c) => {}
                _ => {
                    return Err(Refusal::Invalid(format!(
                        "{} has no channel `{c}`",
                        desk.layout_id()
                    )))
                }
            }
        }
        Ok(desk.id_field().to_owned())
    }

    /// Writes a new job's folder (in a temporary folder renamed into
    /// place, so a job folder always has its record and its data); when
    /// another submission with the same key got there first, that job.
    fn create(&self, job: Job, data: &Path) -> Result<(Job, bool)> {
        let tmp = self
            .root
            .join(format!(".new-{}-{}", job.id, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let name = format!("data.{}", job.spec.format);
        std::fs::rename(data, tmp.join(&name)).map_err(|e| Error::io(data, e))?;
        write_atomic(&tmp.join(JOB_FILE), &to_json(&job), true).map_err(|e| Error::io(&tmp, e))?;
        sync_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let dir = self.dir(&job.id);
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => {
                sync_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
                Ok((job, true))
            }
            Err(_) if dir.join(JOB_FILE).exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
                let theirs = self.get(&job.id).ok_or_else(|| {
                    Error::Output(format!("{}: unreadable job record", dir.display()))
                })?;
                Ok((theirs, false))
            }
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// The job `id`, if there is one (an id is a hex hash: anything else is
    /// no job, never a path).
    pub fn get(&self, id: &str) -> Option<Job> {
        if id.len() != 24
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let bytes = std::fs::read(self.dir(id).join(JOB_FILE)).ok()?;
        serde_json::from_slice::<Job>(&bytes)
            .ok()
            .filter(|j| j.id == id)
    }

    /// The jobs not yet ended, oldest first: what a starting server queues.
    pub fn unfinished(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .filter_map(|e| self.get(&e.ok()?.file_name().to_string_lossy()))
            .filter(|j| !j.state.ended())
            .collect();
        jobs.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then(a.id.cmp(&b.id)));
        jobs
    }

    /// Counts of jobs by state.
    pub fn counts(&self) -> Vec<(JobState, usize)> {
        let mut counts = Vec::new();
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(j) = self.get(&e.file_name().to_string_lossy()) {
                match counts.iter_mut().find(|(s, _)| *s == j.state) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((j.state, 1)),
                }
            }
        }
        counts
    }

    /// Changes job `id` with `f` and writes it back.
    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) -> Result<Job> {
        let _w = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut job = self
            .get(id)
            .ok_or_else(|| Error::Usage(format!("no job {id}")))?;
        f(&mut job);
        let path = self.dir(id).join(JOB_FILE);
        write_atomic(&path, &to_json(&job), true).map_err(|e| Error::io(&path, e))?;
        Ok(job)
    }

    /// Asks job `id` to stop: a queued job is cancelled at once, a running
    /// one between records (the caller sets its stop flag).
    pub fn cancel(&self, id: &str) -> Result<Job> {
        let job = self.update(id, |j| match j.state {
            JobState::Queued => {
                j.cancel = true;
                j.state = JobState::Cancelled;
                j.finished_at = Some(now_rfc3339());
            }
            JobState::Running => j.cancel = true,
            _ => {}
        })?;
        if job.state == JobState::Cancelled {
            self.forget_data(&job);
        }
        Ok(job)
    }

    /// Runs (or resumes) job `id` until it ends or `stop` is set.
    pub fn run(&self, id: &str, stop: StopFlag, observer: Observer) -> Result<Job> {
        let job = self.update(id, |j| {
            if !j.state.ended() {
                j.state = JobState::Running;
                j.started_at = Some(now_rfc3339());
            }
        })?;
        if job.state.ended() {
            return Ok(job);
        }
        let outcome = self
            .options(&job, stop, observer)
            .and_then(|o| crate::ops::run::run(&o));
        let job = self.update(id, |j| match outcome {
            Ok(report) => {
                j.state = JobState::Succeeded;
                j.totals = Some(report.manifest.totals.clone());
                j.finished_at = Some(now_rfc3339());
                j.error = None;
            }
            Err(Error::Stopped { message, .. }) if !j.cancel => {
                j.state = JobState::Queued;
                j.error = Some(format!(
                    "interrupted, resumes when the server starts again: {message}"
                ));
            }
            Err(Error::Stopped { .. }) => {
                j.state = JobState::Cancelled;
                j.finished_at = Some(now_rfc3339());
            }
            // Another process runs it: leave it to that one.
            Err(Error::Output(why)) if why.starts_with("another ") => {
                j.state = JobState::Queued;
                j.error = Some(why);
            }
            Err(e) => {
                j.state = JobState::Failed;
                j.error = Some(e.to_string());
                j.finished_at = Some(now_rfc3339());
            }
        })?;
        if job.state.ended() {
            self.forget_data(&job);
        }
        Ok(job)
    }

    /// The run's options of `job`.
    fn options(&self, job: &Job, stop: StopFlag, observer: Observer) -> Result<RunOptions> {
        let r: LayoutRef = job.spec.layout.parse().map_err(Error::Usage)?;
        let data = self.dir(&job.id).join(format!("data.{}", job.spec.format));
        let mut o = RunOptions::new(r, data, self.run_dir(&job.id));
        o.layouts_dir = self.desks.layouts().to_path_buf();
        o.trust = self.desks.trust().map(Path::to_path_buf);
        o.format = Some(format_of(&job.spec.format)?);
        o.as_of = Date::parse(&job.spec.as_of);
        o.channels = job.spec.channels.as_ref().map(|cs| {
            cs.iter()
                .filter_map(|c| Channel::parse_named(c).ok())
                .collect()
        });
        o.print = job.spec.print;
        o.resume = true;
        o.jobs = self.workers;
        o.stop = stop;
        o.observer = observer;
        o.command = vec![
            "letterpress".into(),
            "serve".into(),
            "job".into(),
            job.id.clone(),
        ];
        Ok(o)
    }

    /// Deletes an ended job's data (the manifest keeps its hash).
    fn forget_data(&self, job: &Job) {
        let _ = std::fs::remove_file(self.dir(&job.id).join(format!("data.{}", job.spec.format)));
    }

    /// The failed entries of job `id`'s journal after the first `skip`, at
    /// most `limit`, and whether there are more.
    pub fn failures(&self, id: &str, skip: usize, limit: usize) -> Result<(Vec<Document>, bool)> {
        let dir = self.run_dir(id);
        if !dir.join(crate::manifest::journal::DOCUMENTS_FILE).exists() {
            return Ok((Vec::new(), false));
        }
        let mut failed = crate::manifest::journal::documents(&dir)?
            .filter_map(std::result::Result::ok)
            .filter(|d| d.status == DocStatus::Failed)
            .skip(skip);
        let page: Vec<Document> = failed.by_ref().take(limit).collect();
        Ok((page, failed.next().is_some()))
    }
}

/// The format named `name`.
pub fn format_of(name: &str) -> Result<Format> {
    Format::parse_named(name).map_err(Error::Usage)
}

fn to_json(job: &Job) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(job).expect("a job serializes");
    bytes.push(b'\n');
    bytes
}
