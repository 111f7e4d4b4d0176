//! Files written so that a reader, a crash or a power cut never sees half
//! of one: a temporary file in the same folder, renamed into place, with the
//! data and the folder forced to disk where it matters; and the check of a
//! file against the size and SHA-256 a manifest recorded.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::util::digest::sha256_hex;

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
    let tmp = temp_path(path, tag);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        Ok(())
    });
    match written {
        Ok(()) => commit(&tmp, path, sync),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes `path` atomically as [`write_atomic`] does, from `write`, which
/// gets the (buffered) file to write to as it goes: for files too large to
/// hold in memory. Returns the SHA-256 (hex) and size of what was written.
pub fn write_streamed(
    path: &Path,
    sync: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<(String, u64)> {
    struct Hashing<W> {
        inner: W,
        digest: ring::digest::Context,
        bytes: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.digest.update(&buf[..n]);
            self.bytes += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let tmp = temp_path(path, "");
    let written = std::fs::File::create(&tmp).and_then(|file| {
        let mut out = Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 16, file),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        };
        write(&mut out)?;
        out.flush()?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_all()?;
        }
        Ok((
            crate::util::digest::hex(out.digest.finish().as_ref()),
            out.bytes,
        ))
    });
    match written {
        Ok(done) => commit(&tmp, path, sync).map(|()| done),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The temporary name under which `path` is written before [`commit`]
/// puts it in place: in the same folder (so the rename is atomic), starting
/// with [`TEMP_PREFIX`] and `tag`, unique to this process.
pub fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    dir.join(format!("{TEMP_PREFIX}{tag}{}-{name}", std::process::id()))
}

/// Renames the complete temporary file `tmp` (see [`temp_path`]) over
/// `path`; with `sync`, forces the folder to disk after, so the new name
/// survives a power cut (the caller has synced the data). On failure the
/// temporary file is removed.
pub fn commit(tmp: &Path, path: &Path, sync: bool) -> std::io::Result<()> {
    let result = std::fs::rename(tmp, path).and_then(|()| match sync {
        true => sync_dir(path.parent().unwrap_or(Path::new("."))),
        false => Ok(()),
    });
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
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

#[cfg(test)]
mod tests {
    use super::*;

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
