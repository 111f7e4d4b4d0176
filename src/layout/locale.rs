//! Locale rules: how money, numbers and dates are written, and a layout's
//! wording per locale. One source of truth for both channels.
//!
//! Part of stage 3 (rendering). The rules live in [`RULES`], a table in this
//! file and nowhere else. The email channel formats with the functions here
//! (as Handlebars helpers); the PDF channel gets the same table as JSON at
//! the virtual path `/letterpress/locale.json` and formats with the engine's
//! Typst module `/letterpress/locale.typ` (in `render::pdf`), which applies
//! the rules with the same algorithm. The integration tests check that a
//! record's PDF and email show identical strings.
//!
//! # Resolving a record's locale
//! A layout names the record field holding the locale (`locale_field`) and a
//! `default_locale`. A record's value is matched exactly (`de-DE`), else by
//! language (`de-AT` and `de` get `de-DE`), else the layout's default is used.
//! The manifest records the locale each document was rendered in.
//!

use serde::Serialize;
use serde_json::{Map, Value};

use crate::util::clock::Date;

/// How one locale writes numbers, money and dates.
#[derive(Debug, Clone, Serialize)]
pub struct Rules {
    /// The BCP 47 tag, e.g. `de-DE`.
    pub tag: &'static str,
    /// The decimal separator.
    pub decimal: &'static str,
    /// The thousands separator.
    pub group: &'static str,
    /// Integer parts are grouped only from `3 + min_grouping` digits on
    /// (CLDR's minimum grouping digits: Spanish writes `1234` but `12.345`).
    pub min_grouping: usize,
    /// The minus sign.
    pub minus: &'static str,
    /// Money pattern: `{number}` and `{symbol}`; the sign goes in front.
    pub money: &'static str,
    /// Currency symbols by ISO 4217 code; other codes print as the code.
    pub symbols: &'static [(&'static str, &'static str)],
    /// Month names, January first.
    pub months: [&'static str; 12],
    /// Long date pattern: `{day}`, `{month}` (name), `{year}`.
    pub long_date: &'static str,
    /// Short date pattern: `{dd}`, `{mm}` (zero-padded), `{yyyy}`.
    pub short_date: &'static str,
}

const NBSP: &str = "\u{a0}";

/// Month names shared by the English locales.
const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The supported locales (CLDR conventions). The first one of a language is
/// used for other regions of that language.
pub static RULES: &[Rules] = &[
    Rules {
        tag: "en-GB",
        decimal: ".",
        group: ",",
        min_grouping: 1,
        minus: "-",
        money: "{symbol}{number}",
        symbols: &[
            ("GBP", "£"),
            ("EUR", "€"),
            ("USD", "US$"),
            ("JPY", "JP¥"),
            ("KRW", "₩"),
        ],
        months: ENGLISH_MONTHS,
        long_date: "{day} {month} {year}",
        short_date: "{dd}/{mm}/{yyyy}",
    },
    Rules {
        tag: "en-US",
        decimal: ".",
        group: ",",
        min_grouping: 1,
        minus: "-",
        money: "{symbol}{number}",
        symbols: &[
            ("USD", "$"),
            ("EUR", "€"),
            ("GBP", "£"),
            ("JPY", "¥"),
            ("KRW", "₩"),
        ],
        months: ENGLISH_MONTHS,
        long_date: "{month} {day}, {year}",
        short_date: "{mm}/{dd}/{yyyy}",
    },
    Rules {
        tag: "de-DE",
        decimal: ",",
        group: ".",
        min_grouping: 1,
        minus: "-",
        money: "{number}\u{a0}{symbol}",
        symbols: &[("EUR", "€"), ("GBP", "£"), ("USD", "$")],
        months: [
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ],
        long_date: "{day}. {month} {year}",
        short_date: "{dd}.{mm}.{yyyy}",
    },
    Rules {
        tag: "fr-FR",
        decimal: ",",
        group: "\u{202f}",
        min_grouping: 1,
        minus: "-",
        money: "{number}\u{a0}{symbol}",
        symbols: &[("EUR", "€"), ("GBP", "£GB"), ("USD", "$US")],
        months: [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ],
        long_date: "{day} {month} {year}",
        short_date: "{dd}/{mm}/{yyyy}",
    },
    Rules {
        tag: "es-ES",
        decimal: ",",
        group: ".",
        min_grouping: 2,
        minus: "-",
        money: "{number}\u{a0}{symbol}",
        symbols: &[("EUR", "€"), ("GBP", "GBP"), ("USD", "US$")],
        months: [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ],
        long_date: "{day} de {month} de {year}",
        short_date: "{dd}/{mm}/{yyyy}",
    },
];

/// The number of decimals of an amount in `code` (its ISO 4217 minor
/// units: 2 for GBP, 0 for JPY and KRW, 3 for BHD and KWD), or why `code`
/// is not a currency: it must be a current ISO 4217 code in capitals that
/// has minor units (not a precious metal or a testing code).
pub fn minor_units(code: &str) -> Result<u32, String> {
    let why = |what: &str| Err(format!("`{code}` is not {what}"));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return why("an ISO 4217 currency code: write it in capitals (EUR, not eur)");
        }
        return why("an ISO 4217 currency code (three capital letters, e.g. EUR)");
    }
    match iso_currency::Currency::from_code(code) {
        Some(c) => match c.exponent() {
            Some(digits) => Ok(u32::from(digits)),
            None => why("a currency with minor units (a metal or a testing code)"),
        },
        None => why("an ISO 4217 currency code"),
    }
}

/// Every ISO 4217 code with its minor units, as JSON for the Typst module
/// (`/letterpress/currencies.json`).
pub fn currencies_json() -> Vec<u8> {
    use iso_currency::IntoEnumIterator;
    let table: Map<String, Value> = iso_currency::Currency::iter()
        .filter_map(|c| Some((c.code().to_owned(), Value::from(c.exponent()?))))
        .collect();
    serde_json::to_vec(&table).expect("JSON serializes")
}

/// The rules of an exactly supported tag.
pub fn rules(tag: &str) -> Option<&'static Rules> {
    RULES.iter().find(|r| r.tag.eq_ignore_ascii_case(tag))
}

/// The supported locale for a record's value: exact match, else the first
/// locale of the same language, else `None` (the caller uses its default).
pub fn resolve(value: &str) -> Option<&'static Rules> {
    let value = value.trim().replace('_', "-");
    if let Some(r) = rules(&value) {
        return Some(r);
    }
    let lang = value.split('-').next().unwrap_or("");
    RULES
        .iter()
        .find(|r| !lang.is_empty() && r.tag.split('-').next() == Some(lang))
        .or_else(|| {
            let lower = lang.to_ascii_lowercase();
            RULES
                .iter()
                .find(|r| r.tag.split('-').next() == Some(&*lower))
        })
}

impl Rules {
    /// The language part of the tag (`de`).
    pub fn lang(&self) -> &'static str {
        self.tag.split('-').next().unwrap_or(self.tag)
    }

    /// `x` with `decimals` decimals, grouped: `1,234.56` / `1.234,56`.
    /// Rounds half away from zero on `x * 10^decimals`, as the Typst module does.
    pub fn number(&self, x: f64, decimals: u32) -> String {
        let scale = 10f64.powi(decimals as i32);
        let scaled = (x.abs() * scale).round();
        let digits = format!("{scaled:.0}");
        let d = decimals as usize;
        let padded = if digits.len() <= d {
            format!("{}{digits}", "0".repeat(d + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - d);
        self.assemble(x, scaled, int, frac)
    }

    fn assemble(&self, x: f64, scaled: f64, int: &str, frac: &str) -> String {
        let mut out = String::new();
        if x < 0.0 && scaled > 0.0 {
            out.push_str(self.minus);
        }
        if int.len() >= 3 + self.min_grouping {
            let head = int.len() % 3;
            if head > 0 {
                out.push_str(&int[..head]);
            }
            for (i, chunk) in int.as_bytes()[head..].chunks(3).enumerate() {
                if i > 0 || head > 0 {
                    out.push_str(self.group);
                }
                out.push_str(std::str::from_utf8(chunk).expect("ASCII digits"));
            }
        } else {
            out.push_str(int);
        }
        if !frac.is_empty() {
            out.push_str(self.decimal);
            out.push_str(frac);
        }
        out
    }

    /// The symbol this locale writes for an ISO 4217 currency code.
    pub fn symbol<'a>(&self, currency: &'a str) -> &'a str {
        self.symbols
            .iter()
            .find(|(code, _)| *code == currency)
            .map_or(currency, |(_, s)| s)
    }

    /// An amount of money in an ISO 4217 currency, with the currency's
    /// minor units as decimals: `£1,234.56`, `1.234,56 €`, `JP¥1,235`,
    /// `BHD 1,234.568`. A symbol made of letters (the code itself, when the
    /// locale has no symbol for it) is set apart from the number by a
    /// no-break space, as CLDR's currency spacing does. The error says why
    /// `currency` is not a currency code.
    pub fn money(&self, x: f64, currency: &str) -> Result<String, String> {
        let decimals = minor_units(currency)?;
        let number = self.number(x.abs(), decimals);
        let negative = x < 0.0 && number.bytes().any(|b| (b'1'..=b'9').contains(&b));
        let symbol = self.symbol(currency);
        let spaced = spaced(symbol);
        let pattern = match self.money.strip_prefix("{symbol}{number}") {
            Some("") if spaced => "{symbol}\u{a0}{number}",
            _ => self.money,
        };
        let body = pattern
            .replace("{number}", &number)
            .replace("{symbol}", symbol);
        Ok(if negative {
            format!("{}{body}", self.minus)
        } else {
            body
        })
    }

    /// A date written out: `22 November 2026`, `22. November 2026`.
    pub fn long_date(&self, d: Date) -> String {
        self.long_date
            .replace("{day}", &d.day.to_string())
            .replace("{month}", self.months[d.month as usize - 1])
            .replace("{year}", &d.year.to_string())
    }

    /// A date in digits: `22/11/2026`, `11/22/2026`, `22.11.2026`.
    pub fn short_date(&self, d: Date) -> String {
        self.short_date
            .replace("{dd}", &format!("{:02}", d.day))
            .replace("{mm}", &format!("{:02}", d.month))
            .replace("{yyyy}", &format!("{:04}", d.year))
    }

    /// The rules as JSON for the Typst module.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("rules serialize");
        let symbols: Map<String, Value> = self
            .symbols
            .iter()
            .map(|(c, s)| (c.to_string(), Value::String(s.to_string())))
            .collect();
        v["symbols"] = Value::Object(symbols);
        // The symbols set apart from the number (see `money`); a code
        // without a symbol is letters, so always.
        v["spaced"] = self
            .symbols
            .iter()
            .filter(|(_, s)| spaced(s))
            .map(|(_, s)| Value::String(s.to_string()))
            .collect();
        v["lang"] = Value::String(self.lang().into());
        v
    }
}

/// Whether a currency symbol ends in a letter, and so is set apart from the
/// number by a no-break space (CLDR's currency spacing).
fn spaced(symbol: &str) -> bool {
    symbol.chars().last().is_some_and(char::is_alphabetic)
}

/// Spaces that some locales use inside numbers and money; tests compare text
/// extracted from PDFs, where these become plain spaces.
pub const SPECIAL_SPACES: [&str; 2] = [NBSP, "\u{202f}"];

#[cfg(test)]
mod tests {
    use super::*;

    fn r(tag: &str) -> &'static Rules {
        rules(tag).unwrap()
    }

    #[test]
    fn money_follows_each_locale() {
        let m = |tag: &str, x: f64, c: &str| r(tag).money(x, c).unwrap();
        assert_eq!(m("en-US", 1234.56, "USD"), "$1,234.56");
        assert_eq!(m("en-GB", 1234.56, "GBP"), "£1,234.56");
        assert_eq!(m("de-DE", 1234.56, "EUR"), "1.234,56\u{a0}€");
        assert_eq!(m("fr-FR", 1234.56, "EUR"), "1\u{202f}234,56\u{a0}€");
        assert_eq!(m("es-ES", 1234.56, "EUR"), "1234,56\u{a0}€");
        assert_eq!(m("es-ES", 12345.6, "EUR"), "12.345,60\u{a0}€");
        assert_eq!(m("en-US", -0.004, "USD"), "$0.00");
        assert_eq!(m("en-US", -1234567.891, "CHF"), "-CHF\u{a0}1,234,567.89");
        // ISO 4217 minor units.
        assert_eq!(m("en-GB", 1234.5, "JPY"), "JP¥1,235");
        assert_eq!(m("en-US", 1234.5, "KRW"), "₩1,235");
        assert_eq!(m("en-GB", 1234.5675, "BHD"), "BHD\u{a0}1,234.568");
        assert_eq!(m("de-DE", 1234.5, "KWD"), "1.234,500\u{a0}KWD");
        for bad in ["eur", "EURO", "XYZ", "XAU", "", "€"] {
            assert!(r("en-GB").money(1.0, bad).is_err(), "{bad}");
        }
        assert!(minor_units("gbp").unwrap_err().contains("capitals"));
        assert_eq!(r("de-DE").number(0.5, 0), "1");
        assert_eq!(r("de-DE").number(999.995, 2), "1.000,00");
        assert_eq!(r("en-GB").number(0.05, 2), "0.05");
    }

    #[test]
    fn dates_follow_each_locale() {
        let d = Date::parse("2026-11-02").unwrap();
        assert_eq!(r("en-US").long_date(d), "November 2, 2026");
        assert_eq!(r("en-GB").long_date(d), "2 November 2026");
        assert_eq!(r("de-DE").long_date(d), "2. November 2026");
        assert_eq!(r("fr-FR").long_date(d), "2 novembre 2026");
        assert_eq!(r("es-ES").long_date(d), "2 de noviembre de 2026");
        assert_eq!(r("en-US").short_date(d), "11/02/2026");
        assert_eq!(r("de-DE").short_date(d), "02.11.2026");
    }

    #[test]
    fn locales_resolve_by_tag_then_language() {
        assert_eq!(resolve("de-DE").unwrap().tag, "de-DE");
        assert_eq!(resolve("de_AT").unwrap().tag, "de-DE");
        assert_eq!(resolve("EN-us").unwrap().tag, "en-US");
        assert_eq!(resolve("en-AU").unwrap().tag, "en-GB");
        assert!(resolve("pt-BR").is_none());
        assert!(resolve("").is_none());
    }
}
