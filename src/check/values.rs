//! Record values as text: which characters a value may hold, and how a
//! value is kept from changing the bank's words around it.
//!
//! Part of stage 2 (checking): [`crate::check::schema`] calls [`check_text`] on
//! every text value of a record, declared or not, and a value that breaks a
//! rule fails the record, naming the field and the character (`U+202E`).
//! The renderers (both channels) call [`isolated`] on the record they are
//! given. The decisions, per class of character:
//!
//! | characters | decision |
//! |---|---|
//! | C0 and C1 controls (NUL, BEL, ESC, ... U+0000-U+001F, U+007F-U+009F) but tab, CR and LF | the record fails |
//! | CR, LF, U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR, tab | fail in a one-line field (every declared field unless the schema says `multiline: true`); allowed in a multi-line one and in fields the schema does not declare |
//! | bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) | the record fails: no name or address needs them, and they reorder text |
//! | invisible characters: U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER, U+FEFF, U+180E, U+2061-U+2064, U+206A-U+206F, U+FFF9-U+FFFB | the record fails: they hide text from people and checks |
//! | U+200C ZWNJ, U+200D ZWJ, U+200E/U+200F/U+061C (direction marks) | allowed: some scripts and emoji need them, and isolation keeps the marks inside the value |
//! | right-to-left letters (Arabic, Hebrew, ...) | allowed |
//!
//! So no character of a value can reorder or hide the text around it:
//! explicit direction controls never reach a template. Right-to-left
//! letters follow the Unicode bidirectional algorithm like any other text.
//! Values are deliberately not isolated one by one: a name in two fields
//! (`محمد` and `العلي`) joined by a template must stay one right-to-left
//! unit, read right to left as محمد العلي, and two isolates side by side
//! would be laid out left to right, family name first. What the engine
//! composes for the templates (a full name, an address line, see
//! [`crate::render::names`]) is one unit, and is isolated as a whole ([`isolate`]):
//! wrapped in U+2068 FIRST STRONG ISOLATE ... U+2069 POP DIRECTIONAL
//! ISOLATE when it holds right-to-left characters, so that what follows it
//! (a comma, a number) keeps its place. PDF viewers and mail programs show
//! nothing for the two characters.

use std::borrow::Cow;

use unicode_bidi::{bidi_class, BidiClass};

/// U+2068 FIRST STRONG ISOLATE.
pub const FSI: char = '\u{2068}';
/// U+2069 POP DIRECTIONAL ISOLATE.
pub const PDI: char = '\u{2069}';

/// Why `s` cannot be the value of a text field (one-line unless
/// `multiline`), naming the first character that breaks a rule.
pub fn check_text(s: &str, multiline: bool) -> Result<(), String> {
    for c in s.chars() {
        // The common case, printable ASCII, costs one comparison.
        if (' '..='~').contains(&c) {
            continue;
        }
        if let Some((what, tail)) = problem(c, multiline) {
            return Err(format!(
                "holds {what} U+{:04X}{}{tail}",
                c as u32,
                name(c).map_or(String::new(), |n| format!(" {n}"))
            ));
        }
    }
    Ok(())
}

const ONE_LINE: &str = " in a one-line field (mark the field `multiline: true` in layout.yaml if it may hold several lines)";

/// The class of a character that breaks a rule: what it is, and why.
fn problem(c: char, multiline: bool) -> Option<(&'static str, &'static str)> {
    match c {
        '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' if multiline => None,
        '\n' | '\r' | '\u{2028}' | '\u{2029}' => Some(("a line break", ONE_LINE)),
        '\t' => Some(("a tab", ONE_LINE)),
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some(("the control character", "")),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some((
            "the bidirectional formatting character",
            ", which could reorder the text around it",
        )),
        '\u{200b}'
        | '\u{2060}'
        | '\u{feff}'
        | '\u{180e}'
        | '\u{2061}'..='\u{2064}'
        | '\u{206a}'..='\u{206f}'
        | '\u{fff9}'..='\u{fffb}' => Some((
            "the invisible character",
            ", which hides text from readers and checks",
        )),
        _ => None,
    }
}

/// Unicode names of the characters the rules above name most often.
fn name(c: char) -> Option<&'static str> {
    Some(match c {
        '\0' => "NULL",
        '\u{7}' => "BELL",
        '\u{8}' => "BACKSPACE",
        '\t' => "CHARACTER TABULATION",
        '\n' => "LINE FEED",
        '\u{b}' => "LINE TABULATION",
        '\u{c}' => "FORM FEED",
        '\r' => "CARRIAGE RETURN",
        '\u{1b}' => "ESCAPE",
        '\u{7f}' => "DELETE",
        '\u{85}' => "NEXT LINE",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202a}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202b}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202c}' => "POP DIRECTIONAL FORMATTING",
        '\u{202d}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => return None,
    })
}

/// Whether a text holds characters that can move neutral text around it
/// (right-to-left letters, Arabic digits, right-to-left marks).
pub fn right_to_left(s: &str) -> bool {
    s.chars().any(|c| {
        c > '\u{58f}'
            && (matches!(bidi_class(c), BidiClass::R | BidiClass::AL | BidiClass::AN)
                || c == '\u{200f}'
                || c == '\u{61c}')
    })
}

/// One unit of text the engine composed (a full name, an address line),
/// isolated when it holds right-to-left characters; see the module docs.
pub fn isolate(s: &str) -> Cow<'_, str> {
    if right_to_left(s) {
        Cow::Owned(format!("{FSI}{s}{PDI}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_named() {
        let err = |s: &str, m: bool| check_text(s, m).unwrap_err();
        assert!(err("Ann\u{7}", false).contains("U+0007 BELL"));
        assert!(err("a\u{0}", false).contains("control character U+0000 NULL"));
        assert!(err("a\u{85}b", true).contains("U+0085"));
        assert!(err("James\u{202e}dleif", false).contains("U+202E RIGHT-TO-LEFT OVERRIDE"));
        assert!(err("x\u{2067}y", true).contains("bidirectional"));
        assert!(err("a\u{200b}b", false).contains("invisible"));
        assert!(err("line1\nline2", false).contains("multiline: true"));
        assert!(err("a\u{2028}b", false).contains("U+2028"));
        assert!(err("a\tb", false).contains("tab"));
        check_text("line1\r\nline2\tend", true).unwrap();
        check_text("Zoë Ångström-Øverby 王小明 محمد‎ क्‍ष 👨‍👩‍👧", false).unwrap();
    }

    #[test]
    fn right_to_left_units_are_isolated_as_a_whole() {
        assert_eq!(isolate("محمد العلي"), "\u{2068}محمد العلي\u{2069}");
        assert_eq!(isolate("שלום 12"), "\u{2068}שלום 12\u{2069}");
        assert!(matches!(isolate("Zoë 王小明 1.234,56 €"), Cow::Borrowed(_)));
    }
}
