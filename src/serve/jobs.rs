//! `/v1/jobs`: batch jobs, each an ordinary run folder (see
//! [`letterpress::ops::jobs`]).

use std::io::Write;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use super::auth::{Client, Scope};
use super::documents::refusal;
use super::error::ApiError;
use super::metrics::LayoutLabel;
use super::Shared;
use letterpress::model::manifest::{Document, MANIFEST_FILE};
use letterpress::model::vocab::DocStatus;
use letterpress::ops::jobs::{Job, JobSpec, JobState, Refusal};

/// How a job is asked for (query parameters; the data is the body).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// The layout, `NAME` or `NAME@N`.
    pub layout: String,
    /// The channels, comma-separated (default: the layout's).
    pub channels: Option<String>,
    /// The day the documents are made for, `YYYY-MM-DD` (default today, UTC).
    #[param(format = Date)]
    pub as_of: Option<String>,
    /// Also make print files.
    pub print: Option<bool>,
}

/// Which failures to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Failed entries to skip.
    #[param(minimum = 0)]
    pub after: Option<usize>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Where a job stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    /// Its id.
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(value_type = String)]
    pub state: JobState,
    /// The layout asked for.
    pub layout: String,
    /// The day its documents are made for.
    pub as_of: String,
    /// The channels asked for (null: the layout's).
    pub channels: Option<Vec<String>>,
    /// Whether it makes print files.
    pub print: bool,
    /// When it was submitted, started and ended.
    pub submitted_at: String,
    /// When it last started.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Why it failed, or how it was interrupted.
    pub error: Option<String>,
    /// Records done of all, while it runs.
    pub progress: Option<JobProgress>,
    /// The manifest's totals, once it ended.
    pub totals: Option<JobTotals>,
    /// Failed documents with their reasons, a page at a time.
    pub failures: Vec<Failure>,
    /// The next page of failures, if there is one.
    pub next_failures: Option<String>,
    /// Where to read more.
    pub links: Links,
}

/// Records done of all.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobProgress {
    /// Records done (resumed ones included).
    pub done: usize,
    /// Records in all.
    pub total: usize,
    /// Documents failed so far.
    pub failed: usize,
}

/// The counts of a finished job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobTotals {
    /// Input records.
    pub records: usize,
    /// Documents (records × channels).
    pub documents: usize,
    /// Rendered.
    pub rendered: usize,
    /// Failed.
    pub failed: usize,
    /// Withheld by a suppression list.
    pub suppressed: usize,
    /// Reached on another channel.
    pub routed_elsewhere: usize,
    /// Held (mail came back).
    pub held: usize,
}

/// A failed document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Failure {
    /// The record's position in the data, from 0.
    pub index: usize,
    /// The line it starts on.
    pub line: u64,
    /// Its record id, if readable.
    pub record_id: Option<String>,
    /// The channel.
    pub channel: String,
    /// Why, for a person.
    pub error: Option<String>,
}

/// Links of a job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// This job.
    #[serde(rename = "self")]
    pub this: String,
    /// Its manifest, once it ended.
    pub manifest: Option<String>,
    /// Its report, once it ended.
    pub report: Option<String>,
}

/// Submits a batch job: the data is the body.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    params(JobParams, ("Idempotency-Key" = Option<String>, Header, description = "The same key (with the same data and parameters) gives the same job")),
    request_body(content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
        (String = "application/json"),
    )),
    responses(
        (status = 202, description = "The job (new, or the one this key made before)", body = JobStatus,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "The parameters cannot be read", body = ApiError),
        (status = 404, description = "No such layout or version", body = ApiError),
        (status = 409, description = "The version is not approved or not in effect on the day", body = ApiError),
        (status = 413, description = "The data is larger than --max-job-bytes", body = ApiError),
        (status = 415, description = "The body is not CSV, JSON Lines or JSON", body = ApiError),
        (status = 422, description = "A parameter is not acceptable, the data cannot be read as its format (with its line) or holds no records, or the key was used for another job", body = ApiError),
        (status = 503, description = "Draining, or the state folder's disk failed", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    State(app): State<Shared>,
    client: Client,
    params: Result<Query<JobParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    client.needs(Scope::Jobs)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let format = data_format(&headers)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 255 => k.trim().to_owned(),
            _ => {
                return Err(ApiError::invalid(
                    "Idempotency-Key must be 1 to 255 visible characters",
                )
                .field(Some("Idempotency-Key".into())))
            }
        },
        None => letterpress::util::digest::random_hex(),
    };
    let as_of = super::day(p.as_of.as_deref())?;
    let spec = JobSpec {
        layout: p.layout,
        channels: p
            .channels
            .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect()),
        as_of: as_of.to_string(),
        print: p.print.unwrap_or(false),
        format: format.to_owned(),
    };
    let data = receive(&app, body, format).await?;
    let jobs = app.jobs.clone();
    let name = client.name.clone();
    let submitted = tokio::task::spawn_blocking(move || jobs.submit(&name, &key, spec, &data))
        .await
        .map_err(|e| ApiError::environment(e.to_string()))?;
    let (job, created) = submitted.map_err(rejected)?;
    if created {
        app.job_lane.push(&job.id);
    }
    let mut res = (StatusCode::ACCEPTED, json(&status(&app, &job, 0, 100)?)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
        h.insert(header::LOCATION, v);
    }
    if !created {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res.extensions_mut().insert(LayoutLabel(job.spec.layout));
    Ok(res)
}

/// The answer to a refused submission.
fn rejected(r: Refusal) -> ApiError {
    match r {
        Refusal::Layout(r) => refusal(r),
        Refusal::KeyReused(why) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            why,
        )
        .field(Some("Idempotency-Key".into())),
        Refusal::Invalid(why) => ApiError::invalid(why),
        Refusal::Data(why) => {
            let line = why
                .strip_prefix("input error: the data:")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok());
            let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_data", why);
            e.line = line;
            e
        }
        Refusal::Environment(e) => ApiError::environment(e.to_string()),
    }
}

/// The data format its Content-Type names.
fn data_format(headers: &HeaderMap) -> Result<&'static str, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match ct.as_deref() {
        Some("text/csv") => Ok("csv"),
        Some("application/x-ndjson" | "application/jsonl") => Ok("jsonl"),
        Some("application/json") => Ok("json"),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the data must be text/csv, application/x-ndjson or application/json",
        )),
    }
}

/// Streams the body to a file of its own in the jobs' incoming folder.
async fn receive(app: &Shared, body: Body, format: &str) -> Result<std::path::PathBuf, ApiError> {
    let env = |e: std::io::Error| ApiError::environment(format!("the data cannot be kept: {e}"));
    let dir = app
        .jobs
        .incoming()
        .map_err(|e| ApiError::environment(e.to_string()))?;
    let path = dir.join(format!(
        "{}.{format}",
        letterpress::util::digest::random_hex()
    ));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(env)?);
    let (mut body, mut size) = (body, 0u64);
    let result = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("the body could not be read: {e}")))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > app.config.max_job_bytes {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!(
                            "the data is larger than {} bytes (--max-job-bytes)",
                            app.config.max_job_bytes
                        ),
                    ));
                }
                file.write_all(&data).map_err(env)?;
            }
        }
        file.flush().map_err(env)?;
        file.get_ref().sync_all().map_err(env)
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Where a job stands, with a page of its failures.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), Page),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 400, description = "The parameters cannot be read", body = ApiError),
        (status = 404, description = "No such job of this client", body = ApiError),
        (status = 422, description = "`limit` is out of range", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<Shared>,
    client: Client,
    Path(id): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let job = owned(&app, &client, &id)?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 1000").field(Some("limit".into())));
    }
    let st = status(&app, &job, page.after.unwrap_or(0), limit)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json(&st)).into_response())
}

/// Cancels a job between records.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job: cancelled, or asked to stop between records", body = JobStatus),
        (status = 404, description = "No such job of this client", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(app): State<Shared>,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned(&app, &client, &id)?;
    let job = match job.state.ended() {
        true => job,
        false => {
            let job = app
                .jobs
                .cancel(&id)
                .map_err(|e| ApiError::environment(e.to_string()))?;
            app.job_lane.stop(&id);
            job
        }
    };
    let st = status(&app, &job, 0, 100)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json(&st)).into_response())
}

/// A finished job's manifest.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/manifest",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "manifest.json", content_type = "application/json", body = Object),
        (status = 404, description = "No such job, or it has not ended", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn manifest(
    State(app): State<Shared>,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    file(&app, &client, &id, MANIFEST_FILE, "application/json")
}

/// A finished job's report.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/report",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "report.html", content_type = "text/html", body = String),
        (status = 404, description = "No such job, or it has not ended", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(app): State<Shared>,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    file(
        &app,
        &client,
        &id,
        letterpress::manifest::report::REPORT_FILE,
        "text/html; charset=utf-8",
    )
}

/// One document of a job, by its record's position and channel.
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/documents/{index}/{channel}",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("index" = usize, Path, description = "The record's position in the data, from 0"),
        ("channel" = String, Path, description = "pdf, email or web"),
    ),
    responses(
        (status = 200, description = "The document", content(
            (String = "application/pdf"),
            (String = "message/rfc822"),
            (String = "text/html"),
        )),
        (status = 400, description = "The index is not a number", body = ApiError),
        (status = 404, description = "No such job or document", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn document(
    State(app): State<Shared>,
    client: Client,
    Path((id, index, channel)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::bad_request("the index is not a number"))?;
    owned(&app, &client, &id)?;
    let dir = app.jobs.run_dir(&id);
    let missing = || {
        ApiError::not_found(format!(
            "job {id} has no rendered {channel} document for record {index}"
        ))
    };
    let docs = letterpress::manifest::journal::documents(&dir).map_err(|_| missing())?;
    let found: Option<Document> = docs
        .filter_map(Result::ok)
        .find(|d| d.index == index && d.channel == channel && d.status == DocStatus::Rendered);
    let doc = found.ok_or_else(missing)?;
    let rel = doc.path.ok_or_else(missing)?;
    file(&app, &client, &id, &rel, media_of(&rel))
}

/// Any file of a job's run folder by its path in it (print files, an
/// email's parts, the journal).
///
/// Needs the scope `jobs` (a client's own jobs; with `admin`, any).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/files/{path}",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("path" = String, Path, description = "The file's path in the run folder, e.g. print/job-ticket.csv"),
    ),
    responses(
        (status = 200, description = "The file, typed by its extension", content(
            (String = "application/pdf"),
            (String = "message/rfc822"),
            (String = "text/html"),
            (String = "text/plain"),
            (String = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (String = "application/octet-stream"),
        )),
        (status = 404, description = "No such job or file", body = ApiError),
    ),
    security(("bearer" = []))
)]
pub async fn files(
    State(app): State<Shared>,
    client: Client,
    Path((id, rel)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    file(&app, &client, &id, &rel, media_of(&rel))
}

/// A file of a job's run folder: `rel` opened one folder at a time, never
/// leaving it (no `..`, no link), streamed.
fn file(
    app: &Shared,
    client: &Client,
    id: &str,
    rel: &str,
    media: &str,
) -> Result<Response, ApiError> {
    owned(app, client, id)?;
    let file = letterpress::util::fs::open_inside(&app.jobs.run_dir(id), rel)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| ApiError::not_found(format!("job {id} has no file {rel} (yet)")))?;
    Ok(streamed(file, media))
}

/// Streams `file` in chunks read on a blocking thread.
fn streamed(mut file: std::fs::File, media: &str) -> Response {
    use std::io::Read;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::task::spawn_blocking(move || loop {
        let mut chunk = vec![0u8; 256 << 10];
        match file.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(media) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    res
}

/// The media type of a job's file by its extension.
fn media_of(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "pdf" => "application/pdf",
        "eml" => "message/rfc822",
        "html" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Job `id` if this client may see it (its own, or any for `admin`).
fn owned(app: &Shared, client: &Client, id: &str) -> Result<Job, ApiError> {
    client.needs(Scope::Jobs)?;
    app.jobs
        .get(id)
        .filter(|j| j.client == client.name || client.admin())
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}

/// The status of `job` with the failures after `after`.
fn status(app: &Shared, job: &Job, after: usize, limit: usize) -> Result<JobStatus, ApiError> {
    let (failed, more) = app.jobs.failures(&job.id, after, limit).unwrap_or_default();
    let this = format!("/v1/jobs/{}", job.id);
    let ended = job.state == JobState::Succeeded;
    Ok(JobStatus {
        id: job.id.clone(),
        state: job.state,
        layout: job.spec.layout.clone(),
        as_of: job.spec.as_of.clone(),
        channels: job.spec.channels.clone(),
        print: job.spec.print,
        submitted_at: job.submitted_at.clone(),
        started_at: job.started_at.clone(),
        finished_at: job.finished_at.clone(),
        error: job.error.clone(),
        progress: app.job_lane.progress(&job.id).map(|p| JobProgress {
            done: p.done,
            total: p.total,
            failed: p.failed,
        }),
        totals: job.totals.as_ref().map(|t| JobTotals {
            records: t.records,
            documents: t.documents,
            rendered: t.rendered,
            failed: t.failed,
            suppressed: t.suppressed,
            routed_elsewhere: t.routed_elsewhere,
            held: t.held,
        }),
        next_failures: more.then(|| format!("{this}?after={}&limit={limit}", after + failed.len())),
        failures: failed
            .into_iter()
            .map(|d| Failure {
                index: d.index,
                line: d.line,
                record_id: d.record_id,
                channel: d.channel,
                error: d.error,
            })
            .collect(),
        links: Links {
            manifest: ended.then(|| format!("{this}/manifest")),
            report: ended.then(|| format!("{this}/report")),
            this,
        },
    })
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("a status serializes")
}
