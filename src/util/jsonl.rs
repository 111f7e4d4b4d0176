//! JSON Lines files: one serde value a line, each line written whole with
//! one `write`. The run's journal, the delivery journal and the record of
//! reprints are all written and read here.
//!
//! A reader of an append-only log ([`read`]) skips a line it cannot parse:
//! only the last line can be one, cut short by a crash before it was
//! complete, and what it would have recorded did not happen as far as the
//! log can prove (a message not journaled as accepted is sent again).
//!
//! # Chained logs
//! The logs a run keeps after it finished (deliveries, reprints, piece
//! outcomes) are chained ([`Chained`], [`read_chained`]): every line starts
//! with `"prev"`, the SHA-256 of the line before it, and the first line's
//! `prev` is [`origin`], a hash of the log's name and the run id. A line
//! edited, removed, inserted, repeated or copied from another run's log
//! breaks the chain at the next line, and a reader names that line. (This
//! detects edits; it is not a signature: whoever can rewrite the whole log
//! can recompute the chain, as with the manifest's digest.) Only a last
//! line without its newline, cut short by a crash, is taken as never
//! written: a reader leaves it out and the next writer cuts it off.

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

/// The field of a chained log's line that links it to the line before.
const PREV: &str = "prev";

/// The `prev` of a chained log's first line: the SHA-256 of
/// `letterpress <name> <run_id>`, so a log cannot be moved to another run
/// or stand in for another log.
pub fn origin(name: &str, run_id: &str) -> String {
    crate::util::digest::sha256_hex(format!("letterpress {name} {run_id}").as_bytes())
}

/// Where and why a chained log cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The line (from 1).
    pub line: usize,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// A chained log read whole: its values, and the hash the next line links to.
struct Links<T> {
    values: Vec<T>,
    last: String,
    /// The length of the whole lines (a torn last line after them).
    whole: u64,
}

/// Reads the lines of a chained log (see the module docs) from `bytes`.
fn links<T: DeserializeOwned>(bytes: &[u8], origin: &str) -> Result<Links<T>, Broken> {
    #[derive(serde::Deserialize)]
    struct Link {
        prev: Option<String>,
    }
    let mut out = Links {
        values: Vec::new(),
        last: origin.to_owned(),
        whole: 0,
    };
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if line.last() != Some(&b'\n') {
            break; // torn by a crash: never written
        }
        let broken = |why: String| Broken { line: i + 1, why };
        let link: Link =
            serde_json::from_slice(line).map_err(|e| broken(format!("not a JSON object ({e})")))?;
        match link.prev {
            Some(p) if p == out.last => {}
            Some(_) if i == 0 => return Err(broken(
                "does not start the log of this run: the file is another run's or another log's, or its first line was edited".into(),
            )),
            Some(_) => return Err(broken(format!(
                "does not follow line {i}: one of the two was edited, or a line between them removed, inserted or repeated"
            ))),
            None => return Err(broken(format!("has no `{PREV}` link to the line before it"))),
        }
        let value = serde_json::from_slice(line).map_err(|e| broken(e.to_string()))?;
        out.values.push(value);
        out.last = hex(ring::digest::digest(&ring::digest::SHA256, line).as_ref());
        out.whole += line.len() as u64;
    }
    Ok(out)
}

/// The values of the chained log at `path`, or where its chain breaks;
/// none if there is no such file.
pub fn read_links<T: DeserializeOwned>(
    path: &Path,
    origin: &str,
) -> std::io::Result<Result<Vec<T>, Broken>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(links(&bytes, origin).map(|l| l.values)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Vec::new())),
        Err(e) => Err(e),
    }
}

/// The values of the chained log at `path`, after checking every link;
/// none if there is no such file. The error names the first line that
/// breaks the chain: nothing is done (exit 2).
pub fn read_chained<T: DeserializeOwned>(
    path: &Path,
    origin: &str,
) -> crate::error::Result<Vec<T>> {
    read_links(path, origin)
        .map_err(|e| crate::error::Error::io(path, e))?
        .map_err(|b| chain_error(path, &b))
}

/// The error of a broken chained log: nothing is done (exit 2).
fn chain_error(path: &Path, b: &Broken) -> crate::error::Error {
    crate::error::Error::Input(format!(
        "{} {b}; nothing was done (`letterpress verify` lists every problem of the run)",
        path.display()
    ))
}

/// A chained log open for appending (see the module docs).
pub struct Chained {
    out: Writer,
    last: String,
}

impl Chained {
    /// Opens the chained log at `path` (created if missing) after checking
    /// every link, cuts off a torn last line, and returns it with the
    /// values it holds.
    pub fn open<T: DeserializeOwned>(
        path: &Path,
        origin: &str,
    ) -> crate::error::Result<(Chained, Vec<T>)> {
        let io = |e| crate::error::Error::io(path, e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
        let links = links(&bytes, origin).map_err(|b| chain_error(path, &b))?;
        if links.whole < bytes.len() as u64 {
            file.set_len(links.whole).map_err(io)?;
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(links.whole)).map_err(io)?;
        let chained = Chained {
            out: Writer::new(file),
            last: links.last,
        };
        Ok((chained, links.values))
    }

    /// A new chained log in the empty `file`, whose first line links to
    /// `origin` (a log rewritten in full).
    pub fn new(file: File, origin: &str) -> Chained {
        Chained {
            out: Writer::new(file),
            last: origin.to_owned(),
        }
    }

    /// Appends `value` (a JSON object) as one line linked to the last (to
    /// the buffer; see [`Chained::sync`]).
    pub fn push<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let body = serde_json::to_vec(value).expect("JSON line values serialize");
        let rest = body
            .strip_prefix(b"{")
            .expect("a chained log's values are JSON objects");
        let mut line = format!("{{\"{PREV}\":\"{}\"", self.last).into_bytes();
        if rest != b"}" {
            line.push(b',');
        }
        line.extend_from_slice(rest);
        line.push(b'\n');
        self.last = hex(ring::digest::digest(&ring::digest::SHA256, &line).as_ref());
        self.out.count(&line);
        self.out.out.write_all(&line)
    }

    /// Writes out what is buffered and forces it to disk.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.sync()
    }
}

/// Appends `values` to the chained log at `path` and forces them to disk.
pub fn append_chained<T: Serialize>(
    path: &Path,
    origin: &str,
    values: &[T],
) -> crate::error::Result<()> {
    let (mut log, _) = Chained::open::<serde::de::IgnoredAny>(path, origin)?;
    for v in values {
        log.push(v).map_err(|e| crate::error::Error::io(path, e))?;
    }
    log.sync().map_err(|e| crate::error::Error::io(path, e))
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

    #[test]
    fn a_chained_log_names_the_line_where_it_was_edited() {
        let dir = std::env::temp_dir().join(format!("lp-chain-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        let _ = std::fs::remove_file(&path);
        let origin = origin("log", "run-1");
        let v = |n: u32| serde_json::json!({"n": n});
        append_chained(&path, &origin, &[v(1), v(2)]).unwrap();
        append_chained(&path, &origin, &[v(3)]).unwrap();
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct N {
            n: u32,
        }
        let read = |p: &Path, o: &str| read_chained::<N>(p, o);
        let ns = |n: &[u32]| n.iter().map(|&n| N { n }).collect::<Vec<_>>();
        assert_eq!(read(&path, &origin).unwrap(), ns(&[1, 2, 3]));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("{{\"prev\":\"{origin}\",\"n\":1}}\n")));
        // Another run's origin: line 1 does not follow.
        let err = read(&path, &super::origin("log", "run-2")).unwrap_err();
        assert!(err.to_string().contains("line 1: does not start"), "{err}");
        let lines: Vec<&str> = text.lines().collect();
        let broken = [
            (format!("{}\n{}\n", lines[0], lines[2]), 2), // removed
            (format!("{}\n{}\n{}\n", lines[0], lines[0], lines[1]), 2), // repeated
            (text.replace("\"n\":2", "\"n\":9"), 3),      // edited
            (format!("{}\n{{\"n\":4}}\n", text.trim_end()), 4), // no link
        ];
        for (bad, line) in broken {
            std::fs::write(&path, &bad).unwrap();
            let err = read(&path, &origin).unwrap_err().to_string();
            assert!(err.contains(&format!("line {line}: ")), "{bad}: {err}");
        }
        // A line torn by a crash is left out, and cut off by the next writer.
        std::fs::write(&path, format!("{text}{{\"prev\":\"ab")).unwrap();
        assert_eq!(read(&path, &origin).unwrap().len(), 3);
        append_chained(&path, &origin, &[v(4)]).unwrap();
        assert_eq!(read(&path, &origin).unwrap(), ns(&[1, 2, 3, 4]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
