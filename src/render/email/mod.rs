//! Personalised emails: HTML and plain text from Handlebars templates,
//! packed into a reproducible `.eml` file. Stage 3 of the data path for the
//! email channel, between the checks ([`crate::check`]) and the files
//! ([`crate::output`]); the bytes it returns are what [`delivery`] sends.
//!
//! [`delivery`]: crate::output::delivery
//!
//! An [`EmailRenderer`] is built once per layout version and shared by all
//! workers. Everything that does not depend on the record happens there,
//! once: the templates are parsed, and the HTML template's `<style>` block is
//! inlined into `style` attributes with css-inline (keeping `@media` rules in
//! a `<style>` block for dark mode and small screens). To inline CSS into a
//! template rather than into each email, every `{{...}}` expression is first
//! swapped for a placeholder the HTML parser leaves alone (an HTML comment
//! between tags, a plain token inside a tag) and swapped back afterwards.
//!
//! # Data stays data
//! Two Handlebars registries in strict mode: one escapes HTML (for the HTML
//! part), one escapes nothing (subject, preheader and text part, which are not
//! HTML). Both escape functions also turn the braces of record values into
//! private-use characters while rendering, so that a `{{` left in the output
//! can only come from the template, which is then reported as an unresolved
//! placeholder; the braces are put back before the email is written. A
//! customer called `{{x}}` gets `{{x}}`.
//!
//! # Helpers
//! `{{money amount currency}}`, `{{number x 2}}`, `{{long_date d}}`,
//! `{{short_date d}}` format by the record's locale with [`crate::layout::locale`],
//! exactly as the Typst module does; `{{as_of}}` is the run's as-of date,
//! `{{add_days d n}}` the date `n` days after `d` (both `YYYY-MM-DD`) and
//! `{{days_since d}}` the days from `d` to the as-of date,
//! `{{locale}}` the record's resolved locale, `{{join a b c}}` its non-empty
//! arguments separated by spaces (a name with an optional title),
//! `{{full_name}}` and `{{#each (address_lines)}}` the recipient's name and
//! address block as [`crate::render::names`] composes them (layouts with a
//! `recipient` section),
//! `{{t "key" name=..}}` a
//! sentence of the layout's `texts.yaml`, and `{{url x}}` passes a link from
//! record data only if it is `https:` (anything else fails the email).
//!
//! # Checks on every email
//! The HTML must be under [`MAX_HTML_BYTES`] (Gmail clips longer messages);
//! every `<img>` has `alt`; `<html lang>` equals the record's locale; every
//! `<table>` carries a `role` (`presentation` for layout tables); every
//! `href` and `src` passes the one rule for links of every channel
//! ([`crate::check::links`]: `https:`, `mailto:`, `tel:`, `#`, and `cid:`
//! for images); and no
//! `{{` or `}}` is left in subject, preheader, HTML or text. A failed check
//! fails the email, with the rule and what was found.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use serde_json::{Map, Value};

use crate::check::links::Place;
use crate::layout::catalog::Layout;
use crate::layout::locale::{self, Rules};
use crate::layout::texts::Texts;
use crate::model::layout::EmailSettings;
use crate::util::clock::Date;

/// HTML larger than this fails the email: Gmail clips messages at about 102 KB.
pub const MAX_HTML_BYTES: usize = 100 * 1024;

/// The key under which the engine passes its own values to templates.
/// Record fields with this name are overwritten.
pub const CONTEXT_KEY: &str = "_lp";

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// A rendered email.
#[derive(Debug)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The `Message-ID` (without angle brackets).
    pub message_id: String,
    /// The HTML part.
    pub html: String,
    /// The plain-text part.
    pub text: String,
    /// The whole message, RFC 5322.
    pub eml: Vec<u8>,
    /// The attached letter, if the layout attaches it.
    pub attachment: Option<crate::model::manifest::AttachmentEntry>,
}

/// Everything that stays the same for all emails of one layout version.
pub struct EmailRenderer {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
    date: SystemTime,
    /// Identifies the layout version and as-of date in message ids.
    seed: String,
    has_preheader: bool,
    fields: Vec<crate::model::layout::FieldSpec>,
    /// A draft run: subjects start with `[DRAFT] `.
    draft: bool,
    recipient: Option<crate::model::layout::RecipientSettings>,
    default_locale: String,
    wording: crate::check::wording::Wording,
    /// Whether the letter goes with the email, and the record field of its
    /// password.
    attach: bool,
    password_field: Option<String>,
    max_bytes: u64,
}

const HTML: &str = "html";
const TEXT: &str = "text";
const SUBJECT: &str = "subject";
const PREHEADER: &str = "preheader";
const ATTACHMENT: &str = "attachment";

impl EmailRenderer {
    /// Prepares a layout version's email templates. `read` returns a layout
    /// file's contents by relative path. Errors are layout errors, naming the
    /// file and the problem.
    pub fn new(
        layout: &Layout,
        settings: &EmailSettings,
        read: impl Fn(&str) -> Option<Vec<u8>>,
        texts: Arc<Texts>,
        as_of: Date,
        digest: &str,
        draft: bool,
    ) -> Result<EmailRenderer, String> {
        let source = |rel: &str| -> Result<String, String> {
            let bytes = read(rel).ok_or_else(|| format!("`{rel}` is missing"))?;
            String::from_utf8(bytes).map_err(|_| format!("`{rel}` is not valid UTF-8"))
        };
        let html_src = source(&settings.html)?;
        let inlined =
            inline_css(&html_src).map_err(|e| format!("{}: {e}", settings.html.as_str()))?;
        let text_src = source(&settings.text)?;

        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_escape_fn(escape_html);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(escape_plain);
        for reg in [&mut html, &mut plain] {
            register_helpers(reg, &texts);
        }
        let template = |reg: &mut Handlebars<'static>, name: &str, src: &str, file: &str| {
            reg.register_template_string(name, src)
                .map_err(|e| format!("{file}: {}", one_line(&e.to_string())))
        };
        template(&mut html, HTML, &inlined, &settings.html)?;
        template(&mut plain, TEXT, &text_src, &settings.text)?;
        template(&mut plain, SUBJECT, &settings.subject, "email.subject")?;
        if let Some(p) = &settings.preheader {
            template(&mut plain, PREHEADER, p, "email.preheader")?;
        }
        let name = match &settings.attachment_name {
            Some(name) => name.clone(),
            None => format!("{}.pdf", layout.meta.name),
        };
        template(&mut plain, ATTACHMENT, &name, "email.attachment_name")?;

        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("email.from `{}`: {e}", settings.from))?;
        let reply_to = match &settings.reply_to {
            Some(r) => Some(
                r.parse::<Mailbox>()
                    .map_err(|e| format!("email.reply_to `{r}`: {e}"))?,
            ),
            None => None,
        };
        let domain = from.email.domain().to_owned();
        let date =
            SystemTime::UNIX_EPOCH + Duration::from_secs(as_of.unix_days().max(0) as u64 * 86_400);
        Ok(EmailRenderer {
            html,
            plain,
            from,
            reply_to,
            domain,
            date,
            seed: format!("{}|{digest}|{as_of}", layout.id()),
            has_preheader: settings.preheader.is_some(),
            fields: layout.meta.fields.clone(),
            draft,
            recipient: layout.meta.recipient.clone(),
            default_locale: layout.meta.default_locale.clone(),
            wording: crate::check::wording::Wording::new(
                &layout.meta.required_text,
                &layout.meta.forbidden_text,
            ),
            attach: settings.attach.is_some(),
            password_field: settings.encrypt.as_ref().map(|e| e.password_field.clone()),
            max_bytes: settings.max_bytes,
        })
    }

    /// Whether the record's letter goes with its email.
    pub fn attaches_letter(&self) -> bool {
        self.attach
    }

    /// Renders the email of one record (a checked record object) to `to` in
    /// the locale `rules`, with `letter` attached when the layout attaches
    /// the letter ([`EmailRenderer::attaches_letter`]). The error is a reason
    /// a person can act on.
    pub fn render(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        to: &Address,
        rules: &Rules,
        as_of: Date,
        letter: Option<&[u8]>,
    ) -> Result<Email, String> {
        let ctx = self.context(record, rules, as_of);
        let run = |reg: &Handlebars<'static>, name: &str, what: &str| {
            reg.render_with_context(name, &ctx)
                .map_err(|e| format!("{what}: {}", one_line(&e.to_string())))
        };
        let subject = run(&self.plain, SUBJECT, "subject")?;
        let preheader = if self.has_preheader {
            Some(run(&self.plain, PREHEADER, "preheader")?)
        } else {
            None
        };
        let mut html = run(&self.html, HTML, "HTML part")?;
        let text = run(&self.plain, TEXT, "text part")?;
        for (what, s) in [
            ("subject", subject.as_str()),
            ("preheader", preheader.as_deref().unwrap_or("")),
            ("HTML part", html.as_str()),
            ("text part", text.as_str()),
        ] {
            if let Some(at) = find_pair(s, '{').or_else(|| find_pair(s, '}')) {
                let snippet: String = s[at..].chars().take(30).collect();
                return Err(format!(
                    "unresolved placeholder in the {what}: `{snippet}` (a Handlebars expression the template left unrendered)"
                ));
            }
        }
        if let Some(p) = &preheader {
            html = insert_preheader(&html, p)?;
        }
        check_html(&html, rules.tag)?;
        let subject = unprotect(&subject)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_owned();
        if subject.is_empty() {
            return Err("the subject is empty".into());
        }
        let subject = if self.draft {
            format!("[DRAFT] {subject}")
        } else {
            subject
        };
        let (html, text) = (unprotect(&html), unprotect(&text));
        self.check_wording(&subject, &html, &text, rules)?;
        let attachment = match (self.attach, letter) {
            (false, _) => None,
            (true, None) => {
                return Err("the layout attaches the letter, but it was not rendered".into())
            }
            (true, Some(pdf)) => {
                let name = unprotect(&run(&self.plain, ATTACHMENT, "attachment name")?);
                Some(self.attachment(record_id, record, name, pdf)?)
            }
        };
        let email = self.message(record_id, to, subject, html, text, attachment)?;
        if email.eml.len() as u64 > self.max_bytes {
            return Err(format!(
                "the email is {} with its attachment, over the layout's limit of {} (email.max_bytes)",
                size(email.eml.len() as u64),
                size(self.max_bytes)
            ));
        }
        Ok(email)
    }

    /// The letter as attached: its file name (one line, with a `.pdf`
    /// ending) and bytes, password protected when the layout asks. The
    /// password's value appears in no error.
    fn attachment(
        &self,
        record_id: &str,
        record: &Map<String, Value>,
        name: String,
        pdf: &[u8],
    ) -> Result<(String, Vec<u8>), String> {
        let mut name = one_line(&name).replace(['/', '\\'], "-").trim().to_owned();
        if name.is_empty() {
            return Err("the attachment name is empty (email.attachment_name)".into());
        }
        if !name.to_ascii_lowercase().ends_with(".pdf") {
            name.push_str(".pdf");
        }
        let Some(field) = &self.password_field else {
            return Ok((name, pdf.to_vec()));
        };
        let password = match record.get(field) {
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        if password.is_empty() {
            return Err(format!(
                "field `{field}` is empty: the attached letter cannot be password protected"
            ));
        }
        let seed = format!("{}|{record_id}", self.seed);
        let encrypted = crate::render::pdf::encrypt::encrypt(pdf, &password, seed.as_bytes())?;
        Ok((name, encrypted))
    }

    /// What the templates see: the record with every declared field present
    /// (null when missing), and under [`CONTEXT_KEY`] the locale, the as-of
    /// date and the recipient's name and address.
    fn context(&self, record: &Map<String, Value>, rules: &Rules, as_of: Date) -> Context {
        let mut data = record.clone();
        crate::check::schema::fill_nulls(&mut data, &self.fields);
        let mut lp = Map::new();
        lp.insert("locale".into(), rules.tag.into());
        lp.insert("as_of".into(), as_of.to_string().into());
        if let Some(settings) = &self.recipient {
            let r = crate::render::names::recipient(settings, record, &self.default_locale);
            lp.insert(
                "recipient".into(),
                serde_json::to_value(r).expect("JSON serializes"),
            );
        }
        data.insert(CONTEXT_KEY.into(), Value::Object(lp));
        Context::from(Value::Object(data))
    }

    /// The layout's required and forbidden wording, in each part with the
    /// subject.
    fn check_wording(
        &self,
        subject: &str,
        html: &str,
        text: &str,
        rules: &Rules,
    ) -> Result<(), String> {
        if self.wording.is_empty() {
            return Ok(());
        }
        self.wording
            .check(
                &format!("{subject} {}", crate::check::wording::html_text(html)),
                rules,
            )
            .map_err(|e| format!("HTML part: {e}"))?;
        self.wording
            .check(&format!("{subject} {text}"), rules)
            .map_err(|e| format!("text part: {e}"))
    }

    /// The MIME message: headers fixed by the layout and the record id (the
    /// Message-ID and the boundaries are hashes of them, so the same inputs
    /// give the same bytes), text and HTML as alternatives, and with an
    /// attachment all that inside multipart/mixed, the letter after it.
    fn message(
        &self,
        record_id: &str,
        to: &Address,
        subject: String,
        html: String,
        text: String,
        attachment: Option<(String, Vec<u8>)>,
    ) -> Result<Email, String> {
        let hash = crate::util::digest::sha256_hex(format!("{}|{record_id}", self.seed).as_bytes());
        let message_id = format!("{}@{}", &hash[..32], self.domain);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .raw_header(subject_header(&subject))
            .date(self.date)
            .message_id(Some(format!("<{message_id}>")));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let body = MultiPart::alternative()
            .boundary(format!("lp-{}", &hash[32..56]))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(quoted_printable(&text)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(quoted_printable(&html)),
            );
        let (body, entry) = match attachment {
            None => (body, None),
            Some((name, bytes)) => {
                let entry = crate::model::manifest::AttachmentEntry {
                    name: name.clone(),
                    sha256: crate::util::digest::sha256_hex(&bytes),
                    bytes: bytes.len() as u64,
                    encrypted: self.password_field.is_some(),
                    letter: None,
                };
                let pdf = ContentType::parse("application/pdf").expect("a valid type");
                let mixed = MultiPart::mixed()
                    .boundary(format!("lp-m-{}", &hash[32..56]))
                    .multipart(body)
                    .singlepart(Attachment::new(name).body(Body::new(bytes), pdf));
                (mixed, Some(entry))
            }
        };
        let message = builder
            .multipart(body)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        Ok(Email {
            to: to.to_string(),
            subject,
            message_id,
            html,
            text,
            eml: message.formatted(),
            attachment: entry,
        })
    }
}

/// A size in bytes as people read it: `18.4 KB`, `10.0 MB`.
fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// Parameter `i` of helper `name` as a number.
fn number(h: &Helper, i: usize, name: &str) -> Result<f64, RenderError> {
    let v = param(h, i, name)?;
    v.as_f64()
        .ok_or_else(|| err(format!("{name}: `{v}` is not a number")))
}

/// `{{join a b ...}}`: the non-empty values, trimmed, with spaces between.
fn join(h: &Helper) -> String {
    let parts: Vec<String> = h
        .params()
        .iter()
        .filter_map(|p| match p.value() {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_owned()),
            v => Some(v.to_string()),
        })
        .filter(|s| !s.is_empty())
        .collect();
    parts.join(" ")
}

/// `{{url x}}`: a link from record data, which must be https.
fn url(h: &Helper) -> Result<String, RenderError> {
    let v = param(h, 0, "url")?;
    let s = v.as_str().unwrap_or("").trim();
    let ok = s.len() > 8
        && s[..8].eq_ignore_ascii_case("https://")
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"');
    if !ok {
        return Err(err(format!(
            "url: `{v}` is not an https:// link; links from record data must be https"
        )));
    }
    Ok(s.to_owned())
}

/// The `Subject` header of a subject line that may hold record values.
///
/// lettre encodes a subject as RFC 2047 encoded words only where it has
/// non-ASCII characters and folds it only at spaces, so an ASCII subject
/// that holds text looking like an encoded word (`=?utf-8?b?...?=`, from a
/// customer's name) would be decoded by mail programs into something else,
/// and a long run without spaces would make a header line longer than RFC
/// 5322's 998 octets. Such a subject is written wholly as encoded words,
/// folded into lines of at most 78 characters; any other is left to
/// lettre, which keeps plain subjects readable in the file.
fn subject_header(subject: &str) -> lettre::message::header::HeaderValue {
    use lettre::message::header::{HeaderName, HeaderValue};
    let name = HeaderName::new_from_ascii_str("Subject");
    let risky = subject.contains("=?") || subject.split(' ').any(|w| w.len() > 60);
    if !risky {
        return HeaderValue::new(name, subject.to_owned());
    }
    let mut encoded = String::with_capacity(subject.len() * 2);
    {
        let mut w = email_encoding::headers::writer::EmailWriter::new(
            &mut encoded,
            "Subject: ".len(),
            0,
            false,
        );
        email_encoding::headers::rfc2047::encode(subject, &mut w)
            .expect("writing to a String does not fail");
    }
    HeaderValue::dangerous_new_pre_encoded(name, subject.to_owned(), encoded)
}

/// A body part in quoted-printable (RFC 2045 6.7): readable for mostly
/// ASCII text, safe for any line length, with CRLF line ends. Written here
/// because it runs for every email and is a fifth of an email's cost with
/// the general-purpose encoder.
fn quoted_printable(s: &str) -> Body {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Bytes written as themselves: printable ASCII but `=`, plus space and
    // tab (which are encoded at the end of a line).
    const LITERAL: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 32;
        while b < 127 {
            t[b] = b != b'=' as usize;
            b += 1;
        }
        t[b'\t' as usize] = true;
        t
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 16);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let mut col = 0;
        let mut j = 0;
        while j < line.len() {
            // A run of literal bytes that fits the line (76 with the `=`).
            let end = line.len().min(j + 75 - col);
            let mut k = j;
            while k < end && LITERAL[line[k] as usize] {
                k += 1;
            }
            if k == line.len() && k > j && matches!(line[k - 1], b' ' | b'\t') {
                k -= 1; // trailing white space is encoded
            }
            out.extend_from_slice(&line[j..k]);
            col += k - j;
            j = k;
            if j == line.len() {
                break;
            }
            let literal = LITERAL[line[j] as usize] && j + 1 != line.len();
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
                continue;
            }
            let b = line[j];
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            col += width;
            j += 1;
        }
    }
    Body::dangerous_pre_encoded(out, ContentTransferEncoding::QuotedPrintable)
}

/// The first line of a (possibly multi-line) error message, trimmed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Handlebars' HTML escaping, plus protected braces.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            '{' => out.push(OPEN),
            '}' => out.push(CLOSE),
            c => out.push(c),
        }
    }
    out
}

/// No escaping (subject, text), but protected braces.
fn escape_plain(s: &str) -> String {
    s.replace('{', "\u{E000}").replace('}', "\u{E001}")
}

/// The offset of the first `cc` (`{{` or `}}`), found with a fast
/// single-byte search.
fn find_pair(s: &str, c: char) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(at) = s[from..].find(c) {
        let at = from + at;
        if b.get(at + 1) == Some(&(c as u8)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Puts protected braces back.
fn unprotect(s: &str) -> String {
    // Both private-use characters start with the byte 0xEE in UTF-8.
    if s.as_bytes().contains(&0xEE) && s.contains([OPEN, CLOSE]) {
        s.replace(OPEN, "{").replace(CLOSE, "}")
    } else {
        s.to_owned()
    }
}

/// Inserts the hidden preheader right after the `<body>` tag.
fn insert_preheader(html: &str, preheader: &str) -> Result<String, String> {
    let start = find_tag(html, "body").ok_or("the HTML has no <body> tag for the preheader")?;
    let end = start
        + html[start..]
            .find('>')
            .ok_or("the <body> tag is not closed")?
        + 1;
    let hidden = format!(
        "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\" aria-hidden=\"true\">{}</div>",
        escape_html(preheader)
    );
    Ok(format!("{}{hidden}{}", &html[..end], &html[end..]))
}

/// The byte offset of the first `<name` tag (case-insensitive).
fn find_tag(html: &str, name: &str) -> Option<usize> {
    tags(html).find(|t| t.name == name).map(|t| t.start)
}

/// One start tag found by [`tags`].
struct Tag<'a> {
    start: usize,
    name: String,
    attrs: Vec<(String, &'a str)>,
}

impl Tag<'_> {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// The start tags of an HTML document, with their attributes; comments and
/// the contents of `<style>` and `<script>` are skipped. Enough to check the
/// structure of an email whose markup comes from a trusted template (record
/// values are escaped, so they add no tags).
fn tags(html: &str) -> impl Iterator<Item = Tag<'_>> {
    let b = html.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            let lt = i + html[i..].find('<')?;
            i = lt + 1;
            if html[lt..].starts_with("<!--") {
                i = html[lt..].find("-->").map_or(b.len(), |e| lt + e + 3);
                continue;
            }
            let name_len = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            if name_len == 0 || !b[i].is_ascii_alphabetic() {
                continue;
            }
            let name = html[i..i + name_len].to_ascii_lowercase();
            i += name_len;
            let mut attrs = Vec::new();
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'>' {
                    i += 1;
                    break;
                }
                let n0 = i;
                while i < b.len() && !b"=>/ \t\n\r".contains(&b[i]) {
                    i += 1;
                }
                let an = html[n0..i].to_ascii_lowercase();
                let mut value = "";
                if i < b.len() && b[i] == b'=' {
                    i += 1;
                    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                        let q = b[i];
                        let v0 = i + 1;
                        i = v0 + b[v0..].iter().position(|&c| c == q).unwrap_or(b.len() - v0);
                        value = &html[v0..i];
                        i += 1;
                    } else {
                        let v0 = i;
                        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                            i += 1;
                        }
                        value = &html[v0..i];
                    }
                }
                if !an.is_empty() {
                    attrs.push((an, value));
                }
            }
            if name == "style" || name == "script" {
                // Skip to the closing tag (case-insensitive, no copy).
                while let Some(at) = html[i..].find("</") {
                    let after = i + at + 2;
                    i = after;
                    if b.len() >= after + name.len()
                        && b[after..after + name.len()].eq_ignore_ascii_case(name.as_bytes())
                    {
                        i = after - 2;
                        break;
                    }
                }
            }
            return Some(Tag {
                start: lt,
                name,
                attrs,
            });
        }
        None
    })
}

/// The structural checks every email's HTML must pass.
fn check_html(html: &str, locale: &str) -> Result<(), String> {
    if html.len() > MAX_HTML_BYTES {
        return Err(format!(
            "the HTML is {} KB, over the {} KB at which Gmail clips a message",
            html.len() / 1024,
            MAX_HTML_BYTES / 1024
        ));
    }
    let mut lang_seen = false;
    for tag in tags(html) {
        match tag.name.as_str() {
            "html" => {
                lang_seen = true;
                match tag.attr("lang") {
                    Some(l) if l.eq_ignore_ascii_case(locale) => {}
                    Some(l) => {
                        return Err(format!(
                            "<html lang=\"{l}\"> does not match the record's locale {locale} (write lang=\"{{{{locale}}}}\")"
                        ))
                    }
                    None => return Err("<html> has no lang attribute".into()),
                }
            }
            "img" if tag.attr("alt").is_none() => {
                let src = tag.attr("src").unwrap_or("?");
                return Err(format!("<img src=\"{src}\"> has no alt text"));
            }
            "table" if tag.attr("role").is_none() => {
                return Err(
                    "a <table> has no role: layout tables need role=\"presentation\" (data tables role=\"table\")"
                        .into(),
                );
            }
            _ => {}
        }
        for (attr, place) in [("href", Place::Link), ("src", Place::EmailImage)] {
            if let Some(v) = tag.attr(attr) {
                crate::check::links::check(&unprotect(v), place)
                    .map_err(|why| format!("<{} {attr}>: {why}", tag.name))?;
            }
        }
    }
    if !lang_seen {
        return Err("the HTML has no <html> element (and so no lang)".into());
    }
    Ok(())
}

/// Inlines the `<style>` rules of an HTML template into `style` attributes,
/// once per layout version, keeping its Handlebars expressions intact.
pub fn inline_css(template: &str) -> Result<String, String> {
    let (protected, exprs) = protect(template)?;
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build();
    let inlined = inliner
        .inline(&protected)
        .map_err(|e| format!("cannot inline its CSS: {e}"))?;
    let out = restore(&inlined, &exprs)?;
    // The HTML parser puts a <tbody> around table rows when the template has
    // none; with a loop over rows that would repeat the <tbody> per row.
    for e in exprs.iter().filter(|e| e.starts_with("{{#")) {
        let moved = format!("{e}<tbody>");
        if out.contains(&moved) && !template.contains(&moved) {
            return Err(format!(
                "`{e}` loops over table rows without a <tbody>: write <tbody> explicitly around the rows"
            ));
        }
    }
    Ok(out)
}

/// Handlebars expressions (`{{..}}`, `{{{..}}}`, `{{!-- --}}`) of a template,
/// as byte ranges.
fn expressions(src: &str) -> Result<Vec<std::ops::Range<usize>>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = src[i..].find("{{") {
        let start = i + at;
        let rest = &src[start..];
        let close = if rest.starts_with("{{!--") {
            "--}}"
        } else if rest.starts_with("{{{{") {
            return Err("raw blocks ({{{{ }}}}) are not supported in email HTML".into());
        } else if rest.starts_with("{{{") {
            "}}}"
        } else {
            "}}"
        };
        let end = rest
            .find(close)
            .ok_or_else(|| format!("`{}` is never closed", &rest[..rest.len().min(20)]))?
            + close.len();
        out.push(start..start + end);
        i = start + end;
    }
    Ok(out)
}

/// Replaces each expression with a placeholder: a comment between tags, a
/// token inside a tag. Expressions inside `<style>` are refused: the CSS must
/// not depend on the record (it is inlined once).
fn protect(src: &str) -> Result<(String, Vec<String>), String> {
    let exprs = expressions(src)?;
    let mut out = String::with_capacity(src.len());
    let mut saved = Vec::new();
    let mut last = 0;
    let lower = src.to_ascii_lowercase();
    for r in exprs {
        let before = &src[last..r.start];
        out.push_str(before);
        let in_tag = src[..r.start].rfind('<') > src[..r.start].rfind('>');
        let style_open = lower[..r.start].rfind("<style");
        let style_close = lower[..r.start].rfind("</style");
        if style_open.is_some() && style_open > style_close {
            return Err(format!(
                "`{}` inside <style>: the CSS is inlined once per layout version and cannot depend on the record",
                &src[r.clone()]
            ));
        }
        let n = saved.len();
        if in_tag {
            out.push_str(&format!("lpph{n}x"));
        } else {
            out.push_str(&format!("<!--lpph{n}x-->"));
        }
        saved.push(src[r.clone()].to_owned());
        last = r.end;
    }
    out.push_str(&src[last..]);
    Ok((out, saved))
}

/// Puts the expressions back; each placeholder must come back exactly once.
fn restore(html: &str, exprs: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    let mut seen = vec![0u32; exprs.len()];
    while let Some(at) = rest.find("lpph") {
        let after = &rest[at + 4..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !after[digits..].starts_with('x') {
            out.push_str(&rest[..at + 4]);
            rest = after;
            continue;
        }
        let n: usize = after[..digits].parse().map_err(|_| "bad placeholder")?;
        let mut start = at;
        let mut end = at + 4 + digits + 1;
        for (open, close) in [("<!--", "-->"), ("&lt;!--", "--&gt;")] {
            if rest[..at].ends_with(open) && rest[end..].starts_with(close) {
                start = at - open.len();
                end += close.len();
            }
        }
        let expr = exprs.get(n).ok_or("bad placeholder")?;
        out.push_str(&rest[..start]);
        out.push_str(expr);
        seen[n] += 1;
        rest = &rest[end..];
    }
    out.push_str(rest);
    if let Some(n) = seen.iter().position(|&c| c != 1) {
        return Err(format!(
            "the HTML parser moved or dropped `{}` while inlining CSS; put Handlebars expressions in text or attribute values",
            exprs[n]
        ));
    }
    Ok(out)
}

/// Registers the formatting helpers on a registry.
fn register_helpers(reg: &mut Handlebars<'static>, texts: &Arc<Texts>) {
    reg.register_helper("money", Box::new(Format(Kind::Money)));
    reg.register_helper("number", Box::new(Format(Kind::Number)));
    reg.register_helper("long_date", Box::new(Format(Kind::LongDate)));
    reg.register_helper("short_date", Box::new(Format(Kind::ShortDate)));
    reg.register_helper("as_of", Box::new(Format(Kind::AsOf)));
    reg.register_helper("locale", Box::new(Format(Kind::Locale)));
    reg.register_helper("url", Box::new(Format(Kind::Url)));
    reg.register_helper("join", Box::new(Format(Kind::Join)));
    reg.register_helper("add_days", Box::new(Format(Kind::AddDays)));
    reg.register_helper("days_since", Box::new(Format(Kind::DaysSince)));
    reg.register_helper("full_name", Box::new(Format(Kind::FullName)));
    reg.register_helper("address_lines", Box::new(Format(Kind::AddressLines)));
    reg.register_helper("t", Box::new(Text(texts.clone())));
}

#[derive(Clone, Copy)]
enum Kind {
    Money,
    Number,
    LongDate,
    ShortDate,
    AsOf,
    Locale,
    Url,
    Join,
    AddDays,
    DaysSince,
    FullName,
    AddressLines,
}

struct Format(Kind);

fn err(msg: String) -> RenderError {
    RenderErrorReason::Other(msg).into()
}

/// The engine values of the render: (locale rules, as-of date).
fn engine_values(ctx: &Context) -> Result<(&'static Rules, &str), RenderError> {
    let lp = &ctx.data()[CONTEXT_KEY];
    let rules = lp["locale"]
        .as_str()
        .and_then(locale::rules)
        .ok_or_else(|| err("no locale in the render context".into()))?;
    Ok((rules, lp["as_of"].as_str().unwrap_or("")))
}

fn param<'a>(h: &'a Helper, i: usize, name: &str) -> Result<&'a Value, RenderError> {
    let p = h.param(i).ok_or_else(|| {
        err(format!(
            "{name} needs {}",
            crate::util::text::count(i + 1, "argument", "arguments")
        ))
    })?;
    if p.is_value_missing() {
        let path = p.relative_path().map_or("?", |s| s.as_str());
        return Err(err(format!("{name}: `{path}` is missing in the record")));
    }
    Ok(p.value())
}

fn date_param(h: &Helper, name: &str) -> Result<Date, RenderError> {
    let v = param(h, 0, name)?;
    v.as_str()
        .and_then(Date::parse)
        .ok_or_else(|| err(format!("{name}: `{v}` is not a date (YYYY-MM-DD)")))
}

impl HelperDef for Format {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let (rules, as_of) = engine_values(ctx)?;
        if let Kind::FullName | Kind::AddressLines = self.0 {
            let r = &ctx.data()[CONTEXT_KEY]["recipient"];
            if r.is_null() {
                return Err(err(
                    "full_name and address_lines need a `recipient` section in layout.yaml".into(),
                ));
            }
            return Ok(ScopedJson::Derived(match self.0 {
                Kind::FullName => r["name"].clone(),
                _ => r["lines"].clone(),
            }));
        }
        let s = match self.0 {
            Kind::Money => {
                let cur = param(h, 1, "money")?;
                let cur = cur
                    .as_str()
                    .ok_or_else(|| err(format!("money: `{cur}` is not a currency code")))?;
                rules
                    .money(number(h, 0, "money")?, cur)
                    .map_err(|e| err(format!("money: {e}")))?
            }
            Kind::Number => {
                let decimals = match h.param(1) {
                    Some(p) => p.value().as_u64().filter(|d| *d <= 6).ok_or_else(|| {
                        err("number: decimals must be an integer from 0 to 6".into())
                    })? as u32,
                    None => 2,
                };
                rules.number(number(h, 0, "number")?, decimals)
            }
            Kind::LongDate => rules.long_date(date_param(h, "long_date")?),
            Kind::ShortDate => rules.short_date(date_param(h, "short_date")?),
            Kind::AsOf => as_of.to_owned(),
            Kind::Locale => rules.tag.to_owned(),
            Kind::AddDays => {
                let d = date_param(h, "add_days")?;
                let n = param(h, 1, "add_days")?
                    .as_i64()
                    .ok_or_else(|| err("add_days: the number of days must be an integer".into()))?;
                Date::from_unix_days(d.unix_days() + n).to_string()
            }
            Kind::DaysSince => {
                let d = date_param(h, "days_since")?;
                let today = Date::parse(as_of)
                    .ok_or_else(|| err("days_since: no as-of date in the render context".into()))?;
                (today.unix_days() - d.unix_days()).to_string()
            }
            Kind::FullName | Kind::AddressLines => unreachable!("answered above"),
            Kind::Join => join(h),
            Kind::Url => url(h)?,
        };
        Ok(ScopedJson::Derived(Value::String(s)))
    }
}

/// `{{t "key" name=value ..}}`: a sentence of `texts.yaml`.
struct Text(Arc<Texts>);

impl HelperDef for Text {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let (rules, _) = engine_values(ctx)?;
        let key = param(h, 0, "t")?
            .as_str()
            .ok_or_else(|| err("t: the first argument is the sentence's key, a string".into()))?;
        let arg = |name: &str| {
            h.hash_get(name).map(|p| match p.value() {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                v => v.to_string(),
            })
        };
        // The sentence is returned whole and escaped as one value, so record
        // values inside it are escaped like any other.
        let s = self.0.get(rules.tag, key, arg).map_err(err)?;
        Ok(ScopedJson::Derived(Value::String(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_is_inlined_once_with_expressions_kept() {
        let src = r#"<!doctype html><html lang="{{locale}}"><head><title>{{subject}}</title>
<style>p { color: red } @media (max-width: 600px) { p { color: blue } }</style></head>
<body><table role="presentation"><tbody>{{#each tx}}<tr><td>{{this}}</td></tr>{{/each}}</tbody></table>
<p class="x">Dear {{name}}</p><a href="{{url link}}">link</a>{{!-- a comment --}}</body></html>"#;
        let out = inline_css(src).unwrap();
        assert!(
            out.contains(r#"<p class="x" style="color: red;">Dear {{name}}</p>"#),
            "{out}"
        );
        assert!(out.contains("@media"), "{out}");
        assert!(
            out.contains("<tr><td>{{this}}</td></tr>{{/each}}</tbody></table>"),
            "{out}"
        );
        assert!(
            out.contains(r#"<table role="presentation"><tbody>{{#each tx}}<tr>"#),
            "{out}"
        );
        let no_tbody = src.replace("<tbody>", "").replace("</tbody>", "");
        assert!(inline_css(&no_tbody).unwrap_err().contains("<tbody>"));
        assert!(out.contains(r#"lang="{{locale}}""#), "{out}");
        assert!(out.contains("<title>{{subject}}</title>"), "{out}");
        assert!(out.contains(r#"href="{{url link}}""#), "{out}");
        let bad = "<style>p { color: {{c}} }</style>";
        assert!(inline_css(bad).unwrap_err().contains("<style>"));
    }

    #[test]
    fn html_checks_name_the_rule() {
        let ok = r#"<html lang="de-DE"><body><table role="presentation"><tr><td><img src="https://x/y.png" alt=""></td></tr></table><a href="mailto:a@b">x</a></body></html>"#;
        check_html(ok, "de-DE").unwrap();
        assert!(check_html(ok, "en-GB").unwrap_err().contains("lang"));
        let img = ok.replace(" alt=\"\"", "");
        assert!(check_html(&img, "de-DE").unwrap_err().contains("alt"));
        let table = ok.replace(" role=\"presentation\"", "");
        assert!(check_html(&table, "de-DE").unwrap_err().contains("role"));
        let js = ok.replace("mailto:a@b", "javascript:alert(1)");
        assert!(check_html(&js, "de-DE").unwrap_err().contains("https"));
        let big = ok.replace("x</a>", &"x".repeat(MAX_HTML_BYTES));
        assert!(check_html(&big, "de-DE").unwrap_err().contains("Gmail"));
    }

    #[test]
    fn quoted_printable_round_trips() {
        let text = "Grüße, 1.234,56\u{a0}€ = =\nline with trailing space \n".to_string()
            + &"x".repeat(200)
            + "\r\nend";
        let body = quoted_printable(&text);
        let encoded = String::from_utf8(body.into_vec()).unwrap();
        assert!(encoded.split("\r\n").all(|l| l.len() <= 76), "{encoded}");
        assert!(encoded.contains("Gr=C3=BC=C3=9Fe") && encoded.contains("=3D"));
        assert!(encoded.contains("space=20\r\n"), "{encoded}");
        let decoded = quoted_printable_decode(&encoded);
        assert_eq!(decoded, text.replace("\r\n", "\n").replace('\n', "\r\n"));
    }

    fn quoted_printable_decode(s: &str) -> String {
        let s = s.replace("=\r\n", "");
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_protects_braces_and_markup() {
        assert_eq!(
            escape_html("<b>{{x}}"),
            "&lt;b&gt;\u{E000}\u{E000}x\u{E001}\u{E001}"
        );
        assert_eq!(unprotect(&escape_plain("{{x}}")), "{{x}}");
    }
}
