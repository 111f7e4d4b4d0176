//! The version page, comments, and the two steps of a decision (its words
//! shown, then confirmed and signed).

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use letterpress::layout::decisions::State as Standing;
use letterpress::model::decision::{Kind, Opened};
use letterpress::model::layout::LayoutRef;
use letterpress::ops::review::{page_name, Material, Reviewer};
use letterpress::util::digest::sha256_hex;
use letterpress::util::html::escape_html as esc;

use super::handlers::{html, opened, refuse, User};
use super::pages::{self, alert, form, link, list, p, section, table};
use super::Shared;

/// A comment on a version, one JSON line of `comments.jsonl`.
#[derive(Serialize, Deserialize)]
struct Comment {
    version: String,
    at: String,
    name: String,
    subject: String,
    text: String,
}

static COMMENTS: Mutex<()> = Mutex::new(());

/// Appends a comment by `who` on version `id`.
pub fn add_comment(app: &Shared, who: &Reviewer, id: &str, text: &str) -> Result<(), String> {
    let c = Comment {
        version: id.to_owned(),
        at: letterpress::util::clock::now_rfc3339(),
        name: who.login.name.clone(),
        subject: who.login.subject.clone(),
        text: text.to_owned(),
    };
    let mut line = serde_json::to_vec(&c).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let path = app.config.state.join("comments.jsonl");
    let _one = COMMENTS.lock().expect("comments lock");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(&line)
        .and_then(|_| f.sync_data())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The comments on version `id` (lines that do not read are skipped).
fn comments(app: &Shared, id: &str) -> Vec<Comment> {
    let text = std::fs::read_to_string(app.config.state.join("comments.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Comment>(l).ok())
        .filter(|c| c.version == id)
        .collect()
}

/// The body of a version's page.
pub async fn version(app: &Shared, u: &User, m: &Material, seen: &Opened, here: &str) -> String {
    let (a, id) = (app.clone(), m.id.clone());
    let shown = tokio::task::spawn_blocking(move || {
        let r: LayoutRef = id.parse().map_err(letterpress::error::Error::Usage)?;
        let day = a
            .config
            .as_of
            .unwrap_or_else(letterpress::util::clock::Date::today_utc);
        letterpress::ops::layouts::show(&a.config.layouts, Some(&a.trust_path), &r, day)
    })
    .await
    .expect("the show task does not panic");
    let shown = match shown {
        Ok(s) => s,
        Err(e) => return alert(&e.to_string()),
    };
    let mut body = p(&format!("Where it stands: {}.", shown.standing.describe()));
    body.push_str(&p(&format!("Layout digest {}.", m.digest)));
    body.push_str(&proof_section(m, seen, here));
    body.push_str(&diff_section(m, seen, here));
    body.push_str(&wording_section(m));
    body.push_str(&history(&shown));
    body.push_str(&comment_section(app, u, &m.id, here));
    body.push_str(&decide_section(u, m, seen, &shown.standing.state, here));
    body
}

fn opened_mark(done: bool) -> &'static str {
    match done {
        true => "<span class=\"opened\">opened</span>",
        false => "not opened yet",
    }
}

fn proof_section(m: &Material, seen: &Opened, here: &str) -> String {
    let rows: Vec<Vec<String>> = m
        .proof
        .picks
        .iter()
        .enumerate()
        .map(|(i, pick)| {
            let pages: Vec<String> = (1..=pick.images.len())
                .map(|n| {
                    let done = seen.pages.contains(&page_name(&pick.record_id, n));
                    format!(
                        "{} ({})",
                        link(
                            &format!("{here}/record/{}/page/{n}", i + 1),
                            &format!("page {n}")
                        ),
                        opened_mark(done)
                    )
                })
                .collect();
            vec![
                format!(
                    "{} ({})",
                    link(&format!("{here}/record/{}", i + 1), &pick.record_id),
                    opened_mark(seen.records.contains(&pick.record_id))
                ),
                esc(&pick.reasons.join("; ")),
                pages.join(", "),
            ]
        })
        .collect();
    let intro = p(&format!(
        "{} records picked from {} in the sample data ({} could not be proofed).",
        m.proof.picks.len(),
        m.proof.records,
        m.proof.invalid
    ));
    section(
        "Proof records",
        &format!(
            "{intro}{}",
            table(
                "The records of the proof set",
                &["Record", "Why it was picked", "Pages"],
                &rows
            )
        ),
    )
}

fn diff_section(m: &Material, seen: &Opened, here: &str) -> String {
    let Some(d) = &m.diff else {
        return section(
            "Changes",
            &p("No version is in effect to compare with: every sentence is new."),
        );
    };
    let rows: Vec<Vec<String>> = m
        .sentences()
        .iter()
        .enumerate()
        .map(|(i, (s, n))| {
            let (what, text) = match s.split_at(2) {
                ("+ ", t) => ("appears", t),
                (_, t) => ("disappears", t),
            };
            vec![
                format!(
                    "{} ({})",
                    link(&format!("{here}/sentence/{}", i + 1), text),
                    opened_mark(seen.sentences.contains(s))
                ),
                what.to_owned(),
                n.to_string(),
            ]
        })
        .collect();
    let intro = p(&format!(
        "Against {}, the version in effect: {} of {} sample letters change.",
        d.old, d.changed, d.records
    ));
    let table = match rows.is_empty() {
        true => p("No sentence changes."),
        false => table(
            "Changed sentences",
            &["Sentence", "Change", "Sample letters that carry it"],
            &rows,
        ),
    };
    section(
        "Changes against the version in effect",
        &format!("{intro}{table}"),
    )
}

fn wording_section(m: &Material) -> String {
    let lines: Vec<String> = std::fs::read(&m.proof.evidence)
        .ok()
        .and_then(|b| serde_json::from_slice::<letterpress::ops::proof::ProofFile>(&b).ok())
        .map(|f| f.proof.wording.iter().map(|w| esc(w)).collect())
        .unwrap_or_default();
    section("Wording checks", &list(&lines))
}

fn history(shown: &letterpress::ops::layouts::Shown) -> String {
    let v = shown.layout.meta.version;
    let rows: Vec<Vec<String>> = shown
        .standing
        .review
        .entries
        .iter()
        .filter(|e| e.record.version == v)
        .map(|e| {
            let r = &e.record;
            let how = match &r.login {
                Some(l) => format!("in the workspace (logged in at {})", l.auth_time),
                None => "with their own key".into(),
            };
            vec![
                r.seq.to_string(),
                esc(r.decision.name()),
                esc(&format!("{}, {}", r.signer.name, r.signer.role)),
                esc(&r.at),
                esc(&how),
                esc(r.reason.as_deref().unwrap_or("")),
                esc(e.problem.as_deref().unwrap_or("counts")),
            ]
        })
        .collect();
    let body = match rows.is_empty() {
        true => p("No decision yet."),
        false => table(
            "Decisions about this version",
            &["No.", "Decision", "By", "At", "How", "Reason", "Check"],
            &rows,
        ),
    };
    section("History", &body)
}

fn comment_section(app: &Shared, u: &User, id: &str, here: &str) -> String {
    let items: Vec<String> = comments(app, id)
        .iter()
        .map(|c| {
            format!(
                "<strong>{}</strong> ({}): {}",
                esc(&c.name),
                esc(&c.at),
                esc(&c.text)
            )
        })
        .collect();
    let fields = "<label for=\"comment\">Your comment</label><textarea id=\"comment\" name=\"text\" rows=\"3\" required></textarea>";
    let body = format!(
        "{}{}",
        if items.is_empty() {
            p("No comments yet.")
        } else {
            list(&items)
        },
        form(
            &format!("{here}/comment"),
            &u.csrf,
            fields,
            "Add the comment"
        )
    );
    format!("<div id=\"comments\">{}</div>", section("Comments", &body))
}

fn decide_section(u: &User, m: &Material, seen: &Opened, state: &Standing, here: &str) -> String {
    let action = format!("{here}/decide");
    let reason = |id: &str| {
        format!("<label for=\"{id}\">Reason (required)</label><textarea id=\"{id}\" name=\"reason\" rows=\"2\" required></textarea>")
    };
    let mut body = String::new();
    match state {
        Standing::Pending { .. } => {
            let left = m.unopened(seen);
            if !left.is_empty() {
                let items: Vec<String> = left.iter().map(|s| esc(s)).collect();
                body.push_str(&p("Approving needs every proof record, page and changed sentence opened. Still to open:"));
                body.push_str(&list(&items));
            }
            body.push_str(&form(
                &action,
                &u.csrf,
                "<input type=\"hidden\" name=\"kind\" value=\"approved\">",
                "Approve…",
            ));
            body.push_str(&form(
                &action,
                &u.csrf,
                &format!(
                    "<input type=\"hidden\" name=\"kind\" value=\"rejected\">{}",
                    reason("reject-reason")
                ),
                "Reject…",
            ));
        }
        Standing::Approved(_) => {
            body.push_str(&form(
                &action,
                &u.csrf,
                &format!(
                    "<input type=\"hidden\" name=\"kind\" value=\"revoked\">{}",
                    reason("revoke-reason")
                ),
                "Revoke…",
            ));
        }
        Standing::NotSubmitted | Standing::Rejected { .. } => {
            body.push_str(&form(
                &action,
                &u.csrf,
                "<input type=\"hidden\" name=\"kind\" value=\"submitted\">",
                "Submit for review…",
            ));
        }
        _ => body.push_str(&p("Nothing can be decided about this version now.")),
    }
    section("Decide", &body)
}

/// Both steps of a decision: without `words`, shows the record's words
/// to confirm; with them (the SHA-256 of the words shown, confirmed),
/// signs if the record still says exactly that.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    app: &Shared,
    who: &Reviewer,
    csrf: &str,
    m: &Arc<Material>,
    kind: Kind,
    reason: Option<String>,
    words: Option<String>,
    here: &str,
) -> Response {
    let u = User {
        who: who.clone(),
        csrf: csrf.to_owned(),
    };
    let seen = opened(app, &u, super::handlers::of(m), |_| {});
    let (a, w, mm, r, wd) = (
        app.clone(),
        who.clone(),
        m.clone(),
        reason.clone(),
        words.clone(),
    );
    let result = tokio::task::spawn_blocking(move || {
        let meaning = Mutex::new(String::new());
        let confirm = |rec: &letterpress::model::decision::Record| {
            *meaning.lock().expect("meaning lock") = rec.meaning.clone();
            wd.as_deref()
                .is_some_and(|h| h == sha256_hex(rec.meaning.as_bytes()))
        };
        let done = letterpress::ops::review::decide(
            &a.config.layouts,
            Some(&a.trust_path),
            &mm,
            &w,
            kind,
            r,
            &seen,
            &a.signer,
            &confirm,
        );
        (done, meaning.into_inner().expect("meaning lock"))
    })
    .await
    .expect("the decision task does not panic");
    match result {
        (Ok(written), _) => {
            let file = written
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let body = format!(
                "{}<blockquote class=\"meaning\">{}</blockquote>{}<p>{}</p>",
                p(&format!("Recorded as {file}, signed by the workspace's key for you:")),
                esc(&written.record.meaning),
                p("Commands (run, verify, layouts show) and an examiner read it like a decision signed on the command line."),
                link(here, &format!("Back to {}", m.id))
            );
            html(
                StatusCode::OK,
                pages::page(
                    "Decision recorded",
                    Some((&u.who.login.name, &u.csrf)),
                    &body,
                ),
            )
        }
        (Err(_), meaning) if !meaning.is_empty() => {
            let asked = Asked {
                kind: kind.name(),
                reason: reason.as_deref(),
                meaning: &meaning,
                changed: words.is_some(),
            };
            confirm_page(&u, &asked, &format!("Confirm: {}", kind.noun()), here)
        }
        (Err(e), _) => refuse(Some(&u), StatusCode::CONFLICT, &e.to_string()),
    }
}

/// What a confirmation page shows: the decision (its form value), the
/// reason given, the words the record will carry, and whether they changed
/// since the reviewer last saw them.
pub struct Asked<'a> {
    pub kind: &'a str,
    pub reason: Option<&'a str>,
    pub meaning: &'a str,
    pub changed: bool,
}

/// The words a decision (about a version, or a run's release) will carry,
/// with the form that signs them, posted to `here/decide`.
pub fn confirm_page(u: &User, asked: &Asked, title: &str, here: &str) -> Response {
    let mut body = String::new();
    if asked.changed {
        body.push_str(&alert("The record's words changed since you saw them (someone else decided, or what you decide about changed): read them again."));
    }
    body.push_str(&p(
        "Your decision will be recorded and signed with these words:",
    ));
    body.push_str(&format!(
        "<blockquote class=\"meaning\">{}</blockquote>",
        esc(asked.meaning)
    ));
    let fields = format!(
        "<input type=\"hidden\" name=\"kind\" value=\"{}\"><input type=\"hidden\" name=\"reason\" value=\"{}\"><input type=\"hidden\" name=\"words\" value=\"{}\"><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I have read these words and they are my decision.</label>",
        esc(asked.kind),
        esc(asked.reason.unwrap_or("")),
        sha256_hex(asked.meaning.as_bytes())
    );
    body.push_str(&form(
        &format!("{here}/decide"),
        &u.csrf,
        &fields,
        "Sign the decision",
    ));
    body.push_str(&list(&[link(here, "Cancel")]));
    html(
        StatusCode::OK,
        pages::page(title, Some((&u.who.login.name, &u.csrf)), &body),
    )
}
