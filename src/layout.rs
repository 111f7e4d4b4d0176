//! Versioned layouts: discovery, metadata, selection and digest.
//!
//! Stage 2 of the data path, next to [`crate::schema`]. A layout version is a
//! folder `<layouts>/<name>/<version>/` holding `layout.yaml`, the Typst
//! template (`letter.typ`), `assets/` and optionally `fonts/`. Layouts are
//! found with walkdir; `NAME` selects the highest approved version and
//! `NAME@N` exactly version N.
//!
//! # Digest
//! A layout version's digest identifies everything that can change its output.
//! It is the SHA-256 of, for every regular file in the version folder (all
//! sub-folders included) in ascending byte order of its relative path written
//! with `/` separators:
//! the relative path in UTF-8, one NUL byte, the file length as an 8-byte
//! big-endian integer, and the file's bytes. Symbolic links are refused, so a
//! layout cannot reach outside its folder.
//!
//! Two things are left out, because they record a decision about the files
//! rather than change any output: the approval record `approval.yaml` (see
//! [`crate::approval`]), and the `status:` line of `layout.yaml` (its other
//! lines are hashed as they are). So approving or retiring a version keeps
//! its digest.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ring::digest::{Context as Sha256, SHA256};
use serde::{Deserialize, Serialize};

use crate::clock::Date;
use crate::error::{Error, Result};
use crate::route::{Channel, Preference};
use crate::schema::{FieldSpec, FieldType};

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
    /// [`crate::locale`] for how it resolves.
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
    /// Where the recipient's name and address are, for the engine's name
    /// and address rules (see [`crate::names`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<crate::names::RecipientSettings>,
    /// The email channel, if the layout has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
    /// Print production settings (see [`crate::print`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print: Option<crate::print::PrintSettings>,
    /// Sentences every document must contain (see [`crate::wording`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_text: Vec<crate::wording::Required>,
    /// Strings no document may contain (see [`crate::wording`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_text: Vec<String>,
    /// The record schema.
    pub fields: Vec<FieldSpec>,
}

fn default_template() -> String {
    "letter.typ".into()
}

fn default_locale() -> String {
    "en-GB".into()
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

/// One layout version found on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Its metadata.
    pub meta: LayoutMeta,
    /// Its version folder.
    pub dir: PathBuf,
    /// Since when its current files have been approved (see
    /// [`crate::approval::Approval::approved_since`]); `None` without an
    /// approval record.
    pub approved_since: Option<Date>,
}

impl Layout {
    /// Whether the version is in effect on `day`: its effective dates
    /// include it, and its files were approved on or before it. A letter
    /// dated `day` never uses wording approved after `day`. (A version with
    /// no approval record is judged by its dates here; it cannot run for
    /// customers anyway.)
    pub fn in_effect(&self, day: Date) -> bool {
        self.meta.in_effect(day) && self.approved_since.is_none_or(|since| since <= day)
    }

    /// `approved on D, from D until D` (or `draft, always`): the version's
    /// standing in a list of versions.
    pub fn describe(&self) -> String {
        match (self.meta.status, self.approved_since) {
            (Status::Approved, Some(since)) => {
                format!("approved on {since}, {}", self.meta.effective())
            }
            (status, _) => format!("{status}, {}", self.meta.effective()),
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

/// All layout versions under a layouts folder, by name and version.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Layout versions keyed by name, then version.
    pub layouts: BTreeMap<String, BTreeMap<u32, Layout>>,
    /// Version folders whose metadata cannot be used, keyed by the layout
    /// (folder) name, with the reason. A broken version blocks its own layout
    /// (it might be the one a user means), never the others.
    pub broken: BTreeMap<String, Vec<(PathBuf, String)>>,
}

impl Catalog {
    /// Finds every `<name>/<version>/layout.yaml` under `root` and reads it.
    /// A metadata file that cannot be read or does not match its folder is
    /// kept in [`Catalog::broken`]: a broken layout must be fixed, and
    /// selecting it is an error, but it does not hide the other layouts.
    pub fn discover(root: &Path) -> Result<Catalog> {
        if !root.is_dir() {
            return Err(Error::Layout(format!(
                "layouts folder `{}` does not exist (set --layouts or LETTERPRESS_LAYOUTS)",
                root.display()
            )));
        }
        let mut catalog = Catalog::default();
        let walker = walkdir::WalkDir::new(root)
            .min_depth(3)
            .max_depth(3)
            .sort_by_file_name();
        for entry in walker {
            let entry = entry.map_err(|e| Error::Layout(format!("{}: {e}", root.display())))?;
            if entry.file_name() != METADATA_FILE {
                continue;
            }
            let dir = entry.path().parent().expect("depth 3");
            match Layout::load(dir) {
                Ok(layout) => {
                    let versions = catalog.layouts.entry(layout.meta.name.clone()).or_default();
                    versions.insert(layout.meta.version, layout);
                }
                Err(e) => {
                    let name = dir.parent().and_then(|p| p.file_name());
                    let name = name.map_or(String::new(), |n| n.to_string_lossy().into_owned());
                    catalog
                        .broken
                        .entry(name)
                        .or_default()
                        .push((dir.to_path_buf(), e.to_string()));
                }
            }
        }
        Ok(catalog)
    }

    /// Picks the layout version `r` names: the given version, or the highest
    /// approved one in effect on `day`.
    pub fn resolve(&self, r: &LayoutRef, day: Date) -> Result<&Layout> {
        let chosen = r.version.and_then(|v| self.layouts.get(&r.name)?.get(&v));
        if let (None, Some(broken)) = (chosen, self.broken.get(&r.name)) {
            let reasons: Vec<&str> = broken.iter().map(|(_, why)| why.as_str()).collect();
            return Err(Error::Layout(format!(
                "layout `{}` has a broken version: {}",
                r.name,
                reasons.join("; ").trim_start_matches("layout error: ")
            )));
        }
        let Some(versions) = self.layouts.get(&r.name) else {
            let known: Vec<_> = self.layouts.keys().map(String::as_str).collect();
            return Err(Error::Layout(format!(
                "no layout named `{}` (known layouts: {})",
                r.name,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let list = || {
            versions
                .values()
                .map(|l| format!("{} ({})", l.meta.version, l.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match r.version {
            Some(v) => versions.get(&v).ok_or_else(|| {
                Error::Layout(format!(
                    "layout `{}` has no version {v} (versions: {})",
                    r.name,
                    list()
                ))
            }),
            None => versions
                .values()
                .rev()
                .find(|l| l.meta.status == Status::Approved && l.in_effect(day))
                .ok_or_else(|| {
                    Error::Layout(format!(
                        "layout `{}` has no approved version in effect on {day} (versions: {}); name one with {}@N",
                        r.name,
                        list(),
                        r.name
                    ))
                }),
        }
    }
}

impl Layout {
    /// Reads and checks the metadata of the version folder `dir`.
    pub fn load(dir: &Path) -> Result<Layout> {
        let file = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::Layout(format!("{}: {e}", file.display())))?;
        let meta: LayoutMeta = serde_yaml::from_str(&text)
            .map_err(|e| Error::Layout(format!("{}: {e}", file.display())))?;
        let mut problems = Vec::new();
        let folder_version = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let folder_name = dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        if folder_version != meta.version.to_string() || meta.version == 0 {
            problems.push(format!(
                "version {} does not match its folder `{folder_version}` (folders are named by positive version numbers)",
                meta.version
            ));
        }
        if folder_name != Some(meta.name.as_str()) {
            problems.push(format!(
                "name `{}` does not match its folder `{}`",
                meta.name,
                folder_name.unwrap_or("?")
            ));
        }
        FieldSpec::check(&meta.fields, "", &mut problems);
        match meta.fields.iter().find(|f| f.name == meta.id_field) {
            None => problems.push(format!(
                "id_field `{}` is not declared in `fields`",
                meta.id_field
            )),
            Some(f) if !f.required || !matches!(f.kind, FieldType::String | FieldType::Integer) => {
                problems.push(format!(
                    "id_field `{}` must be a required string or integer field",
                    meta.id_field
                ))
            }
            Some(_) => {}
        }
        if !dir.join(&meta.template).is_file() {
            problems.push(format!("template `{}` is missing", meta.template));
        }
        let dates: Vec<Option<Date>> = [&meta.effective_from, &meta.effective_until]
            .iter()
            .zip(["effective_from", "effective_until"])
            .map(|(d, key)| {
                d.as_deref().and_then(|s| {
                    let parsed = Date::parse(s);
                    if parsed.is_none() {
                        problems.push(format!("{key} `{s}` is not a date (YYYY-MM-DD)"));
                    }
                    parsed
                })
            })
            .collect();
        if let (Some(f), Some(u)) = (dates[0], dates[1]) {
            if u < f {
                problems.push(format!("effective_until {u} is before effective_from {f}"));
            }
        }
        if crate::locale::rules(&meta.default_locale).is_none() {
            let list: Vec<&str> = crate::locale::RULES.iter().map(|r| r.tag).collect();
            problems.push(format!(
                "default_locale `{}` is not supported (supported: {})",
                meta.default_locale,
                list.join(", ")
            ));
        }
        let declared = |name: &str| meta.fields.iter().any(|f| f.name == name);
        for (key, field) in [
            ("locale_field", meta.locale_field.as_deref()),
            ("preference_field", meta.preference_field.as_deref()),
            (
                "email.to_field",
                meta.email.as_ref().map(|e| e.to_field.as_str()),
            ),
        ] {
            if let Some(f) = field.filter(|f| !declared(f)) {
                problems.push(format!("{key} `{f}` is not declared in `fields`"));
            }
        }
        if let Some(email) = &meta.email {
            for t in [&email.html, &email.text] {
                if !dir.join(t).is_file() {
                    problems.push(format!("email template `{t}` is missing"));
                }
            }
        }
        if meta.default_channels().contains(&Channel::Email) && meta.email.is_none() {
            problems.push("`channels` lists email but the layout has no `email` section".into());
        }
        if problems.is_empty() {
            let approved_since = crate::approval::load_from(dir)?.and_then(|a| a.approved_since());
            Ok(Layout {
                meta,
                dir: dir.to_path_buf(),
                approved_since,
            })
        } else {
            Err(Error::Layout(format!(
                "{}: {}",
                file.display(),
                problems.join("; ")
            )))
        }
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.meta.name, self.meta.version)
    }

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
            if rel == crate::approval::APPROVAL_FILE {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let canonical = if rel == METADATA_FILE {
                without_status(&bytes)
            } else {
                bytes.clone()
            };
            hasher.update(rel.as_bytes());
            hasher.update(&[0u8]);
            hasher.update(&(canonical.len() as u64).to_be_bytes());
            hasher.update(&canonical);
            hashes.insert(rel.clone(), crate::output::sha256_hex(&canonical));
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
    /// SHA-256 of each file as the digest sees it (see the module docs).
    pub hashes: BTreeMap<String, String>,
}

/// `layout.yaml` without its `status:` line(s), as the digest sees it.
fn without_status(yaml: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(yaml.len());
    for line in yaml.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"status:") {
            out.extend_from_slice(line);
        }
    }
    out
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

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layout_refs() {
        assert_eq!(
            "a".parse::<LayoutRef>().unwrap(),
            LayoutRef {
                name: "a".into(),
                version: None
            }
        );
        assert_eq!("a@2".parse::<LayoutRef>().unwrap().version, Some(2));
        assert!("a@0".parse::<LayoutRef>().is_err());
        assert!("a@x".parse::<LayoutRef>().is_err());
        assert!("@1".parse::<LayoutRef>().is_err());
    }
}
