//! Fixed-width record files, as core banking systems and mainframes export
//! them: a header, then for each customer a record and its detail records
//! (several types), then a trailer with the sender's control totals.
//!
//! `input.fixed` in `layout.yaml` lays the file out (see
//! [`crate::model::layout::FixedInput`]): the code page, the record length
//! (or one record a line), where the type code is, and for each type its
//! role and fields by start and length.
//!
//! Decisions:
//! - One customer record is built from a `record` line, the `extra` lines
//!   after it (more fields) and its `detail` lines (each an element of a
//!   list field); the header's fields go into every customer record.
//! - Text is decoded from the code page and trimmed of spaces; a field of
//!   spaces only has no value. Zoned and packed decimals become decimal
//!   text (`-1234.50`), converted to the schema's types like CSV text.
//! - A value that cannot be decoded (a bad packed half-byte, a letter in a
//!   zoned number, a byte with no character) fails its customer record,
//!   naming the line, the bytes and the field. An unknown record type fails
//!   the customer record it is in.
//! - The structure is the file's, checked whole: a header that is not
//!   first, a detail before any customer, anything after the trailer, a
//!   missing trailer (when the layout has one), a short last record, and a
//!   trailer whose count or sums differ from what was read stop the file
//!   before anything is rendered, naming both figures.
//! - EBCDIC and packed decimals need fixed-length records (`record_length`):
//!   their bytes can hold any value, line ends included.
//! - Line numbers count records from 1 (with `record_length`, the n-th
//!   record of the file).

use std::io::BufRead;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{codepages, RawRecord, MAX_RECORD_BYTES};
use crate::error::{Error, Result};
use crate::model::layout::{FixedField, FixedInput, FixedKind, FixedRole, FixedSlice};

/// A code page.
#[derive(Debug, Clone, Copy)]
enum Charset {
    Ascii,
    Utf8,
    Latin1,
    Ebcdic(&'static codepages::Table),
}

impl Charset {
    fn parse(name: &str) -> Result<Charset> {
        Ok(match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "ascii" | "usascii" => Charset::Ascii,
            "utf8" => Charset::Utf8,
            "latin1" | "iso88591" => Charset::Latin1,
            "cp037" | "ibm037" | "cp37" => Charset::Ebcdic(&codepages::CP037),
            "cp273" | "ibm273" => Charset::Ebcdic(&codepages::CP273),
            "cp500" | "ibm500" => Charset::Ebcdic(&codepages::CP500),
            "cp1140" | "ibm1140" => Charset::Ebcdic(&codepages::CP1140),
            _ => {
                return Err(Error::Layout(format!(
                    "input.fixed.encoding `{name}` is not one of ascii, utf-8, latin-1, cp037, cp273, cp500, cp1140"
                )))
            }
        })
    }

    fn decode(self, bytes: &[u8]) -> std::result::Result<String, String> {
        match self {
            Charset::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                None => Ok(String::from_utf8_lossy(bytes).into_owned()),
                Some(i) => Err(format!("byte {} (0x{:02X}) is not ASCII", i + 1, bytes[i])),
            },
            Charset::Utf8 => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|e| format!("not valid UTF-8 at byte {}", e.valid_up_to() + 1)),
            Charset::Latin1 => Ok(bytes.iter().map(|&b| b as char).collect()),
            Charset::Ebcdic(table) => Ok(bytes.iter().map(|&b| table[b as usize]).collect()),
        }
    }

    fn encode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Charset::Ebcdic(table) => text
                .chars()
                .map(|c| table.iter().position(|&t| t == c).map(|b| b as u8))
                .collect(),
            Charset::Latin1 => text.chars().map(|c| u8::try_from(c as u32).ok()).collect(),
            _ => Some(text.as_bytes().to_vec()),
        }
    }

    /// The code of the digit 0 (zoned digits are this plus the digit, in
    /// the low half-byte for EBCDIC).
    fn ebcdic(self) -> bool {
        matches!(self, Charset::Ebcdic(_))
    }
}

/// One record type, compiled.
#[derive(Debug)]
struct Type {
    code: Vec<u8>,
    code_text: String,
    role: FixedRole,
    list: Option<String>,
    fields: Vec<FixedField>,
    count: Option<FixedField>,
    sums: Vec<FixedField>,
    /// Its fields the trailer sums: (field index, index in
    /// [`FixedMap::summed`]).
    adds_to: Vec<(usize, usize)>,
}

/// A layout's fixed-width mapping, compiled once.
#[derive(Debug)]
pub struct FixedMap {
    charset: Charset,
    record_length: Option<usize>,
    type_at: FixedSlice,
    types: Vec<Type>,
    has_trailer: bool,
    /// The fields the trailer sums.
    summed: Vec<String>,
}

impl FixedMap {
    /// Checks and compiles `input.fixed`.
    pub fn compile(input: &FixedInput) -> Result<FixedMap> {
        let bad = |e: String| Error::Layout(format!("input.fixed: {e}"));
        let charset = Charset::parse(&input.encoding)?;
        let packed = input
            .records
            .iter()
            .flat_map(|t| t.fields.iter().chain(&t.count).chain(&t.sums))
            .any(|f| f.kind == FixedKind::Packed);
        if input.record_length.is_none() && (charset.ebcdic() || packed) {
            return Err(bad("EBCDIC text and packed decimals can hold any byte, line ends included: give the record_length of the file's fixed-length records".into()));
        }
        check_slice(
            input.record_length,
            "type",
            input.type_code.start,
            input.type_code.length,
        )
        .map_err(bad)?;
        let summed: Vec<String> = input
            .records
            .iter()
            .flat_map(|t| t.sums.iter().map(|f| f.name.clone()))
            .collect();
        let mut types = Vec::new();
        for t in &input.records {
            let code = charset
                .encode(&t.code)
                .filter(|c| c.len() == input.type_code.length)
                .ok_or_else(|| {
                    bad(format!(
                        "the type code `{}` is not {} bytes in {}",
                        t.code, input.type_code.length, input.encoding
                    ))
                })?;
            for f in t.fields.iter().chain(&t.count).chain(&t.sums) {
                check_field(input.record_length, f)
                    .map_err(|e| bad(format!("type `{}`: {e}", t.code)))?;
            }
            check_role(t).map_err(|e| bad(format!("type `{}`: {e}", t.code)))?;
            types.push(Type {
                code,
                code_text: t.code.clone(),
                role: t.role,
                list: t.list.clone(),
                fields: t.fields.clone(),
                count: t.count.clone(),
                sums: t.sums.clone(),
                adds_to: adds_to(t, &summed),
            });
        }
        let count = |r: FixedRole| types.iter().filter(|t| t.role == r).count();
        if count(FixedRole::Record) == 0
            || count(FixedRole::Header) > 1
            || count(FixedRole::Trailer) > 1
        {
            return Err(bad("the records need at least one `record` type, and at most one `header` and one `trailer`".into()));
        }
        Ok(FixedMap {
            charset,
            record_length: input.record_length,
            type_at: input.type_code,
            has_trailer: count(FixedRole::Trailer) == 1,
            summed,
            types,
        })
    }
}

/// Which fields of a record type the trailer sums, and where: a detail's
/// field by `list.field`, any other's by its name.
fn adds_to(t: &crate::model::layout::FixedRecordType, summed: &[String]) -> Vec<(usize, usize)> {
    let name = |f: &FixedField| match (&t.list, t.role) {
        (Some(list), FixedRole::Detail) => format!("{list}.{}", f.name),
        _ => f.name.clone(),
    };
    t.fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            summed
                .iter()
                .position(|s| *s == name(f))
                .map(|slot| (i, slot))
        })
        .collect()
}

fn check_slice(
    record_length: Option<usize>,
    name: &str,
    start: usize,
    length: usize,
) -> std::result::Result<(), String> {
    if start == 0 || length == 0 {
        return Err(format!(
            "`{name}`: start counts from 1 and length is at least 1"
        ));
    }
    match record_length {
        Some(n) if start + length - 1 > n => Err(format!(
            "`{name}` (bytes {start}-{}) ends after the record_length of {n}",
            start + length - 1
        )),
        _ => Ok(()),
    }
}

fn check_field(record_length: Option<usize>, f: &FixedField) -> std::result::Result<(), String> {
    check_slice(record_length, &f.name, f.start, f.length)?;
    let digits = match f.kind {
        FixedKind::Text => return Ok(()),
        FixedKind::Zoned => f.length,
        FixedKind::Packed => f.length * 2 - 1,
    };
    if digits > 31 || f.decimals as usize > digits {
        return Err(format!(
            "`{}`: {digits} digits with {} decimals cannot be read",
            f.name, f.decimals
        ));
    }
    Ok(())
}

fn check_role(t: &crate::model::layout::FixedRecordType) -> std::result::Result<(), String> {
    match t.role {
        FixedRole::Detail if t.list.is_none() => {
            Err("a `detail` names the `list` field its records go to".into())
        }
        FixedRole::Trailer => Ok(()),
        _ if t.count.is_some() || !t.sums.is_empty() => {
            Err("only the `trailer` has `count` and `sums`".into())
        }
        _ => Ok(()),
    }
}

/// A decimal number as an integer of units of 10^-scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    fn rescale(self, scale: u32) -> i128 {
        self.units * 10i128.pow(scale.saturating_sub(self.scale))
    }

    fn text(self) -> String {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return format!("{sign}{abs}");
        }
        let p = 10u128.pow(self.scale);
        format!(
            "{sign}{}.{:0width$}",
            abs / p,
            abs % p,
            width = self.scale as usize
        )
    }

    fn parse(s: &str) -> Option<Decimal> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !(int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()))
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let units: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            units: if neg { -units } else { units },
            scale: frac.len() as u32,
        })
    }
}

/// Packed decimal (COMP-3): two digits a byte, the last half-byte the sign
/// (C, A, E, F positive; D, B negative).
fn packed(bytes: &[u8], scale: u32) -> std::result::Result<Decimal, String> {
    let mut units: i128 = 0;
    let nibbles = bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]);
    let last = bytes.len() * 2 - 1;
    for (i, n) in nibbles.enumerate() {
        if i == last {
            return match n {
                0xC | 0xA | 0xE | 0xF => Ok(Decimal { units, scale }),
                0xD | 0xB => Ok(Decimal {
                    units: -units,
                    scale,
                }),
                _ => Err(format!(
                    "the sign half-byte is {n:X}, not C, D or F (is the field packed?)"
                )),
            };
        }
        if n > 9 {
            return Err(format!(
                "half-byte {} is {n:X}, not a digit (is the field packed?)",
                i + 1
            ));
        }
        units = units * 10 + n as i128;
    }
    unreachable!("a packed field has a sign half-byte")
}

/// Zoned decimal (DISPLAY): a digit a byte, the sign in the last byte's
/// zone. In EBCDIC the digits are F0-F9 and the last zone is C or F
/// (positive) or D (negative); in ASCII, digits 0-9 and the last byte may be
/// `{`, `A`-`I` (positive 0-9) or `}`, `J`-`R` (negative 0-9), as COBOL
/// writes them on ASCII machines; a leading `-` or `+` is read too.
fn zoned(bytes: &[u8], scale: u32, charset: Charset) -> std::result::Result<Decimal, String> {
    let mut units: i128 = 0;
    let mut neg = false;
    let last = bytes.len() - 1;
    for (i, &b) in bytes.iter().enumerate() {
        let (digit, sign) = if charset.ebcdic() {
            let (zone, d) = (b >> 4, b & 0x0F);
            match zone {
                _ if d > 9 => (None, false),
                0xF => (Some(d), false),
                0xC if i == last => (Some(d), false),
                0xD if i == last => (Some(d), true),
                _ => (None, false),
            }
        } else {
            match b {
                b'0'..=b'9' => (Some(b - b'0'), false),
                b'{' if i == last => (Some(0), false),
                b'A'..=b'I' if i == last => (Some(b - b'A' + 1), false),
                b'}' if i == last => (Some(0), true),
                b'J'..=b'R' if i == last => (Some(b - b'J' + 1), true),
                b'-' if i == 0 => {
                    neg = true;
                    continue;
                }
                b'+' | b' ' if i == 0 => continue,
                _ => (None, false),
            }
        };
        let d = digit.ok_or_else(|| format!("byte {} (0x{b:02X}) is not a zoned digit", i + 1))?;
        neg |= sign;
        units = units * 10 + d as i128;
    }
    Ok(Decimal {
        units: if neg { -units } else { units },
        scale,
    })
}

/// The value of field `f` of `record`: text, or decimal text.
fn value(
    f: &FixedField,
    record: &[u8],
    charset: Charset,
) -> std::result::Result<Option<Value>, String> {
    let end = f.start - 1 + f.length;
    let bytes = record.get(f.start - 1..end).ok_or_else(|| {
        format!(
            "field `{}` (bytes {}-{end}): the record has only {} bytes",
            f.name,
            f.start,
            record.len()
        )
    })?;
    let at = |e: String| format!("field `{}` (bytes {}-{end}): {e}", f.name, f.start);
    match f.kind {
        FixedKind::Text => {
            let s = charset.decode(bytes).map_err(at)?;
            let s = s.trim_matches(|c: char| c == ' ' || c == '\u{0}');
            Ok((!s.is_empty()).then(|| Value::String(s.to_owned())))
        }
        FixedKind::Packed => Ok(Some(Value::String(
            packed(bytes, f.decimals).map_err(at)?.text(),
        ))),
        FixedKind::Zoned => Ok(Some(Value::String(
            zoned(bytes, f.decimals, charset).map_err(at)?.text(),
        ))),
    }
}

/// The decimal of field `f`, for control totals.
fn decimal(
    f: &FixedField,
    record: &[u8],
    charset: Charset,
) -> std::result::Result<Decimal, String> {
    match value(f, record, charset)? {
        Some(Value::String(s)) => {
            Decimal::parse(&s).ok_or_else(|| format!("field `{}`: `{s}` is not a number", f.name))
        }
        _ => Err(format!("field `{}` is empty", f.name)),
    }
}

/// Sets a dotted field in `map`, building objects on the way.
fn set(map: &mut Map<String, Value>, name: &str, v: Value) {
    match name.split_once('.') {
        None => {
            map.insert(name.to_owned(), v);
        }
        Some((head, rest)) => {
            let inner = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                set(inner, rest, v);
            }
        }
    }
}

/// The fields of one physical record into `map`.
fn fill(
    map: &mut Map<String, Value>,
    fields: &[FixedField],
    record: &[u8],
    charset: Charset,
    line: u64,
) -> std::result::Result<(), String> {
    for f in fields {
        match value(f, record, charset) {
            Ok(Some(v)) => set(map, &f.name, v),
            Ok(None) => {}
            Err(e) => return Err(format!("line {line}: {e}")),
        }
    }
    Ok(())
}

/// A customer record being built.
struct Customer {
    line: u64,
    data: std::result::Result<Map<String, Value>, String>,
}

/// The records of a fixed-width file.
pub(super) struct FixedRecords<R> {
    reader: R,
    map: Arc<FixedMap>,
    name: String,
    line: u64,
    index: usize,
    header: Map<String, Value>,
    current: Option<Customer>,
    /// Customer records and sums read so far (for the trailer).
    customers: u64,
    sums: Vec<Decimal>,
    trailer: bool,
    done: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> FixedRecords<R> {
    pub(super) fn new(reader: R, map: Arc<FixedMap>, name: String) -> Self {
        let sums = vec![Decimal { units: 0, scale: 0 }; map.summed.len()];
        FixedRecords {
            reader,
            map,
            name,
            line: 0,
            index: 0,
            header: Map::new(),
            current: None,
            customers: 0,
            sums,
            trailer: false,
            done: false,
            buf: Vec::new(),
        }
    }

    fn stop(&mut self, what: String) -> Error {
        self.done = true;
        Error::Input(format!(
            "{}:{}: {what}; nothing was rendered",
            self.name, self.line
        ))
    }

    /// Reads the next physical record into `buf`; false at the end.
    fn physical(&mut self) -> Result<bool> {
        let io = |e: std::io::Error| Error::Input(format!("{}: {e}", self.name));
        let read = match self.map.record_length {
            Some(n) => read_exact_or_eof(&mut self.reader, &mut self.buf, n).map_err(io)?,
            None => {
                let (n, too_long) =
                    super::read_line_limited(&mut self.reader, &mut self.buf, MAX_RECORD_BYTES)
                        .map_err(io)?;
                if too_long {
                    self.line += 1;
                    return Err(
                        self.stop(format!("a line longer than {} MiB", MAX_RECORD_BYTES >> 20))
                    );
                }
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                n
            }
        };
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if let Some(n) = self.map.record_length.filter(|&n| read < n) {
            return Err(self.stop(format!(
                "the last record has {read} bytes, not {n}: the file is cut short"
            )));
        }
        Ok(true)
    }

    fn type_of(&self) -> Option<usize> {
        let at = self.map.type_at;
        let code = self.buf.get(at.start - 1..at.start - 1 + at.length)?;
        self.map.types.iter().position(|t| t.code == code)
    }

    /// Takes one physical record; a finished customer record when one ends.
    fn take(&mut self) -> Result<Option<Customer>> {
        if self.trailer {
            return Err(self.stop("a record after the trailer".into()));
        }
        let Some(t) = self.type_of() else {
            let code = self.code_text();
            return match self.current.as_mut() {
                Some(c) => {
                    fail(
                        c,
                        format!(
                            "line {}: the record type `{code}` is not in the layout",
                            self.line
                        ),
                    );
                    Ok(None)
                }
                None => Err(self.stop(format!("the record type `{code}` is not in the layout"))),
            };
        };
        let map = self.map.clone();
        let ty = &map.types[t];
        let charset = map.charset;
        match ty.role {
            FixedRole::Header if self.line == 1 => {
                let mut header = Map::new();
                let line = self.line;
                fill(&mut header, &ty.fields, &self.buf, charset, line)
                    .map_err(|e| self.stop(format!("the header: {e}")))?;
                self.header = header;
                Ok(None)
            }
            FixedRole::Header => Err(self.stop(format!(
                "a header (type `{}`) that is not the first record",
                ty.code_text
            ))),
            FixedRole::Record => {
                self.add_sums(ty);
                let mut data = self.header.clone();
                // A customer without details has empty lists, not none.
                for list in map.types.iter().filter_map(|t| t.list.as_deref()) {
                    list_at(&mut data, list);
                }
                let filled = fill(&mut data, &ty.fields, &self.buf, charset, self.line);
                self.customers += 1;
                let next = Customer {
                    line: self.line,
                    data: filled.map(|()| data),
                };
                Ok(self.current.replace(next))
            }
            FixedRole::Detail | FixedRole::Extra => self.detail(ty, charset),
            FixedRole::Trailer => {
                self.trailer = true;
                self.check_trailer(ty, charset)?;
                Ok(None)
            }
        }
    }

    fn code_text(&self) -> String {
        let at = self.map.type_at;
        let end = (at.start - 1 + at.length).min(self.buf.len());
        let bytes = self.buf.get(at.start - 1..end).unwrap_or_default();
        self.map
            .charset
            .decode(bytes)
            .unwrap_or_else(|_| format!("{bytes:02X?}"))
    }

    fn detail(&mut self, ty: &Type, charset: Charset) -> Result<Option<Customer>> {
        let line = self.line;
        let mut item = Map::new();
        let filled = fill(&mut item, &ty.fields, &self.buf, charset, line);
        self.add_sums(ty);
        let Some(c) = self.current.as_mut() else {
            return Err(self.stop(format!(
                "a `{}` record before any customer record",
                ty.code_text
            )));
        };
        let Ok(data) = c.data.as_mut() else {
            return Ok(None);
        };
        if let Err(e) = filled {
            fail(c, e);
            return Ok(None);
        }
        match &ty.list {
            Some(list) => {
                let items = list_at(data, list);
                items.push(Value::Object(item));
            }
            None => item.into_iter().for_each(|(k, v)| {
                data.insert(k, v);
            }),
        }
        Ok(None)
    }

    /// Adds the fields of the record in `buf` that the trailer sums
    /// (`list.field` for a detail) to the running sums; a field that cannot
    /// be read adds nothing (its record fails, and the sum shows it).
    fn add_sums(&mut self, ty: &Type) {
        for &(field, slot) in &ty.adds_to {
            if let Ok(d) = decimal(&ty.fields[field], &self.buf, self.map.charset) {
                let sum = &mut self.sums[slot];
                let scale = sum.scale.max(d.scale);
                *sum = Decimal {
                    units: sum.rescale(scale) + d.rescale(scale),
                    scale,
                };
            }
        }
    }

    fn check_trailer(&mut self, ty: &Type, charset: Charset) -> Result<()> {
        if let Some(f) = &ty.count {
            let said = decimal(f, &self.buf, charset)
                .map_err(|e| self.stop(format!("the trailer: {e}")))?;
            let read = self.customers as i128;
            if said.scale != 0 || said.units != read {
                let said = said.text();
                return Err(self.stop(format!(
                    "the trailer says {said} records, the file holds {}: records are missing or extra (a cut transfer, a file sent twice); find them before going on",
                    crate::util::stop::count(read as usize)
                )));
            }
        }
        for f in &ty.sums {
            let said = decimal(f, &self.buf, charset)
                .map_err(|e| self.stop(format!("the trailer: {e}")))?;
            let read = self.sum_of(&f.name);
            let scale = said.scale.max(read.scale);
            if said.rescale(scale) != read.rescale(scale) {
                return Err(self.stop(format!(
                    "the trailer's sum of `{}` is {}, the records add up to {}: the file is not what the sender counted",
                    f.name,
                    said.text(),
                    read.text()
                )));
            }
        }
        Ok(())
    }

    fn sum_of(&self, name: &str) -> Decimal {
        let slot = self.map.summed.iter().position(|n| n == name);
        slot.map_or(Decimal { units: 0, scale: 0 }, |i| self.sums[i])
    }

    fn next_customer(&mut self) -> Result<Option<Customer>> {
        loop {
            if !self.physical()? {
                if self.map.has_trailer && !self.trailer {
                    return Err(
                        self.stop("the file ends without its trailer: it may be cut short".into())
                    );
                }
                self.done = true;
                return Ok(self.current.take());
            }
            if let Some(c) = self.take()? {
                return Ok(Some(c));
            }
        }
    }
}

fn fail(c: &mut Customer, e: String) {
    if c.data.is_ok() {
        c.data = Err(e);
    }
}

/// The list at dotted `path` in `data`, made when missing.
fn list_at<'a>(data: &'a mut Map<String, Value>, path: &str) -> &'a mut Vec<Value> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match rest {
        Some(rest) => {
            let inner = data
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !inner.is_object() {
                *inner = Value::Object(Map::new());
            }
            list_at(inner.as_object_mut().expect("an object"), rest)
        }
        None => {
            let v = data
                .entry(head.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !v.is_array() {
                *v = Value::Array(Vec::new());
            }
            v.as_array_mut().expect("a list")
        }
    }
}

/// Reads `n` bytes, or fewer at the end of the input.
fn read_exact_or_eof<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    n: usize,
) -> std::io::Result<usize> {
    buf.clear();
    buf.resize(n, 0);
    let mut got = 0;
    while got < n {
        match reader.read(&mut buf[got..])? {
            0 => break,
            k => got += k,
        }
    }
    buf.truncate(got);
    Ok(got)
}

impl<R: BufRead> Iterator for FixedRecords<R> {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done && self.current.is_none() {
            return None;
        }
        match self.next_customer() {
            Ok(Some(c)) => {
                let rec = RawRecord {
                    index: self.index,
                    line: c.line,
                    data: c.data,
                };
                self.index += 1;
                Some(Ok(rec))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
