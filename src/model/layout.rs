//! `layout.yaml`: a layout version's metadata, field schema and settings,
//! as plain types. What is done with them is in [`crate::layout`] (finding
//! and approving versions) and the stages after it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::print::PrintSettings;
use crate::model::vocab::{Channel, Preference};
use crate::util::clock::Date;

/// The dotted path of field `name` inside the object at `prefix` (`""` at
/// the top), as messages and `print.sort` name it.
pub fn field_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The name of a layout version's metadata file.
pub const METADATA_FILE: &str = "layout.yaml";

/// Where a layout version stands in its review lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being written or reviewed; never sent to customers.
    Draft,
    /// Signed off for production.
    Approved,
    /// No longer in use.
    Retired,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Draft => "draft",
            Status::Approved => "approved",
            Status::Retired => "retired",
        })
    }
}

/// Paper sizes a layout can declare. The engine checks every rendered page
/// against the declared size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageFormat {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// ISO A5, 148 × 210 mm.
    A5,
    /// US Letter, 8.5 × 11 in.
    UsLetter,
    /// US Legal, 8.5 × 14 in.
    UsLegal,
}

impl PageFormat {
    /// Width and height in millimetres (portrait).
    pub fn size_mm(self) -> (f64, f64) {
        match self {
            PageFormat::A4 => (210.0, 297.0),
            PageFormat::A5 => (148.0, 210.0),
            PageFormat::UsLetter => (215.9, 279.4),
            PageFormat::UsLegal => (215.9, 355.6),
        }
    }

    /// The name used in `layout.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            PageFormat::A4 => "a4",
            PageFormat::A5 => "a5",
            PageFormat::UsLetter => "us-letter",
            PageFormat::UsLegal => "us-legal",
        }
    }
}

/// Page settings of a layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    /// The paper every page must have.
    pub format: PageFormat,
    /// A letter with more pages fails (guards against runaway templates).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
}

fn default_max_pages() -> usize {
    50
}

/// PDF document metadata set on every letter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfSettings {
    /// Document author (usually the sending organisation). The template's
    /// `document(author: ..)` is used when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// The contents of `layout.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutMeta {
    /// The layout's name; must equal its folder name.
    pub name: String,
    /// The version; must equal its folder name.
    pub version: u32,
    /// A short human title, e.g. "Welcome letter".
    pub title: String,
    /// What the layout is for.
    #[serde(default)]
    pub description: String,
    /// Lifecycle status.
    pub status: Status,
    /// The first day this version may be sent (`YYYY-MM-DD`, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<String>,
    /// The last day this version may be sent (`YYYY-MM-DD`, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<String>,
    /// The record field holding the record id.
    pub id_field: String,
    /// The Typst entry file, relative to the version folder.
    #[serde(default = "default_template")]
    pub template: String,
    /// Page format and limits.
    pub page: PageSettings,
    /// PDF metadata.
    #[serde(default)]
    pub pdf: PdfSettings,
    /// The record field holding the record's locale (e.g. `de-DE`); see
    /// [`crate::layout::locale`] for how it resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_field: Option<String>,
    /// The locale of records without a (supported) locale.
    #[serde(default = "default_locale")]
    pub default_locale: String,
    /// The channels a run renders when `--channels` is not given. Default:
    /// `pdf`, plus `email` when the layout has an `email` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
    /// The record field holding the customer's contact preference (`print`,
    /// `email` or `both`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference_field: Option<String>,
    /// The preference of records that state none.
    #[serde(default)]
    pub default_preference: Preference,
    /// The record field holding the customer's accessibility preference:
    /// `standard` or `large-print` (empty: standard). Other values fail the
    /// record, naming the field: a request the engine cannot meet is never
    /// silently ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessibility_field: Option<String>,
    /// How large-print letters are made (see [`LargePrintSettings`]).
    #[serde(default)]
    pub large_print: LargePrintSettings,
    /// How a run with a contact history (`--contacts`) routes.
    #[serde(default)]
    pub contacts: ContactRules,
    /// Where the recipient's name and address are, for the engine's name
    /// and address rules (see [`crate::render::names`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientSettings>,
    /// The email channel, if the layout has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
    /// Print production settings (see [`crate::output::print`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print: Option<PrintSettings>,
    /// Sentences every document must contain (see [`crate::check::wording`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_text: Vec<Required>,
    /// Strings no document may contain (see [`crate::check::wording`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_text: Vec<String>,
    /// How records are read from XML and fixed-width files (see
    /// [`InputSettings`]); CSV and JSON need no mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputSettings>,
    /// The record schema.
    pub fields: Vec<FieldSpec>,
}

fn default_template() -> String {
    "letter.typ".into()
}

fn default_locale() -> String {
    "en-GB".into()
}

/// How the contact history changes routing (`contacts:` in `layout.yaml`).
/// A hard bounce at an address, or `soft_bounces` soft bounces in a row,
/// and the address is not used: a customer who wanted email gets the
/// letter, saying why. A customer who complained is not emailed (the
/// email is suppressed). Neither can be turned off: a bank keeps sending
/// to a dead address only by mistake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRules {
    /// Soft bounces in a row (without an accepted message between) that
    /// stop an address being used. Default 3.
    #[serde(default = "default_soft_bounces")]
    pub soft_bounces: u32,
}

impl Default for ContactRules {
    fn default() -> Self {
        ContactRules {
            soft_bounces: default_soft_bounces(),
        }
    }
}

fn default_soft_bounces() -> u32 {
    3
}

/// Large print (`large_print:` in `layout.yaml`), after the RNIB's clear
/// print guidance: the template reads these through the engine's module
/// `/letterpress/format.typ`, and the engine checks the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargePrintSettings {
    /// The smallest text size in points anywhere on a large-print letter
    /// except the address block (which must fit the envelope window).
    /// At least 16.
    #[serde(default = "default_large_size")]
    pub min_size: f64,
    /// The factor the template's sizes grow by (`size(10pt)` gives 16 pt
    /// at 1.6), never below `min_size`.
    #[serde(default = "default_large_scale")]
    pub scale: f64,
    /// The page limit of a large-print letter. Default: `page.max_pages`
    /// times the square of `scale`, rounded up (the text takes that much
    /// more room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<usize>,
}

impl Default for LargePrintSettings {
    fn default() -> Self {
        LargePrintSettings {
            min_size: default_large_size(),
            scale: default_large_scale(),
            max_pages: None,
        }
    }
}

fn default_large_size() -> f64 {
    16.0
}

fn default_large_scale() -> f64 {
    1.6
}

impl LargePrintSettings {
    /// The page limit of a large-print letter of a layout whose standard
    /// letters may have `standard` pages.
    pub fn page_limit(&self, standard: usize) -> usize {
        self.max_pages
            .unwrap_or_else(|| (standard as f64 * self.scale * self.scale).ceil() as usize)
    }
}

/// The email channel of a layout (`email:` in `layout.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The sender, e.g. `Northwind Bank <hello@northwind.example>`.
    pub from: String,
    /// Where replies go, if not to the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The record field holding the recipient's address.
    pub to_field: String,
    /// The subject line (Handlebars, not HTML-escaped).
    pub subject: String,
    /// The preheader: the hidden first line inbox lists show after the
    /// subject (Handlebars, not HTML-escaped; inserted after `<body>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// The HTML template, relative to the version folder.
    #[serde(default = "default_email_html")]
    pub html: String,
    /// The plain-text template, relative to the version folder.
    #[serde(default = "default_email_text")]
    pub text: String,
    /// `letter`: the record's PDF letter goes with the email as an
    /// attachment (the email becomes multipart/mixed around its text and
    /// HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
    /// The attachment's file name (Handlebars, not escaped), e.g.
    /// `'Statement {{account_number}}.pdf'`. Default: the layout's name
    /// with `.pdf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_name: Option<String>,
    /// The largest email, attachment included, in bytes; a larger one
    /// fails. Default 10 MB (10,485,760), what most mail services accept.
    #[serde(default = "default_max_email_bytes")]
    pub max_bytes: u64,
    /// Password protection of the attached letter (AES-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<EncryptSettings>,
}

/// What goes with an email (`email.attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attach {
    /// The record's PDF letter, as the pdf channel renders it.
    Letter,
}

/// Password protection of an attached letter (`email.encrypt`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptSettings {
    /// The record field whose value opens the PDF (e.g. a date of birth or
    /// a customer number the customer knows). Never written anywhere.
    pub password_field: String,
}

fn default_max_email_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_email_html() -> String {
    "email.html.hbs".into()
}

fn default_email_text() -> String {
    "email.txt.hbs".into()
}

impl LayoutMeta {
    /// Whether the version is in effect on `day` (its effective dates, if
    /// any, include it).
    pub fn in_effect(&self, day: Date) -> bool {
        let from = self.effective_from.as_deref().and_then(Date::parse);
        let until = self.effective_until.as_deref().and_then(Date::parse);
        from.is_none_or(|f| f <= day) && until.is_none_or(|u| day <= u)
    }

    /// `from 2026-01-01 until 2026-06-30`, or `always` without dates.
    pub fn effective(&self) -> String {
        match (&self.effective_from, &self.effective_until) {
            (None, None) => "always".into(),
            (Some(f), None) => format!("from {f}"),
            (None, Some(u)) => format!("until {u}"),
            (Some(f), Some(u)) => format!("from {f} until {u}"),
        }
    }

    /// The channels a run renders by default.
    pub fn default_channels(&self) -> Vec<Channel> {
        match &self.channels {
            Some(c) => c.clone(),
            None if self.email.is_some() => vec![Channel::Pdf, Channel::Email],
            None => vec![Channel::Pdf],
        }
    }
}

/// How a user names a layout: `NAME` or `NAME@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// Layout name.
    pub name: String,
    /// An explicit version, or `None` for "the highest approved".
    pub version: Option<u32>,
}

impl std::str::FromStr for LayoutRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('@') {
            None if !s.is_empty() => Ok(LayoutRef {
                name: s.into(),
                version: None,
            }),
            Some((name, v)) if !name.is_empty() => match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(LayoutRef {
                    name: name.into(),
                    version: Some(n),
                }),
                _ => Err(format!(
                    "`{s}`: the version after @ must be a positive integer"
                )),
            },
            _ => Err(format!(
                "`{s}` is not a layout name (expected NAME or NAME@VERSION)"
            )),
        }
    }
}

impl fmt::Display for LayoutRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The type of a field in a layout's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Any text.
    String,
    /// A decimal number (integer or fraction).
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false` (CSV also accepts `yes`/`no`, `1`/`0`).
    Bool,
    /// A calendar date `YYYY-MM-DD`, handed to the template as that string.
    Date,
    /// An ISO 4217 currency code in capitals (`EUR`, `JPY`), handed to the
    /// template as that string; an unknown code fails the record.
    Currency,
    /// A list; its elements are described by `items` or `fields`.
    List,
    /// A nested object described by `fields`.
    Object,
}

impl FieldType {
    /// The name used in `layout.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Integer => "integer",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Currency => "currency",
            FieldType::List => "list",
            FieldType::Object => "object",
        }
    }
}

/// One field of a layout's schema, as written in `layout.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's key in the record.
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether a record without this field (or with an empty value) fails.
    #[serde(default)]
    pub required: bool,
    /// What the field means, for `layouts show` and for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For a `list`: the type of its elements when they are not objects
    /// (default: `object` when `fields` is given, else `string`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<FieldType>,
    /// For an `object`, or a `list` of objects: the fields inside.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSpec>,
    /// For a `string`: the most characters it may have (a record with a
    /// longer value fails, naming the field). Guards the layout against
    /// values no letter can hold, such as a 10 MB name from a broken export,
    /// which would otherwise take seconds to lay out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// For a `string` (or a list of strings): the value may hold line
    /// breaks and tabs (a free-text note). Without it a value is one line,
    /// and a line break in it fails the record, naming the field: a newline
    /// must not add an address line. See [`crate::check::values`] for every rule
    /// on the characters of a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiline: bool,
    /// The value is a secret (it opens something, such as the attached
    /// letter's password field, which is always secret): a failure reason
    /// names the field and the rule, never the value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Where the field is in an XML record: a path relative to the record
    /// element (or, inside an object or list, to its element), such as
    /// `Acct/Id/IBAN`, `Amt/@Ccy`, `Bal[Tp/CdOrPrtry/Cd='CLBD']/Amt` or `.`
    /// (the element's own text). Default: the child element of the field's
    /// name. See [`crate::input::xml`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
}

impl FieldSpec {
    /// The type of a list's elements.
    pub fn item_type(&self) -> FieldType {
        self.items.unwrap_or(if self.fields.is_empty() {
            FieldType::String
        } else {
            FieldType::Object
        })
    }

    /// Checks that the schema itself makes sense; returns the problems found.
    pub fn check(fields: &[FieldSpec], prefix: &str, problems: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        for f in fields {
            let path = field_path(prefix, &f.name);
            if f.name.is_empty() || f.name.contains('.') {
                problems.push(format!(
                    "field `{path}`: a name must be non-empty without `.`"
                ));
            }
            if !seen.insert(&f.name) {
                problems.push(format!("field `{path}` is declared twice"));
            }
            let nested = f.kind == FieldType::Object
                || (f.kind == FieldType::List && f.item_type() == FieldType::Object);
            if nested {
                FieldSpec::check(&f.fields, &path, problems);
            } else if !f.fields.is_empty() {
                problems.push(format!(
                    "field `{path}` has type {} and cannot have `fields`",
                    f.kind.name()
                ));
            }
            if f.items.is_some() && f.kind != FieldType::List {
                problems.push(format!("field `{path}`: only a list can have `items`"));
            }
            if f.multiline && f.kind != FieldType::String && f.item_type() != FieldType::String {
                problems.push(format!(
                    "field `{path}`: only a string (or a list of strings) can be `multiline`"
                ));
            }
            if f.kind == FieldType::List && f.items == Some(FieldType::List) {
                problems.push(format!("field `{path}`: lists of lists are not supported"));
            }
        }
    }
}

/// One `required_text` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Required {
    /// The same sentence in every document.
    Always(String),
    /// The sentence per language or locale.
    PerLanguage(BTreeMap<String, String>),
}

/// Where a layout's records keep the recipient (`recipient:` in
/// `layout.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSettings {
    /// The record field with a title or form of address (`Dr`, `Herr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The record field with the given (first) name.
    pub given: String,
    /// The record field with the family (last) name.
    pub family: String,
    /// The record field with the address object, if the layout has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The country letters are sent from (ISO 3166 code): an address
    /// there gets no country line. Default: the region of the layout's
    /// default locale (`en-GB`: GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_country: Option<String>,
}

/// How records are read from formats that need a mapping (`input:` in
/// `layout.yaml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSettings {
    /// XML: which element is one record; the fields' own `xml` paths say
    /// where each value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<XmlInput>,
    /// Fixed-width record files (mainframe and core banking exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<FixedInput>,
}

/// The XML mapping's record element and namespaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlInput {
    /// The path of the element that is one record, from the document
    /// element (`Document/BkToCstmrStmt/Stmt`), or `//Name` for that element
    /// at any depth (not inside another record).
    pub record: String,
    /// The namespace of names written without a prefix in `record` and the
    /// fields' paths (the document's default namespace, such as
    /// `urn:iso:std:iso:20022:tech:xsd:camt.053.001.08`). Without it, such
    /// names are in no namespace. Attributes without a prefix are always in
    /// no namespace, as XML has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Prefixes for other namespaces, as the paths use them (`{ds:
    /// "http://www.w3.org/2000/09/xmldsig#"}`); the file's own prefixes do
    /// not matter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, String>,
}

/// The layout of a fixed-width record file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedInput {
    /// The code page of the text: `ascii`, `utf-8`, `latin-1`, or EBCDIC
    /// `cp037`, `cp273`, `cp500`, `cp1140`.
    pub encoding: String,
    /// The length of every record in bytes when the file has no line ends
    /// (a mainframe data set of fixed-length records, RECFM=F or FB).
    /// Without it, each line is a record (`\n` or `\r\n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_length: Option<usize>,
    /// Where each record's type code is.
    #[serde(rename = "type")]
    pub type_code: FixedSlice,
    /// The record types.
    pub records: Vec<FixedRecordType>,
}

/// A span of a fixed-width record: `start` counts from 1, as record layouts
/// are printed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedSlice {
    /// The first byte, from 1.
    pub start: usize,
    /// The number of bytes.
    pub length: usize,
}

/// What a record type is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FixedRole {
    /// Once, first: its fields go into every customer record.
    Header,
    /// Starts the next customer record.
    Record,
    /// Belongs to the customer record before it: one element of a list.
    Detail,
    /// Belongs to the customer record before it: more of its fields.
    Extra,
    /// Once, last: the sender's control totals.
    Trailer,
}

/// One record type of a fixed-width file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedRecordType {
    /// The type code, as text in the file's code page (`"01"`, `"D"`).
    pub code: String,
    /// What the record is.
    pub role: FixedRole,
    /// For a `detail`: the list field each such record is an element of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// The fields: dotted names (`address.city`) build objects, as in CSV.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FixedField>,
    /// For the `trailer`: the field holding the number of customer records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<FixedField>,
    /// For the `trailer`: fields holding sums of a numeric field over the
    /// whole file; `name` is the summed field (`transactions.amount`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sums: Vec<FixedField>,
}

/// One field of a fixed-width record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedField {
    /// The field (dotted for a nested object).
    pub name: String,
    /// The first byte, from 1.
    pub start: usize,
    /// The number of bytes.
    pub length: usize,
    /// How the bytes hold the value.
    #[serde(default, rename = "type")]
    pub kind: FixedKind,
    /// Implied decimal places of a `zoned` or `packed` number (`PIC
    /// S9(7)V99` has 2).
    #[serde(default)]
    pub decimals: u32,
}

/// How a fixed-width field holds its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixedKind {
    /// Text in the file's code page; spaces around it are dropped, and all
    /// spaces mean no value.
    #[default]
    Text,
    /// Zoned decimal (COBOL `PIC S9(n)` DISPLAY): a digit a byte, the sign
    /// in the last byte's zone (C or F positive, D negative).
    Zoned,
    /// Packed decimal (COBOL COMP-3): two digits a byte, the last half-byte
    /// the sign.
    Packed,
}
