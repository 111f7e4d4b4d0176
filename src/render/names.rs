//! Names and postal addresses, written as each country writes them: one
//! set of rules in the engine for both channels.
//!
//! Part of stage 3 (rendering), next to [`crate::layout::locale`]. A layout that
//! declares its `recipient` fields in `layout.yaml` gets, for every record,
//! the customer's full name and the address block composed here, once:
//! Typst templates read them from `/letterpress/recipient.json` (`name`,
//! `lines`, `country`), Handlebars templates with `{{full_name}}` and
//! `{{#each (address_lines)}}`. So the letter and the email greet the
//! customer the same way and the address follows the destination's postal
//! rules, whatever the template's author knows of them.
//!
//! # Names
//! The full name is the title, given name and family name, in that order,
//! joined by spaces, as British, American and most European letters write
//! it. A Chinese, Japanese or Korean name (given and family name both in
//! Han, Hiragana, Katakana or Hangul) is written family name first with no
//! space and no comma (`王小明`, `山田太郎`, `김민준`), after the title if
//! there is one; a salutation built from it ("Dear {name},") follows suit.
//! A name with right-to-left letters is isolated as a whole (see
//! [`crate::check::values`]), so it stays one unit and the text after it keeps its
//! place.
//!
//! # Addresses
//! The address object holds `line1`, `line2`, `line3`, `postcode`, `city`,
//! `state` and `country` (all optional but the ones the schema requires).
//! The destination country (`country`: an ISO 3166 code such as `DE`, or
//! an English name such as `Germany`; empty for the layout's home country)
//! picks the format, after the UPU and national postal rules (the patterns
//! follow Google's libaddressinput data):
//!
//! | country | after the street lines |
//! |---|---|
//! | GB | post town in capitals, then the postcode on its own line (Royal Mail) |
//! | IE | town, then the Eircode on its own line |
//! | US | `City, ST ZIP` (with a state; `City ZIP` without) |
//! | CA, AU | `City ST POSTCODE` |
//! | RU, UA | city, region and postcode each on a line |
//! | FR | `75002 PARIS`: postcode, then the city in capitals (La Poste) |
//! | JP, CN, KR in their own script | local order: postcode, city, street lines, then the name |
//! | AE, HK | city only (they have no postcodes) |
//! | any other | `PLZ Ort`: postcode, then city (Germany and most of Europe) |
//!
//! Mail abroad ends with the destination country in capitals, in English
//! (as the data names it, or the ISO 3166 name for a code); mail at home
//! has no country line. Lines left empty are dropped, and each line with
//! right-to-left letters is isolated.

use serde::Serialize;
use serde_json::{Map, Value};
use unicode_script::{Script, UnicodeScript};

use crate::check::values::isolate;
use crate::model::layout::RecipientSettings;

/// The recipient of one record, as templates get it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Recipient {
    /// The full name (see the module docs).
    pub name: String,
    /// The address block, name first (last in a local CJK address).
    pub lines: Vec<String>,
    /// The destination country's ISO 3166 code, when it is known.
    pub country: Option<String>,
}

fn text<'a>(record: &'a Map<String, Value>, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
}

/// Whether a character is Chinese, Japanese or Korean.
fn cjk_char(c: char) -> bool {
    matches!(
        c.script(),
        Script::Han | Script::Hiragana | Script::Katakana | Script::Hangul
    )
}

/// Whether a text's letters are all Chinese, Japanese or Korean (and it
/// has some).
fn cjk(s: &str) -> bool {
    let mut letters = s.chars().filter(|c| c.is_alphabetic()).peekable();
    letters.peek().is_some() && letters.all(cjk_char)
}

/// The full name from its parts (see the module docs), not isolated.
pub fn full_name(title: &str, given: &str, family: &str) -> String {
    let name = if cjk(given) && cjk(family) {
        format!("{family}{given}")
    } else {
        [given, family]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    };
    [title, name.as_str()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ISO 3166 code of a country as records write it: a code (`DE`,
/// `de`, `DEU`) or an English name (`Germany`, `United Kingdom`, `UK`).
pub fn country_code(value: &str) -> Option<String> {
    use std::str::FromStr;
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let upper = v.to_uppercase();
    if let Ok(c) = iso_country::Country::from_str(&upper) {
        return Some(format!("{c:?}"));
    }
    let alias = match upper.as_str() {
        "UK" | "UNITED KINGDOM" | "GREAT BRITAIN" | "ENGLAND" | "SCOTLAND" | "WALES"
        | "NORTHERN IRELAND" => "GB",
        "USA" | "UNITED STATES" | "UNITED STATES OF AMERICA" => "US",
        "SOUTH KOREA" | "KOREA" | "REPUBLIC OF KOREA" => "KR",
        "RUSSIA" => "RU",
        "CZECH REPUBLIC" | "CZECHIA" => "CZ",
        "VIETNAM" => "VN",
        "TURKEY" | "TÜRKIYE" | "TURKIYE" => "TR",
        "HONG KONG" => "HK",
        "TAIWAN" => "TW",
        "IRAN" => "IR",
        "THE NETHERLANDS" | "HOLLAND" => "NL",
        "DEUTSCHLAND" => "DE",
        "ÖSTERREICH" => "AT",
        "SCHWEIZ" | "SUISSE" | "SVIZZERA" => "CH",
        "ESPAÑA" => "ES",
        "ITALIA" => "IT",
        "NEDERLAND" => "NL",
        "BELGIË" | "BELGIQUE" => "BE",
        "POLSKA" => "PL",
        _ => "",
    };
    if !alias.is_empty() {
        return Some(alias.into());
    }
    let titled = iso_country::Country::from_name(v).or_else(|| {
        iso_country::Country::from_name(
            &v.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map_or(String::new(), |f| {
                        f.to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect()
                    })
                })
                .collect::<Vec<_>>()
                .join(" "),
        )
    });
    titled.map(|c| format!("{c:?}"))
}

/// A country's name for the last line of mail to it, in capitals.
fn country_line(value: &str, code: Option<&str>) -> String {
    let is_code = value.trim().len() <= 3 && value.trim().chars().all(|c| c.is_ascii_alphabetic());
    let name = match (is_code, code) {
        (true, Some(code)) => match code {
            "GB" => "United Kingdom".to_owned(),
            "US" => "United States".to_owned(),
            "KR" => "South Korea".to_owned(),
            "RU" => "Russia".to_owned(),
            "CZ" => "Czech Republic".to_owned(),
            code => {
                use std::str::FromStr;
                iso_country::Country::from_str(code)
                    .map_or(value.to_owned(), |c| c.name().to_owned())
            }
        },
        _ => value.trim().to_owned(),
    };
    name.to_uppercase()
}

/// The postal format of a country: its pattern of placeholders (`%N` name,
/// `%A` street lines, `%C` city, `%S` state, `%Z` postcode; a line is one
/// line of the address), and whether the city is written in capitals.
fn format_of(code: &str, local_script: bool) -> (&'static str, bool) {
    match code {
        "GB" => ("%N\n%A\n%C\n%Z", true),
        "IE" => ("%N\n%A\n%C\n%Z", false),
        "US" => ("%N\n%A\n%C, %S %Z", false),
        "CA" | "AU" => ("%N\n%A\n%C %S %Z", false),
        "RU" | "UA" => ("%N\n%A\n%C\n%S\n%Z", false),
        "FR" => ("%N\n%A\n%Z %C", true),
        "JP" | "CN" if local_script => ("%Z\n%C\n%A\n%N", false),
        "KR" if local_script => ("%C\n%A\n%N\n%Z", false),
        "JP" | "CN" | "KR" => ("%N\n%A\n%C %Z", false),
        "AE" | "HK" => ("%N\n%A\n%C", false),
        _ => ("%N\n%A\n%Z %C", false),
    }
}

/// The recipient of a checked record, by the layout's settings;
/// `default_locale` gives the home country when the settings do not.
pub fn recipient(
    settings: &RecipientSettings,
    record: &Map<String, Value>,
    default_locale: &str,
) -> Recipient {
    let title = settings.title.as_deref().map_or("", |f| text(record, f));
    let name = full_name(
        title,
        text(record, &settings.given),
        text(record, &settings.family),
    );
    let home = settings
        .home_country
        .clone()
        .or_else(|| default_locale.split('-').nth(1).map(str::to_uppercase))
        .unwrap_or_else(|| "GB".into());
    let empty = Map::new();
    let address = settings
        .address
        .as_deref()
        .and_then(|f| record.get(f))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let country_value = text(address, "country");
    let code =
        country_code(country_value).or_else(|| country_value.is_empty().then(|| home.clone()));
    let street: Vec<&str> = ["line1", "line2", "line3"]
        .iter()
        .map(|f| text(address, f))
        .filter(|l| !l.is_empty())
        .collect();
    let local_script = street.iter().any(|l| cjk_any(l)) || cjk_any(text(address, "city"));
    let (pattern, upper_city) = format_of(code.as_deref().unwrap_or(""), local_script);
    let city = if upper_city {
        text(address, "city").to_uppercase()
    } else {
        text(address, "city").to_owned()
    };
    let mut lines = Vec::new();
    if settings.address.is_none() {
        lines.push(name.clone());
    } else {
        for line in pattern.split('\n') {
            if line == "%A" {
                lines.extend(street.iter().map(|s| s.to_string()));
                continue;
            }
            let filled = line
                .replace("%N", &name)
                .replace("%C", &city)
                .replace("%S", text(address, "state"))
                .replace("%Z", text(address, "postcode"));
            // Punctuation of a part that is missing ("Springfield, 12345"
            // without a state) goes with it.
            let filled = filled
                .replace(",  ", " ")
                .replace(", ,", ",")
                .trim()
                .trim_matches(',')
                .trim()
                .to_owned();
            if !filled.is_empty() {
                lines.push(filled);
            }
        }
        let abroad = match &code {
            Some(code) => !code.eq_ignore_ascii_case(&home),
            None => !country_value.is_empty(),
        };
        if abroad {
            lines.push(country_line(country_value, code.as_deref()));
        }
    }
    Recipient {
        name: isolate(&name).into_owned(),
        lines: lines.iter().map(|l| isolate(l).into_owned()).collect(),
        country: code,
    }
}

/// Whether a text has any Chinese, Japanese or Korean letter.
fn cjk_any(s: &str) -> bool {
    s.chars().any(cjk_char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> RecipientSettings {
        serde_yaml::from_str(
            "{title: title, given: first_name, family: last_name, address: address}",
        )
        .unwrap()
    }

    fn lines(rec: Value) -> Vec<String> {
        recipient(&settings(), rec.as_object().unwrap(), "en-GB").lines
    }

    #[test]
    fn names_follow_their_culture() {
        assert_eq!(full_name("Dr", "Zoë", "Ångström"), "Dr Zoë Ångström");
        assert_eq!(full_name("", "小明", "王"), "王小明");
        assert_eq!(full_name("", "太郎", "山田"), "山田太郎");
        assert_eq!(full_name("", "민준", "김"), "김민준");
        assert_eq!(full_name("Mr", "小明", "王"), "Mr 王小明");
        assert_eq!(full_name("", "Hiroshi", "渡辺"), "Hiroshi 渡辺");
        assert_eq!(full_name("", "", "Lee"), "Lee");
    }

    #[test]
    fn a_uk_address_puts_town_and_postcode_on_lines_of_their_own() {
        let rec = json!({"first_name": "James", "last_name": "Whitfield", "title": "Mr",
            "address": {"line1": "14 Elm Grove", "postcode": "SW19 4HE", "city": "London"}});
        assert_eq!(
            lines(rec),
            ["Mr James Whitfield", "14 Elm Grove", "LONDON", "SW19 4HE"]
        );
    }

    #[test]
    fn a_german_address_writes_plz_ort_and_the_country() {
        let rec = json!({"first_name": "Björn", "last_name": "Müller",
            "address": {"line1": "Königsallee 92a", "line2": "3. Obergeschoss", "postcode": "40212", "city": "Düsseldorf", "country": "Germany"}});
        assert_eq!(
            lines(rec),
            [
                "Björn Müller",
                "Königsallee 92a",
                "3. Obergeschoss",
                "40212 Düsseldorf",
                "GERMANY"
            ]
        );
    }

    #[test]
    fn a_us_address_writes_city_state_zip() {
        let rec = json!({"first_name": "Susan", "last_name": "Clarke",
            "address": {"line1": "1600 Main St", "city": "Springfield", "state": "IL", "postcode": "62701", "country": "US"}});
        assert_eq!(
            lines(rec),
            [
                "Susan Clarke",
                "1600 Main St",
                "Springfield, IL 62701",
                "UNITED STATES"
            ]
        );
        let no_state = json!({"first_name": "A", "last_name": "B",
            "address": {"line1": "1 Main St", "city": "Springfield", "postcode": "62701", "country": "USA"}});
        assert_eq!(lines(no_state)[2], "Springfield 62701");
    }

    #[test]
    fn a_japanese_address_in_japanese_is_in_local_order() {
        let rec = json!({"first_name": "太郎", "last_name": "山田",
            "address": {"line1": "丸の内1-1", "postcode": "100-0005", "city": "東京", "country": "Japan"}});
        assert_eq!(
            lines(rec),
            ["100-0005", "東京", "丸の内1-1", "山田太郎", "JAPAN"]
        );
    }

    #[test]
    fn countries_are_found_by_code_or_name() {
        assert_eq!(country_code("de").as_deref(), Some("DE"));
        assert_eq!(country_code("Germany").as_deref(), Some("DE"));
        assert_eq!(country_code("united arab emirates").as_deref(), Some("AE"));
        assert_eq!(country_code("UK").as_deref(), Some("GB"));
        assert_eq!(country_code("South Korea").as_deref(), Some("KR"));
        assert_eq!(country_code("Atlantis"), None);
        assert_eq!(country_line("de", Some("DE")), "GERMANY");
    }
}
