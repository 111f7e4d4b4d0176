//! The one rule for links, on every channel: a link in a letter (the PDF's
//! link annotations), a web letter (`<a href>`) or an email (`href`, `src`)
//! may only go to `https:` (with a host), `mailto:` or `tel:`, or to a
//! place in the same document (`#...`; an email's images also `cid:`). It
//! is checked on what was rendered, whoever wrote the link: the template
//! or a record value (`#link(r.portal_url)`, `href="{{url}}"`), so a
//! `javascript:`, `data:`, `file:` or plain `http:` link from the data
//! fails the document instead of reaching a customer. Leading spaces and
//! control characters, which browsers skip before the scheme, do not hide
//! one.

/// Where a link is: an email's `src` may also be `cid:` (an image of the
/// message itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A link a reader follows.
    Link,
    /// An email's image source.
    EmailImage,
}

/// Why `url` may not be a link of a document, if it may not.
pub fn check(url: &str, place: Place) -> Result<(), String> {
    let bad = |why: &str| {
        let shown: String = url.chars().take(60).collect();
        Err(format!(
            "the link `{}` {why}: links may only go to https:, mailto: or tel: (the rule for every channel)",
            shown.escape_default()
        ))
    };
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("holds a space or a control character");
    }
    if url.starts_with('#') {
        return Ok(());
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return bad("has no scheme");
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" if rest.starts_with("//") && rest.len() > 2 => Ok(()),
        "mailto" | "tel" if !rest.is_empty() => Ok(()),
        "cid" if place == Place::EmailImage && !rest.is_empty() => Ok(()),
        _ => bad(&format!("uses `{}:`", scheme.escape_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_mailto_tel_and_places_in_the_document_pass() {
        for ok in [
            "https://bank.example/portal?x=1",
            "HTTPS://bank.example",
            "mailto:help@bank.example",
            "tel:+441234567890",
            "#section-2",
        ] {
            assert!(check(ok, Place::Link).is_ok(), "{ok}");
        }
        assert!(check("cid:logo", Place::EmailImage).is_ok());
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "\tjavascript:alert(1)",
            "java\nscript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "http://bank.example",
            "file:///etc/passwd",
            "https:evil",
            "vbscript:x",
            "bank.example/portal",
            "cid:logo",
        ] {
            let err = check(bad, Place::Link).unwrap_err();
            assert!(err.contains("https:, mailto: or tel:"), "{bad}: {err}");
        }
    }
}
