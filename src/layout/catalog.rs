//! The catalog of layout versions: discovery, metadata checks, and the
//! choice of a version for a date.
//!
//! A layout version is a
//! folder `<layouts>/<name>/<version>/` holding `layout.yaml`, the Typst
//! template (`letter.typ`), `assets/` and optionally `fonts/`. Layouts are
//! found with walkdir; `NAME` selects the highest approved version in
//! effect and `NAME@N` exactly version N. Whether a version is approved
//! comes from its layout's signed decisions, checked against the trust
//! list ([`crate::layout::decisions`]); `status` in `layout.yaml` grants
//! nothing (only `retired` has an effect: the version never runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::decisions::{Review, State};
use crate::layout::trust::Trust;
use crate::model::approval::APPROVAL_FILE;
use crate::model::layout::{FieldSpec, FieldType, LayoutMeta, LayoutRef, Status, METADATA_FILE};
use crate::model::print::PrintSettings;
use crate::model::vocab::Channel;
use crate::util::clock::Date;

/// One layout version found on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Its metadata.
    pub meta: LayoutMeta,
    /// Its version folder.
    pub dir: PathBuf,
    /// Where it stands by its layout's decisions (its files are compared
    /// with them by [`crate::layout::decisions::standing`]).
    pub state: State,
    /// Its layout's chain of decisions, checked.
    pub review: Arc<Review>,
}

impl Layout {
    /// Whether the version may be used for a letter dated `day`: approved,
    /// by an approval that covers the day (not before it was given, not
    /// after a revocation), within its effective dates, and not retired.
    /// A letter dated `day` never uses wording approved after `day`.
    pub fn in_effect(&self, day: Date) -> bool {
        self.meta.status != Status::Retired
            && self.meta.in_effect(day)
            && self.state.approval().is_some_and(|a| a.covers(day))
    }

    /// `approved for letters from D, from D until D` (or `submitted,
    /// always`): the version's standing in a list of versions.
    pub fn describe(&self) -> String {
        let state = match &self.state {
            State::Approved(a) => match a.revoked {
                Some((_, on)) => {
                    format!("approved for letters from {} until {on} (revoked)", a.from)
                }
                None => format!("approved for letters from {}", a.from),
            },
            other => other.short().to_owned(),
        };
        format!("{state}, {}", self.meta.effective())
    }

    /// Whether the version folder holds an `approval.yaml` of an earlier
    /// letterpress (unsigned, and no longer an approval).
    pub fn has_legacy_approval(&self) -> bool {
        self.dir.join(APPROVAL_FILE).exists()
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
    /// [`Catalog::load`] without a trust list: every version can be read,
    /// rendered as a draft, proofed and compared, none is approved.
    pub fn discover(root: &Path) -> Result<Catalog> {
        Catalog::load(root, None)
    }

    /// Finds every `<name>/<version>/layout.yaml` under `root` and reads it,
    /// with where each version stands by its layout's decisions checked
    /// against `trust`. A metadata file that cannot be read or does not
    /// match its folder is kept in [`Catalog::broken`]: a broken layout
    /// must be fixed, and selecting it is an error, but it does not hide
    /// the other layouts.
    pub fn load(root: &Path, trust: Option<&Trust>) -> Result<Catalog> {
        if !root.is_dir() {
            return Err(Error::Layout(format!(
                "layouts folder `{}` does not exist (set --layouts or LETTERPRESS_LAYOUTS)",
                root.display()
            )));
        }
        let mut catalog = Catalog::default();
        let mut reviews: BTreeMap<PathBuf, Arc<Review>> = BTreeMap::new();
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
                Ok(mut layout) => {
                    let layout_dir = dir.parent().expect("depth 3").to_path_buf();
                    let review = reviews.entry(layout_dir.clone()).or_insert_with(|| {
                        Arc::new(Review::read(&layout_dir, &layout.meta.name, trust))
                    });
                    layout.state =
                        review.state(layout.meta.version, trust, layout.has_legacy_approval());
                    layout.review = review.clone();
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
                .find(|l| l.in_effect(day))
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
        let mut meta: LayoutMeta = serde_yaml::from_str(&text)
            .map_err(|e| Error::Layout(format!("{}: {e}", file.display())))?;
        // The attached letter's password is a secret, declared so or not.
        let password = meta
            .email
            .as_ref()
            .and_then(|e| e.encrypt.as_ref())
            .map(|e| e.password_field.clone());
        for f in meta.fields.iter_mut() {
            f.secret |= password.as_deref() == Some(f.name.as_str());
        }
        let mut problems = Vec::new();
        check_folder(dir, &meta, &mut problems);
        check_fields(&meta, &mut problems);
        check_settings(dir, &meta, &mut problems);
        check_references(dir, &meta, &mut problems);
        if problems.is_empty() {
            Ok(Layout {
                meta,
                dir: dir.to_path_buf(),
                state: State::NoTrust,
                review: Arc::default(),
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
}

/// The version folder is named by the version, inside the layout's folder.
fn check_folder(dir: &Path, meta: &LayoutMeta, problems: &mut Vec<String>) {
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
}

/// The field schema and the id field.
fn check_fields(meta: &LayoutMeta, problems: &mut Vec<String>) {
    FieldSpec::check(&meta.fields, "", problems);
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
}

/// The template exists, the effective dates parse and are in order, and
/// the default locale is supported.
fn check_settings(dir: &Path, meta: &LayoutMeta, problems: &mut Vec<String>) {
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
    if crate::layout::locale::rules(&meta.default_locale).is_none() {
        let list: Vec<&str> = crate::layout::locale::RULES.iter().map(|r| r.tag).collect();
        problems.push(format!(
            "default_locale `{}` is not supported (supported: {})",
            meta.default_locale,
            list.join(", ")
        ));
    }
}

/// The fields other settings name are declared, the email templates
/// exist, and an email channel has its settings.
fn check_references(dir: &Path, meta: &LayoutMeta, problems: &mut Vec<String>) {
    let declared = |name: &str| meta.fields.iter().any(|f| f.name == name);
    for (key, field) in [
        ("locale_field", meta.locale_field.as_deref()),
        ("preference_field", meta.preference_field.as_deref()),
        ("accessibility_field", meta.accessibility_field.as_deref()),
        (
            "email.to_field",
            meta.email.as_ref().map(|e| e.to_field.as_str()),
        ),
        (
            "email.encrypt.password_field",
            meta.email
                .as_ref()
                .and_then(|e| e.encrypt.as_ref())
                .map(|e| e.password_field.as_str()),
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
        if email.encrypt.is_some() && email.attach.is_none() {
            problems
                .push("email.encrypt protects an attachment, but email.attach is not set".into());
        }
    }
    if meta.default_channels().contains(&Channel::Email) && meta.email.is_none() {
        problems.push("`channels` lists email but the layout has no `email` section".into());
    }
    if let Some(print) = &meta.print {
        check_print(meta, print, problems);
        check_mailmark(meta, print, problems);
    }
    let large = &meta.large_print;
    if large.min_size.is_nan() || large.min_size < 16.0 {
        problems.push(format!(
            "large_print.min_size is {} pt; clear print needs at least 16",
            large.min_size
        ));
    }
    if large.scale.is_nan() || large.scale < 1.0 {
        problems.push(format!(
            "large_print.scale is {}; it must be at least 1",
            large.scale
        ));
    }
}

/// The `print.mailmark` section: one postal barcode, fields in range,
/// declared record fields (the barcode itself is made per piece).
fn check_mailmark(meta: &LayoutMeta, print: &PrintSettings, problems: &mut Vec<String>) {
    let Some(m) = &print.mailmark else {
        return;
    };
    let mut say = |what: String| problems.push(format!("print.mailmark: {what}"));
    if print.imb.is_some() {
        say("a piece has one postal barcode: give print.imb or print.mailmark, not both".into());
    }
    let width = match m.barcode.as_str() {
        "C" => 2,
        "L" => 6,
        other => {
            say(format!("barcode is `{other}`, not C or L"));
            6
        }
    };
    if !matches!(m.format.as_str(), "0" | "1" | "2" | "3" | "4") {
        say(format!("format is `{}`, not 0 to 4", m.format));
    }
    let class_ok = m.class.len() == 1
        && m.class
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'E').contains(&b));
    if !class_ok {
        say(format!("class is `{}`, not 0 to 9 or A to E", m.class));
    }
    let scid = &m.supply_chain_id;
    if scid.is_empty() || scid.len() > width || !scid.bytes().all(|b| b.is_ascii_digit()) {
        say(format!(
            "supply_chain_id `{scid}` is not 1 to {width} digits"
        ));
    }
    if let Some(d) = &m.two_d {
        let it = d.information_type.as_bytes();
        if it.len() != 1 || !it[0].is_ascii_alphanumeric() {
            say("two_d.information_type must be one letter or digit".into());
        }
        let rts = d.return_postcode.replace(' ', "");
        if rts.len() > 7 || !rts.bytes().all(|b| b.is_ascii_alphanumeric()) {
            say(format!(
                "two_d.return_postcode `{}` is not a UK postcode (up to 7 letters and digits)",
                d.return_postcode
            ));
        }
        if !matches!(
            d.service_type.as_str(),
            "0" | "1" | "2" | "3" | "4" | "5" | "6"
        ) {
            say(format!(
                "two_d.service_type is `{}`, not 0 to 6",
                d.service_type
            ));
        }
    }
    for field in std::iter::once(&m.postcode_field).chain(&m.dps_field) {
        let top = field.split('.').next().unwrap_or(field);
        if !meta.fields.iter().any(|f| f.name == top) {
            say(format!("field `{field}` is not declared in `fields`"));
        }
    }
}

/// Names the ticket and the inserter's file show, which the spreadsheet
/// rule must never change (see `util::text::csv_cell`).
fn check_print_names(print: &PrintSettings, problems: &mut Vec<String>) {
    let names = print.envelopes.iter().map(|e| ("envelopes", &e.name));
    let names = names.chain(
        print
            .weight_classes
            .iter()
            .map(|c| ("weight_classes", &c.name)),
    );
    for (key, name) in names {
        if name.starts_with(crate::util::text::FORMULA_STARTS) {
            problems.push(format!(
                "print.{key}: `{name}` may not begin with =, +, -, @, a tab or a carriage return (a spreadsheet would read it as a formula)"
            ));
        }
    }
}

/// The inserts, weights and fields of the `print` section.
fn check_print(meta: &LayoutMeta, print: &PrintSettings, problems: &mut Vec<String>) {
    let negative = |w: f64| w.is_nan() || w < 0.0;
    let declared = |path: &str| {
        let top = path.split('.').next().unwrap_or(path);
        meta.fields.iter().any(|f| f.name == top)
    };
    let mut codes = Vec::new();
    for i in &print.inserts {
        let ok = i.code.starts_with(|c: char| c.is_ascii_alphanumeric())
            && i.code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            problems.push(format!(
                "print.inserts: code `{}` must start with a letter or digit and hold only letters, digits, `-` or `_` (it goes into the DataMatrix and the inserter's files)",
                i.code
            ));
        }
        if codes.contains(&&i.code) {
            problems.push(format!(
                "print.inserts: code `{}` is declared twice",
                i.code
            ));
        }
        codes.push(&i.code);
        if !declared(&i.field) {
            problems.push(format!(
                "print.inserts `{}`: field `{}` is not declared in `fields`",
                i.code, i.field
            ));
        }
        if negative(i.weight) {
            problems.push(format!(
                "print.inserts `{}`: weight must be 0 or more grams",
                i.code
            ));
        }
    }
    if let Some(f) = print.divert_field.as_deref().filter(|f| !declared(f)) {
        problems.push(format!(
            "print.divert_field `{f}` is not declared in `fields`"
        ));
    }
    if let Some(h) = &print.household {
        for (key, f) in [
            ("field", &h.field),
            ("address_field", &h.address_field),
            ("customer_field", &h.customer_field),
            ("consent_field", &h.consent_field),
        ] {
            if let Some(f) = f.as_deref().filter(|f| !declared(f)) {
                problems.push(format!(
                    "print.household.{key} `{f}` is not declared in `fields`"
                ));
            }
        }
    }
    check_print_names(print, problems);
    let weights = print.envelopes.iter().map(|e| e.weight);
    if negative(print.sheet_weight) || weights.clone().any(negative) {
        problems.push("print: sheet and envelope weights must be 0 or more grams".into());
    }
    let maxima: Vec<Option<f64>> = print.weight_classes.iter().map(|c| c.max).collect();
    let rising = maxima.windows(2).all(|w| match (w[0], w[1]) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    });
    if print.weight_classes.is_empty() || !rising {
        problems.push(
            "print.weight_classes: list the classes lightest first, each `max` above the one before, only the last without `max`".into(),
        );
    }
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
