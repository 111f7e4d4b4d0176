//! Words for people: a count with its noun in the right number ("1 piece",
//! "2 pieces"), as every message and report of the tool writes counts; and
//! a reason with the values it quotes taken out, for what is kept after a
//! purge.

/// `n` with thousands separators and the singular or plural noun:
/// `count(1, "piece", "pieces")` is `1 piece`, `count(1200, ..)` is
/// `1,200 pieces`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    let noun = if n == 1 { one } else { many };
    format!("{} {noun}", crate::util::stop::count(n))
}

/// `text` as it may be shown on a terminal: every control character
/// (ESC and the rest of C0 and C1, which start terminal escape sequences,
/// and line breaks, which would forge a line of output) and every
/// bidirectional formatting character (which reorders what is shown) is
/// written as a `\u{..}` escape. Text from outside (an imported bounce, a
/// server's reply) is printed through it.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The characters that make a spreadsheet read a cell as a formula when
/// it begins with one (OWASP's CSV injection rule).
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV cell a spreadsheet shows as text: one that begins with a
/// character of [`FORMULA_STARTS`] gets a leading `'`, which spreadsheets
/// take as "text" and do not show; every other cell is unchanged.
pub fn csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.starts_with(FORMULA_STARTS) {
        true => std::borrow::Cow::Owned(format!("'{cell}")),
        false => std::borrow::Cow::Borrowed(cell),
    }
}

/// `text` (a failure reason, a server's reply) without the values it
/// quotes: every `` `...` `` and `"..."` becomes `` `…` `` and `"…"`, except
/// the name after `field`, `key` or `column` (which names the rule, not the
/// customer), and every email address becomes `…@…`. Redacting twice
/// gives the same text.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['`', '"']) {
        let quote = &rest[i..i + 1];
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find(quote) else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let names = ["field ", "key ", "column "];
        let keep = quote == "`" && names.iter().any(|n| out.ends_with(n));
        out.push_str(quote);
        out.push_str(if keep { &after[..j] } else { "…" });
        out.push_str(quote);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    redact_addresses(&out)
}

/// `text` with every word that holds an `@` between other characters (an
/// email address) as `…@…`.
fn redact_addresses(text: &str) -> String {
    let stop = |c: char| c.is_whitespace() || "<>()[],;:\"'`".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.split_once('@') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => out.push_str("…@…"),
            _ => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if stop(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_neutralised() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("C-01001", "C-01001"),
            ("SW1A 1AA", "SW1A 1AA"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), want);
        }
    }

    #[test]
    fn terminal_escapes_and_line_breaks_are_shown_not_obeyed() {
        assert_eq!(printable("plain Zoë"), "plain Zoë");
        assert_eq!(
            printable("a\x1b[2J\x1b]0;owned\x07b\nletterpress: fine\u{202e}"),
            "a\\u{1b}[2J\\u{1b}]0;owned\\u{7}b\\u{a}letterpress: fine\\u{202e}"
        );
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
    }

    #[test]
    fn a_redacted_reason_keeps_the_rule_and_loses_the_values() {
        let cases = [
            (
                "record C-1 (line 3): field `email`: `bob@@x` is not a valid address",
                "record C-1 (line 3): field `email`: `…` is not a valid address",
            ),
            (
                "field `dob`: expected a date, got a string (\"1990-13-45\")",
                "field `dob`: expected a date, got a string (\"…\")",
            ),
            (
                "550 5.1.1 <ann.lee@example.com>: Recipient address rejected",
                "550 5.1.1 <…@…>: Recipient address rejected",
            ),
            (
                "email to ann@example.com not used: a hard bounce",
                "email to …@… not used: a hard bounce",
            ),
            (
                "the key `address.city` occurs twice",
                "the key `address.city` occurs twice",
            ),
            ("an open ` quote stays", "an open ` quote stays"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want);
            assert_eq!(redact(&redact(text)), want, "twice");
        }
    }

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(0, "piece", "pieces"), "0 pieces");
        assert_eq!(count(1, "piece", "pieces"), "1 piece");
        assert_eq!(count(2, "problem", "problems"), "2 problems");
        assert_eq!(count(12345, "letter", "letters"), "12,345 letters");
    }
}
