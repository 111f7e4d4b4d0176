//! The journal of documents served on demand: one chained log a day,
//! `on-demand/DAY/documents.jsonl` under the server's state folder, with
//! a run journal's document entries (see
//! [`crate::model::manifest::ServedEntry`]). A document is answered only
//! after its entry is on disk: entries that arrive together are written
//! and forced to disk at once (a group commit), so the disk's flush is
//! paid once per group, not once per document.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::model::manifest::ServedEntry;
use crate::util::fs::sync_dir;
use crate::util::jsonl::{self, Chained};

/// The folder of the day's journals under a state folder.
pub const ON_DEMAND_DIR: &str = "on-demand";

/// The journal of day `day` (`YYYY-MM-DD`) under `state`.
pub fn journal_path(state: &Path, day: &str) -> PathBuf {
    state
        .join(ON_DEMAND_DIR)
        .join(day)
        .join(super::journal::DOCUMENTS_FILE)
}

/// The first link of day `day`'s chain: a line copied from another day's
/// journal breaks it.
pub fn origin(day: &str) -> String {
    jsonl::origin("on-demand", day)
}

/// Told an entry's index in its day, or why it could not be written.
type Done = Box<dyn FnOnce(Result<usize, String>) + Send>;

/// An entry on its way to the journal, and who waits for its index.
struct Pending {
    day: String,
    entry: ServedEntry,
    done: Done,
}

/// Appends served documents to their day's journal from one writer
/// thread; cheap to clone.
#[derive(Clone)]
pub struct ServedLog {
    tx: mpsc::Sender<Pending>,
}

impl ServedLog {
    /// Starts the writer of the journals under `state`.
    pub fn start(state: &Path) -> ServedLog {
        let (tx, rx) = mpsc::channel::<Pending>();
        let state = state.to_path_buf();
        std::thread::Builder::new()
            .name("served-journal".into())
            .spawn(move || write_loop(&state, &rx))
            .expect("a thread for the on-demand journal");
        ServedLog { tx }
    }

    /// Hands `entry` to the writer; `done` is called once it is on disk
    /// (with its index) or cannot be written (with why), from the
    /// writer's thread: no thread waits meanwhile.
    pub fn submit(&self, day: &str, entry: ServedEntry, done: Done) {
        let pending = Pending {
            day: day.to_owned(),
            entry,
            done,
        };
        if let Err(mpsc::SendError(p)) = self.tx.send(pending) {
            (p.done)(Err("the on-demand journal's writer stopped".to_owned()));
        }
    }
}

/// The open journal of one day and how many entries it holds.
struct Open {
    day: String,
    log: Chained,
    count: usize,
    path: PathBuf,
}

fn write_loop(state: &Path, rx: &mpsc::Receiver<Pending>) {
    let mut open: Option<Open> = None;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter());
        let mut answers = Vec::with_capacity(group.len());
        let mut failed = None;
        for mut p in group {
            let result = (|| -> Result<usize, String> {
                let o = day_log(state, &mut open, &p.day)?;
                p.entry.document.index = o.count;
                o.log
                    .push(&p.entry)
                    .map_err(|e| format!("{}: {e}", o.path.display()))?;
                o.count += 1;
                Ok(o.count - 1)
            })();
            if let Err(why) = &result {
                failed = Some(why.clone());
            }
            answers.push((p.done, result));
        }
        if failed.is_none() {
            if let Some(o) = open.as_mut() {
                if let Err(e) = o.log.sync() {
                    failed = Some(format!("{}: {e}", o.path.display()));
                }
            }
        }
        if failed.is_some() {
            // Reopened next time: the chain is checked again and a torn
            // line cut off; the count is read again.
            open = None;
        }
        for (done, result) in answers {
            let result = match &failed {
                Some(why) => Err(result.err().unwrap_or_else(|| why.clone())),
                None => result,
            };
            done(result);
        }
    }
}

/// The open journal of `day`, opened (and created) when the day changes.
fn day_log<'a>(
    state: &Path,
    open: &'a mut Option<Open>,
    day: &str,
) -> Result<&'a mut Open, String> {
    if open.as_ref().is_none_or(|o| o.day != day) {
        *open = None;
        let path = journal_path(state, day);
        let dir = path.parent().expect("a day's folder");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (log, values) = Chained::open::<serde::de::IgnoredAny>(&path, &origin(day))
            .map_err(|e| e.to_string())?;
        for d in [dir, dir.parent().expect("the on-demand folder")] {
            sync_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        *open = Some(Open {
            day: day.to_owned(),
            log,
            count: values.len(),
            path,
        });
    }
    Ok(open.as_mut().expect("opened above"))
}
