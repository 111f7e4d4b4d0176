//! HTML for the pages people read (the run report, diff, proof).

/// Escapes text for HTML element content and quoted attribute values (the
/// review pages: run report, proof, diff).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
