//! Files written so that a reader, a crash or a power cut never sees half
//! of one: a temporary file in the same folder, renamed into place, with the
//! data and the folder forced to disk where it matters; the check of a
//! file against the size and SHA-256 a manifest recorded; and files named
//! by a run's own records opened and deleted only inside the run folder.
//!
//! # Paths read from a file stay inside their folder
//! A journal, a reprint record or a purge record names files relative to
//! the run folder, and whoever can edit such a file could otherwise make a
//! command read or delete any file it can reach. [`check_relative`] refuses
//! a path that is empty, absolute, holds `..` or `.` or a backslash, and
//! [`open_inside`] and [`remove_inside`] walk to the file one folder at a
//! time from the run folder (`openat` with `O_NOFOLLOW`, then `unlinkat`),
//! so a symbolic link anywhere on the way, even one swapped in while the
//! command works, is refused rather than followed.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

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
    let mut file = Streamed::create(path)?;
    match write(&mut file) {
        Ok(()) => file.commit(sync),
        Err(e) => Err(e),
    }
}

/// A file written as a stream, atomically: into a temporary file in its
/// folder (see [`temp_path`]), hashed as it goes, renamed into place by
/// [`Streamed::commit`]. Dropped uncommitted, the temporary file goes.
/// Several can be open at once (a print file, its inserter file, the
/// job ticket), each written as the pieces come.
pub struct Streamed {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    digest: ring::digest::Context,
    bytes: u64,
}

impl Streamed {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> std::io::Result<Streamed> {
        let tmp = temp_path(path, "");
        let file = std::fs::File::create(&tmp)?;
        Ok(Streamed {
            tmp,
            path: path.to_owned(),
            out: Some(std::io::BufWriter::with_capacity(1 << 16, file)),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        })
    }

    /// Puts the complete file in place (with `sync`, on disk first);
    /// returns its SHA-256 (hex) and size.
    pub fn commit(mut self, sync: bool) -> std::io::Result<(String, u64)> {
        let out = self.out.take().expect("a file is committed once");
        let written = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| if sync { file.sync_all() } else { Ok(()) });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        commit(&self.tmp, &self.path, sync)?;
        let digest = std::mem::replace(
            &mut self.digest,
            ring::digest::Context::new(&ring::digest::SHA256),
        );
        Ok((
            crate::util::digest::hex(digest.finish().as_ref()),
            self.bytes,
        ))
    }
}

impl Write for Streamed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = self.out.as_mut().expect("an open file");
        let n = out.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("an open file").flush()
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
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

/// Checks the file `rel` under `root` (see [`open_inside`]) against a
/// recorded size and SHA-256 (hex).
pub fn check_file(root: &Path, rel: &str, sha256: &str, bytes: u64) -> Result<(), FileProblem> {
    let data = read_inside(root, rel).map_err(FileProblem::Unreadable)?;
    if data.len() as u64 == bytes && sha256_hex(&data) == sha256 {
        Ok(())
    } else {
        Err(FileProblem::Differs)
    }
}

/// Why `rel`, a path read from a file, may not name a file under its
/// folder: it is empty, absolute, or holds `..`, `.`, a backslash or a NUL.
pub fn check_relative(rel: &str) -> Result<(), String> {
    if rel.is_empty() {
        return Err("an empty path".into());
    }
    if rel.contains(['\\', '\0']) {
        return Err(format!(
            "`{rel}` holds a backslash or NUL, which no file of a run has"
        ));
    }
    if rel.starts_with('/') {
        return Err(format!("`{rel}` is an absolute path"));
    }
    if rel
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(format!(
            "`{rel}` climbs out of or around its folder (`..`, `.` or `//`)"
        ));
    }
    debug_assert!(Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    Ok(())
}

/// An error for a path [`check_relative`] refuses.
fn outside(why: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{why}: a run's files are named relative to its folder"),
    )
}

/// The folder holding `rel` under `root`, opened one folder at a time
/// without following a symbolic link, and `rel`'s last part.
fn parent_inside<'a>(root: &Path, rel: &'a str) -> std::io::Result<(OwnedFd, &'a str)> {
    check_relative(rel).map_err(outside)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let mut dir = rustix::fs::open(root, flags, Mode::empty())?;
    let (folders, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    for part in folders.split('/').filter(|p| !p.is_empty()) {
        dir = rustix::fs::openat(&dir, part, flags, Mode::empty())
            .map_err(|e| link_refused(e, rel, part))?;
    }
    Ok((dir, name))
}

/// The error of a step of the walk: a symbolic link (`ELOOP`, or
/// `ENOTDIR` for a link where a folder should be) is named as such.
fn link_refused(e: rustix::io::Errno, rel: &str, part: &str) -> std::io::Error {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "`{part}` in `{rel}` is a symbolic link or not a folder: links in a run folder are never followed"
            ),
        )
    } else {
        e.into()
    }
}

/// Opens the file `rel` under `root` for reading, never leaving `root`
/// (see the module docs).
pub fn open_inside(root: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    let (dir, name) = parent_inside(root, rel)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, name, flags, Mode::empty())
        .map_err(|e| link_refused(e, rel, name))?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{rel}` is not a file"),
        ));
    }
    Ok(file)
}

/// The bytes of the file `rel` under `root` (see [`open_inside`]).
pub fn read_inside(root: &Path, rel: &str) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut open_inside(root, rel)?, &mut data)?;
    Ok(data)
}

/// Checks that `rel` under `root` is a file reached without a symbolic
/// link (see the module docs), or is not there at all.
pub fn check_inside(root: &Path, rel: &str) -> std::io::Result<()> {
    let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let (dir, name) = match parent_inside(root, rel) {
        Err(e) if not_found(&e) => return Ok(()),
        other => other?,
    };
    match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => Ok(()),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{rel}` is a symbolic link or not a file"),
        )),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the file at `path` if there is one (a run's own state file,
/// whose absence is not an error).
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Deletes the file `rel` under `root`, never leaving `root` and never
/// deleting a symbolic link's target or a folder (see the module docs).
pub fn remove_inside(root: &Path, rel: &str) -> std::io::Result<()> {
    let (dir, name) = parent_inside(root, rel)?;
    let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{rel}` is a symbolic link or not a file: it is not deleted"),
        ));
    }
    rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
    Ok(())
}

/// Creates (or truncates) the file `rel` under `root` for writing, never
/// leaving `root` (see the module docs).
pub fn create_inside(root: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    let (dir, name) = parent_inside(root, rel)?;
    let flags =
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(0o644))
        .map_err(|e| link_refused(e, rel, name))?;
    Ok(std::fs::File::from(fd))
}

/// Renames `from` over `to`, both under `root`, never leaving `root` (see
/// the module docs), and forces `to`'s folder to disk.
pub fn rename_inside(root: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let (from_dir, from_name) = parent_inside(root, from)?;
    let (to_dir, to_name) = parent_inside(root, to)?;
    rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)?;
    rustix::fs::fsync(&to_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_files_stay_inside_their_folder() {
        let dir = std::env::temp_dir().join(format!("lp-inside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        std::fs::create_dir_all(run.join("pdf")).unwrap();
        std::fs::write(run.join("pdf/a.pdf"), b"a").unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), run.join("pdf/link.pdf")).unwrap();
        std::os::unix::fs::symlink(&dir, run.join("up")).unwrap();
        assert_eq!(read_inside(&run, "pdf/a.pdf").unwrap(), b"a");
        for bad in [
            "../secret",
            "pdf/../../secret",
            "/etc/passwd",
            "",
            "pdf//a.pdf",
            "./pdf/a.pdf",
            "pdf\\a.pdf",
        ] {
            let e = read_inside(&run, bad).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        for link in ["pdf/link.pdf", "up/secret"] {
            let e = read_inside(&run, link).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{link}: {e}");
            let e = remove_inside(&run, link).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{link}: {e}");
        }
        assert!(
            remove_inside(&run, "pdf").is_err(),
            "a folder is not deleted"
        );
        assert!(
            create_inside(&run, "up/new").is_err(),
            "nor written through a link"
        );
        assert!(!dir.join("new").exists());
        std::io::Write::write_all(&mut create_inside(&run, "pdf/b.tmp").unwrap(), b"b").unwrap();
        rename_inside(&run, "pdf/b.tmp", "pdf/b.pdf").unwrap();
        assert_eq!(read_inside(&run, "pdf/b.pdf").unwrap(), b"b");
        remove_inside(&run, "pdf/a.pdf").unwrap();
        assert!(!run.join("pdf/a.pdf").exists());
        assert!(dir.join("secret").exists(), "the target is untouched");
        std::fs::remove_dir_all(&dir).unwrap();
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
