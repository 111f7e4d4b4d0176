//! Everything the command line says goes through here: log lines on stderr
//! (`letterpress: ...` sentences, or one JSON object a line with
//! `--log-format json`), a command's report on stdout, and its `--json`
//! summary, which has one shape for every command: the report's fields
//! plus `summary_version` and `exit_code` (or, when the command stopped
//! with an error, `error`).

use std::io::Write;

use letterpress::error::Error;
use serde::Serialize;

/// The version of the `--json` summaries; raised when a field changes
/// meaning or goes away (new fields may come in any version).
pub const SUMMARY_VERSION: u32 = 1;

/// How log lines on stderr are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `letterpress: ...` sentences.
    #[default]
    Text,
    /// One JSON object a line: `{"level", "event", "message", ...}`.
    Json,
}

/// Where a command's words go.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// How log lines are written.
    pub format: LogFormat,
    /// Whether stdout holds the JSON summary only (`--json`).
    pub json: bool,
}

impl Out {
    /// Writes one log line to stderr: the text as a sentence, or a JSON
    /// object with `level`, `event`, `message` and `fields` merged in.
    /// Text mode never writes a terminal escape: control characters but
    /// line breaks and tabs are shown as `\u{..}` (messages quote values
    /// from files; see `letterpress::util::text::printable`).
    pub fn log(&self, level: &str, event: &str, message: &str, fields: serde_json::Value) {
        let message = &shown(message);
        let line = match self.format {
            LogFormat::Text if level == "info" => format!("letterpress: {message}"),
            LogFormat::Text => format!("letterpress: {level}: {message}"),
            LogFormat::Json => json_line(level, event, message, fields),
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// [`Out::log`] at level `info`.
    pub fn info(&self, event: &str, message: &str, fields: serde_json::Value) {
        self.log("info", event, message, fields);
    }

    /// One item of a list under a log line (a failed record): indented
    /// text after its `label`, or a `warning` JSON line of `event`.
    pub fn item(&self, label: &str, event: &str, message: &str) {
        match self.format {
            LogFormat::Text => {
                let _ = writeln!(std::io::stderr().lock(), "  {label}: {}", shown(message));
            }
            LogFormat::Json => self.log("warning", event, message, serde_json::json!({})),
        }
    }

    /// A line of the command's human-readable report on stdout; nothing
    /// with `--json`, where stdout holds the summary only.
    pub fn print(&self, line: impl std::fmt::Display) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{}", shown(&line.to_string()));
        }
    }

    /// With `--json`, prints the summary: `report`'s fields with
    /// `summary_version` and `exit_code`. Returns `exit_code`.
    pub fn summary(&self, exit_code: i32, report: &impl Serialize) -> i32 {
        if self.json {
            let mut doc = serde_json::to_value(report).expect("a report serializes");
            if let Some(o) = doc.as_object_mut() {
                o.insert("summary_version".into(), SUMMARY_VERSION.into());
                o.insert("exit_code".into(), exit_code.into());
            }
            println!("{doc}");
        }
        exit_code
    }

    /// Reports the error a command stopped with: a log line, and with
    /// `--json` a summary holding it, so a scheduler always has one to parse.
    pub fn error(&self, e: &Error) {
        let level = match e {
            Error::Stopped { .. } => "warning",
            _ => "error",
        };
        let event = match e {
            Error::Stopped { .. } => "stopped",
            _ => "error",
        };
        self.log(
            level,
            event,
            &e.to_string(),
            serde_json::json!({"exit_code": e.exit_code()}),
        );
        if self.json {
            let doc = serde_json::json!({
                "summary_version": SUMMARY_VERSION,
                "exit_code": e.exit_code(),
                "error": e.to_string(),
            });
            println!("{doc}");
        }
    }
}

/// `text` without terminal escapes; line breaks and tabs stay (a
/// message of several lines).
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| letterpress::util::text::printable(l).replace("\\u{9}", "\t"))
        .collect();
    std::borrow::Cow::Owned(lines.join("\n"))
}

fn json_line(level: &str, event: &str, message: &str, fields: serde_json::Value) -> String {
    let mut obj = serde_json::json!({
        "level": level,
        "event": event,
        "message": message,
    });
    if let (Some(o), serde_json::Value::Object(extra)) = (obj.as_object_mut(), fields) {
        o.extend(extra);
    }
    obj.to_string()
}
