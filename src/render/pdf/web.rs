//! The web letter: the letter as an accessible HTML page, for the customer
//! portal and screen readers, compiled from the same template and record as
//! the PDF with Typst's HTML export (see `docs/src/web-letter-export.md` for what that
//! export carries and why it was chosen).
//!
//! The template learns it is making the web letter from
//! `/letterpress/format.typ` (`web`); where the paper letter positions
//! content on the page, it gives the web its own form. Typst's HTML export
//! leaves out what it cannot express (`place`, `grid`, page set rules) with
//! a warning; here every such warning fails the web letter, naming the
//! template line, so the bank's words or the customer's data never silently
//! drop out. An image without alt text or a table without header cells
//! fails it too. The page is self-contained (images inline as data URLs), has
//! no script, takes `lang` from the template's text language and carries
//! the engine's small style sheet (readable line length, tables, a narrow
//! screen). The wording checks run on its text as on the letter's.

use serde_json::{Map, Value};
use typst::foundations::Bytes;
use typst::syntax::FileId;
use typst::syntax::Span;
use typst::utils::LazyHash;
use typst::Library;
use typst_html::{attr, tag, HtmlDocument, HtmlElement, HtmlNode, HtmlOptions};

use super::{describe, describe_one, locate, Renderer, FORMAT_MODULE};
use crate::check::wording::html_text;
use crate::layout::locale::Rules;

/// The engine's style sheet of web letters.
const STYLE: &str = include_str!("web.css");

/// What the web letter is compiled with: the library with Typst's HTML
/// feature, its main file and its `format.json`.
pub(super) struct WebSetup {
    pub(super) library: LazyHash<Library>,
    pub(super) main: FileId,
    pub(super) format: Bytes,
}

/// A rendered web letter.
#[derive(Debug)]
pub struct WebLetter {
    /// The HTML page.
    pub html: String,
}

impl Renderer {
    /// Renders a checked record's web letter. The error names what is
    /// wrong: a template error, content the HTML export left out, or the
    /// wording.
    pub fn render_web(
        &self,
        record: &Map<String, Value>,
        locale: &Rules,
    ) -> std::result::Result<WebLetter, String> {
        let mut world = self.world(record, locale, None);
        world.html = true;
        world.main = self.web.main;
        world.format = self.web.format.clone();
        let result = typst::compile::<HtmlDocument>(&world);
        let doc = result.output.map_err(|errors| describe(&world, &errors))?;
        let mut left_out: Vec<String> = result
            .warnings
            .iter()
            .filter(|w| w.message.contains("ignored") && !spacing_only(&w.message))
            .map(|w| describe_one(&world, w))
            .collect();
        left_out.dedup();
        if !left_out.is_empty() {
            return Err(format!(
                "the web letter would leave content out: {}; give the web its own form of it (`web` in {FORMAT_MODULE})",
                left_out.join("; ")
            ));
        }
        let mut wrong = Vec::new();
        inaccessible(doc.root(), &mut wrong);
        if !wrong.is_empty() {
            let list: Vec<String> = wrong
                .iter()
                .map(|(span, what)| match locate(&world, (*span).into()) {
                    Some(place) => format!("{place}: {what}"),
                    None => what.to_string(),
                })
                .collect();
            let what = match wrong.iter().all(|(_, w)| w.starts_with("the link")) {
                true => "has a link that may not go to a customer",
                false => "is not accessible",
            };
            return Err(format!("the web letter {what}: {}", list.join("; ")));
        }
        let html = typst_html::html(&doc, &HtmlOptions { pretty: true })
            .map_err(|errors| describe(&world, &errors))?;
        let html = with_style(html);
        let text = html_text(&html);
        if !self.wording.is_empty() {
            self.wording.check(&text, locale)?;
        }
        if let Some(mark) = &self.mark {
            if !text.contains(mark.as_str()) {
                return Err(format!("the web letter does not show the mark `{mark}`"));
            }
        }
        Ok(WebLetter { html })
    }
}

/// What a screen reader cannot make sense of, with where it comes from:
/// an image without a text alternative (`alt`; an empty one marks an image
/// as decoration), and a table without header cells (a layout table, read
/// out cell by cell without saying what a value is; give it a
/// `table.header`); and a link the rule for links refuses
/// ([`crate::check::links`]).
fn inaccessible(el: &HtmlElement, out: &mut Vec<(Span, String)>) {
    if el.tag == tag::img && el.attrs.get(attr::alt).is_none() {
        out.push((
            el.span,
            "an image without alt text (give `image` an `alt`)".into(),
        ));
    }
    if el.tag == tag::table && !contains(el, tag::th) {
        out.push((
            el.span,
            "a table without header cells (give it a `table.header`)".into(),
        ));
    }
    if let Some(href) = el.attrs.get(attr::href) {
        if let Err(why) = crate::check::links::check(href, crate::check::links::Place::Link) {
            out.push((el.span, why));
        }
    }
    for child in &el.children {
        if let HtmlNode::Element(child) = child {
            inaccessible(child, out);
        }
    }
}

/// Whether an element holds an element with `tag`.
fn contains(el: &HtmlElement, tag: typst_html::HtmlTag) -> bool {
    el.children.iter().any(|c| match c {
        HtmlNode::Element(e) => e.tag == tag || contains(e, tag),
        _ => false,
    })
}

/// Whether a warning is about spacing or breaks the export leaves out,
/// which carry no words (`v`, `h`, page and column breaks).
fn spacing_only(message: &str) -> bool {
    ["v ", "h ", "pagebreak ", "colbreak "]
        .iter()
        .any(|e| message.starts_with(e))
}

/// The page with the engine's style sheet at the end of its head.
fn with_style(html: String) -> String {
    match html.find("</head>") {
        Some(at) => format!("{}<style>\n{STYLE}</style>\n{}", &html[..at], &html[at..]),
        None => html,
    }
}
