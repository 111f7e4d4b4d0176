//! The files of a layout version, read once, and its digest.
//!
//! A layout version's digest identifies everything that can change its output.
//! It is the SHA-256 of, for every regular file in the version folder (all
//! sub-folders included) in ascending byte order of its relative path written
//! with `/` separators:
//! the relative path in UTF-8, one NUL byte, the file length as an 8-byte
//! big-endian integer, and the file's bytes. Symbolic links are refused, so a
//! layout cannot reach outside its folder.
//!
//! One file is left out: an `approval.yaml` of an earlier letterpress (an
//! unsigned approval, see [`crate::layout::decisions`]), so a version that
//! still has one can be submitted as it is. Decisions are kept beside the
//! version folders, not in them. The SHA-256 of each file is what
//! `sha256sum` prints for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ring::digest::{Context as Sha256, SHA256};

use crate::error::{Error, Result};
use crate::layout::catalog::Layout;
use crate::model::approval::APPROVAL_FILE;
use crate::util::digest::{hex, sha256_hex};

impl Layout {
    /// Every regular file of the version folder with its relative path
    /// (`/`-separated), in canonical (byte) order. Symbolic links are an error.
    pub fn files(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&self.dir).min_depth(1) {
            let entry = entry.map_err(|e| Error::Layout(format!("{}: {e}", self.dir.display())))?;
            if entry.path_is_symlink() {
                return Err(Error::Layout(format!(
                    "{}: symbolic links are not allowed in a layout",
                    entry.path().display()
                )));
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.dir).expect("inside dir");
            let rel: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    Error::Layout(format!(
                        "{}: file names must be UTF-8",
                        entry.path().display()
                    ))
                })?;
            files.push((rel.join("/"), entry.path().to_path_buf()));
        }
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(files)
    }

    /// Reads every file of the version folder (see [`Layout::files`]) and
    /// computes the layout digest (see the module docs).
    pub fn read_files(&self) -> Result<LayoutFiles> {
        let mut hasher = Sha256::new(&SHA256);
        let mut files = Vec::new();
        let mut hashes = BTreeMap::new();
        for (rel, path) in self.files()? {
            if rel == APPROVAL_FILE {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            hasher.update(rel.as_bytes());
            hasher.update(&[0u8]);
            hasher.update(&(bytes.len() as u64).to_be_bytes());
            hasher.update(&bytes);
            hashes.insert(rel.clone(), sha256_hex(&bytes));
            files.push((rel, bytes));
        }
        Ok(LayoutFiles {
            files,
            digest: hex(hasher.finish().as_ref()),
            hashes,
        })
    }

    /// The layout digest (see the module docs).
    pub fn digest(&self) -> Result<String> {
        Ok(self.read_files()?.digest)
    }
}

/// The contents of a layout version folder, read once.
#[derive(Debug, Clone)]
pub struct LayoutFiles {
    /// Relative path (`/`-separated) and bytes of every file, in canonical order.
    pub files: Vec<(String, Vec<u8>)>,
    /// The layout digest over exactly these files.
    pub digest: String,
    /// SHA-256 of each file (see the module docs).
    pub hashes: BTreeMap<String, String>,
}

impl LayoutFiles {
    /// The bytes of the file at `rel`, if the version folder has it.
    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(r, _)| r == rel)
            .map(|(_, b)| b.as_slice())
    }
}
