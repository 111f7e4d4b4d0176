//! `letterpress serve`: documents on demand and batch jobs over HTTP, a
//! face over [`letterpress::ops::ondemand`] and [`letterpress::ops::jobs`]
//! as `cli` is a terminal face over `ops`. It checks bearer tokens, admits
//! requests to their lane, and turns answers into HTTP; what a document
//! is and how a job runs is decided in `ops`.
//!
//! Two lanes with their own capacity (see [`lane`]); every request's time
//! budget counts its time in the queue; a full lane answers 429 with
//! `Retry-After` at once. On SIGTERM or SIGINT: readiness goes to 503,
//! new requests get 503 for `--drain-seconds`, requests in flight finish,
//! the running job stops between records with its journal flushed (it
//! resumes at the next start), then the process exits 0.

mod api;
mod auth;
mod documents;
mod error;
mod jobs;
mod lane;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use letterpress::error::{Error, Result};
use letterpress::manifest::served::ServedLog;
use letterpress::ops::jobs::Jobs;
use letterpress::ops::ondemand::Desks;
use letterpress::util::clock::Date;

pub use auth::new_token;
use error::ApiError;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The TLS certificate chain and key (PEM), to serve HTTPS; required
    /// beyond loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The layouts folder.
    pub layouts: PathBuf,
    /// The trust list (as the other commands find it).
    pub trust: Option<PathBuf>,
    /// The token file.
    pub tokens: PathBuf,
    /// The state folder: jobs and the on-demand journal.
    pub state: PathBuf,
    /// Documents rendered on demand at once.
    pub workers: usize,
    /// On-demand requests that may wait for a worker.
    pub queue: usize,
    /// An on-demand request's time budget, queue time included.
    pub timeout: Duration,
    /// The longest one on-demand document may keep a worker; then the
    /// worker is given up and replaced.
    pub doc_timeout: Duration,
    /// Rendering workers of a batch job.
    pub job_workers: usize,
    /// The largest on-demand request body.
    pub max_body: usize,
    /// The largest job data.
    pub max_job_bytes: u64,
    /// How long new requests get 503 after SIGTERM before the listener
    /// closes (for load balancers to notice).
    pub drain: Duration,
}

/// The lock of a server's state folder.
const STATE_LOCK: &str = ".serve.lock";

/// What every request shares.
pub struct App {
    config: Config,
    tokens: auth::Tokens,
    desks: Arc<Desks>,
    log: ServedLog,
    jobs: Arc<Jobs>,
    lane: lane::OnDemand,
    job_lane: lane::JobLane,
    metrics: metrics::Metrics,
    starting: AtomicBool,
    draining: AtomicBool,
}

type Shared = Arc<App>;

/// Serves until SIGTERM or SIGINT, then drains.
pub fn serve(config: Config) -> Result<()> {
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        return Err(Error::Usage(format!(
            "--listen {}: beyond loopback the service serves HTTPS only: give --tls-cert and --tls-key",
            config.listen
        )));
    }
    if config.workers == 0 || config.job_workers == 0 {
        return Err(Error::Usage(
            "--workers and --job-workers must be at least 1".into(),
        ));
    }
    let tokens = auth::Tokens::load(&config.tokens)?;
    std::fs::create_dir_all(&config.state).map_err(|e| Error::io(&config.state, e))?;
    // One server per state folder: its journal has one writer, and its
    // jobs one runner (a lost holder's lock is taken over once its lease
    // has expired, as a run's is).
    let _lock = letterpress::util::lock::Lock::take(
        &config.state.join(STATE_LOCK),
        "serve",
        letterpress::util::lock::LockTerms::default(),
        None,
    )?;
    let desks = Arc::new(Desks::new(&config.layouts, config.trust.as_deref())?);
    let jobs = Arc::new(Jobs::open(
        &config.state,
        desks.clone(),
        config.job_workers,
    )?);
    let app = Arc::new(App {
        tokens,
        log: ServedLog::start(&config.state),
        lane: lane::OnDemand::new(config.workers, config.queue, config.doc_timeout),
        job_lane: lane::JobLane::start(jobs.clone()),
        desks,
        jobs,
        metrics: metrics::Metrics::new(),
        starting: AtomicBool::new(true),
        draining: AtomicBool::new(false),
        config,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the server: {e}")))?;
    let served = runtime.block_on(listen(app.clone()));
    app.job_lane.close();
    served
}

/// Listens, makes every layout ready in the background, and serves until
/// the drain is over.
async fn listen(app: Shared) -> Result<()> {
    let warm = app.clone();
    tokio::task::spawn_blocking(move || {
        match warm.desks.warm(Date::today_utc()) {
            Ok(refused) => {
                for (name, why) in refused {
                    eprintln!("letterpress serve: {name} cannot be served today: {why}");
                }
            }
            Err(e) => eprintln!("letterpress serve: {e}"),
        }
        warm.starting.store(false, Ordering::SeqCst);
    });
    let listen = app.config.listen;
    let scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let said = format!("letterpress serve: listening on {scheme}://{listen}");
    let drain = app.clone();
    crate::web::listen(
        listen,
        app.config.tls.clone(),
        router(app.clone()),
        said,
        async move { drained(&drain).await },
        Duration::from_secs(60),
    )
    .await
}

/// Waits for SIGTERM or SIGINT, then drains: not ready, new requests 503,
/// the running job stopped between records; returns when the listener
/// should close (requests in flight still finish).
async fn drained(app: &Shared) {
    crate::web::signalled().await;
    eprintln!("letterpress serve: draining");
    app.draining.store(true, Ordering::SeqCst);
    let lane = app.clone();
    tokio::task::spawn_blocking(move || lane.job_lane.close());
    tokio::time::sleep(app.config.drain).await;
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/documents", post(documents::create))
        .route("/v1/jobs", post(jobs::submit))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/manifest", get(jobs::manifest))
        .route("/v1/jobs/{id}/report", get(jobs::report))
        .route("/v1/jobs/{id}/files/{*path}", get(jobs::files))
        .route(
            "/v1/jobs/{id}/documents/{index}/{channel}",
            get(jobs::document),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refuse_when_draining,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
}

/// Every response: nothing to sniff, frame or cache.
async fn secure_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// 503 for the API's requests while draining (the probes still answer).
async fn refuse_when_draining(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if app.draining.load(Ordering::SeqCst) && req.uri().path().starts_with("/v1/") {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down; ask another instance or again later",
        )
        .retry(5)
        .into_response();
    }
    next.run(req).await
}

/// The day a request names (`YYYY-MM-DD`), today (UTC) by default.
fn day(asked: Option<&str>) -> std::result::Result<Date, ApiError> {
    match asked {
        Some(s) => Date::parse(s).ok_or_else(|| {
            ApiError::invalid(format!("as_of `{s}` is not a date (YYYY-MM-DD)"))
                .field(Some("as_of".into()))
        }),
        None => Ok(Date::today_utc()),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource (see /openapi.json)")
}

/// Alive: the process answers, and not every on-demand worker is stuck
/// in a render that never ended (then 503: restart the process).
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses(
        (status = 200, description = "Alive", content_type = "text/plain", body = String),
        (status = 503, description = "Every on-demand worker is stuck in a render that never ended: restart the process", content_type = "text/plain", body = String),
    ))]
async fn healthz(State(app): State<Shared>) -> Response {
    match app.lane.worn_out() {
        false => "ok\n".into_response(),
        true => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} on-demand workers are stuck in renders that never ended (--doc-timeout): restart the process\n",
                app.lane.stuck()
            ),
        )
            .into_response(),
    }
}

/// Ready for on-demand requests: 503 while starting, draining, or when the
/// on-demand lane is full.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Ready", content_type = "text/plain", body = String),
        (status = 503, description = "Starting, draining, or the on-demand lane is full", content_type = "text/plain", body = String),
    ))]
async fn readyz(State(app): State<Shared>) -> Response {
    let why = if app.draining.load(Ordering::SeqCst) {
        Some("draining")
    } else if app.starting.load(Ordering::SeqCst) {
        Some("starting: making the layouts ready")
    } else if app.lane.full() {
        Some("the on-demand lane is full")
    } else {
        None
    };
    match why {
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
        None => "ready\n".into_response(),
    }
}

/// Prometheus metrics (OpenMetrics text).
///
/// Needs the scope `admin`.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String),
    ),
    security(("bearer" = [])))]
async fn metrics(State(app): State<Shared>, client: auth::Client) -> Result<Response, ApiError> {
    client.needs(auth::Scope::Admin)?;
    let text = app.metrics.render(&app);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// This document: OpenAPI 3.1, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        api::document(),
    )
        .into_response()
}
