//! The workspace's pages: plain HTML, no script, one stylesheet from the
//! workspace itself; every value from a record, a layout or the identity
//! provider is escaped.

use letterpress::util::html::escape_html as esc;

/// The stylesheet (`/style.css`).
pub const STYLE: &str = include_str!("style.css");

/// A whole page: `title` (text), `user` (name and CSRF token for the
/// logout form, when logged in), `body` (HTML).
pub fn page(title: &str, user: Option<(&str, &str)>, body: &str) -> String {
    let nav = match user {
        Some((name, csrf)) => format!(
            "<nav aria-label=\"Account\"><a href=\"/\">Queue</a> <span>Logged in as {}</span> {}</nav>",
            esc(name),
            form("/logout", csrf, "", "Log out")
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t} · letterpress review</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body><header><p class=\"app\">letterpress review</p>{nav}</header><main id=\"main\"><h1>{t}</h1>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// A form that POSTs to `action` with the CSRF token, `fields` (HTML) and
/// a submit button.
pub fn form(action: &str, csrf: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{fields}<button type=\"submit\">{}</button></form>",
        esc(action),
        esc(csrf),
        esc(button)
    )
}

/// A link.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A paragraph of text.
pub fn p(text: &str) -> String {
    format!("<p>{}</p>", esc(text))
}

/// A list of items (HTML each).
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let li: String = items.iter().map(|i| format!("<li>{i}</li>")).collect();
    format!("<ul>{li}</ul>")
}

/// A table with a caption, column headers and rows of cells (HTML each).
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let th: String = head
        .iter()
        .map(|h| format!("<th scope=\"col\">{}</th>", esc(h)))
        .collect();
    let tr: String = rows
        .iter()
        .map(|r| {
            let td: String = r.iter().map(|c| format!("<td>{c}</td>")).collect();
            format!("<tr>{td}</tr>")
        })
        .collect();
    format!(
        "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table></div>",
        esc(caption)
    )
}

/// A section with a heading.
pub fn section(heading: &str, body: &str) -> String {
    format!("<section><h2>{}</h2>{body}</section>", esc(heading))
}

/// A message that something was refused (`role="alert"`).
pub fn alert(text: &str) -> String {
    format!("<p class=\"alert\" role=\"alert\">{}</p>", esc(text))
}
