//! A layout's wording, `texts.yaml`, resolved per supported locale.
//!
//! A layout may keep its sentences in `texts.yaml`: a map from a locale tag or
//! a language (`en`, `de-DE`) to a map of keys to sentences. A sentence may
//! name arguments in braces, `Dear {name},`; templates call
//! `t("greeting", name: ..)` (Typst) or `{{t "greeting" name=..}}`
//! (Handlebars). A key is looked up in the record's locale, then its
//! language, then the default locale, then the default language; every key
//! must exist for the default locale, so a lookup never fails at run time.
//!
//! A layout speaks only the languages its `texts.yaml` has: a record whose
//! locale's language has no wording there is rendered in the layout's
//! default locale, numbers and dates included, so a letter never mixes an
//! English sentence with a French date. (A layout without `texts.yaml`
//! formats in every supported locale.)

use std::collections::BTreeMap;

use crate::layout::locale::{Rules, RULES};

/// A layout's wording, resolved per supported locale.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    /// For each supported tag, every key with its sentence after fallback.
    by_locale: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// The supported tags whose language (or tag) has wording of its own;
    /// `None` when the layout has no texts at all.
    spoken: Option<Vec<&'static str>>,
}

impl Texts {
    /// Reads `texts.yaml` (already loaded as `yaml`) for a layout whose
    /// default locale is `default`. Errors name the problem for the layout
    /// author.
    pub fn parse(yaml: &[u8], default: &Rules) -> Result<Texts, String> {
        let raw: BTreeMap<String, BTreeMap<String, String>> =
            serde_yaml::from_slice(yaml).map_err(|e| format!("texts.yaml: {e}"))?;
        for tag in raw.keys() {
            let known = RULES
                .iter()
                .any(|r| r.tag.eq_ignore_ascii_case(tag) || r.lang().eq_ignore_ascii_case(tag));
            if !known {
                let list: Vec<&str> = RULES.iter().map(|r| r.tag).collect();
                return Err(format!(
                    "texts.yaml: `{tag}` is not a supported locale or language (supported: {})",
                    list.join(", ")
                ));
            }
        }
        let layer = |tag: &str| raw.iter().find(|(k, _)| k.eq_ignore_ascii_case(tag));
        let chain = |r: &Rules| -> Vec<&BTreeMap<String, String>> {
            [r.tag, r.lang(), default.tag, default.lang()]
                .iter()
                .filter_map(|t| layer(t).map(|(_, m)| m))
                .collect()
        };
        let base = chain(default);
        let all_keys: std::collections::BTreeSet<&String> =
            raw.values().flat_map(|m| m.keys()).collect();
        for key in &all_keys {
            if !base.iter().any(|m| m.contains_key(*key)) {
                return Err(format!(
                    "texts.yaml: `{key}` has no wording for the default locale {}; every key needs one, so any locale can fall back to it",
                    default.tag
                ));
            }
        }
        let spoken = RULES
            .iter()
            .filter(|r| layer(r.tag).is_some() || layer(r.lang()).is_some())
            .map(|r| r.tag)
            .collect();
        let mut by_locale = BTreeMap::new();
        for r in RULES {
            let layers = chain(r);
            let mut resolved = BTreeMap::new();
            for key in &all_keys {
                if let Some(s) = layers.iter().find_map(|m| m.get(*key)) {
                    resolved.insert((*key).clone(), s.clone());
                }
            }
            by_locale.insert(r.tag, resolved);
        }
        Ok(Texts {
            by_locale,
            spoken: Some(spoken),
        })
    }

    /// Whether the layout has wording in this locale's language (always
    /// true for a layout without texts).
    pub fn speaks(&self, tag: &str) -> bool {
        self.spoken.as_ref().is_none_or(|s| s.contains(&tag))
    }

    /// All keys and sentences for a supported locale.
    pub fn for_locale(&self, tag: &str) -> BTreeMap<String, String> {
        self.by_locale.get(tag).cloned().unwrap_or_default()
    }

    /// One sentence with its `{arg}`s filled by `arg`.
    pub fn get(
        &self,
        tag: &str,
        key: &str,
        arg: impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        let sentence = self
            .by_locale
            .get(tag)
            .and_then(|m| m.get(key))
            .ok_or_else(|| format!("texts.yaml has no sentence `{key}`"))?;
        fill(sentence, arg).map_err(|name| {
            format!("the sentence `{key}` needs the argument `{name}`, which was not given")
        })
    }
}

/// A piece of a sentence: its own words, or an argument's `{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Words as they are.
    Text(&'a str),
    /// The argument `name`.
    Arg(&'a str),
}

/// The pieces of `sentence`: every `{name}` (letters, digits, `_`, `-`)
/// is an argument, any other brace is text.
pub fn pieces(sentence: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let (mut rest, mut text_from) = (sentence, 0);
    let offset = |s: &str| s.as_ptr() as usize - sentence.as_ptr() as usize;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        rest = after;
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            let start = offset(after) - 1;
            if start > text_from {
                out.push(Piece::Text(&sentence[text_from..start]));
            }
            out.push(Piece::Arg(name));
            rest = &after[close + 1..];
            text_from = offset(rest);
        }
    }
    if text_from < sentence.len() {
        out.push(Piece::Text(&sentence[text_from..]));
    }
    out
}

/// Replaces every `{name}` in `sentence` by `arg(name)`; the error is the
/// first name without a value.
pub fn fill(sentence: &str, arg: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(sentence.len() + 16);
    for piece in pieces(sentence) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Arg(name) => out.push_str(&arg(name).ok_or_else(|| name.to_string())?),
        }
    }
    Ok(out)
}

/// The sentences of `texts` that take arguments, as the Typst module
/// `/letterpress/locale.typ` reads them: per key, the pieces in order, a
/// string for words and `{"arg": name}` for an argument. Parsed here once,
/// so that the letter and the email read a sentence the same way and a
/// letter pays nothing for it.
pub fn pieces_json(texts: &BTreeMap<String, String>) -> serde_json::Value {
    let parsed: serde_json::Map<String, serde_json::Value> = texts
        .iter()
        .filter(|(_, s)| s.contains('{'))
        .map(|(key, s)| {
            let list = pieces(s)
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => serde_json::Value::String(t.to_owned()),
                    Piece::Arg(name) => serde_json::json!({ "arg": name }),
                })
                .collect();
            (key.clone(), serde_json::Value::Array(list))
        })
        .collect();
    serde_json::Value::Object(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::locale::rules;

    fn r(tag: &str) -> &'static Rules {
        rules(tag).unwrap()
    }

    #[test]
    fn sentences_split_into_words_and_arguments() {
        assert_eq!(
            pieces("Dear {name}, {not one} {x}{y}"),
            vec![
                Piece::Text("Dear "),
                Piece::Arg("name"),
                Piece::Text(", {not one} "),
                Piece::Arg("x"),
                Piece::Arg("y"),
            ]
        );
        assert_eq!(pieces("{"), vec![Piece::Text("{")]);
        assert_eq!(pieces("a {b"), vec![Piece::Text("a {b")]);
        assert_eq!(pieces("{Straße_2}"), vec![Piece::Arg("Straße_2")]);
        let texts = BTreeMap::from([
            ("plain".to_owned(), "No arguments".to_owned()),
            ("hello".to_owned(), "Hi {name}!".to_owned()),
        ]);
        assert_eq!(
            pieces_json(&texts),
            serde_json::json!({"hello": ["Hi ", {"arg": "name"}, "!"]})
        );
    }

    #[test]
    fn texts_fall_back_per_key_and_fill_arguments() {
        let yaml =
            b"en:\n  hello: 'Dear {name},'\n  bye: Goodbye\nde:\n  hello: 'Guten Tag {name},'\n";
        let t = Texts::parse(yaml, r("en-GB")).unwrap();
        let name = |n: &str| (n == "name").then(|| "Zoë".to_string());
        assert_eq!(t.get("de-DE", "hello", name).unwrap(), "Guten Tag Zoë,");
        assert_eq!(t.get("de-DE", "bye", name).unwrap(), "Goodbye");
        assert!(t.speaks("de-DE") && t.speaks("en-US") && !t.speaks("fr-FR"));
        assert!(Texts::default().speaks("fr-FR"));
        assert!(t
            .get("en-US", "hello", |_| None)
            .unwrap_err()
            .contains("`name`"));
        assert!(t.get("en-US", "nope", name).is_err());
        let bad = b"de:\n  only_de: x\n";
        assert!(Texts::parse(bad, r("en-GB"))
            .unwrap_err()
            .contains("only_de"));
        assert!(Texts::parse(b"pt: {a: b}\n", r("en-GB")).is_err());
        assert_eq!(
            fill("{ not an arg } {x}", |_| Some("1".into())).unwrap(),
            "{ not an arg } 1"
        );
    }
}
