//! `letterpress layouts new NAME`: a working first layout version.
//!
//! Beside stage 2 ([`crate::layout`]). Writes `<layouts>/NAME/1/` with a
//! `layout.yaml` (status draft, a small field schema, an email section), a
//! Typst letter using the engine's locale and address-window helpers,
//! HTML and text email templates that pass the email checks, the wording
//! in `texts.yaml` (English and German), a `sample.json`, and next to the
//! version folder `NAME/sample-data.csv` with three records. It renders at
//! once as a review copy (`--allow-draft`); approving it is a person's
//! decision (`layouts approve`), never the scaffold's.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const LAYOUT_YAML: &str = r#"name: {name}
version: 1
title: {title}
description: >
  Written by `letterpress layouts new`. Change the wording in texts.yaml, the
  letter in letter.typ, the email in email.html.hbs and email.txt.hbs, then
  submit it for review with your SSH key (letterpress layouts submit {name}@1
  --key KEY); reviewers approve it with theirs.
# Approval is never this line: it comes from the signed decisions in
# ../decisions/. Only `retired` has an effect (the version never runs).
status: draft
id_field: customer_id
template: letter.typ
page:
  format: a4
  max_pages: 2
locale_field: locale
default_locale: en-GB
# The engine writes the name and the address block as the destination
# country does (letterpress/recipient.json in the letter, {{full_name}}
# and {{address_lines}} in the email).
recipient:
  given: first_name
  family: last_name
  address: address
email:
  from: "Example Bank <hello@bank.example>"
  to_field: email
  subject: '{{t "subject"}}'
  preheader: '{{t "preheader"}}'
fields:
  - {name: customer_id, type: string, required: true, max_length: 40}
  - {name: first_name, type: string, required: true, max_length: 100}
  - {name: last_name, type: string, required: true, max_length: 100}
  - name: address
    type: object
    required: true
    fields:
      - {name: line1, type: string, required: true, max_length: 100}
      - {name: postcode, type: string, required: true, max_length: 20}
      - {name: city, type: string, required: true, max_length: 100}
      - {name: country, type: string, max_length: 60, description: "Empty for the United Kingdom"}
  - {name: email, type: string, description: "Without a valid address the letter goes by post only"}
  - {name: locale, type: string, description: "en-GB or de-DE"}
  - {name: balance, type: number, required: true}
"#;

const LETTER_TYP: &str = r#"// The letter. The record is data, never code: it is read from
// /record.json, so a name like `#set text(red)` prints as written.
#import "/letterpress/locale.typ": t, money, long-date
#import "/letterpress/print.typ": address-window

#let r = json("/record.json")
// The name and address block as the engine writes them for the country.
#let recipient = json("/letterpress/recipient.json")
#let name = recipient.name

#set document(title: t("subject"))
#set page(paper: "a4", margin: (top: 20mm, bottom: 20mm, left: 25mm, right: 20mm))
#set text(font: "Libertinus Serif", size: 11pt)

#address-window(
  recipient.lines.map(l => [#l]).join(linebreak()),
  return-line: [Example Bank, 1 Bank Street, London EC2A 1AA],
  window: "din-5008-b",
)
// The address is placed over the envelope window (45 to 90 mm from the top
// of the sheet); the letter's text starts below it.
#v(72mm)
#align(right, long-date(datetime.today()))
#v(6mm)

#text(size: 14pt, weight: "bold", t("subject"))

#t("greeting", name: name)

#t("balance", balance: money(r.balance, "GBP"))

#t("sign_off")
"#;

const EMAIL_HTML: &str = r#"<!DOCTYPE html>
<html lang="{{locale}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{t "subject"}}</title>
<style>
  body { margin: 0; background: #f2f4f7; }
  .card { max-width: 600px; background: #ffffff; }
  .body { padding: 24px 28px; color: #1d2330; font: 16px/1.5 Arial, Helvetica, sans-serif; }
  h1 { margin: 0 0 14px 0; font: bold 20px Arial, Helvetica, sans-serif; }
</style>
</head>
<body>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td align="center" style="padding: 20px 8px;">
<table role="presentation" class="card" cellpadding="0" cellspacing="0" border="0">
  <tr><td class="body">
    <h1>{{t "subject"}}</h1>
    <p>{{t "greeting" name=(full_name)}}</p>
    <p>{{t "balance" balance=(money balance "GBP")}}</p>
    <p>{{t "sign_off"}}</p>
  </td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"#;

const EMAIL_TXT: &str = r#"{{t "subject"}}

{{t "greeting" name=(full_name)}}

{{t "balance" balance=(money balance "GBP")}}

{{t "sign_off"}}
"#;

const TEXTS_YAML: &str = r#"# Each sentence once per language; the letter and the email both use them.
en:
  subject: Your account statement
  preheader: Your balance at a glance.
  greeting: "Dear {name},"
  balance: "Your balance today is {balance}."
  sign_off: Yours sincerely, Example Bank
de:
  subject: Ihr Kontoauszug
  preheader: Ihr Kontostand auf einen Blick.
  greeting: "Guten Tag {name},"
  balance: "Ihr Kontostand beträgt heute {balance}."
  sign_off: Mit freundlichen Grüßen, Example Bank
"#;

const SAMPLE_JSON: &str = r#"{"customer_id": "S-1", "first_name": "Sam", "last_name": "Sample", "address": {"line1": "1 High Street", "postcode": "AB1 2CD", "city": "Leeds"}, "email": "sam@example.com", "locale": "en-GB", "balance": 1234.5}
"#;

const SAMPLE_CSV: &str = "customer_id,first_name,last_name,address.line1,address.postcode,address.city,email,locale,balance
C-1,Ann,Lee,14 Elm Grove,SW19 4HE,London,ann@example.com,en-GB,1250.75
C-2,Jürgen,Weiß,Hauptstraße 5,50667,Köln,juergen@example.com,de-DE,-42.1
C-3,Bo,\"#set text(red) ]\",2 Mill Lane,LS1 1AA,Leeds,,en-GB,0
";

/// Writes a new layout `name` version 1 under `layouts`; returns the files
/// written. Refuses a name that is not a plain identifier or that exists.
pub fn new_layout(layouts: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let plain = !name.is_empty()
        && name.len() <= 60
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !plain {
        return Err(Error::Usage(format!(
            "`{name}` is not a layout name: use lower-case letters, digits and `-`, starting with a letter (e.g. account-statement)"
        )));
    }
    let dir = layouts.join(name);
    if dir.exists() {
        return Err(Error::Usage(format!(
            "{} exists already; a new version of an existing layout is a copy of its latest version folder with the next number",
            dir.display()
        )));
    }
    let version = dir.join("1");
    std::fs::create_dir_all(&version).map_err(|e| Error::io(&version, e))?;
    let title = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_uppercase().collect::<String>() + c.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    let yaml = LAYOUT_YAML
        .replace("{name}", name)
        .replace("{title}", &title);
    let files: [(PathBuf, &str); 7] = [
        (version.join("layout.yaml"), &yaml),
        (version.join("letter.typ"), LETTER_TYP),
        (version.join("email.html.hbs"), EMAIL_HTML),
        (version.join("email.txt.hbs"), EMAIL_TXT),
        (version.join("texts.yaml"), TEXTS_YAML),
        (version.join("sample.json"), SAMPLE_JSON),
        (dir.join("sample-data.csv"), SAMPLE_CSV),
    ];
    let mut written = Vec::new();
    for (path, text) in files {
        crate::util::fs::write_atomic(&path, text.as_bytes(), false)
            .map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
