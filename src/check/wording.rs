//! Required and forbidden wording, checked on every rendered document.
//!
//! Part of stage 3 (rendering). A layout lists `required_text` (sentences
//! every document must contain: the regulator's disclosure, the complaints
//! address) and `forbidden_text` (strings no document may contain: `{{`,
//! `null`, `undefined`, `NaN`, `TODO`, an empty salutation `Dear ,`). The PDF
//! channel checks the text of the compiled document, the email channel the
//! subject, the visible text of the HTML and the text part. A violation
//! fails that document, naming the rule and what was found.
//!
//! Matching ignores differences in white space (line breaks, non-breaking
//! spaces). A forbidden string that starts and ends with a letter or digit
//! (`null`, `NaN`) matches whole words only, so `nullify` passes; any other
//! (`{{`, `Dear ,`) matches anywhere. A required entry is either one string
//! for every document or a map from language or locale (`en`, `de-DE`) to
//! the sentence in that language; a document in a language the map does not
//! name has no requirement from that entry.

use crate::layout::locale::Rules;
use crate::model::layout::Required;

/// A layout's wording rules.
#[derive(Debug, Clone, Default)]
pub struct Wording {
    required: Vec<Required>,
    forbidden: Vec<String>,
    /// All forbidden strings in one automaton: a text is searched once for
    /// every one of them (a measured 5% of an email's instructions went
    /// into searching it once per string).
    finder: Option<aho_corasick::AhoCorasick>,
}

/// White space collapsed to single spaces (non-breaking ones included).
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

impl Wording {
    /// The rules of a layout.
    pub fn new(required: &[Required], forbidden: &[String]) -> Wording {
        let forbidden: Vec<String> = forbidden
            .iter()
            .map(|f| normalize(f))
            .filter(|f| !f.is_empty())
            .collect();
        let finder = (!forbidden.is_empty()).then(|| {
            aho_corasick::AhoCorasick::new(&forbidden).expect("a few short strings build")
        });
        Wording {
            required: required.to_vec(),
            forbidden,
            finder,
        }
    }

    /// The first forbidden string in `text` (normalised), with its offset.
    fn find_forbidden(&self, text: &str) -> Option<(usize, &str)> {
        self.finder
            .as_ref()?
            .find_overlapping_iter(text)
            .map(|m| (m.start(), self.forbidden[m.pattern().as_usize()].as_str()))
            .find(|(at, f)| bounded(text, *at, f))
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.forbidden.is_empty()
    }

    /// Checks a document's text (in the locale `rules`); the error names the
    /// rule and what was found.
    pub fn check(&self, text: &str, rules: &Rules) -> Result<(), String> {
        let text = normalize(text);
        if let Some((at, f)) = self.find_forbidden(&text) {
            return Err(format!(
                "forbidden text \"{f}\" found: \"{}\"",
                context(&text, at, f.len())
            ));
        }
        for r in &self.required {
            let sentence = match r {
                Required::Always(s) => Some(s.as_str()),
                Required::PerLanguage(map) => map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(rules.tag))
                    .or_else(|| {
                        map.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(rules.lang()))
                    })
                    .map(|(_, v)| v.as_str()),
            };
            if let Some(s) = sentence {
                let s = normalize(s);
                if !text.contains(&s) {
                    return Err(format!("required text missing: \"{s}\""));
                }
            }
        }
        Ok(())
    }
}

impl Wording {
    /// The first forbidden string in the text values of a record's fields
    /// that `look_at` accepts (the layout's declared fields but the email
    /// address: a column the layout does not use, such as a clerk's notes,
    /// never reaches a document), with the field's path. A value such as
    /// `null` or `TODO` from a broken export would put forbidden words into
    /// the document, so the record fails before rendering, naming the field.
    pub fn forbidden_in_record(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
        look_at: impl Fn(&str) -> bool,
    ) -> Option<String> {
        fn walk(w: &Wording, path: &str, v: &serde_json::Value) -> Option<String> {
            match v {
                serde_json::Value::String(s) => {
                    // Most values need no normalising: search them as they are.
                    let plain = !s.contains(|c: char| c.is_whitespace() && c != ' ')
                        && !s.contains("  ")
                        && s.trim() == s;
                    let text = if plain {
                        std::borrow::Cow::Borrowed(s.as_str())
                    } else {
                        std::borrow::Cow::Owned(normalize(s))
                    };
                    w.find_forbidden(&text).map(|(_, f)| {
                        format!(
                            "field `{path}`: holds the forbidden text \"{f}\" (forbidden_text in layout.yaml), which no document may show"
                        )
                    })
                }
                serde_json::Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .find_map(|(i, item)| walk(w, &format!("{path}[{i}]"), item)),
                serde_json::Value::Object(m) => m
                    .iter()
                    .find_map(|(k, item)| walk(w, &format!("{path}.{k}"), item)),
                _ => None,
            }
        }
        if self.forbidden.is_empty() {
            return None;
        }
        record
            .iter()
            .filter(|(k, _)| look_at(k))
            .find_map(|(k, v)| walk(self, k, v))
    }
}

/// Whether the forbidden string `f` found at `at` in `text` counts: a
/// word-like one (`null`, `NaN`) only as a whole word, any other anywhere.
fn bounded(text: &str, at: usize, f: &str) -> bool {
    let wordlike = f.chars().next().is_some_and(char::is_alphanumeric)
        && f.chars().last().is_some_and(char::is_alphanumeric);
    let before = text[..at].chars().next_back();
    let after = text[at + f.len()..].chars().next();
    !wordlike
        || (!before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric))
}

/// Up to 30 characters around a match, for the error.
fn context(text: &str, at: usize, len: usize) -> String {
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(29)
        .map_or(0, |(i, _)| i);
    let end = text[at + len..]
        .char_indices()
        .nth(30)
        .map_or(text.len(), |(i, _)| at + len + i);
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < text.len() { "…" } else { "" };
    format!("{prefix}{}{suffix}", &text[start..end])
}

/// The visible text of an email's HTML: tags, comments, `<head>`, `<style>`
/// and `<script>` removed, entities decoded, hidden preheader kept (it is
/// shown in inbox lists).
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with('<') {
            for skip in ["<head", "<style", "<script"] {
                let next = lower
                    .as_bytes()
                    .get(i + skip.len())
                    .copied()
                    .unwrap_or(b'>');
                if lower[i..].starts_with(skip) && (next == b'>' || next.is_ascii_whitespace()) {
                    let close = format!("</{}", &skip[1..]);
                    if let Some(e) = lower[i..].find(&close) {
                        i += e;
                    }
                }
            }
            let end = html[i..].find('>').map_or(html.len() - i, |e| e + 1);
            i += end;
            out.push(' ');
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push_str(&decode_entities(&rest[..end]));
            i += end;
        }
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> &'static Rules {
        crate::layout::locale::rules("en-GB").unwrap()
    }

    #[test]
    fn forbidden_words_match_whole_words_and_symbols_anywhere() {
        let w = Wording::new(&[], &["null".into(), "{{".into(), "Dear ,".into()]);
        assert!(w.check("Nothing to nullify here", en()).is_ok());
        let e = w.check("Your balance is null today", en()).unwrap_err();
        assert!(
            e.contains("\"null\"") && e.contains("balance is null today"),
            "{e}"
        );
        assert!(w.check("Hello {{name}}", en()).unwrap_err().contains("{{"));
        assert!(w
            .check("Dear\n ,\nthanks", en())
            .unwrap_err()
            .contains("Dear ,"));
    }

    #[test]
    fn required_text_per_language_and_across_line_breaks() {
        let per: std::collections::BTreeMap<String, String> = [
            ("en".into(), "protected by the FSCS".into()),
            ("de".into(), "durch die FSCS geschützt".into()),
        ]
        .into();
        let w = Wording::new(
            &[
                Required::PerLanguage(per),
                Required::Always("Northwind".into()),
            ],
            &[],
        );
        assert!(w
            .check("Northwind: deposits are protected\nby the\u{a0}FSCS.", en())
            .is_ok());
        let de = crate::layout::locale::rules("de-DE").unwrap();
        assert!(w
            .check("Northwind: protected by the FSCS", de)
            .unwrap_err()
            .contains("geschützt"));
        let fr = crate::layout::locale::rules("fr-FR").unwrap();
        assert!(
            w.check("Northwind", fr).is_ok(),
            "no French sentence: no requirement"
        );
        assert!(w
            .check("protected by the FSCS", en())
            .unwrap_err()
            .contains("Northwind"));
    }

    #[test]
    fn html_text_is_what_a_reader_sees() {
        let html = "<html><head><title>T</title><style>p{}</style></head><body><!-- c --><p>A &amp; B&#x3D;1</p><script>x</script><p>&lt;b&gt;</p></body></html>";
        assert_eq!(normalize(&html_text(html)), "A & B=1 <b>");
    }
}
