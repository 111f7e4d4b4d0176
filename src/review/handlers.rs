//! The workspace's routes: each checks the session (and on a POST the
//! CSRF token), asks `ops` and prints a page.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use letterpress::model::decision::{Kind, Opened};
use letterpress::model::layout::LayoutRef;
use letterpress::ops::review::{page_name, Material, Reviewer};
use letterpress::util::clock::{unix_seconds, Date};
use letterpress::util::html::escape_html as esc;

use super::pages::{self, alert, link, list, p, section, table};
use super::{auth, Shared};

/// The session cookie (`__Host-`: Secure, path /, this host only).
const COOKIE: &str = "__Host-lp_session";
/// The cookie that binds a login under way to the browser that began it.
const LOGIN_COOKIE: &str = "__Host-lp_login";

/// A logged-in request: who, their CSRF token, their session id.
pub struct User {
    pub(super) who: Reviewer,
    pub(super) csrf: String,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(super) fn user(app: &Shared, headers: &HeaderMap) -> Option<User> {
    let id = cookie(headers, COOKIE)?;
    let mut sessions = app.sessions.lock().expect("sessions lock");
    let s = sessions.get(&id, app.config.idle)?;
    let mut login = s.user.login.clone();
    login.workspace = app.trust.list.workspace.as_ref()?.id.clone();
    Some(User {
        who: Reviewer::new(&app.trust, login, &s.user.groups),
        csrf: s.csrf.clone(),
    })
}

pub(super) fn to_login(back: &str) -> Response {
    Redirect::to(&format!("/login?back={}", percent(back))).into_response()
}

/// Percent-encodes a path for a query value.
pub(super) fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn show(u: &User, title: &str, body: &str) -> Response {
    html(
        StatusCode::OK,
        pages::page(title, Some((&u.who.login.name, &u.csrf)), body),
    )
}

pub(super) fn refuse(u: Option<&User>, status: StatusCode, why: &str) -> Response {
    let user = u.map(|u| (u.who.login.name.as_str(), u.csrf.as_str()));
    html(status, pages::page("Not possible", user, &alert(why)))
}

fn today(app: &Shared) -> Date {
    app.config.as_of.unwrap_or_else(Date::today_utc)
}

/// `/login?back=/path[&fresh=1]`.
#[derive(Deserialize)]
pub struct LoginQuery {
    back: Option<String>,
    fresh: Option<String>,
}

pub async fn login(State(app): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    // Only a path of this workspace: never an open redirect.
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let (url, state, pending) = app.provider.start(back, q.fresh.is_some());
    app.sessions
        .lock()
        .expect("sessions lock")
        .expect(state.clone(), pending);
    let set =
        format!("{LOGIN_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600");
    ([(header::SET_COOKIE, set)], Redirect::to(&url)).into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    if let Some(e) = q.error {
        return refuse(
            None,
            StatusCode::UNAUTHORIZED,
            &format!(
                "The identity provider did not log you in ({e}). {}",
                "Try again from the start page."
            ),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refuse(
            None,
            StatusCode::BAD_REQUEST,
            "The login answer lacks its code or state.",
        );
    };
    // The state must be the one this browser was given.
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| auth::same(&c, &state)) {
        return refuse(
            None,
            StatusCode::BAD_REQUEST,
            "This login was not started in this browser; start again.",
        );
    }
    let pending = app.sessions.lock().expect("sessions lock").take(&state);
    let Some(pending) = pending else {
        return refuse(
            None,
            StatusCode::BAD_REQUEST,
            "This login is unknown or was used already; start again.",
        );
    };
    let back = pending.back.clone();
    match app.provider.finish(code, pending).await {
        Ok(user) => {
            let mut sessions = app.sessions.lock().expect("sessions lock");
            // A new login ends the browser's earlier session: one session
            // a browser, its id new at every login.
            if let Some(old) = cookie(&headers, COOKIE) {
                sessions.close(&old);
            }
            let id = sessions.open(user);
            drop(sessions);
            let set = format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax");
            let clear =
                format!("{LOGIN_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
            let mut res = Redirect::to(&back).into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, set.parse().expect("a header value"));
            res.headers_mut()
                .append(header::SET_COOKIE, clear.parse().expect("a header value"));
            res
        }
        Err(why) => refuse(None, StatusCode::UNAUTHORIZED, &why),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if user(&app, &headers).is_none() {
        return Redirect::to("/logged-out").into_response();
    }
    if let Err(answer) = posted(&app, &headers, &f.csrf, "/") {
        return answer;
    }
    if let Some(id) = cookie(&headers, COOKIE) {
        app.sessions.lock().expect("sessions lock").close(&id);
    }
    let clear = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/logged-out")).into_response()
}

pub async fn logged_out() -> Response {
    let body = format!(
        "{}{}",
        p("You are logged out of the review workspace."),
        link("/", "Log in again")
    );
    html(StatusCode::OK, pages::page("Logged out", None, &body))
}

pub async fn queue(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(u) = user(&app, &headers) else {
        return to_login("/");
    };
    let (a, who) = (app.clone(), u.who.clone());
    let found = tokio::task::spawn_blocking(move || {
        letterpress::ops::review::queue(&a.config.layouts, &a.trust, &who, today(&a))
    })
    .await
    .expect("the queue task does not panic");
    let (waiting, to_submit) = match found {
        Ok(q) => q,
        Err(e) => return refuse(Some(&u), StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut body = String::new();
    if u.who.roles.is_empty() {
        body.push_str(&p(&format!(
            "{} holds no role here: the trust list and the identity provider's groups must both give one. Nothing awaits you.",
            u.who.login.name
        )));
    }
    let rows: Vec<Vec<String>> = waiting
        .iter()
        .map(|w| {
            let v = w.reference.version.unwrap_or(0);
            vec![
                link(&format!("/v/{}/{v}", w.reference.name), &w.id),
                esc(&w.title),
                esc(&w.author),
                esc(&w.submitted),
                esc(&format!("{}; needs {}", w.policy, w.missing.join(", "))),
                esc(&w.changed),
            ]
        })
        .collect();
    let head = [
        "Version",
        "Title",
        "Author",
        "Submitted",
        "Policy",
        "Changes",
    ];
    body.push_str(&match rows.is_empty() {
        true => section(
            "Awaiting your decision",
            &p("Nothing awaits your decision."),
        ),
        false => section(
            "Awaiting your decision",
            &table("Versions awaiting your decision", &head, &rows),
        ),
    });
    let runs = super::runs::awaiting(&app, &u.who);
    if !runs.is_empty() {
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|(name, layout, at, n)| {
                vec![
                    link(&format!("/r/{name}"), name),
                    esc(layout),
                    esc(at),
                    n.to_string(),
                ]
            })
            .collect();
        let head = ["Run", "Layout", "Finished", "Documents"];
        body.push_str(&section(
            "Runs awaiting your release",
            &table("Runs awaiting your release", &head, &rows),
        ));
    }
    if !to_submit.is_empty() {
        let items: Vec<String> = to_submit
            .iter()
            .map(|id| {
                let (n, v) = id.split_once('@').unwrap_or((id, "0"));
                link(&format!("/v/{n}/{v}"), id)
            })
            .collect();
        body.push_str(&section("Versions you may submit", &list(&items)));
    }
    show(&u, "Review queue", &body)
}

/// Checks a layout name from a path (no folder tricks) and makes its
/// material, or says why not.
async fn material(app: &Shared, name: &str, version: u32) -> Result<Arc<Material>, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("no layout {name:?}"));
    }
    let id = format!("{name}@{version}");
    let _making = app.making.lock().await;
    let (a, n, i) = (app.clone(), name.to_owned(), id.clone());
    let cached = app
        .material
        .lock()
        .expect("material lock")
        .get(&id)
        .cloned();
    let made = tokio::task::spawn_blocking(move || -> letterpress::error::Result<Arc<Material>> {
        let reference = LayoutRef {
            name: n.clone(),
            version: Some(version),
        };
        let shown = letterpress::ops::layouts::show(
            &a.config.layouts,
            Some(&a.trust_path),
            &reference,
            today(&a),
        )?;
        if let Some(m) = cached.filter(|m| m.digest == shown.digest) {
            return Ok(m);
        }
        let data = a
            .config
            .data
            .iter()
            .find(|(l, _)| l.as_deref() == Some(n.as_str()))
            .or_else(|| a.config.data.iter().find(|(l, _)| l.is_none()))
            .map(|(_, d)| d.clone())
            .ok_or_else(|| {
                letterpress::error::Error::Usage(format!(
                    "no sample data for {n}: give --data {n}=FILE"
                ))
            })?;
        let dir = a.config.state.join("material").join(&i);
        let m = letterpress::ops::review::material(
            &a.config.layouts,
            Some(&a.trust_path),
            &reference,
            &data,
            &dir,
            today(&a),
        )?;
        Ok(Arc::new(m))
    })
    .await
    .expect("the material task does not panic")
    .map_err(|e| e.to_string())?;
    app.material
        .lock()
        .expect("material lock")
        .insert(id, made.clone());
    Ok(made)
}

/// What `u` opened of the thing `what` (a version with its digest, a run
/// with its manifest digest), after `add` changes it.
pub(super) fn opened(
    app: &Shared,
    u: &User,
    what: String,
    add: impl FnOnce(&mut Opened),
) -> Opened {
    let key = (u.who.login.subject.clone(), what);
    let mut all = app.opened.lock().expect("opened lock");
    let o = all.entry(key).or_default();
    add(o);
    o.clone()
}

/// The key of a version's material in [`opened`].
pub(super) fn of(m: &Material) -> String {
    format!("{}#{}", m.id, m.digest)
}

/// Adds `item` to `list` once.
pub(super) fn push(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The session of a POST, if its CSRF token is the session's; otherwise
/// the answer (log in, or refused).
pub(super) fn posted(
    app: &Shared,
    headers: &HeaderMap,
    csrf: &str,
    here: &str,
) -> Result<User, Response> {
    let Some(u) = user(app, headers) else {
        return Err(to_login(here));
    };
    if !auth::same(csrf, &u.csrf) {
        return Err(refuse(
            Some(&u),
            StatusCode::FORBIDDEN,
            "This form is not from this session (its CSRF token is wrong).",
        ));
    }
    Ok(u)
}

/// A file as the engine wrote it, in a sandbox: no script, no request.
pub(super) fn sandboxed(kind: &'static str, bytes: Vec<u8>) -> Response {
    let csp =
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:";
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        bytes,
    )
        .into_response()
}

pub async fn version(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v)): Path<(String, u32)>,
) -> Response {
    let here = format!("/v/{name}/{v}");
    let Some(u) = user(&app, &headers) else {
        return to_login(&here);
    };
    let m = match material(&app, &name, v).await {
        Ok(m) => m,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let seen = opened(&app, &u, of(&m), |_| {});
    let body = super::views::version(&app, &u, &m, &seen, &here).await;
    show(&u, &format!("Review {}", m.id), &body)
}

pub async fn record(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v, n)): Path<(String, u32, usize)>,
) -> Response {
    let here = format!("/v/{name}/{v}/record/{n}");
    let Some(u) = user(&app, &headers) else {
        return to_login(&here);
    };
    let m = match material(&app, &name, v).await {
        Ok(m) => m,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let Some(pick) = n.checked_sub(1).and_then(|i| m.proof.picks.get(i)) else {
        return refuse(Some(&u), StatusCode::NOT_FOUND, "No such proof record.");
    };
    opened(&app, &u, of(&m), |o| {
        push(&mut o.records, pick.record_id.clone())
    });
    let pages_list: Vec<String> = (1..=pick.images.len())
        .map(|p| {
            link(
                &format!("/v/{name}/{v}/record/{n}/page/{p}"),
                &format!("Page {p}"),
            )
        })
        .collect();
    let mut body = format!(
        "{}{}{}",
        p(&format!("Why it was picked: {}", pick.reasons.join("; "))),
        section("Its pages", &list(&pages_list)),
        p(&format!("In the proof PDF on page {}.", pick.proof_pages))
    );
    let mut more = vec![link(&format!("/v/{name}/{v}/file/pdf"), "The proof PDF")];
    if pick.email {
        more.push(link(
            &format!("/v/{name}/{v}/file/email"),
            "The emails of the proof",
        ));
    }
    if m.proof.web.is_some() {
        more.push(link(
            &format!("/v/{name}/{v}/file/web"),
            "The web letters of the proof",
        ));
    }
    body.push_str(&section("Email and web letter", &list(&more)));
    body.push_str(&p(""));
    body.push_str(&link(
        &format!("/v/{name}/{v}"),
        &format!("Back to {}", m.id),
    ));
    show(
        &u,
        &format!("Proof record {} of {}", pick.record_id, m.id),
        &body,
    )
}

pub async fn page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v, n, pg)): Path<(String, u32, usize, usize)>,
) -> Response {
    let here = format!("/v/{name}/{v}/record/{n}/page/{pg}");
    let Some(u) = user(&app, &headers) else {
        return to_login(&here);
    };
    let m = match material(&app, &name, v).await {
        Ok(m) => m,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let Some(pick) = n.checked_sub(1).and_then(|i| m.proof.picks.get(i)) else {
        return refuse(Some(&u), StatusCode::NOT_FOUND, "No such proof record.");
    };
    if pg == 0 || pg > pick.images.len() {
        return refuse(Some(&u), StatusCode::NOT_FOUND, "No such page.");
    }
    opened(&app, &u, of(&m), |o| {
        push(&mut o.pages, page_name(&pick.record_id, pg))
    });
    let body = format!(
        "<p><img class=\"page\" src=\"/v/{}/{v}/image/{n}/{pg}\" alt=\"Page {pg} of the letter to proof record {}, as it prints (marked PROOF)\"></p>{}",
        esc(&name),
        esc(&pick.record_id),
        link(&format!("/v/{name}/{v}/record/{n}"), &format!("Back to proof record {}", pick.record_id))
    );
    show(
        &u,
        &format!("Page {pg} of proof record {}", pick.record_id),
        &body,
    )
}

pub async fn image(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v, n, pg)): Path<(String, u32, usize, usize)>,
) -> Response {
    let Some(u) = user(&app, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(m) = material(&app, &name, v).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = n
        .checked_sub(1)
        .and_then(|i| m.proof.picks.get(i))
        .and_then(|p| pg.checked_sub(1).and_then(|j| p.images.get(j)));
    let _ = u;
    match path.and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn sentence(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v, i)): Path<(String, u32, usize)>,
) -> Response {
    let here = format!("/v/{name}/{v}/sentence/{i}");
    let Some(u) = user(&app, &headers) else {
        return to_login(&here);
    };
    let m = match material(&app, &name, v).await {
        Ok(m) => m,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let sentences = m.sentences();
    let Some((s, count)) = i.checked_sub(1).and_then(|i| sentences.get(i)).cloned() else {
        return refuse(Some(&u), StatusCode::NOT_FOUND, "No such sentence.");
    };
    opened(&app, &u, of(&m), |o| push(&mut o.sentences, s.clone()));
    let (what, text) = match s.split_at(2) {
        ("+ ", t) => ("appears in", t),
        (_, t) => ("disappears from", t),
    };
    let against = m.diff.as_ref().map(|d| d.old.clone()).unwrap_or_default();
    let total = m.diff.as_ref().map_or(0, |d| d.records);
    let body = format!(
        "<blockquote class=\"meaning\">{}</blockquote>{}{}",
        esc(text),
        p(&format!(
            "This sentence {what} {count} of the {total} sample letters, compared with {against}."
        )),
        link(
            &format!("/v/{name}/{v}/file/diff"),
            "The whole comparison, letter by letter"
        ),
    );
    let back = link(&format!("/v/{name}/{v}"), &format!("Back to {}", m.id));
    show(
        &u,
        &format!("Changed sentence {i} of {}", m.id),
        &format!("{body}<p>{back}</p>"),
    )
}

/// The proof's own files, shown as they are, in a sandbox (no script,
/// no requests).
pub async fn file(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v, which)): Path<(String, u32, String)>,
) -> Response {
    let Some(_u) = user(&app, &headers) else {
        return to_login(&format!("/v/{name}/{v}"));
    };
    let Ok(m) = material(&app, &name, v).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (path, kind) = match which.as_str() {
        "pdf" => (Some(m.proof.pdf.clone()), "application/pdf"),
        "email" => (m.proof.html.clone(), "text/html; charset=utf-8"),
        "web" => (m.proof.web.clone(), "text/html; charset=utf-8"),
        "diff" => (
            m.diff.as_ref().map(|_| m.dir.join("diff.html")),
            "text/html; charset=utf-8",
        ),
        _ => (None, ""),
    };
    match path.and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => sandboxed(kind, bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize)]
pub struct CommentForm {
    csrf: String,
    text: String,
}

pub async fn comment(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v)): Path<(String, u32)>,
    Form(f): Form<CommentForm>,
) -> Response {
    let here = format!("/v/{name}/{v}");
    let u = match posted(&app, &headers, &f.csrf, &here) {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let text = f.text.trim();
    if text.is_empty() || text.len() > 10_000 {
        return refuse(
            Some(&u),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A comment has between 1 and 10,000 characters.",
        );
    }
    if let Err(e) = super::views::add_comment(&app, &u.who, &format!("{name}@{v}"), text) {
        return refuse(Some(&u), StatusCode::INTERNAL_SERVER_ERROR, &e);
    }
    Redirect::to(&format!("{here}#comments")).into_response()
}

/// Signing needs a recent login: the page that sends the user to log in
/// again first, when theirs is older than `--max-age`.
pub(super) fn stale(app: &Shared, u: &User, here: &str) -> Option<Response> {
    let at = letterpress::util::clock::rfc3339_seconds(&u.who.login.auth_time).unwrap_or(0);
    let age = unix_seconds() - at;
    if age <= app.config.max_age.as_secs() as i64 {
        return None;
    }
    let again = link(
        &format!("/login?fresh=1&back={}", percent(here)),
        "Log in again",
    );
    let body = format!(
        "{}<p>{again}, then make your decision.</p>",
        p(&format!(
            "You last logged in {age} seconds ago; signing a decision needs a login of the last {} seconds.",
            app.config.max_age.as_secs()
        ))
    );
    Some(html(
        StatusCode::UNAUTHORIZED,
        pages::page(
            "Log in again to sign",
            Some((&u.who.login.name, &u.csrf)),
            &body,
        ),
    ))
}

#[derive(Deserialize)]
pub struct DecideForm {
    csrf: String,
    kind: Kind,
    reason: Option<String>,
    /// SHA-256 of the words shown, once confirmed.
    words: Option<String>,
    confirm: Option<String>,
}

pub async fn decide(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, v)): Path<(String, u32)>,
    Form(f): Form<DecideForm>,
) -> Response {
    let here = format!("/v/{name}/{v}");
    let u = match posted(&app, &headers, &f.csrf, &here) {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let kind = f.kind;
    if matches!(kind, Kind::Rejected | Kind::Revoked)
        && f.reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return refuse(
            Some(&u),
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("A {} must say why: write the reason.", kind.noun()),
        );
    }
    if let Some(again) = stale(&app, &u, &here) {
        return again;
    }
    let m = match material(&app, &name, v).await {
        Ok(m) => m,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    super::views::decide(
        &app,
        &u.who,
        &u.csrf,
        &m,
        kind,
        f.reason,
        f.words.filter(|_| f.confirm.is_some()),
        &here,
    )
    .await
}
