//! Lock files that keep two processes off the same folder.
//!
//! Used by `run` (one run per output folder, or per shard) and `send` (one
//! delivery per run). A lock is a file created with `O_EXCL` that names its
//! holder: process id, host and start time. A second process is refused with
//! those three. A lock whose holder is on this host and no longer runs (a
//! killed run, a power cut) is taken over with a warning; a lock held from
//! another host (a shared volume) cannot be checked from here and is always
//! refused, naming the host, so an operator decides.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::util::clock::now_rfc3339;

/// A held lock, removed when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    /// Set when the lock was taken over from a holder that no longer runs.
    warning: Option<String>,
}

/// Who holds a lock, as written in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock (RFC 3339).
    pub started: String,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            started: now_rfc3339(),
        }
    }

    fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split_whitespace();
        Some(Holder {
            pid: parts.next()?.parse().ok()?,
            host: parts.next()?.to_owned(),
            started: parts.next()?.to_owned(),
        })
    }

    /// Whether the holder still runs; `None` when that cannot be told from
    /// here (another host).
    fn alive(&self) -> Option<bool> {
        if self.host != hostname() {
            return None;
        }
        Some(Path::new("/proc").join(self.pid.to_string()).exists())
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, started {}",
            self.pid, self.host, self.started
        )
    }
}

/// This machine's host name (`unknown` if it has none).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    if ok && !name.is_empty() && !name.contains(char::is_whitespace) {
        name
    } else {
        "unknown".into()
    }
}

impl Lock {
    /// Takes the lock at `path` for `what` (e.g. "run", "send"), or says who
    /// holds it. A lock left by a process of this host that no longer runs is
    /// taken over; [`Lock::warning`] then says so.
    pub fn take(path: &Path, what: &str) -> Result<Lock> {
        let me = Holder::me();
        let mut warning = None;
        let line = format!("{} {} {}\n", me.pid, me.host, me.started);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(line.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| Error::io(path, e))?;
                    return Ok(Lock {
                        path: path.to_path_buf(),
                        warning,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    let Some(holder) = Holder::parse(&text) else {
                        // Half-written by a process killed while taking it.
                        warning = Some(format!(
                            "removed an unreadable lock file {}",
                            path.display()
                        ));
                        let _ = std::fs::remove_file(path);
                        continue;
                    };
                    match holder.alive() {
                        Some(false) => {
                            warning = Some(format!(
                                "took over the lock {} of a {what} that no longer runs ({holder})",
                                path.display()
                            ));
                            let _ = std::fs::remove_file(path);
                        }
                        Some(true) => {
                            return Err(Error::Output(format!(
                                "another {what} is working in this folder ({holder}); wait for it to end (lock file {})",
                                path.display()
                            )))
                        }
                        None => {
                            return Err(Error::Output(format!(
                                "another {what} holds this folder ({holder}); it runs on another host, so this one cannot tell whether it still runs. If it does not, remove the lock file {}",
                                path.display()
                            )))
                        }
                    }
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Err(Error::Output(format!(
            "cannot take the lock {}",
            path.display()
        )))
    }
}

impl Lock {
    /// What taking the lock had to clear away, for the caller to report.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_is_named_and_a_dead_one_replaced() {
        let dir = std::env::temp_dir().join(format!("lp-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".lock");
        let held = Lock::take(&path, "run").unwrap();
        let err = Lock::take(&path, "run").unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&hostname()), "{err}");
        drop(held);
        assert!(!path.exists());
        // A dead process of this host (pid beyond pid_max).
        std::fs::write(
            &path,
            format!("4999999 {} 2026-01-01T00:00:00Z\n", hostname()),
        )
        .unwrap();
        let _again = Lock::take(&path, "run").unwrap();
        let warning = _again.warning().unwrap();
        assert!(warning.contains("pid 4999999"), "{warning}");
        // Another host: refused, named.
        drop(_again);
        std::fs::write(&path, "12 build-7 2026-01-01T00:00:00Z\n").unwrap();
        let err = Lock::take(&path, "run").unwrap_err().to_string();
        assert!(
            err.contains("build-7") && err.contains("another host"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
