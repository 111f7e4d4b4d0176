//! Output files: safe names and atomic writes.
//!
//! Stage 4 of the data path. Every file the engine produces is written to a
//! temporary file in the same folder and renamed into place, so a reader (or a
//! re-run after a crash) never sees a half-written file.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use crate::layout::hex;

/// The prefix of temporary files; a completed run leaves none behind.
pub const TEMP_PREFIX: &str = ".lp-tmp-";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// flushed, then renamed over `path`. With `sync` (the manifest, the state
/// file), the data is forced to disk before the rename and the folder after
/// it, so the new name survives a power cut too.
pub fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    write_atomic_tagged(path, bytes, sync, "")
}

/// [`write_atomic`] with `tag` in the temporary file's name, so that
/// [`remove_stale_temp_files`] can clean up one writer's files only (a
/// shard's, in folders that several shards write to).
pub fn write_atomic_tagged(
    path: &Path,
    bytes: &[u8],
    sync: bool,
    tag: &str,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!("{TEMP_PREFIX}{tag}{}-{name}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        if sync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Forces a folder's entries (a rename into it, a new file) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Removes temporary files that a killed run left in `dir` (files whose name
/// starts with [`TEMP_PREFIX`] and then `tag`). Final files are never
/// touched. Returns how many were removed.
pub fn remove_stale_temp_files(dir: &Path, tag: &str) -> std::io::Result<usize> {
    let mut removed = 0;
    let prefix = format!("{TEMP_PREFIX}{tag}");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Why a file does not match what a manifest recorded of it.
#[derive(Debug)]
pub enum FileProblem {
    /// It cannot be read (missing, most often).
    Unreadable(std::io::Error),
    /// Its size or SHA-256 differs.
    Differs,
}

/// Checks the file at `path` against a recorded size and SHA-256 (hex).
pub fn check_file(path: &Path, sha256: &str, bytes: u64) -> Result<(), FileProblem> {
    let data = std::fs::read(path).map_err(FileProblem::Unreadable)?;
    if data.len() as u64 == bytes && sha256_hex(&data) == sha256 {
        Ok(())
    } else {
        Err(FileProblem::Differs)
    }
}

/// Escapes text for HTML element content and quoted attribute values (the
/// review pages: run report, proof, diff).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// SHA-256 of `bytes` in lower-case hex.
///
/// Every output file is hashed for the manifest, so this runs for every
/// document. It uses ring (already in the build for TLS), whose assembly
/// implementation is about twice as fast as the portable one of `sha2` on
/// CPUs without SHA extensions; `sha2` stays for streaming hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Turns record ids into file names that are safe on every common file system
/// and never collide within a run.
///
/// An id made only of ASCII letters, digits, `-`, `_` and `.` (not starting
/// with `.`, at most 100 bytes) is used as it is. Any other id has its unsafe
/// characters replaced by `_`, is shortened, and gets `~` plus 16 hex digits of
/// its SHA-256; `~` never occurs in an id used as it is, so the two kinds
/// cannot meet. Two ids that differ only in letter case (which collide on
/// case-insensitive file systems) get the hash suffix for the later one.
#[derive(Debug, Default)]
pub struct FileNamer {
    /// 128-bit hashes of the lower-cased names given out so far.
    taken: HashSet<u128>,
}

impl FileNamer {
    /// The file stem (no extension) for `id`.
    pub fn name(&mut self, id: &str) -> String {
        let plain = !id.is_empty()
            && id.len() <= 100
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        let mut name = if plain { id.to_owned() } else { hashed(id) };
        let key = |name: &str| typst::utils::hash128(&name.to_ascii_lowercase());
        if !self.taken.insert(key(&name)) {
            name = hashed(id);
            self.taken.insert(key(&name));
        }
        name
    }
}

fn hashed(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{safe}~{}", &sha256_hex(id.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_distinct() {
        let mut n = FileNamer::default();
        assert_eq!(n.name("C-0001"), "C-0001");
        let a = n.name("a/b");
        let b = n.name("a:b");
        assert!(a.starts_with("a_b~") && b.starts_with("a_b~") && a != b);
        let upper = n.name("c-0001");
        assert!(upper.starts_with("c-0001~"), "{upper}");
        let dots = n.name("..");
        assert!(!dots.starts_with('.'));
        assert!(n.name(&"x".repeat(500)).len() < 100);
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("lp-out-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.pdf");
        write_atomic(&file, b"one", false).unwrap();
        write_atomic(&file, b"two", true).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.pdf")]);
        // A killed run's temporary file is cleaned up, the final file kept.
        std::fs::write(dir.join(format!("{TEMP_PREFIX}99-b.pdf")), b"half").unwrap();
        assert_eq!(remove_stale_temp_files(&dir, "s2-").unwrap(), 0);
        assert_eq!(remove_stale_temp_files(&dir, "").unwrap(), 1);
        assert!(file.is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
