//! JSON Lines files: one serde value a line, each line written whole with
//! one `write`. The run's journal, the delivery journal and the record of
//! reprints are all written and read here.
//!
//! A reader of an append-only log ([`read`]) skips a line it cannot parse:
//! only the last line can be one, cut short by a crash before it was
//! complete, and what it would have recorded did not happen as far as the
//! log can prove (a message not journaled as accepted is sent again).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::util::digest::hex;

/// Writes values as JSON lines, buffered, and keeps the SHA-256, the count
/// and the size of the lines of its file (for a manifest's entry).
pub struct Writer {
    out: BufWriter<File>,
    hash: ring::digest::Context,
    lines: usize,
    bytes: u64,
}

impl Writer {
    /// Writes to `file` at its current position.
    pub fn new(file: File) -> Writer {
        Writer {
            out: BufWriter::with_capacity(1 << 16, file),
            hash: ring::digest::Context::new(&ring::digest::SHA256),
            lines: 0,
            bytes: 0,
        }
    }

    /// Appends to the file at `path`, creating it if needed.
    pub fn append(path: &Path) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Writer::new(file))
    }

    /// Counts a line that is already in the file (and ends in `\n`)
    /// without writing it.
    pub fn count(&mut self, line: &[u8]) {
        self.hash.update(line);
        self.lines += 1;
        self.bytes += line.len() as u64;
    }

    /// Appends `value` as one line (to the buffer; see [`Writer::sync`]).
    pub fn push<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value).expect("JSON line values serialize");
        line.push(b'\n');
        self.count(&line);
        self.out.write_all(&line)
    }

    /// Writes out what is buffered (to the operating system).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Writes out what is buffered and forces it to disk.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// The SHA-256 (hex) of every line written or counted.
    pub fn sha256(&self) -> String {
        hex(self.hash.clone().finish().as_ref())
    }

    /// How many lines were written or counted.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Their size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Appends one `value` to the log at `path` and forces it to disk.
pub fn append<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut w = Writer::append(path)?;
    w.push(value)?;
    w.sync()
}

/// The values of the log at `path`, in order; none if there is no such
/// file. A line that does not parse is skipped (see the module docs).
pub fn read<T: DeserializeOwned>(path: &Path) -> std::io::Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_hashed_and_a_cut_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("lp-jsonl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        append(&path, &serde_json::json!({"n": 1})).unwrap();
        let mut w = Writer::append(&path).unwrap();
        w.push(&serde_json::json!({"n": 2})).unwrap();
        w.sync().unwrap();
        assert_eq!(w.lines(), 1);
        assert_eq!(w.bytes(), 8);
        assert_eq!(w.sha256(), crate::util::digest::sha256_hex(b"{\"n\":2}\n"));
        // A crash cut the last line short.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"n\":")
            .unwrap();
        let values: Vec<serde_json::Value> = read(&path).unwrap();
        assert_eq!(
            values,
            vec![serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]
        );
        assert!(read::<serde_json::Value>(&dir.join("none"))
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
