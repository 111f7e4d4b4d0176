//! The words every stage uses: channels, contact preferences, input
//! formats, PDF standards and the status of a document.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// An output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A PDF letter, for print and mail.
    Pdf,
    /// An email (HTML + text, as a `.eml` file).
    Email,
    /// A web letter: an accessible HTML page of the letter, made from the
    /// same template, for the customer portal and screen readers.
    Web,
}

impl Channel {
    /// The name in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Pdf => "pdf",
            Channel::Email => "email",
            Channel::Web => "web",
        }
    }
}

/// A customer's contact preference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    /// Letters only.
    Print,
    /// Email only (print only as a fallback).
    Email,
    /// Both.
    #[default]
    Both,
}

/// The form a letter takes for its reader: the layout's
/// `accessibility_field` picks it per record (see
/// [`crate::check::record::letter_format`]).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LetterFormat {
    /// The layout as designed.
    #[default]
    Standard,
    /// Clear print at a larger size: the same template, rendered by the
    /// engine with the layout's `large_print` settings.
    LargePrint,
}

impl LetterFormat {
    /// The name in records, manifests and the template (`format.typ`).
    pub fn name(self) -> &'static str {
        match self {
            LetterFormat::Standard => "standard",
            LetterFormat::LargePrint => "large-print",
        }
    }
}

/// The format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// XML, mapped by paths declared in `layout.yaml`.
    Xml,
    /// A fixed-width record file, laid out in `layout.yaml`.
    Fixed,
    /// Rows of a PostgreSQL query (`--data postgresql://...`).
    Postgresql,
}

impl Format {
    /// Picks the format from a file extension (`.csv`, `.json`, `.jsonl`/`.ndjson`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Xml => "xml",
            Format::Fixed => "fixed",
            Format::Postgresql => "postgresql",
        }
    }

    /// Whether values carry their own types (JSON); otherwise every value
    /// is text converted to the schema's types.
    pub fn typed(self) -> bool {
        matches!(self, Format::Json | Format::Jsonl)
    }
}

/// PDF standards a run can ask for on top of the default tagged PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// PDF/A-2b, for archiving.
    A2b,
    /// PDF/UA-1, for accessibility.
    Ua1,
}

impl Standard {
    /// The name used on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Standard::A2b => "a-2b",
            Standard::Ua1 => "ua-1",
        }
    }
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// The document was rendered and written.
    Rendered,
    /// The record failed; `error` says why.
    Failed,
    /// Withheld: the record is on the suppression list; `error` names the
    /// list and its line.
    Suppressed,
    /// Not this channel: the customer is reached on another one, by their
    /// contact preference or as a fallback; `error` says which.
    #[serde(rename = "routed_elsewhere")]
    RoutedElsewhere,
    /// Held: a letter to this postal address came back undeliverable (the
    /// contact history), and the customer has no other channel; `error`
    /// names the return (date, run, piece, source). It waits for a
    /// corrected address.
    Held,
}

impl DocStatus {
    /// The name in the journal and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            DocStatus::Rendered => "rendered",
            DocStatus::Failed => "failed",
            DocStatus::Suppressed => "suppressed",
            DocStatus::RoutedElsewhere => "routed_elsewhere",
            DocStatus::Held => "held",
        }
    }
}

/// The names a word of this vocabulary is written with (on the command
/// line, in the manifest), for parsers and their error messages.
pub trait Named: Sized + Copy + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// Its name.
    fn name(self) -> &'static str;
    /// What it means, in a few words (for `--help`).
    fn help(self) -> &'static str;
    /// The value of a name, or an error listing the names.
    fn parse_named(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                format!("`{s}` is not one of {}", names.join(", "))
            })
    }
}

impl Named for Channel {
    const ALL: &'static [Channel] = &[Channel::Pdf, Channel::Email, Channel::Web];
    fn name(self) -> &'static str {
        Channel::name(self)
    }
    fn help(self) -> &'static str {
        match self {
            Channel::Pdf => "A PDF letter, for print and mail",
            Channel::Email => "An email (HTML + text, as a `.eml` file)",
            Channel::Web => "A web letter: the letter as an accessible HTML page, from the same template, for the customer portal",
        }
    }
}

impl Named for Format {
    const ALL: &'static [Format] = &[
        Format::Csv,
        Format::Json,
        Format::Jsonl,
        Format::Xml,
        Format::Fixed,
    ];
    fn name(self) -> &'static str {
        Format::name(self)
    }
    fn help(self) -> &'static str {
        match self {
            Format::Csv => "Comma-separated values with a header row",
            Format::Json => "A JSON array of objects",
            Format::Jsonl => "One JSON object per line",
            Format::Xml => "XML, mapped by the layout's `input.xml` and fields' `xml` paths",
            Format::Fixed => {
                "Fixed-width records (EBCDIC or ASCII), laid out in the layout's `input.fixed`"
            }
            Format::Postgresql => {
                "Rows of a PostgreSQL query (--data postgresql://USER@HOST/DB --query SQL)"
            }
        }
    }
}

impl Named for Standard {
    const ALL: &'static [Standard] = &[Standard::A2b, Standard::Ua1];
    fn name(self) -> &'static str {
        Standard::name(self)
    }
    fn help(self) -> &'static str {
        match self {
            Standard::A2b => "PDF/A-2b, for archiving",
            Standard::Ua1 => "PDF/UA-1, for accessibility",
        }
    }
}
