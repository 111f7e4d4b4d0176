//! Householding: which letters of a print run share an envelope (see
//! [`Household`] for the rules), decided before rendering so that every
//! letter knows its piece.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::input::{field, field_text};
use crate::model::print::Household;

/// What householding needs to know of a letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The household key; empty: the letter goes alone.
    pub key: String,
    /// Who the letter is for; empty: unknown, so never "the same customer".
    pub customer: String,
    /// The customer agrees to share an envelope with their household.
    pub consent: bool,
}

/// A letter's household key, customer and consent.
pub fn member(h: &Household, id_field: &str, record: &Map<String, Value>) -> Member {
    let key = match &h.field {
        Some(f) => field_text(record, f).trim().to_lowercase(),
        None => field(record, h.address_field.as_deref().unwrap_or("address"))
            .map(address_key)
            .unwrap_or_default(),
    };
    let customer = field_text(record, h.customer_field.as_deref().unwrap_or(id_field));
    let consent = h
        .consent_field
        .as_deref()
        .and_then(|f| field(record, f))
        .is_some_and(super::truthy);
    Member {
        key,
        customer: customer.trim().to_owned(),
        consent,
    }
}

/// An address as a key: its lines, city, state, country and postcode, in
/// lower case, punctuation dropped, white space collapsed, and the
/// postcode without spaces (`SW1A 1AA` and `sw1a1aa` are one postcode).
pub fn address_key(address: &Value) -> String {
    let Some(a) = address.as_object() else {
        return String::new();
    };
    let words = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
    let mut parts: Vec<String> = ["line1", "line2", "line3", "city", "state", "country"]
        .iter()
        .map(|k| words(text(k)))
        .collect();
    parts.push(words(text("postcode")).replace(' ', ""));
    if parts.iter().all(String::is_empty) {
        return String::new();
    }
    parts.join("|")
}

/// The piece of each letter (given in mailing order), pieces numbered from
/// 0 in the order of their first letter. A letter joins the first piece of
/// its household it may share: one whose letters are all for its customer,
/// or whose letters all consent when it consents too.
pub fn group<'a>(members: impl IntoIterator<Item = &'a Member>) -> Vec<usize> {
    struct Open {
        customer: Option<String>,
        all_consent: bool,
    }
    let mut pieces: Vec<Open> = Vec::new();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut out = Vec::new();
    for m in members {
        let same = |p: &Open| !m.customer.is_empty() && p.customer.as_deref() == Some(&m.customer);
        let joins = (!m.key.is_empty())
            .then(|| by_key.get(m.key.as_str()))
            .flatten()
            .and_then(|ps| {
                ps.iter()
                    .copied()
                    .find(|&i| same(&pieces[i]) || (pieces[i].all_consent && m.consent))
            });
        let i = match joins {
            Some(i) => {
                let p = &mut pieces[i];
                if !same(p) {
                    p.customer = None;
                }
                p.all_consent &= m.consent;
                i
            }
            None => {
                pieces.push(Open {
                    customer: Some(m.customer.clone()).filter(|c| !c.is_empty()),
                    all_consent: m.consent,
                });
                if !m.key.is_empty() {
                    by_key.entry(&m.key).or_default().push(pieces.len() - 1);
                }
                pieces.len() - 1
            }
        };
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(key: &str, customer: &str, consent: bool) -> Member {
        Member {
            key: key.into(),
            customer: customer.into(),
            consent,
        }
    }

    #[test]
    fn addresses_match_across_case_spacing_punctuation_and_postcode_spaces() {
        let a =
            json!({"line1": "Flat 3, 22 Canongate", "city": "Edinburgh", "postcode": "EH8 8DD"});
        let b =
            json!({"line1": "flat 3 22  CANONGATE.", "city": " edinburgh", "postcode": "eh88dd"});
        let c =
            json!({"line1": "Flat 4, 22 Canongate", "city": "Edinburgh", "postcode": "EH8 8DD"});
        assert_eq!(address_key(&a), address_key(&b));
        assert_ne!(address_key(&a), address_key(&c));
        assert_eq!(address_key(&json!({})), "");
        assert_eq!(address_key(&json!("a string")), "");
    }

    #[test]
    fn only_the_same_customer_or_consenting_customers_share_a_piece() {
        let pieces = group(&[
            m("h1", "A", false), // 0
            m("h1", "B", false), // B may not join A's envelope: 1
            m("h1", "A", false), // A's second letter joins A: 0
            m("h2", "C", true),  // 2
            m("h2", "D", true),  // both consent: 2
            m("h2", "E", false), // E does not: 3
            m("", "F", true),    // no key: alone, 4
            m("", "F", true),    // 5
            m("h1", "", true),   // unknown customer, consents, but A did not: 6
        ]);
        assert_eq!(pieces, [0, 1, 0, 2, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_member_takes_the_key_the_customer_and_the_consent_the_layout_names() {
        let record = json!({"id": "R1", "cust": "C-9", "ok": "Yes", "hh": " House-7 ",
            "address": {"line1": "1 Main St", "postcode": "AB1 2CD"}});
        let record = record.as_object().unwrap();
        let explicit = Household {
            field: Some("hh".into()),
            customer_field: Some("cust".into()),
            consent_field: Some("ok".into()),
            ..Household::default()
        };
        assert_eq!(member(&explicit, "id", record), m("house-7", "C-9", true));
        let by_address = Household::default();
        assert_eq!(
            member(&by_address, "id", record),
            m("1 main st||||||ab12cd", "R1", false)
        );
    }
}
