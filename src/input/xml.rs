//! XML records, streamed with quick-xml and mapped by paths declared in
//! `layout.yaml`.
//!
//! `input.xml.record` names the element that is one record; each field's
//! `xml` path says where its value is, relative to the record element (or,
//! inside an object or a list of objects, to that field's element). A path
//! is a series of element names separated by `/`, optionally ending in
//! `@attribute`; `.` is the element itself; `*` is any element; a step may
//! carry one condition `[path='text']` (`Bal[Tp/CdOrPrtry/Cd='OPBD']`).
//! Names take a prefix declared in `input.xml.namespaces`; names without one
//! are in `input.xml.namespace` (elements) or in no namespace (attributes).
//!
//! Decisions:
//! - The file is read once, event by event; only the record being read is
//!   held (as a small tree), so memory does not grow with the file.
//! - A value is an element's own text (its text and CDATA, not its
//!   children's) or an attribute's value. A field that is not there is
//!   absent (the schema says whether that fails the record); a list field
//!   that is not there is an empty list (XML has no other way to write one).
//! - A scalar or object field whose path matches twice fails the record,
//!   naming the field and both lines: which one was meant is not the
//!   reader's to guess. Elements no field maps are ignored.
//! - No DTD is ever processed: a `<!DOCTYPE` stops the file, so external
//!   entities (XXE), entity expansion ("billion laughs") and network access
//!   cannot happen. Only the five predefined entities and character
//!   references are read. Only UTF-8 (and its ASCII subset) is read; another
//!   declared encoding stops the file.
//! - A single XML event or record larger than [`MAX_RECORD_BYTES`] stops the
//!   file at its line; so does a record element that never closes.
//! - Lines and columns count from 1; the column counts bytes.

use std::io::BufRead;
use std::sync::Arc;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde_json::{Map, Value};

use super::{RawRecord, MAX_RECORD_BYTES};
use crate::error::{Error, Result};
use crate::model::layout::{FieldSpec, FieldType, XmlInput};

/// A namespace (none for `None`) and a local name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    ns: Option<String>,
    local: String,
}

/// One step of a path: an element name (`None`: any) and an optional
/// condition.
#[derive(Debug)]
struct Step {
    name: Option<Name>,
    when: Option<(Path, String)>,
}

/// A compiled path relative to an element.
#[derive(Debug, Default)]
struct Path {
    steps: Vec<Step>,
    attr: Option<Name>,
}

/// A field and where its value is.
#[derive(Debug)]
struct XmlField {
    key: String,
    path: Path,
    text: String,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    Scalar,
    Object(Vec<XmlField>),
    List(Vec<XmlField>),
    ListOfScalars,
}

/// A layout's XML mapping, compiled once.
#[derive(Debug)]
pub struct XmlMap {
    record: Vec<Name>,
    anywhere: bool,
    fields: Vec<XmlField>,
}

impl XmlMap {
    /// Compiles the mapping of a layout's fields; an unknown prefix or a
    /// malformed path is an error naming the field.
    pub fn compile(input: &XmlInput, fields: &[FieldSpec]) -> Result<XmlMap> {
        let names = Names(input);
        let bad = |e: String| Error::Layout(format!("input.xml: {e}"));
        let (anywhere, rest) = match input.record.strip_prefix("//") {
            Some(rest) => (true, rest),
            None => (false, input.record.trim_start_matches('/')),
        };
        let record = rest
            .split('/')
            .map(|s| names.element(s))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("record `{}`: {e}", input.record)))?;
        if record.is_empty() || (anywhere && record.len() != 1) {
            return Err(bad(format!(
                "record `{}` must be a path from the document element (`Document/Stmt`) or `//Name`",
                input.record
            )));
        }
        let fields = compile_fields(&names, fields, "").map_err(bad)?;
        Ok(XmlMap {
            record,
            anywhere,
            fields,
        })
    }
}

struct Names<'a>(&'a XmlInput);

impl Names<'_> {
    fn name(&self, s: &str, element: bool) -> std::result::Result<Name, String> {
        let s = s.trim();
        let (ns, local) = match s.split_once(':') {
            Some((prefix, local)) => match self.0.namespaces.get(prefix) {
                Some(ns) => (Some(ns.clone()), local),
                None => {
                    return Err(format!(
                        "the prefix `{prefix}` is not in input.xml.namespaces"
                    ))
                }
            },
            None if element => (self.0.namespace.clone(), s),
            None => (None, s),
        };
        let ok = !local.is_empty()
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        match ok {
            true => Ok(Name {
                ns,
                local: local.to_owned(),
            }),
            false => Err(format!("`{s}` is not an XML name")),
        }
    }

    fn element(&self, s: &str) -> std::result::Result<Name, String> {
        self.name(s, true)
    }

    fn path(&self, text: &str) -> std::result::Result<Path, String> {
        let mut path = Path::default();
        let text = text.trim();
        if text == "." {
            return Ok(path);
        }
        for part in split_steps(text)? {
            if let Some(attr) = part.strip_prefix('@') {
                path.attr = Some(self.name(attr, false)?);
                continue;
            }
            if path.attr.is_some() {
                return Err(format!("`{text}`: an attribute ends a path"));
            }
            path.steps.push(self.step(part)?);
        }
        Ok(path)
    }

    fn step(&self, part: &str) -> std::result::Result<Step, String> {
        let (name, when) = match part.split_once('[') {
            None => (part, None),
            Some((name, cond)) => {
                let cond = cond.strip_suffix(']').ok_or("a `[` without `]`")?;
                let (lhs, rhs) = cond
                    .split_once('=')
                    .ok_or("a condition is `[path='text']`")?;
                let rhs = rhs.trim();
                let quoted = rhs.len() >= 2
                    && (rhs.starts_with('\'') && rhs.ends_with('\'')
                        || rhs.starts_with('"') && rhs.ends_with('"'));
                if !quoted {
                    return Err(format!("`{part}`: the text of a condition is quoted"));
                }
                (
                    name,
                    Some((self.path(lhs)?, rhs[1..rhs.len() - 1].to_owned())),
                )
            }
        };
        let name = match name.trim() {
            "*" => None,
            n => Some(self.element(n)?),
        };
        Ok(Step { name, when })
    }
}

/// Splits a path at the `/` outside conditions.
fn split_steps(text: &str) -> std::result::Result<Vec<&str>, String> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    if depth != 0 || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(format!("`{text}` is not a path (`A/B`, `A/@b`, `.`)"));
    }
    Ok(parts)
}

fn compile_fields(
    names: &Names,
    fields: &[FieldSpec],
    prefix: &str,
) -> std::result::Result<Vec<XmlField>, String> {
    fields
        .iter()
        .map(|spec| {
            let at = crate::model::layout::field_path(prefix, &spec.name);
            let text = spec.xml.clone().unwrap_or_else(|| spec.name.clone());
            let path = names
                .path(&text)
                .map_err(|e| format!("field `{at}`: xml path `{text}`: {e}"))?;
            let shape = match spec.kind {
                FieldType::Object => Shape::Object(compile_fields(names, &spec.fields, &at)?),
                FieldType::List if spec.item_type() == FieldType::Object => {
                    Shape::List(compile_fields(names, &spec.fields, &at)?)
                }
                FieldType::List => Shape::ListOfScalars,
                _ => Shape::Scalar,
            };
            if path.attr.is_some() && !matches!(shape, Shape::Scalar | Shape::ListOfScalars) {
                return Err(format!(
                    "field `{at}`: xml path `{text}` is an attribute, which holds no fields"
                ));
            }
            Ok(XmlField {
                key: spec.name.clone(),
                path,
                text,
                shape,
            })
        })
        .collect()
}

/// An element of a record, as read.
#[derive(Debug)]
struct Node {
    name: Name,
    line: u64,
    col: u64,
    attrs: Vec<(Name, String)>,
    text: String,
    children: Vec<Node>,
}

/// What a path selects.
enum Found<'a> {
    Element(&'a Node),
    Attr(&'a Node, &'a str),
}

impl Found<'_> {
    fn text(&self) -> String {
        match self {
            Found::Element(n) => n.text.clone(),
            Found::Attr(_, v) => (*v).to_owned(),
        }
    }

    fn at(&self) -> (u64, u64) {
        match self {
            Found::Element(n) | Found::Attr(n, _) => (n.line, n.col),
        }
    }
}

impl Path {
    fn select<'a>(&self, node: &'a Node) -> Vec<Found<'a>> {
        let mut at = vec![node];
        for step in &self.steps {
            at = at
                .into_iter()
                .flat_map(|n| n.children.iter())
                .filter(|c| step.name.as_ref().is_none_or(|want| *want == c.name))
                .filter(|c| match &step.when {
                    None => true,
                    Some((path, text)) => path.select(c).iter().any(|f| f.text().trim() == text),
                })
                .collect();
        }
        match &self.attr {
            None => at.into_iter().map(Found::Element).collect(),
            Some(want) => at
                .into_iter()
                .filter_map(|n| {
                    n.attrs
                        .iter()
                        .find(|(name, _)| name == want)
                        .map(|(_, v)| Found::Attr(n, v.as_str()))
                })
                .collect(),
        }
    }
}

/// Maps the fields of `node` to a record, or says which field is wrong.
fn map_fields(
    node: &Node,
    fields: &[XmlField],
    prefix: &str,
) -> std::result::Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for f in fields {
        let at = crate::model::layout::field_path(prefix, &f.key);
        let found = f.path.select(node);
        let one = || -> std::result::Result<Option<&Found>, String> {
            match found.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one)),
                [a, b, ..] => Err(format!(
                    "line {}, column {}: field `{at}`: `{}` is there {} times (lines {} and {}); a field that repeats must be declared a list",
                    a.at().0, a.at().1, f.text, found.len(), a.at().0, b.at().0
                )),
            }
        };
        let value = match &f.shape {
            Shape::Scalar => one()?.map(|v| Value::String(v.text())),
            Shape::Object(inner) => match one()? {
                Some(Found::Element(n)) => Some(Value::Object(map_fields(n, inner, &at)?)),
                _ => None,
            },
            Shape::ListOfScalars => Some(found.iter().map(|v| Value::String(v.text())).collect()),
            Shape::List(inner) => {
                let mut items = Vec::with_capacity(found.len());
                for (i, v) in found.iter().enumerate() {
                    if let Found::Element(n) = v {
                        items.push(Value::Object(map_fields(n, inner, &format!("{at}[{i}]"))?));
                    }
                }
                Some(Value::Array(items))
            }
        };
        if let Some(v) = value {
            out.insert(f.key.clone(), v);
        }
    }
    Ok(out)
}

/// A reader that counts lines as quick-xml consumes bytes, and stops an
/// event or record that grows past a limit before it is held in memory.
pub(super) struct Lines<R> {
    inner: R,
    pos: u64,
    line: u64,
    line_start: u64,
    mark: u64,
}

impl<R> Lines<R> {
    pub(super) fn new(inner: R) -> Self {
        Lines {
            inner,
            pos: 0,
            line: 1,
            line_start: 0,
            mark: 0,
        }
    }

    fn here(&self) -> (u64, u64) {
        (self.line, self.pos - self.line_start + 1)
    }
}

const TOO_BIG: &str = "larger than the largest record";
const BIG_EVENT: &str = "an XML element or text larger than";

impl<R: BufRead> std::io::Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos - self.mark > MAX_RECORD_BYTES as u64 {
            return Err(std::io::Error::other(TOO_BIG));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let buf = &buf[..amt.min(buf.len())];
            for (i, _) in buf.iter().enumerate().filter(|(_, &b)| b == b'\n') {
                self.line += 1;
                self.line_start = self.pos + i as u64 + 1;
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

/// The records of an XML file.
pub(super) struct XmlRecords<R: BufRead> {
    reader: NsReader<Lines<R>>,
    map: Arc<XmlMap>,
    name: String,
    index: usize,
    buf: Vec<u8>,
    /// The names of the open elements outside records.
    open: Vec<(Name, u64)>,
    done: bool,
}

impl<R: BufRead> XmlRecords<R> {
    pub(super) fn new(reader: R, map: Arc<XmlMap>, name: String) -> Self {
        let mut reader = NsReader::from_reader(Lines::new(reader));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = true;
        config.check_comments = true;
        XmlRecords {
            reader,
            map,
            name,
            index: 0,
            buf: Vec::new(),
            open: Vec::new(),
            done: false,
        }
    }

    fn fail(&mut self, at: (u64, u64), what: String) -> Error {
        self.done = true;
        Error::Input(format!(
            "{}:{}:{}: {what}; nothing after it can be read (the file must be well-formed XML)",
            self.name, at.0, at.1
        ))
    }

    fn is_record(&self, name: &Name) -> bool {
        match self.map.anywhere {
            true => self.map.record[0] == *name,
            false => {
                self.open.len() + 1 == self.map.record.len()
                    && self
                        .open
                        .iter()
                        .zip(&self.map.record)
                        .all(|((n, _), want)| n == want)
                    && self.map.record.last() == Some(name)
            }
        }
    }

    /// Reads the next event, turning reader errors into a stop.
    fn event(&mut self) -> Result<(Option<Name>, Event<'static>, (u64, u64))> {
        self.buf.clear();
        let at = self.reader.get_ref().here();
        let read = self.reader.read_resolved_event_into(&mut self.buf);
        match read {
            Ok((ns, ev)) => {
                let name = match &ev {
                    Event::Start(e) => Some(resolve(ns, e.local_name().as_ref())),
                    _ => None,
                };
                // quick-xml takes a tag's `<` while it looks for the end of
                // the text before it: a tag starts a byte earlier.
                let at = match ev {
                    Event::Text(_) | Event::GeneralRef(_) | Event::Eof => at,
                    _ => (at.0, at.1.saturating_sub(1).max(1)),
                };
                let ev = ev.into_owned();
                self.reader.get_mut().mark = self.reader.get_ref().pos;
                Ok((name, ev, at))
            }
            Err(e) => {
                let what = describe(&e);
                Err(self.fail((at.0, at.1.saturating_sub(1).max(1)), what))
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<RawRecord>> {
        loop {
            let (name, ev, at) = self.event()?;
            match ev {
                Event::Start(start) => {
                    let name = name.expect("a start tag has a name");
                    if self.is_record(&name) {
                        return self.record(start, name, at).map(Some);
                    }
                    self.open.push((name, at.0));
                }
                Event::End(_) => {
                    self.open.pop();
                }
                Event::Eof => {
                    if let Some((name, line)) = self.open.last().cloned() {
                        let what = format!(
                            "the file ends inside <{}> opened at line {line}",
                            name.local
                        );
                        return Err(self.fail(at, what));
                    }
                    self.done = true;
                    return Ok(None);
                }
                other => self.outside(other, at)?,
            }
        }
    }

    /// Checks an event outside records: DTDs, foreign encodings and unknown
    /// entities stop the file.
    fn outside(&mut self, ev: Event, at: (u64, u64)) -> Result<()> {
        match ev {
            Event::DocType(_) => Err(self.fail(at, DTD.into())),
            Event::Decl(d) => match d.encoding() {
                Some(Ok(enc)) if !is_utf8(&enc) => {
                    let enc = String::from_utf8_lossy(&enc).into_owned();
                    Err(self.fail(at, format!("the file declares encoding=\"{enc}\"; letterpress reads XML in UTF-8 only: convert it (iconv -f {enc} -t UTF-8)")))
                }
                _ => Ok(()),
            },
            Event::GeneralRef(r) => match entity(&r) {
                Ok(_) => Ok(()),
                Err(e) => Err(self.fail(at, e)),
            },
            _ => Ok(()),
        }
    }

    /// Reads one record element into a tree and maps it.
    fn record(&mut self, start: BytesStart, name: Name, at: (u64, u64)) -> Result<RawRecord> {
        let root = self.node(&start, name, at)?;
        let mut stack = vec![root];
        let data = loop {
            let (name, ev, here) = self.event_in_record(at)?;
            match ev {
                Event::Start(s) => {
                    let node = self.node(&s, name.expect("a start tag has a name"), here)?;
                    stack.push(node);
                }
                Event::End(_) => {
                    let node = stack.pop().expect("an end tag closes an open element");
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => break self.map_record(node),
                    }
                }
                Event::Text(t) => match t.xml_content() {
                    Ok(s) => top(&mut stack).text.push_str(&s),
                    Err(_) => return Err(self.fail(here, INVALID_UTF8.into())),
                },
                Event::CData(t) => match t.decode() {
                    Ok(s) => top(&mut stack).text.push_str(&s),
                    Err(_) => return Err(self.fail(here, INVALID_UTF8.into())),
                },
                Event::GeneralRef(r) => match entity(&r) {
                    Ok(c) => top(&mut stack).text.push_str(&c),
                    Err(e) => return Err(self.fail(here, e)),
                },
                Event::Eof => {
                    let what = format!(
                        "the file ends inside the record <{}> opened here",
                        stack[0].name.local
                    );
                    return Err(self.fail(at, what));
                }
                other => self.outside(other, here)?,
            }
        };
        let rec = RawRecord {
            index: self.index,
            line: at.0,
            data,
        };
        self.index += 1;
        Ok(rec)
    }

    /// The next event inside a record: the whole record counts against the
    /// size limit, not each event.
    fn event_in_record(
        &mut self,
        at: (u64, u64),
    ) -> Result<(Option<Name>, Event<'static>, (u64, u64))> {
        let mark = self.reader.get_ref().mark;
        let r = self.event();
        self.reader.get_mut().mark = mark;
        r.map_err(|e| match e {
            Error::Input(m) if m.contains(BIG_EVENT) => Error::Input(format!(
                "{}:{}:{}: the record starting here is larger than {} MiB; nothing after it can be read",
                self.name, at.0, at.1, MAX_RECORD_BYTES >> 20
            )),
            Error::Input(m) => Error::Input(m.replacen(
                "; nothing after it",
                &format!(" (in the record starting at line {}); nothing after it", at.0),
                1,
            )),
            e => e,
        })
    }

    /// An element as read; an attribute that cannot be read (an unknown
    /// entity, invalid UTF-8, malformed) stops the file at its element.
    fn node(&mut self, start: &BytesStart, name: Name, at: (u64, u64)) -> Result<Node> {
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = match a {
                Ok(a) => a,
                Err(e) => return Err(self.fail(at, format!("not well-formed XML: {e}"))),
            };
            if is_xmlns(&a) {
                continue;
            }
            let (ns, local) = self.reader.resolve_attribute(a.key);
            let name = resolve(ns, local.as_ref());
            match a.unescape_value() {
                Ok(v) => attrs.push((name, v.into_owned())),
                Err(e) => {
                    let what = format!("the attribute `{}` cannot be read: {e}; letterpress reads only XML's five entities and character references", name.local);
                    return Err(self.fail(at, what));
                }
            }
        }
        Ok(Node {
            name,
            line: at.0,
            col: at.1,
            attrs,
            text: String::new(),
            children: Vec::new(),
        })
    }

    fn map_record(&self, node: Node) -> std::result::Result<Map<String, Value>, String> {
        map_fields(&node, &self.map.fields, "")
    }
}

fn top(stack: &mut [Node]) -> &mut Node {
    stack.last_mut().expect("inside a record")
}

fn is_xmlns(a: &Attribute) -> bool {
    let key = a.key.as_ref();
    key == b"xmlns" || key.starts_with(b"xmlns:")
}

fn resolve(ns: ResolveResult, local: &[u8]) -> Name {
    let ns = match ns {
        ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        _ => None,
    };
    Name {
        ns,
        local: String::from_utf8_lossy(local).into_owned(),
    }
}

fn is_utf8(enc: &[u8]) -> bool {
    let enc = String::from_utf8_lossy(enc).to_ascii_lowercase();
    matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii")
}

const DTD: &str = "the file has a <!DOCTYPE> declaration; letterpress never reads DTDs (they can fetch files from the network or expand entities without end): remove the DOCTYPE";
const INVALID_UTF8: &str = "the text is not valid UTF-8";

/// The text of a predefined entity or character reference; any other
/// entity would need a DTD, which is never read.
fn entity(r: &quick_xml::events::BytesRef) -> std::result::Result<String, String> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|_| INVALID_UTF8.to_string())?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => Ok(s.to_owned()),
        None => Err(format!(
            "the entity `&{name};` is not one of XML's five (&amp; &lt; &gt; &quot; &apos;); letterpress never reads DTDs, where others are declared"
        )),
    }
}

/// What a quick-xml error means, for a person.
fn describe(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(io) if io.to_string().contains(TOO_BIG) => {
            format!("{BIG_EVENT} {} MiB", MAX_RECORD_BYTES >> 20)
        }
        quick_xml::Error::Encoding(_) => INVALID_UTF8.into(),
        other => format!("not well-formed XML: {other}"),
    }
}

impl<R: BufRead> Iterator for XmlRecords<R> {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_record().transpose()
    }
}
