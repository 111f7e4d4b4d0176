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
    taken: HashSet<[u64; 2]>,
}

impl FileNamer {
    /// A namer with room for the names of `records` records at once.
    pub fn with_capacity(records: usize) -> FileNamer {
        FileNamer {
            taken: HashSet::with_capacity(records),
        }
    }

    /// The file stem (no extension) for `id`.
    pub fn name(&mut self, id: &str) -> String {
        let mut name = preferred(id);
        let key = |name: &str| {
            crate::util::digest::words(typst::utils::hash128(&name.to_ascii_lowercase()))
        };
        if !self.taken.insert(key(&name)) {
            name = hashed(id);
            self.taken.insert(key(&name));
        }
        name
    }

    /// The stem [`FileNamer::name`] gave `id`, known to have been `renamed`
    /// (given the hash suffix because the name was taken) or not: for a
    /// later pass over the same records, which keeps no names.
    pub fn named(id: &str, renamed: bool) -> String {
        match renamed {
            true => hashed(id),
            false => preferred(id),
        }
    }

    /// Whether `stem`, given to `id`, is not its preferred name.
    pub fn was_renamed(id: &str, stem: &str) -> bool {
        stem != preferred(id)
    }
}

/// The name `id` gets when no earlier record took it: the id itself when
/// it is a plain file name, else the hashed form.
fn preferred(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if plain {
        id.to_owned()
    } else {
        hashed(id)
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
