//! A run's folder while the run goes: the state file that lets a killed
//! run resume (and tells whether a resume asks for the same run), and the
//! names of the files a run keeps there.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::manifest::{self, Shard};
use crate::util::fs::write_atomic;

/// The state of an unfinished run, in its folder until the manifest is written.
pub const STATE_FILE: &str = "run-state.json";

/// The lock a running `run` holds in its folder; `reprint`, `reconcile`
/// and `purge` hold it too while they write a finished run's folder.
pub const LOCK_FILE: &str = ".run.lock";

/// Takes the run folder's lock ([`LOCK_FILE`]) for `what`, a command that
/// writes a finished run's folder, so that no two of them (nor a `run
/// --resume`) write it at once.
pub fn lock(
    run: &Path,
    what: &str,
    terms: crate::util::lock::LockTerms,
) -> Result<crate::util::lock::Lock> {
    crate::util::lock::Lock::take(&run.join(LOCK_FILE), what, terms, None)
}

/// What a run records when it starts, so that `--resume` can tell whether
/// it is asked to continue the same run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    /// The run's id, kept across resumes.
    pub run_id: String,
    /// When the first attempt started (RFC 3339).
    pub started_at: String,
    /// The as-of date (YYYY-MM-DD).
    pub as_of: String,
    /// The command line of the first attempt.
    pub command: Vec<String>,
    /// Whether drafts were allowed.
    pub draft: bool,
    /// The layout version (`name@version`).
    pub layout: String,
    /// The digest of the layout version's files.
    pub layout_digest: String,
    /// The SHA-256 of the input file.
    pub input_sha256: String,
    /// The options that decide the output.
    pub options: manifest::Options,
    /// The shard this run renders, if any.
    pub shard: Option<Shard>,
    /// Each resume of this run.
    #[serde(default)]
    pub resumed: Vec<manifest::Resumed>,
    /// What the contact history said when the run started: a resumed run
    /// routes by it, not by what was imported since, so it ends as the
    /// uninterrupted run would have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::contacts::Verdicts>,
}

/// The first 12 characters of a hash, enough to tell two apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl RunState {
    /// The state of an unfinished run in `folder`, if there is one.
    pub fn load(folder: &Path) -> Result<Option<RunState>> {
        let path = folder.join(STATE_FILE);
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

    /// Writes the state to `folder`, atomically and durably.
    pub fn save(&self, folder: &Path) -> Result<()> {
        let path = folder.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        write_atomic(&path, &json, true).map_err(|e| Error::io(&path, e))
    }

    /// What differs between the run that started and the one asked to
    /// resume it, in words.
    pub fn differences(&self, now: &RunState) -> Vec<String> {
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
        let db = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".into());
        check("--contacts", db(&a.contacts), db(&b.contacts));
        check("--address-key", db(&a.address_key), db(&b.address_key));
        check("--print", a.print.to_string(), b.print.to_string());
        check(
            "--doc-timeout",
            a.doc_timeout_seconds.to_string(),
            b.doc_timeout_seconds.to_string(),
        );
        let seq = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
        check("--sequence", seq(&a.sequence), seq(&b.sequence));
        check(
            "--household",
            a.household.to_string(),
            b.household.to_string(),
        );
        // Another print shop file may finish a run (one that fixes what
        // stopped its print files); dropping it would make files without
        // the PDF/X the run was started for.
        let shop = |s: &Option<String>| if s.is_some() { "given" } else { "none" }.to_owned();
        check("--print-shop", shop(&a.print_shop), shop(&b.print_shop));
        let shard = |s: &Option<Shard>| s.map_or("none".into(), |s| s.to_string());
        check("--shard", shard(&self.shard), shard(&now.shard));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        RunState {
            run_id: "20261128T000000Z-000000000000".into(),
            started_at: "2026-11-28T00:00:00Z".into(),
            as_of: "2026-11-28".into(),
            command: vec!["letterpress".into(), "run".into()],
            draft: false,
            layout: "welcome-letter@2".into(),
            layout_digest: "d".repeat(64),
            input_sha256: "a".repeat(64),
            options: manifest::Options {
                pdf_standards: vec!["a-2b".into()],
                jobs: 2,
                channels: vec!["pdf".into(), "email".into()],
                suppress: None,
                doc_timeout_seconds: 60.0,
                print: false,
                sequence: None,
                household: false,
                print_shop: None,
                contacts: None,
                address_key: None,
                layouts: None,
                working_dir: None,
            },
            shard: None,
            resumed: Vec::new(),
            history: None,
        }
    }

    #[test]
    fn the_same_run_has_no_differences() {
        assert!(state().differences(&state()).is_empty());
    }

    #[test]
    fn what_does_not_change_the_output_may_differ() {
        let mut now = state();
        now.run_id = "another".into();
        now.started_at = "2026-11-29T08:00:00Z".into();
        now.command.push("--resume".into());
        now.options.jobs = 8;
        assert!(state().differences(&now).is_empty());
    }

    #[test]
    fn each_difference_is_named_with_both_values() {
        let mut now = state();
        now.input_sha256 = "b".repeat(64);
        now.as_of = "2026-12-01".into();
        now.draft = true;
        now.options.channels = vec!["pdf".into()];
        now.options.print = true;
        now.options.suppress = Some(manifest::SuppressEntry {
            path: "dnc.txt".into(),
            sha256: "c".repeat(64),
            entries: 3,
        });
        now.shard = Some(Shard { index: 2, count: 3 });
        assert_eq!(
            state().differences(&now),
            [
                "the input file (was SHA-256 aaaaaaaaaaaa, now SHA-256 bbbbbbbbbbbb)",
                "--as-of (was 2026-11-28, now 2026-12-01)",
                "--allow-draft (was false, now true)",
                "--channels (was pdf,email, now pdf)",
                "--suppress (was none, now dnc.txt with SHA-256 cccccccccccc)",
                "--print (was false, now true)",
                "--shard (was none, now 2/3)",
            ]
        );
    }

    #[test]
    fn a_changed_layout_names_the_version_or_its_files() {
        let mut now = state();
        now.layout = "welcome-letter@3".into();
        now.layout_digest = "e".repeat(64);
        assert_eq!(
            state().differences(&now),
            [
                "the layout version (was welcome-letter@2, now welcome-letter@3)",
                "the layout's files (was digest dddddddddddd, now digest eeeeeeeeeeee)",
            ]
        );
    }

    #[test]
    fn a_state_survives_its_file_and_a_broken_one_is_named() {
        let dir = std::env::temp_dir().join(format!("lp-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(RunState::load(&dir).unwrap().is_none());
        state().save(&dir).unwrap();
        let back = RunState::load(&dir).unwrap().expect("saved");
        assert!(back.differences(&state()).is_empty());
        assert_eq!(back.run_id, state().run_id);
        std::fs::write(dir.join(STATE_FILE), b"{ not json").unwrap();
        let err = RunState::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains(STATE_FILE) && err.contains("unfinished run"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
