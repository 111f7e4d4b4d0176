//! Letter formats: large print from the same approved template.
//!
//! A record's accessibility preference (the layout's `accessibility_field`,
//! see [`crate::check::record::letter_format`]) picks its letter's format.
//! The engine serves `/letterpress/format.typ` (the format, `size(..)` and
//! `spacing(..)`, documented in the module) and, per record,
//! `/letterpress/format.json`. A large-print letter is compiled from a main
//! file of the engine that sets the clear-print defaults (base size, no
//! justification, wider spacing, no italics) and includes the template; the
//! template's own sizes grow through `size(..)`. Whatever the template does,
//! [`small_text`] then finds any text below the minimum size outside the
//! address block, and the letter fails naming it: a customer who asked for
//! large print never gets small print.

use std::sync::LazyLock;

use typst::foundations::Bytes;
use typst::layout::{Abs, Frame};
use typst::syntax::FileId;

use crate::model::layout::LargePrintSettings;

/// The virtual path of the engine's format module.
pub const FORMAT_MODULE: &str = "/letterpress/format.typ";

/// The engine's format module.
pub(super) const FORMAT_TYPST: &str = include_str!("format.typ");

/// The virtual path of the main file of large-print letters.
pub(super) const LARGE_MAIN: &str = "/letterpress/large-print.typ";

/// The virtual path of the main file that puts a mark on every page.
pub(super) const MARKED_MAIN: &str = "/letterpress/marked.typ";

/// The id of the per-record `/letterpress/format.json`.
pub(super) static FORMAT_ID: LazyLock<FileId> =
    LazyLock::new(|| super::vpath_id("/letterpress/format.json").expect("valid path"));

/// `/letterpress/format.json` for a format (a [`LetterFormat`]'s name, or
/// `web` for the web letter).
pub(super) fn format_json(format: &str, large: &LargePrintSettings) -> Bytes {
    let json = serde_json::json!({
        "format": format,
        "scale": large.scale,
        "min-size": large.min_size,
    });
    Bytes::new(serde_json::to_vec(&json).expect("JSON serializes"))
}

/// The virtual path of the main file of draft web letters.
pub(super) const MARKED_WEB_MAIN: &str = "/letterpress/marked-web.typ";

/// The text of a main file of the engine that puts `mark` first in a web
/// letter and includes `template`.
pub(super) fn web_main_source(template: &str, mark: &str) -> String {
    format!(
        "#strong({})\n\n#include \"/{template}\"\n",
        typst_string(mark)
    )
}

/// `s` as a Typst string literal.
fn typst_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The text of a main file of the engine that includes `template`: with a
/// `mark` across every page, and in large print with the clear-print
/// defaults of `large`.
pub(super) fn main_source(
    template: &str,
    mark: Option<&str>,
    large: Option<&LargePrintSettings>,
) -> String {
    let mut text = String::new();
    if let Some(large) = large {
        text.push_str(&format!(
            "#set text(size: {}pt)\n\
             #set par(leading: 0.85em, spacing: 1.5em)\n\
             #show par: set par(justify: false)\n\
             #show emph: set text(style: \"normal\", weight: \"bold\")\n",
            large.min_size
        ));
    }
    if let Some(mark) = mark {
        text.push_str(&format!(
            "#set page(foreground: place(center + horizon, rotate(-50deg, text(font: \"Libertinus Serif\", size: 46pt, weight: \"bold\", fill: rgb(200, 30, 30, 90), {}))))\n",
            typst_string(mark)
        ));
    }
    text.push_str(&format!("#include \"/{template}\"\n"));
    text
}

/// The first text of a page smaller than `min`, with its size in points,
/// outside the element labelled `<address>` and outside `window` (left,
/// top, right, bottom in mm), when there is one.
pub(super) fn small_text(
    frame: &Frame,
    min: Abs,
    window: Option<(f64, f64, f64, f64)>,
) -> Option<(f64, String)> {
    let mut found = None;
    super::walk_text(frame, &mut |p, text, inside| {
        let in_window = window.is_some_and(|(l, t, r, b)| {
            let (x, y) = (p.x.to_mm(), p.y.to_mm());
            x >= l - 0.5 && x <= r && y >= t && y <= b + 0.5
        });
        if found.is_none() && !inside && !in_window && text.size + Abs::pt(0.01) < min {
            found = Some((text.size.to_pt(), text.text.to_string()));
        }
    });
    found
}
