//! A print run's working files in its folder, read back within the same
//! attempt: the record spool (its letters' records, for rendering them in
//! mailing order) and the placed pieces (for linking the journal to them).
//! One JSON value a line, sealed: each line ends in an HMAC of its offset
//! and text under a key that lives only in the process's memory, so a line
//! edited, moved or copied between writing and reading back is refused,
//! and the run keeps nothing of a line in memory but where it is.

use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ring::hmac;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Bytes of the HMAC each line keeps (hex: twice as many characters).
const TAG: usize = 16;

/// A sealed file of lines: written, then read back by offset or in order.
pub struct Sealed {
    path: PathBuf,
    key: hmac::Key,
    out: Option<std::io::BufWriter<std::fs::File>>,
    read: Option<std::fs::File>,
    at: u64,
}

impl Sealed {
    /// Starts `name` in `folder` anew (an earlier attempt's is replaced).
    pub fn create(folder: &Path, name: &str) -> Result<Sealed> {
        let path = folder.join(name);
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| Error::Output("no random key for the run's working files".into()))?;
        Ok(Sealed {
            path,
            key,
            out: Some(std::io::BufWriter::with_capacity(1 << 16, file)),
            read: None,
            at: 0,
        })
    }

    /// Appends `value` as a line; returns its offset.
    pub fn push<T: Serialize>(&mut self, value: &T) -> Result<u64> {
        let out = self.out.as_mut().expect("pushed before reading back");
        let mut line = serde_json::to_vec(value).expect("JSON serializes");
        let tag = seal(&self.key, self.at, &line);
        line.push(b'\t');
        line.extend_from_slice(tag.as_bytes());
        line.push(b'\n');
        out.write_all(&line).map_err(|e| Error::io(&self.path, e))?;
        let at = self.at;
        self.at += line.len() as u64;
        Ok(at)
    }

    /// Ends the writing: the file is read back from now on.
    pub fn written(&mut self) -> Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        self.read = Some(file);
        Ok(())
    }

    /// The line at `offset`, checked to be the one written there.
    pub fn read<T: DeserializeOwned>(&self, offset: u64) -> std::result::Result<T, String> {
        let file = self.read.as_ref().expect("read after writing");
        let mut line = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = file
                .read_at(&mut chunk, offset + line.len() as u64)
                .map_err(|e| self.named(e.to_string()))?;
            let end = chunk[..n].iter().position(|&b| b == b'\n');
            line.extend_from_slice(&chunk[..end.unwrap_or(n)]);
            if end.is_some() || n == 0 {
                break;
            }
        }
        self.open(offset, &line)
    }

    /// Every line in order, with its offset.
    pub fn lines<T: DeserializeOwned>(
        &self,
    ) -> Result<impl Iterator<Item = std::result::Result<(u64, T), String>> + '_> {
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut at = 0u64;
        Ok(std::iter::from_fn(move || {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => None,
                Ok(n) => {
                    let offset = at;
                    at += n as u64;
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    Some(self.open(offset, &line).map(|v| (offset, v)))
                }
                Err(e) => Some(Err(self.named(e.to_string()))),
            }
        }))
    }

    /// Checks a line's seal and reads its value.
    fn open<T: DeserializeOwned>(
        &self,
        offset: u64,
        line: &[u8],
    ) -> std::result::Result<T, String> {
        let split = line.iter().rposition(|&b| b == b'\t');
        let (text, tag) = match split {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        if tag != seal(&self.key, offset, text).as_bytes() {
            return Err(self.named(format!(
                "the line at byte {offset} is not the one the run wrote there (the file was changed while the run went on); start the run again with --resume"
            )));
        }
        serde_json::from_slice(text).map_err(|e| self.named(e.to_string()))
    }

    fn named(&self, why: String) -> String {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        format!("{name}: {why}")
    }

    /// Removes the file: the run is done with it.
    pub fn remove(self) -> Result<()> {
        drop(self.read);
        drop(self.out);
        crate::util::fs::remove_if_present(&self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// The seal of the line `text` at `offset`.
fn seal(key: &hmac::Key, offset: u64, text: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(&offset.to_le_bytes());
    ctx.update(text);
    crate::util::digest::hex(&ctx.sign().as_ref()[..TAG])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_changed_moved_or_copied_after_it_was_written_is_refused() {
        let dir = std::env::temp_dir().join(format!("lp-sealed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = Sealed::create(&dir, "t.jsonl").unwrap();
        let first = f.push(&("C-1", "Lee")).unwrap();
        let second = f.push(&("C-2", "Lee")).unwrap();
        f.written().unwrap();
        assert_eq!(f.read::<(String, String)>(first).unwrap().0, "C-1");
        assert_eq!(f.read::<(String, String)>(second).unwrap().0, "C-2");
        let all: Vec<(u64, (String, String))> = f.lines().unwrap().map(|l| l.unwrap()).collect();
        assert_eq!((all[1].0, all[1].1 .0.as_str()), (second, "C-2"));
        let path = dir.join("t.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        // The same length, another name: the seal tells.
        std::fs::write(&path, text.replacen("Lee", "Lex", 1)).unwrap();
        let why = f.read::<(String, String)>(first).unwrap_err();
        assert!(why.contains("not the one the run wrote"), "{why}");
        assert!(f.read::<(String, String)>(second).is_ok());
        // The second line copied over the first (same length): refused.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n", lines[1], lines[1])).unwrap();
        assert!(f.read::<(String, String)>(first).is_err());
        assert!(f.lines::<(String, String)>().unwrap().any(|l| l.is_err()));
        f.remove().unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
