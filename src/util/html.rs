//! HTML for the pages people read: the run report, the diff and the email
//! proof share one page shell and one stylesheet (`page.css`), so they look
//! alike and a style is changed in one place.

/// Escapes text for HTML element content and quoted attribute values (the
/// review pages: run report, proof, diff).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The stylesheet of every page.
const STYLE: &str = include_str!("page.css");

/// A complete, self-contained English page: `title` (text, escaped here)
/// and `body` (HTML, written by the caller with [`escape_html`] for every
/// value), inside `<main>`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        escape_html(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_escapes_its_title_and_keeps_its_body() {
        let p = page("A <b> & \"c\"", "<p>x</p>");
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(p.contains("<title>A &lt;b&gt; &amp; &quot;c&quot;</title>"));
        assert!(p.contains("<main>\n<p>x</p>\n</main>"));
        assert!(p.contains(".verdict.ok"));
    }
}
