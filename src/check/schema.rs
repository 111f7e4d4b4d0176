//! The field schema of a layout and the check of each record against it.
//!
//! Stage 2 of the data path: a raw record from [`crate::input`] is checked
//! and typed here before it reaches the renderer. CSV values arrive as text
//! and are converted to the declared type; JSON values must already have it.
//! Every problem names the field by its dotted path (`address.postcode`,
//! `transactions[3].amount`), so a person can fix the data.

use serde_json::{Map, Value};

use crate::model::layout::{field_path, FieldSpec, FieldType};
use crate::util::clock::Date;

/// Adds `null` for every declared field a (checked) record lacks, in nested
/// objects and lists of objects too, so that a template in strict mode fails
/// only on names the schema does not declare (a typo), never on an optional
/// field a record happens to leave out.
pub fn fill_nulls(record: &mut Map<String, Value>, fields: &[FieldSpec]) {
    for f in fields {
        match record.get_mut(&f.name) {
            None => {
                record.insert(f.name.clone(), Value::Null);
            }
            Some(Value::Object(inner)) if !f.fields.is_empty() => fill_nulls(inner, &f.fields),
            Some(Value::Array(items)) if !f.fields.is_empty() => {
                for item in items {
                    if let Value::Object(inner) = item {
                        fill_nulls(inner, &f.fields);
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// How values arrive from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Every value is text (CSV): convert it to the declared type.
    Text,
    /// Values carry their own JSON types, which must match the schema.
    Json,
}

/// Checks `record` against `fields`, converting text values when `origin` is
/// [`Origin::Text`]. Returns the typed record, or every problem found, each
/// naming its field. Fields that the schema does not declare are kept as they
/// are, so templates can use extra data without a schema change.
pub fn check_record(
    record: Map<String, Value>,
    fields: &[FieldSpec],
    origin: Origin,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut problems = Vec::new();
    let out = check_object(record, fields, origin, "", &mut problems);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn check_object(
    mut record: Map<String, Value>,
    fields: &[FieldSpec],
    origin: Origin,
    prefix: &str,
    problems: &mut Vec<String>,
) -> Map<String, Value> {
    for spec in fields {
        let path = field_path(prefix, &spec.name);
        let value = record.remove(&spec.name);
        match value {
            None | Some(Value::Null) => {
                if spec.required {
                    problems.push(format!("field `{path}`: required but missing"));
                }
            }
            Some(Value::String(s)) if s.trim().is_empty() && spec.required => {
                problems.push(format!("field `{path}`: required but empty"));
            }
            Some(Value::String(s)) if s.is_empty() && origin == Origin::Text => {}
            Some(v) => {
                if let Some(v) = check_value(v, spec, spec.kind, origin, &path, problems) {
                    record.insert(spec.name.clone(), v);
                }
            }
        }
    }
    // Fields the schema does not declare reach the template too: no control,
    // direction or invisible character in them either. They may hold line
    // breaks (a column of notes the letter does not use); declare a field
    // to have it checked as one line.
    for (name, v) in &record {
        if !fields.iter().any(|f| &f.name == name) {
            check_undeclared(v, &field_path(prefix, name), problems);
        }
    }
    record
}

fn check_undeclared(v: &Value, path: &str, problems: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Err(why) = crate::check::values::check_text(s, true) {
                problems.push(format!("field `{path}`: {why}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_undeclared(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                check_undeclared(item, &field_path(path, k), problems);
            }
        }
        _ => {}
    }
}

fn describe(v: &Value) -> String {
    let s = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let mut shown = v.to_string();
    if shown.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    format!("{s} ({shown})")
}

/// A string value's characters (see [`crate::check::values`]) and length.
fn check_string(s: &str, spec: &FieldSpec) -> Result<(), String> {
    crate::check::values::check_text(s, spec.multiline)?;
    match spec.max_length {
        Some(max) if s.chars().count() > max => Err(format!(
            "{} characters, more than its max_length of {max}",
            s.chars().count()
        )),
        _ => Ok(()),
    }
}

/// A number, integer or yes/no written as text (a CSV cell), as JSON;
/// `None` if it is not one.
fn scalar_from_text(kind: FieldType, s: &str) -> Option<Value> {
    let s = s.trim();
    match kind {
        FieldType::Number => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| number(f, s)),
        FieldType::Integer => s.parse::<i64>().ok().map(Value::from),
        FieldType::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

/// Every element of a list field, each checked as the field's item type;
/// a null element is a problem.
fn check_list(
    items: Vec<Value>,
    spec: &FieldSpec,
    origin: Origin,
    path: &str,
    problems: &mut Vec<String>,
) -> Value {
    let item_kind = spec.item_type();
    let checked = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let p = format!("{path}[{i}]");
            if item.is_null() {
                problems.push(format!("field `{p}`: list element is null"));
                return None;
            }
            check_value(item, spec, item_kind, origin, &p, problems)
        })
        .collect();
    Value::Array(checked)
}

/// [`check_value_shown`], except that the problems of a secret field name
/// its rule but not its value.
fn check_value(
    v: Value,
    spec: &FieldSpec,
    kind: FieldType,
    origin: Origin,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<Value> {
    let before = problems.len();
    let out = check_value_shown(v, spec, kind, origin, path, problems);
    if spec.secret && problems.len() > before {
        problems.truncate(before);
        problems.push(format!(
            "field `{path}`: not a valid {} (the value of a secret field is never shown)",
            kind.name()
        ));
    }
    out
}

fn check_value_shown(
    v: Value,
    spec: &FieldSpec,
    kind: FieldType,
    origin: Origin,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<Value> {
    let wrong = |problems: &mut Vec<String>, v: &Value| {
        problems.push(format!(
            "field `{path}`: expected {}, found {}",
            kind.name(),
            describe(v)
        ));
        None
    };
    match (kind, v) {
        (FieldType::String, Value::String(s)) => match check_string(&s, spec) {
            Ok(()) => Some(Value::String(s)),
            Err(why) => {
                problems.push(format!("field `{path}`: {why}"));
                None
            }
        },
        (FieldType::Number, Value::Number(n)) => Some(Value::Number(n)),
        (FieldType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Some(Value::Number(n))
        }
        (FieldType::Bool, Value::Bool(b)) => Some(Value::Bool(b)),
        (FieldType::Number | FieldType::Integer | FieldType::Bool, Value::String(s))
            if origin == Origin::Text =>
        {
            match scalar_from_text(kind, &s) {
                Some(v) => Some(v),
                None => wrong(problems, &Value::String(s)),
            }
        }
        (FieldType::Date, Value::String(s)) => match Date::parse(s.trim()) {
            Some(d) => Some(Value::String(d.to_string())),
            None => {
                problems.push(format!(
                    "field `{path}`: `{s}` is not a valid date (expected YYYY-MM-DD)"
                ));
                None
            }
        },
        (FieldType::Currency, Value::String(s)) => {
            match crate::layout::locale::minor_units(s.trim()) {
                Ok(_) => Some(Value::String(s.trim().to_owned())),
                Err(why) => {
                    problems.push(format!("field `{path}`: {why}"));
                    None
                }
            }
        }
        (FieldType::Object, Value::Object(m)) => Some(Value::Object(check_object(
            m,
            &spec.fields,
            origin,
            path,
            problems,
        ))),
        (FieldType::List, Value::String(s)) if origin == Origin::Text => {
            // A CSV cell holds a list as a JSON array.
            match serde_json::from_str::<Value>(&s) {
                Ok(v @ Value::Array(_)) => check_value(v, spec, kind, Origin::Json, path, problems),
                _ => {
                    problems.push(format!(
                        "field `{path}`: expected a list written as a JSON array, found `{s}`"
                    ));
                    None
                }
            }
        }
        (FieldType::List, Value::Array(items)) => {
            Some(check_list(items, spec, origin, path, problems))
        }
        (_, v) => wrong(problems, &v),
    }
}

/// A record that fills every declared field with a plausible value of its
/// type (lists get one element), used to try a template before a run writes
/// anything. Date fields get `date` (the run's as-of date), a real date, so
/// templates that parse dates work on the sample; currency fields (and text
/// fields named `currency` or `..._currency`) get `EUR`.
pub fn sample_record(fields: &[FieldSpec], date: &str) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| (f.name.clone(), sample_value(f, f.kind, date)))
        .collect()
}

fn sample_value(spec: &FieldSpec, kind: FieldType, date: &str) -> Value {
    match kind {
        // A text field named like a currency holds a code in layouts written
        // before the `currency` type, and templates format money with it.
        FieldType::String if spec.name == "currency" || spec.name.ends_with("_currency") => {
            Value::String("EUR".into())
        }
        FieldType::String => Value::String(format!("Sample {}", spec.name)),
        FieldType::Number => serde_json::json!(1234.5),
        FieldType::Integer => Value::from(42),
        FieldType::Bool => Value::Bool(true),
        FieldType::Date => Value::String(date.to_owned()),
        FieldType::Currency => Value::String("EUR".into()),
        FieldType::Object => Value::Object(sample_record(&spec.fields, date)),
        FieldType::List => Value::Array(vec![sample_value(spec, spec.item_type(), date)]),
    }
}

/// A number from CSV text: integers stay integers so templates print `3`, not `3.0`.
fn number(f: f64, text: &str) -> Value {
    match text.parse::<i64>() {
        Ok(i) => Value::from(i),
        Err(_) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<FieldSpec> {
        serde_yaml::from_str(
            r#"
- {name: id, type: string, required: true}
- {name: balance, type: number}
- {name: count, type: integer}
- {name: vip, type: bool}
- {name: born, type: date}
- name: address
  type: object
  required: true
  fields:
    - {name: city, type: string, required: true}
- name: tx
  type: list
  fields:
    - {name: amount, type: number, required: true}
"#,
        )
        .unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn converts_csv_text_to_declared_types() {
        let rec = obj(
            json!({"id": "A1", "balance": "1234.5", "count": "3", "vip": "yes",
            "born": "1980-02-29", "address": {"city": "Köln"}, "tx": "[{\"amount\": 2}]", "extra": "kept"}),
        );
        let out = check_record(rec, &schema(), Origin::Text).unwrap();
        assert_eq!(out["balance"], json!(1234.5));
        assert_eq!(out["count"], json!(3));
        assert_eq!(out["vip"], json!(true));
        assert_eq!(out["tx"][0]["amount"], json!(2));
        assert_eq!(out["extra"], json!("kept"));
    }

    #[test]
    fn names_every_bad_field() {
        let rec = obj(json!({"id": "A1", "balance": "12,5", "born": "1981-02-29",
            "address": {}, "tx": [{"amount": "x"}]}));
        let errs = check_record(rec, &schema(), Origin::Json).unwrap_err();
        let all = errs.join("\n");
        assert!(
            all.contains("field `balance`: expected number, found a string"),
            "{all}"
        );
        assert!(
            all.contains("field `born`: `1981-02-29` is not a valid date"),
            "{all}"
        );
        assert!(
            all.contains("field `address.city`: required but missing"),
            "{all}"
        );
        assert!(
            all.contains("field `tx[0].amount`: expected number"),
            "{all}"
        );
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn empty_csv_cells_are_missing() {
        let rec = obj(json!({"id": "", "address": {"city": "X"}}));
        let errs = check_record(rec, &schema(), Origin::Text).unwrap_err();
        assert_eq!(errs, vec!["field `id`: required but empty"]);
        let rec = obj(json!({"id": "A", "balance": "", "address": {"city": "X"}}));
        let out = check_record(rec, &schema(), Origin::Text).unwrap();
        assert!(!out.contains_key("balance"));
    }
}
