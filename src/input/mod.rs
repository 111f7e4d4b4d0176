//! Streaming readers for customer data: CSV, JSON (an array of objects) and
//! JSONL (one object a line).
//!
//! Stage 1 of the data path. Records are read one at a time from a buffered
//! reader, so a file of any size is never held in memory. A record that cannot
//! be parsed becomes a [`RawRecord`] whose `data` is an error naming its line;
//! reading goes on with the next record. Only a file whose structure is broken
//! as a whole (no CSV header, a JSON file that is not an array, an unclosed
//! array) is an [`Error`], found by [`Input::scan`] before a run writes
//! anything.
//!
//! Decisions: a UTF-8 byte order mark is skipped. Blank JSONL lines are not
//! records. In CSV, an empty cell means "no value" and a dotted header such as
//! `address.city` builds nested objects. `index` counts records from 0 in
//! input order; `line` is the 1-based line where the record starts. Empty CSV
//! cells are left out, so an object whose cells are all empty is absent. A single
//! record larger than [`MAX_RECORD_BYTES`] fails without being held in memory.

pub mod codepages;
pub mod feedback;
pub mod fixed;
pub mod sql;
pub mod xml;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ring::digest::{Context as Sha256, SHA256};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::layout::LayoutMeta;
use crate::model::vocab::Format;
use crate::util::digest::hex;

/// The largest single record (a CSV row, a JSONL line, a JSON array element).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// One record as read, before the schema check.
#[derive(Debug)]
pub struct RawRecord {
    /// Position in the input, from 0.
    pub index: usize,
    /// The 1-based line the record starts on.
    pub line: u64,
    /// The record, or why it could not be read.
    pub data: std::result::Result<Map<String, Value>, String>,
}

/// What [`Input::scan`] learnt about a whole file.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Number of records (well-formed or not).
    pub records: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// A data file and its format.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The layout's mapping, for the formats that need one.
    mapping: Mapping,
}

/// How records are found in a format that needs the layout's say.
#[derive(Debug, Clone)]
enum Mapping {
    None,
    Xml(std::sync::Arc<xml::XmlMap>),
    Fixed(std::sync::Arc<fixed::FixedMap>),
    Sql(std::sync::Arc<sql::SqlSource>),
}

/// An iterator over the records of an input. `Err` means the file's structure
/// is broken and no further record can be read.
pub type Records = Box<dyn Iterator<Item = Result<RawRecord>> + Send>;

impl Input {
    /// Describes `path` for records of the layout `meta`, taking the format
    /// from `format` or the extension. XML and fixed-width files are read
    /// with the layout's `input` mapping, which must be there. A
    /// `postgresql://` URL is read with `query` (see [`sql`]).
    pub fn new(
        path: &Path,
        format: Option<Format>,
        query: Option<&str>,
        meta: &LayoutMeta,
    ) -> Result<Input> {
        let text = path.to_string_lossy();
        if sql::is_url(&text) {
            return Ok(Input {
                path: path.to_path_buf(),
                format: Format::Postgresql,
                mapping: Mapping::Sql(sql::SqlSource::new(&text, query)?.into()),
            });
        }
        if query.is_some() {
            return Err(Error::Usage(
                "--query reads from a database: give --data postgresql://USER@HOST/DB".into(),
            ));
        }
        let format = format.or_else(|| Format::from_path(path)).ok_or_else(|| {
            Error::Usage(format!(
                "cannot tell the format of `{}` from its extension; pass --format csv|json|jsonl|xml|fixed",
                path.display()
            ))
        })?;
        let settings = meta.input.as_ref();
        let missing = |what: &str| {
            Error::Usage(format!(
                "{} {} has no `input.{what}` mapping in its layout.yaml, so it cannot read {what} data; see the book's chapter \"Data in\"",
                meta.name, meta.version
            ))
        };
        let mapping = match format {
            Format::Xml => {
                let xml = settings
                    .and_then(|s| s.xml.as_ref())
                    .ok_or_else(|| missing("xml"))?;
                Mapping::Xml(xml::XmlMap::compile(xml, &meta.fields)?.into())
            }
            Format::Fixed => {
                let fixed = settings
                    .and_then(|s| s.fixed.as_ref())
                    .ok_or_else(|| missing("fixed"))?;
                Mapping::Fixed(fixed::FixedMap::compile(fixed)?.into())
            }
            _ => Mapping::None,
        };
        Ok(Input {
            path: path.to_path_buf(),
            format,
            mapping,
        })
    }

    /// Checks the layout's `input` mappings (XML paths and prefixes,
    /// fixed-width offsets and types) without reading data, so `layouts
    /// check` finds a broken mapping before a run does.
    pub fn check_mapping(meta: &LayoutMeta) -> Result<()> {
        let Some(settings) = &meta.input else {
            return Ok(());
        };
        if let Some(x) = &settings.xml {
            xml::XmlMap::compile(x, &meta.fields)?;
        }
        if let Some(f) = &settings.fixed {
            fixed::FixedMap::compile(f)?;
        }
        Ok(())
    }

    /// Describes `path` in a format that needs no layout mapping (CSV,
    /// JSON, JSONL); XML and fixed-width are refused.
    pub fn plain(path: &Path, format: Format) -> Result<Input> {
        if matches!(format, Format::Xml | Format::Fixed | Format::Postgresql) {
            return Err(Error::Usage(format!(
                "{} data is read with a layout's mapping",
                format.name()
            )));
        }
        Ok(Input {
            path: path.to_path_buf(),
            format,
            mapping: Mapping::None,
        })
    }

    fn open(&self) -> Result<BufReader<File>> {
        let file = File::open(&self.path)
            .map_err(|e| {
                Error::Input(format!(
                    "cannot open `{}`: {e} (check the --data path; relative paths start from the current folder)",
                    self.path.display()
                ))
            })?;
        Ok(BufReader::with_capacity(256 << 10, file))
    }

    /// Reads the whole file once: hashes it, counts its records and checks its
    /// structure. Per-record problems are left for the run.
    pub fn scan(&self) -> Result<InputSummary> {
        if let Mapping::Sql(source) = &self.mapping {
            return scan_rows(source.rows()?);
        }
        let hashing = Hashing {
            inner: self.open()?,
            hasher: Sha256::new(&SHA256),
            bytes: 0,
        };
        let mut reader = BufReader::with_capacity(256 << 10, hashing);
        let mut records = 0;
        for rec in self.read(&mut reader)? {
            rec?;
            records += 1;
        }
        // Drain anything a reader did not need (e.g. trailing blank lines).
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| Error::Input(format!("{}: {e}", self.path.display())))?;
        let hashing = reader.into_inner();
        Ok(InputSummary {
            sha256: hex(hashing.hasher.finish().as_ref()),
            records,
            bytes: hashing.bytes,
        })
    }

    /// The column names of a CSV file's header row (`None` for JSON).
    pub fn csv_columns(&self) -> Result<Option<Vec<String>>> {
        if self.format != Format::Csv {
            return Ok(None);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(self.open()?);
        let header = reader.byte_headers().map_err(|e| {
            Error::Input(format!(
                "{}: cannot read the header row: {e}",
                self.path.display()
            ))
        })?;
        Ok(Some(
            header
                .iter()
                .map(|h| String::from_utf8_lossy(h).trim().to_owned())
                .collect(),
        ))
    }

    /// Refuses an input that cannot hold a batch for a layout whose record
    /// id is `id_field`: one without records (a header row only), or a CSV
    /// file whose header has no id column, which is nearly always another
    /// delimiter (`;` from a spreadsheet set to a European locale) or the
    /// wrong file. Both would otherwise fail every record one by one.
    pub fn check_shape(&self, summary: &InputSummary, id_field: &str) -> Result<()> {
        let name = self.path.display();
        if let Some(columns) = self.csv_columns()? {
            let top = id_field.split('.').next().unwrap_or(id_field);
            if !columns.iter().any(|c| c.split('.').next() == Some(top)) {
                let joined = columns.join(",");
                let hint = [';', '\t', '|']
                    .into_iter()
                    .find(|d| joined.contains(*d))
                    .map_or(String::new(), |d| {
                        format!(
                            "; the header seems to be separated by `{}`, but letterpress reads comma-separated files: export the file with commas",
                            d.escape_default()
                        )
                    });
                return Err(Error::Input(format!(
                    "{name}:1: the header row has no `{id_field}` column, which the layout uses as record id{hint}"
                )));
            }
        }
        if summary.records == 0 && self.format == Format::Postgresql {
            return Err(Error::Input(format!(
                "{name}: the query returned no rows; there is nothing to render"
            )));
        }
        if summary.records == 0 {
            return Err(Error::Input(format!(
                "{name}: the file has no records{}; there is nothing to render",
                if self.format == Format::Csv {
                    " (only a header row)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// Refuses an input whose record count is not the `expected` one (a
    /// control total from the sender: `--expect-records`), naming both
    /// figures, before anything is rendered: an operator must never print
    /// 9,998 letters of a 10,000-record file without knowing.
    pub fn check_count(&self, summary: &InputSummary, expected: Option<usize>) -> Result<()> {
        match expected {
            Some(n) if n != summary.records => Err(Error::Input(format!(
                "{}: the data holds {} records, but --expect-records says {}; nothing was rendered. Find the records missing or extra (a cut transfer, a file sent twice) before going on",
                self.path.display(),
                crate::util::stop::count(summary.records),
                crate::util::stop::count(n)
            ))),
            _ => Ok(()),
        }
    }

    /// The query of a database input.
    pub fn query(&self) -> Option<&str> {
        match &self.mapping {
            Mapping::Sql(source) => Some(&source.query),
            _ => None,
        }
    }

    /// Streams the records of the file.
    pub fn records(&self) -> Result<Records> {
        if let Mapping::Sql(source) = &self.mapping {
            return Ok(Box::new(source.rows()?));
        }
        let reader = self.open()?;
        Ok(Box::new(self.read(reader)?))
    }

    fn read<'a, R: BufRead + Send + 'a>(
        &self,
        mut reader: R,
    ) -> Result<Box<dyn Iterator<Item = Result<RawRecord>> + Send + 'a>> {
        let name = self.path.display().to_string();
        match &self.mapping {
            Mapping::Xml(map) => {
                skip_bom(&mut reader).map_err(|e| Error::Input(format!("{name}: {e}")))?;
                Ok(Box::new(xml::XmlRecords::new(reader, map.clone(), name)))
            }
            Mapping::Fixed(map) => Ok(Box::new(fixed::FixedRecords::new(
                reader,
                map.clone(),
                name,
            ))),
            Mapping::Sql(_) => unreachable!("rows are not read from a file"),
            Mapping::None => read_records(self.format, reader, &self.path),
        }
    }
}

/// Counts and hashes the rows of a database query: each row as its JSON
/// and a line end (a row that cannot be read, as its reason).
fn scan_rows(rows: sql::SqlRecords) -> Result<InputSummary> {
    let mut hasher = Sha256::new(&SHA256);
    let (mut records, mut bytes) = (0, 0u64);
    for row in rows {
        let line = match row?.data {
            Ok(map) => serde_json::to_vec(&map).expect("a record serializes"),
            Err(e) => e.into_bytes(),
        };
        hasher.update(&line);
        hasher.update(b"\n");
        bytes += line.len() as u64 + 1;
        records += 1;
    }
    Ok(InputSummary {
        sha256: hex(hasher.finish().as_ref()),
        records,
        bytes,
    })
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn read_records<'a, R: BufRead + Send + 'a>(
    format: Format,
    mut reader: R,
    path: &Path,
) -> Result<Box<dyn Iterator<Item = Result<RawRecord>> + Send + 'a>> {
    let name = path.display().to_string();
    skip_bom(&mut reader).map_err(|e| Error::Input(format!("{name}: {e}")))?;
    Ok(match format {
        Format::Csv => Box::new(CsvRecords::new(reader, name)?),
        Format::Jsonl => Box::new(JsonlRecords {
            reader,
            name,
            line: 0,
            index: 0,
        }),
        Format::Json => Box::new(JsonArrayRecords::new(reader, name)?),
        Format::Xml | Format::Fixed | Format::Postgresql => {
            unreachable!("read with the layout's mapping")
        }
    })
}

fn skip_bom<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// Reads up to and including the next `\n`, keeping at most `limit` bytes in
/// `buf`. Returns the number of bytes consumed (0 at end of input) and whether
/// the line was longer than `limit`.
fn read_line_limited<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<(usize, bool)> {
    buf.clear();
    let (mut consumed, mut too_long) = (0, false);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, too_long));
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take <= limit {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
        }
        reader.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, too_long));
        }
    }
}

fn too_big() -> String {
    format!("record is larger than {} MiB", MAX_RECORD_BYTES >> 20)
}

struct JsonlRecords<R> {
    reader: R,
    name: String,
    line: u64,
    index: usize,
}

impl<R: BufRead> Iterator for JsonlRecords<R> {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        loop {
            let (n, too_long) =
                match read_line_limited(&mut self.reader, &mut buf, MAX_RECORD_BYTES) {
                    Ok(r) => r,
                    Err(e) => return Some(Err(Error::Input(format!("{}: {e}", self.name)))),
                };
            if n == 0 {
                return None;
            }
            self.line += 1;
            if !too_long && buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let data = if too_long {
                Err(too_big())
            } else {
                parse_object(buf.trim_ascii_end(), self.line - 1)
            };
            let rec = RawRecord {
                index: self.index,
                line: self.line,
                data,
            };
            self.index += 1;
            return Some(Ok(rec));
        }
    }
}

/// Parses one JSON object; `line0` is the line before the text's first line,
/// so error positions are reported as lines of the file. A key that occurs
/// twice in one object fails the record, naming it: which of the two values
/// would count is not the reader's to guess.
fn parse_object(bytes: &[u8], line0: u64) -> std::result::Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed =
        serde::de::DeserializeSeed::deserialize(ROOT, &mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a bool",
                _ => "null",
            }
        )),
        Err(e) => Err(format!(
            "invalid JSON: {} at line {}, column {}",
            strip_position(&e.to_string()),
            line0 + e.line() as u64,
            e.column()
        )),
    }
}

/// Deserializes a JSON value like [`Value`] does, but refuses a key that
/// occurs twice in an object, naming its path (`address.city`,
/// `transactions[3].amount`). The path is only spelt out for objects and
/// lists (a scalar never holds a key), so most values cost no allocation.
#[derive(Clone, Copy)]
struct Strict<'a> {
    parent: &'a str,
    at: Step<'a>,
}

/// Where a value sits in its parent.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl Strict<'_> {
    fn path(&self) -> String {
        match self.at {
            Step::Root => String::new(),
            Step::Key(k) if self.parent.is_empty() => k.to_owned(),
            Step::Key(k) => format!("{}.{k}", self.parent),
            Step::Index(i) => format!("{}[{i}]", self.parent),
        }
    }
}

const ROOT: Strict<'static> = Strict {
    parent: "",
    at: Step::Root,
};

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Value, A::Error> {
        let path = self.path();
        let mut items = Vec::new();
        loop {
            let seed = Strict {
                parent: &path,
                at: Step::Index(items.len()),
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Value, A::Error> {
        let path = self.path();
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let seed = Strict {
                parent: &path,
                at: Step::Key(&key),
            };
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` occurs twice (which value is meant cannot be told; remove one)",
                    seed.path()
                )));
            }
            let v = map.next_value_seed(seed)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

/// Splits a JSON array into its elements without parsing them, tracking
/// strings and nesting, so one malformed element fails alone.
struct JsonArrayRecords<R> {
    reader: R,
    name: String,
    line: u64,
    index: usize,
    done: bool,
}

impl<R: BufRead> JsonArrayRecords<R> {
    fn new(reader: R, name: String) -> Result<Self> {
        let mut me = JsonArrayRecords {
            reader,
            name,
            line: 1,
            index: 0,
            done: false,
        };
        match me.skip_ws()? {
            Some(b'[') => me.reader.consume(1),
            Some(_) => return Err(me.fatal("a .json input must be an array of objects `[{...}, ...]` (use .jsonl for one object a line)")),
            None => return Err(me.fatal("the file is empty")),
        }
        if me.skip_ws()? == Some(b']') {
            me.reader.consume(1);
            me.finish()?;
        }
        Ok(me)
    }

    fn fatal(&self, what: &str) -> Error {
        Error::Input(format!("{}:{}: {what}", self.name, self.line))
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn skip_ws(&mut self) -> Result<Option<u8>> {
        loop {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| Error::Input(format!("{}: {e}", self.name)))?;
            if buf.is_empty() {
                return Ok(None);
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            if n < buf.len() {
                let b = buf[n];
                self.reader.consume(n);
                return Ok(Some(b));
            }
            let len = buf.len();
            self.reader.consume(len);
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.done = true;
        match self.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.fatal("unexpected content after the closing `]`")),
        }
    }

    /// Reads one element up to (not including) the `,` or `]` that ends it.
    /// Returns its bytes (None when too large) and the line it started on.
    fn element(&mut self) -> Result<(Option<Vec<u8>>, u64)> {
        let start = self.line;
        let mut out = Some(Vec::new());
        let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
        loop {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| Error::Input(format!("{}: {e}", self.name)))?;
            if buf.is_empty() {
                return Err(Error::Input(format!(
                    "{}: unexpected end of file in the array element that starts at line {start} (missing `]` or `}}`?)",
                    self.name
                )));
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_str = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    b',' | b']' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let take = end.unwrap_or(buf.len());
            if let Some(v) = &mut out {
                if v.len() + take > MAX_RECORD_BYTES {
                    out = None;
                } else {
                    v.extend_from_slice(&buf[..take]);
                }
            }
            self.reader.consume(take);
            if end.is_some() {
                return Ok((out, start));
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonArrayRecords<R> {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = (|| {
            if self.skip_ws()?.is_none() {
                return Err(self.fatal("unexpected end of file: the array is not closed with `]`"));
            }
            let (bytes, line) = self.element()?;
            // element() stopped at `,` or `]`.
            let mut sep = [0u8];
            self.reader
                .read_exact(&mut sep)
                .map_err(|e| Error::Input(format!("{}: {e}", self.name)))?;
            if sep[0] == b']' {
                self.finish()?;
            }
            let data = match bytes {
                None => Err(too_big()),
                Some(b) if b.iter().all(u8::is_ascii_whitespace) => {
                    Err("empty array element (a stray comma?)".to_string())
                }
                Some(b) => parse_object(&b, line - 1 - leading_newlines(&b)),
            };
            let rec = RawRecord {
                index: self.index,
                line,
                data,
            };
            self.index += 1;
            Ok(rec)
        })();
        if step.is_err() {
            self.done = true;
        }
        Some(step)
    }
}

fn leading_newlines(b: &[u8]) -> u64 {
    b.iter()
        .take_while(|c| c.is_ascii_whitespace())
        .filter(|&&c| c == b'\n')
        .count() as u64
}

/// How the lines of a CSV file end, told from its header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `\n` or `\r\n` (Unix, Windows).
    Lf,
    /// `\r` alone (old Macintosh exports).
    Cr,
}

/// The reader under the CSV parser, counting what it hands out, so that
/// the parser's position can be compared with the end of the file.
struct Tail<R> {
    inner: R,
    bytes: u64,
    last: u8,
    eof: bool,
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match n {
            0 => self.eof = true,
            n => {
                self.bytes += n as u64;
                self.last = buf[n - 1];
            }
        }
        Ok(n)
    }
}

/// CSV records with the line each starts on, in the file's own numbering
/// whatever its line ends: rows end at `\n` (the CR of a CRLF line is taken
/// off the last field), and a row's first line is worked out from the
/// parser's line count after it, less the line breaks inside its quoted
/// fields and its own final one. A file whose lines end in a lone CR (an
/// old Macintosh export) is read with CR as the row end; its line numbers
/// count rows, as such a file has no others.
struct CsvRecords<R> {
    reader: csv::Reader<Tail<R>>,
    ending: Ending,
    header: Vec<Vec<String>>,
    name: String,
    index: usize,
    record: csv::ByteRecord,
    done: bool,
}

impl<R: BufRead> CsvRecords<R> {
    fn new(mut reader: R, name: String) -> Result<Self> {
        let ending = {
            let head = reader
                .fill_buf()
                .map_err(|e| Error::Input(format!("{name}: {e}")))?;
            match head.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) if head[i] == b'\r' && head.get(i + 1).is_some_and(|&b| b != b'\n') => {
                    Ending::Cr
                }
                _ => Ending::Lf,
            }
        };
        let terminator = match ending {
            Ending::Lf => csv::Terminator::Any(b'\n'),
            Ending::Cr => csv::Terminator::CRLF,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .terminator(terminator)
            .from_reader(Tail {
                inner: reader,
                bytes: 0,
                last: 0,
                eof: false,
            });
        let raw = reader
            .byte_headers()
            .map_err(|e| Error::Input(format!("{name}: cannot read the header row: {e}")))?
            .clone();
        if raw.is_empty() || raw.iter().all(|h| h.is_empty()) {
            return Err(Error::Input(format!(
                "{name}: the file is empty; a CSV input starts with a header row naming the fields"
            )));
        }
        let mut header: Vec<Vec<String>> = Vec::new();
        for (i, h) in raw.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| {
                Error::Input(format!(
                    "{name}:1: header column {} is not valid UTF-8",
                    i + 1
                ))
            })?;
            let parts: Vec<String> = h.trim().split('.').map(str::to_owned).collect();
            if parts.iter().any(String::is_empty) {
                return Err(Error::Input(format!(
                    "{name}:1: header column {} `{h}` has an empty name part",
                    i + 1
                )));
            }
            for other in &header {
                let n = other.len().min(parts.len());
                if other[..n] == parts[..n] {
                    return Err(Error::Input(format!(
                        "{name}:1: header `{h}` clashes with `{}` (a column cannot be both a value and an object, nor appear twice)",
                        other.join(".")
                    )));
                }
            }
            header.push(parts);
        }
        Ok(CsvRecords {
            reader,
            ending,
            header,
            name,
            index: 0,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    fn to_object(&self) -> std::result::Result<Map<String, Value>, String> {
        let mut obj = Map::new();
        let last = self.header.len().saturating_sub(1);
        for (col, (field, path)) in self.record.iter().zip(&self.header).enumerate() {
            // A CRLF line leaves its CR at the end of the last field.
            let field = match field.strip_suffix(b"\r") {
                Some(f) if col == last && self.ending != Ending::Cr => f,
                _ => field,
            };
            let text = std::str::from_utf8(field).map_err(|_| {
                format!("column {} `{}` is not valid UTF-8", col + 1, path.join("."))
            })?;
            if text.is_empty() {
                // An empty cell is no value; an object whose cells are all
                // empty does not exist.
                continue;
            }
            let mut cur = &mut obj;
            for part in &path[..path.len() - 1] {
                cur = cur
                    .entry(part.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("header clashes are refused");
            }
            cur.insert(path[path.len() - 1].clone(), Value::String(text.to_owned()));
        }
        Ok(obj)
    }

    /// The line the record just read starts on (see the type's docs).
    fn start_line(&self) -> u64 {
        if self.ending == Ending::Cr {
            return self.index as u64 + 2;
        }
        let after = self.reader.position();
        let tail = self.reader.get_ref();
        let inside = self
            .record
            .as_slice()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        // The last row of a file can end at the end of the file rather
        // than at a `\n`: without a final line break, or inside a quote
        // left open (its last field then holds the final `\n`).
        let at_end = tail.eof && after.byte() == tail.bytes;
        let last_field_ends_line = self
            .record
            .iter()
            .next_back()
            .is_some_and(|f| f.ends_with(b"\n"));
        let unterminated = at_end && (tail.last != b'\n' || last_field_ends_line);
        after
            .line()
            .saturating_sub(inside + u64::from(!unterminated))
            .max(1)
    }

    /// Whether the row just read is a blank line (a CRLF file's empty line
    /// comes through as one field holding a CR).
    fn blank(&self) -> bool {
        self.record.len() <= 1 && matches!(self.record.get(0), None | Some(b"") | Some(b"\r"))
    }
}

impl<R: BufRead> Iterator for CsvRecords<R> {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let data = match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                _ if self.blank() => continue,
                Ok(true) if self.record.as_slice().len() > MAX_RECORD_BYTES => Err(too_big()),
                Ok(true) => self.to_object(),
                Err(e) => match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => Err(format!(
                        "row has {len} fields but the header has {expected_len} (unbalanced quotes or a wrong delimiter?)"
                    )),
                    csv::ErrorKind::Io(err) => {
                        self.done = true;
                        return Some(Err(Error::Input(format!("{}: {err}", self.name))));
                    }
                    _ => Err(e.to_string()),
                },
            };
            let rec = RawRecord {
                index: self.index,
                line: self.start_line(),
                data,
            };
            self.index += 1;
            return Some(Ok(rec));
        }
    }
}

/// A record field by dotted path (`address.postcode`).
pub fn field<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = record.get(parts.next()?);
    for p in parts {
        v = v.and_then(|x| x.get(p));
    }
    v
}

/// The text of a record field by dotted path; empty when the record has
/// none.
pub fn field_text(record: &Map<String, Value>, path: &str) -> String {
    match field(record, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Reads every record of `bytes` as `format`, all in memory: the entry
/// point of the fuzz target (`fuzz/`) and the randomized test below. Each
/// item is a record or the reason it cannot be read; the outer error is a
/// structural one (no header, not an array) that stops a whole run.
pub fn read_bytes(format: Format, bytes: &[u8]) -> Result<Vec<Result<RawRecord>>> {
    Ok(read_records(format, bytes, Path::new("fuzz"))?.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mutated inputs (bytes flipped, inserted, cut; quotes, brackets,
    /// BOMs, invalid UTF-8, long runs) never panic a reader, and a reader
    /// always ends: the stable-Rust stand-in for `cargo fuzz run
    /// read_records`, which needs a nightly toolchain.
    #[test]
    fn mutated_inputs_never_panic_a_reader() {
        let seeds: [(Format, &[u8]); 4] = [
            (
                Format::Csv,
                b"id,name,address.city\n1,Ann,K\xc3\xb6ln\n2,\"B, \"\"x\"\"\",Y\n",
            ),
            (
                Format::Jsonl,
                b"{\"id\":\"1\",\"a\":[1,{\"b\":null}]}\n\n{\"id\":2}\n",
            ),
            (
                Format::Json,
                b"[{\"id\":\"1\"},{\"id\":2,\"x\":\"\\u00e9\"}]",
            ),
            (Format::Csv, b"\xef\xbb\xbfid;name\r\n1;2\r\n"),
        ];
        let pieces: [&[u8]; 12] = [
            b"\"",
            b",",
            b"\n",
            b"\r\n",
            b"{",
            b"}",
            b"[",
            b"]",
            b"\xff\xfe",
            b"\xef\xbb\xbf",
            b"\\",
            b"\0",
        ];
        let mut rng = crate::util::rng::Rng::new(7);
        let mut records = 0;
        for round in 0..20_000 {
            let (format, seed) = seeds[round % seeds.len()];
            let mut bytes = seed.to_vec();
            for _ in 0..=rng.below(6) {
                let at = rng.below(bytes.len() as u64 + 1) as usize;
                match rng.below(4) {
                    0 => {
                        let p = pieces[rng.below(pieces.len() as u64) as usize];
                        bytes.splice(at..at, p.iter().copied());
                    }
                    1 if at < bytes.len() => bytes[at] = rng.below(256) as u8,
                    2 => bytes.truncate(at),
                    _ => {
                        let run = vec![b'a' + rng.below(26) as u8; rng.below(3000) as usize];
                        bytes.splice(at..at, run);
                    }
                }
            }
            if let Ok(items) = read_bytes(format, &bytes) {
                records += items.len();
            }
        }
        assert!(
            records > 10_000,
            "the mutations leave most inputs readable: {records}"
        );
    }

    fn read(format: Format, text: &str) -> Result<Vec<RawRecord>> {
        read_records(format, text.as_bytes(), Path::new("t"))?.collect()
    }

    #[test]
    fn csv_nests_dotted_headers_and_reports_lines() {
        let recs = read(
            Format::Csv,
            "\u{feff}id,address.city,address.zip\n1,Köln,50667\n2,\"a\nb\",x\n3,only-two\n4,x,y\n",
        )
        .unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].data.as_ref().unwrap()["address"]["city"], "Köln");
        assert_eq!(recs[1].line, 3);
        assert_eq!(recs[2].line, 5);
        assert!(recs[2]
            .data
            .as_ref()
            .unwrap_err()
            .contains("2 fields but the header has 3"));
        assert!(recs[3].data.is_ok());
        assert_eq!(recs[3].index, 3);
    }

    #[test]
    fn csv_lines_are_the_files_own_whatever_the_line_ends() {
        let lines = |text: &str| -> Vec<u64> {
            read(Format::Csv, text)
                .unwrap()
                .iter()
                .map(|r| r.line)
                .collect()
        };
        // CRLF with a blank line, a quoted line break and no final break.
        let crlf = "id,a\r\n1,x\r\n\r\n2,\"p\r\nq\"\r\n3,\"z\"\r\n4,w";
        assert_eq!(lines(crlf), [2, 4, 6, 7]);
        let recs = read(Format::Csv, crlf).unwrap();
        assert_eq!(
            recs[0].data.as_ref().unwrap()["a"],
            "x",
            "the CR is not data"
        );
        assert_eq!(recs[2].data.as_ref().unwrap()["a"], "z");
        assert_eq!(lines("id,a\n1,x\n\n2,y\n"), [2, 4]);
        assert_eq!(lines("id,a\r1,x\r2,y\r"), [2, 3]);
        // A quote left open runs to the end of the file.
        assert_eq!(lines("id,a\n1,x\n2,\"open\n3,y\n"), [2, 3]);
    }

    #[test]
    fn csv_header_problems_are_fatal() {
        assert!(read(Format::Csv, "").is_err());
        assert!(read(Format::Csv, "a,a.b\n1,2\n").is_err());
        assert!(read(Format::Csv, "a,b\n").unwrap().is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_skipped_in_every_format() {
        let jsonl = read(Format::Jsonl, "\u{feff}{\"a\":1}\n").unwrap();
        assert_eq!(jsonl[0].data.as_ref().unwrap()["a"], 1);
        let json = read(Format::Json, "\u{feff}[{\"a\":1}]").unwrap();
        assert_eq!(json[0].data.as_ref().unwrap()["a"], 1);
        let csv = read(Format::Csv, "\u{feff}a\n1\n").unwrap();
        assert_eq!(csv[0].data.as_ref().unwrap()["a"], "1");
    }

    #[test]
    fn jsonl_bad_line_fails_alone() {
        let recs = read(Format::Jsonl, "{\"a\":1}\n\n{\"a\":\n[1]\n{\"a\":2}").unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[1].line, 3);
        let err = recs[1].data.as_ref().unwrap_err();
        assert!(err.contains("at line 3, column"), "{err}");
        assert!(recs[2]
            .data
            .as_ref()
            .unwrap_err()
            .contains("found an array"));
        assert_eq!(recs[3].data.as_ref().unwrap()["a"], 2);
    }

    #[test]
    fn json_array_elements_split_and_fail_alone() {
        let recs = read(
            Format::Json,
            "[\n {\"a\": \"x,]}\"},\n {\"a\": tru},\n 5, {\"b\": [1,{\"c\":2}]}\n]\n",
        )
        .unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].data.as_ref().unwrap()["a"], "x,]}");
        assert_eq!(recs[1].line, 3);
        assert!(
            recs[1].data.as_ref().unwrap_err().contains("line 3"),
            "{:?}",
            recs[1].data
        );
        assert!(recs[2].data.is_err());
        assert_eq!(recs[3].data.as_ref().unwrap()["b"][1]["c"], 2);
        assert!(read(Format::Json, "[]").unwrap().is_empty());
    }

    #[test]
    fn json_structure_errors_are_fatal() {
        assert!(read(Format::Json, "{\"a\":1}").is_err());
        assert!(read(Format::Json, "").is_err());
        let r: Result<Vec<_>> =
            read_records(Format::Json, &b"[{\"a\":1},{\"a\""[..], Path::new("t"))
                .unwrap()
                .collect();
        assert!(r.is_err());
    }
}
