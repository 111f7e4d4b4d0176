//! Releasing runs in the workspace: the runs under `--runs` whose layout's
//! policy asks for a release, each with its report and a sample of its
//! documents to open, then released or stopped with a signed record
//! ([`letterpress::ops::release`]).

use std::path::PathBuf;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use letterpress::model::release::ReleaseKind;
use letterpress::ops::release::{sample, Run, Sample, Standing, SAMPLE};
use letterpress::ops::review::Reviewer;
use letterpress::util::digest::sha256_hex;
use letterpress::util::fs::read_inside;
use letterpress::util::html::escape_html as esc;

use super::handlers::{html, opened, posted, push, refuse, sandboxed, to_login, user};
use super::pages::{self, form, link, p, section, table};
use super::views::{confirm_page, Asked};
use super::Shared;

/// The run folder `name` under `--runs`, if it is one (a plain folder
/// name, no link).
fn folder(app: &Shared, name: &str) -> Option<PathBuf> {
    let runs = app.config.runs.as_ref()?;
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let dir = runs.join(name);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (ok && meta.is_dir()).then_some(dir)
}

/// The runs awaiting a release by a role of `who`: (folder name, layout,
/// finished at, documents rendered).
pub fn awaiting(app: &Shared, who: &Reviewer) -> Vec<(String, String, String, usize)> {
    let Some(runs) = &app.config.runs else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(dir) = folder(app, &name) else {
            continue;
        };
        let Ok(run) = Run::open(&dir) else { continue };
        if let Standing::Awaiting(role) = run.standing() {
            if who.roles.contains(&role) {
                let m = &run.manifest;
                out.push((name, run.layout(), m.finished_at.clone(), m.totals.rendered));
            }
        }
    }
    out.sort();
    out
}

/// The key of a run in [`super::handlers::opened`]; what was opened is
/// kept in its `records`.
fn of(run: &Run) -> String {
    format!("run {}#{}", run.dir.display(), run.manifest.manifest_digest)
}

fn open_run(app: &Shared, name: &str) -> Result<(Run, Vec<Sample>), String> {
    let dir = folder(app, name).ok_or_else(|| format!("no run {name:?} under --runs"))?;
    let run = Run::open(&dir).map_err(|e| e.to_string())?;
    let samples = sample(&run, SAMPLE).map_err(|e| e.to_string())?;
    Ok((run, samples))
}

pub async fn run(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let here = format!("/r/{name}");
    let Some(u) = user(&app, &headers) else {
        return to_login(&here);
    };
    let (run, samples) = match open_run(&app, &name) {
        Ok(r) => r,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let seen = opened(&app, &u, of(&run), |_| {}).records;
    let mark = |n: &str| {
        if seen.iter().any(|s| s == n) {
            "<span class=\"opened\">opened</span>"
        } else {
            "not opened yet"
        }
    };
    let m = &run.manifest;
    let mut body = p(&format!(
        "Run {} of {}, finished {} for {}: {} documents rendered, {} failed, {} held, {} suppressed.",
        m.run_id, run.layout(), m.finished_at, m.as_of, m.totals.rendered, m.totals.failed, m.totals.held, m.totals.suppressed
    ));
    body.push_str(&p(&format!(
        "Where it stands: {}.",
        describe(&run.standing())
    )));
    body.push_str(&section(
        "The run's report",
        &format!(
            "{} ({})",
            link(&format!("{here}/report"), "Open the run report"),
            mark("report")
        ),
    ));
    let rows: Vec<Vec<String>> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                format!(
                    "{} ({})",
                    link(&format!("{here}/doc/{}", i + 1), &s.name),
                    mark(&s.name)
                ),
                esc(&s.why),
            ]
        })
        .collect();
    body.push_str(&section(
        "Sample documents",
        &table(
            "Documents to open before releasing",
            &["Document", "Why it was drawn"],
            &rows,
        ),
    ));
    if matches!(run.standing(), Standing::Awaiting(_)) {
        let action = format!("{here}/decide");
        let mut forms = form(
            &action,
            &u.csrf,
            "<input type=\"hidden\" name=\"kind\" value=\"released\">",
            "Release…",
        );
        forms.push_str(&form(&action, &u.csrf, "<input type=\"hidden\" name=\"kind\" value=\"stopped\"><label for=\"stop-reason\">Reason (required)</label><textarea id=\"stop-reason\" name=\"reason\" rows=\"2\" required></textarea>", "Stop…"));
        body.push_str(&section("Decide", &forms));
    }
    html(
        StatusCode::OK,
        pages::page(
            &format!("Release run {name}"),
            Some((&u.who.login.name, &u.csrf)),
            &body,
        ),
    )
}

fn describe(s: &Standing) -> String {
    match s {
        Standing::NotRequired => "its layout's policy asks for no release".into(),
        Standing::Awaiting(role) => format!("waiting for a release by {role}"),
        Standing::Decided(r) => format!("{} by {} on {}", r.decision.name(), r.signer.name, r.at),
        Standing::Invalid(why) => format!("its release record does not count: {why}"),
    }
}

/// The run's report, in a sandbox.
pub async fn report(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let Some(u) = user(&app, &headers) else {
        return to_login(&format!("/r/{name}"));
    };
    let Ok((run, _)) = open_run(&app, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match read_inside(&run.dir, letterpress::manifest::report::REPORT_FILE).ok() {
        Some(bytes) => {
            opened(&app, &u, of(&run), |o| {
                push(&mut o.records, "report".into())
            });
            sandboxed("text/html; charset=utf-8", bytes)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sample document `i`, as the run wrote it, in a sandbox.
pub async fn doc(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, i)): Path<(String, usize)>,
) -> Response {
    let Some(u) = user(&app, &headers) else {
        return to_login(&format!("/r/{name}"));
    };
    let Ok((run, samples)) = open_run(&app, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(s) = i.checked_sub(1).and_then(|i| samples.get(i)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The path comes from the run's journal: read without leaving the run
    // folder or following a link.
    let Ok(bytes) = read_inside(&run.dir, &s.path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    opened(&app, &u, of(&run), |o| push(&mut o.records, s.name.clone()));
    let kind = match s.path.rsplit('.').next() {
        Some("pdf") => "application/pdf",
        Some("html") => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    sandboxed(kind, bytes)
}

#[derive(Deserialize)]
pub struct DecideForm {
    csrf: String,
    kind: ReleaseKind,
    reason: Option<String>,
    words: Option<String>,
    confirm: Option<String>,
}

pub async fn decide(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    let here = format!("/r/{name}");
    let u = match posted(&app, &headers, &f.csrf, &here) {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let kind = f.kind;
    if let Some(again) = super::handlers::stale(&app, &u, &here) {
        return again;
    }
    let (run, _) = match open_run(&app, &name) {
        Ok(r) => r,
        Err(why) => return refuse(Some(&u), StatusCode::NOT_FOUND, &why),
    };
    let seen = opened(&app, &u, of(&run), |_| {}).records;
    let (a, who, reason, words) = (
        app.clone(),
        u.who.clone(),
        f.reason.clone(),
        f.words.filter(|_| f.confirm.is_some()),
    );
    let shown = words.is_some();
    let done = tokio::task::spawn_blocking(move || {
        let meaning = std::sync::Mutex::new(String::new());
        let confirm = |r: &letterpress::model::release::Release| {
            *meaning.lock().expect("meaning lock") = r.meaning.clone();
            words
                .as_deref()
                .is_some_and(|w| w == sha256_hex(r.meaning.as_bytes()))
        };
        let r =
            letterpress::ops::release::decide(&run, &who, kind, reason, &seen, &a.signer, &confirm);
        (r, meaning.into_inner().expect("meaning lock"))
    })
    .await
    .expect("the release task does not panic");
    match done {
        (Ok(r), _) => {
            let body = format!("{}<blockquote class=\"meaning\">{}</blockquote><p>{}</p>", p("Recorded as release.json in the run folder, signed by the workspace's key for you:"), esc(&r.meaning), link(&here, "Back to the run"));
            html(
                StatusCode::OK,
                pages::page(
                    &format!("Run {}", r.decision.name()),
                    Some((&u.who.login.name, &u.csrf)),
                    &body,
                ),
            )
        }
        (Err(_), meaning) if !meaning.is_empty() => {
            let asked = Asked {
                kind: kind.name(),
                reason: f.reason.as_deref(),
                meaning: &meaning,
                changed: shown,
            };
            confirm_page(&u, &asked, "Confirm the release decision", &here)
        }
        (Err(e), _) => refuse(Some(&u), StatusCode::CONFLICT, &e.to_string()),
    }
}
