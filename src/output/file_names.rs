//! Output files: safe names and atomic writes.
//!
//! Stage 4 of the data path. Every file the engine produces is written to a
//! temporary file in the same folder and renamed into place, so a reader (or a
//! re-run after a crash) never sees a half-written file.

use std::collections::HashSet;

use crate::util::digest::sha256_hex;

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
}
