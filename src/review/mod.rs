//! `letterpress review`: the review workspace, a web face over
//! [`letterpress::ops::review`] as `cli` is a terminal face over `ops`.
//! It parses requests, checks the session and the CSRF token, and prints
//! pages; what a reviewer may see and decide is decided in `ops`.
//!
//! Safe as a bank needs: it listens on loopback unless told otherwise, and
//! beyond loopback serves HTTPS only (rustls); every response carries a
//! Content-Security-Policy with no script at all and nothing from another
//! origin; sessions live in `__Host-` cookies (Secure, HttpOnly,
//! SameSite=Lax) and end after an idle time; every form carries a CSRF
//! token; signing needs a login more recent than `max_age`.

mod auth;
mod handlers;
mod pages;
mod runs;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use letterpress::error::{Error, Result};
use letterpress::layout::decisions::sign::{KeyFile, Sign};
use letterpress::layout::trust::Trust;
use letterpress::model::decision::Opened;
use letterpress::ops::review::Material;
use letterpress::util::clock::Date;

/// How the workspace is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens (loopback).
    pub listen: SocketAddr,
    /// The URL browsers reach it at (default `http://LISTEN`, `https://`
    /// with TLS).
    pub public_url: Option<String>,
    /// The TLS certificate chain and private key (PEM), to serve HTTPS;
    /// required when listening beyond loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The layouts folder.
    pub layouts: PathBuf,
    /// The trust list (as the other commands find it).
    pub trust: Option<PathBuf>,
    /// Sample data by layout name (`None`: for every other layout).
    pub data: Vec<(Option<String>, PathBuf)>,
    /// The folder holding run folders to release, if any.
    pub runs: Option<PathBuf>,
    /// Where proofs, diffs and comments are kept.
    pub state: PathBuf,
    /// The workspace's private key.
    pub key: PathBuf,
    /// The client registered at the identity provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Certificate authorities (PEM) to trust for the identity provider,
    /// beside the public roots.
    pub oidc_ca: Option<PathBuf>,
    /// The claim that carries the user's groups.
    pub groups_claim: String,
    /// How recent a login must be to sign.
    pub max_age: Duration,
    /// How long a session may be idle.
    pub idle: Duration,
    /// The day proofs and the queue are made for (default today).
    pub as_of: Option<Date>,
}

/// What every request shares.
pub struct App {
    config: Config,
    trust: Trust,
    trust_path: PathBuf,
    signer: KeyFile,
    provider: auth::Provider,
    sessions: Mutex<auth::Sessions>,
    /// What each user opened, by (subject, `NAME@N`).
    opened: Mutex<HashMap<(String, String), Opened>>,
    /// Each version's material, by `NAME@N`, with the digest it was made of.
    material: Mutex<HashMap<String, Arc<Material>>>,
    /// Made one at a time (each uses every core).
    making: tokio::sync::Mutex<()>,
}

type Shared = Arc<App>;

/// Runs the workspace until SIGINT or SIGTERM.
pub fn serve(config: Config) -> Result<()> {
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        return Err(Error::Usage(format!(
            "--listen {}: beyond loopback the workspace serves HTTPS only: give --tls-cert and --tls-key",
            config.listen
        )));
    }
    let trust = Trust::find(config.trust.as_deref())?.ok_or_else(|| {
        Error::Usage("no trust list: name it with --trust or LETTERPRESS_TRUST".into())
    })?;
    let Some(ws) = trust.list.workspace.clone() else {
        return Err(Error::Usage(format!(
            "the trust list {} names no review workspace (`workspace:` with its issuer, groups and key)",
            trust.path.display()
        )));
    };
    let signer = KeyFile::load(&config.key)?;
    let fp = signer
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    if trust.workspace_key(&fp).is_none() {
        return Err(Error::Usage(format!(
            "--key {}: its public key {fp} is not the workspace's in the trust list",
            config.key.display()
        )));
    }
    std::fs::create_dir_all(&config.state).map_err(|e| Error::io(&config.state, e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        let base = base_url(&config);
        let provider = auth::Provider::discover(
            &ws.issuer,
            (&config.client_id, &config.client_secret),
            &format!("{base}/callback"),
            &config.groups_claim,
            config.oidc_ca.as_deref(),
        )
        .await
        .map_err(Error::Usage)?;
        let said = format!(
            "letterpress review: listening on {base} (identity provider {})",
            ws.issuer
        );
        let (listen, tls) = (config.listen, config.tls.clone());
        let app = Arc::new(App {
            trust_path: trust.path.clone(),
            trust,
            signer,
            provider,
            sessions: Mutex::default(),
            opened: Mutex::default(),
            material: Mutex::default(),
            making: tokio::sync::Mutex::new(()),
            config,
        });
        crate::web::listen(
            listen,
            tls,
            router(app),
            said,
            crate::web::signalled(),
            Duration::from_secs(10),
        )
        .await
    })
}

/// `http://LISTEN` unless told otherwise, without a trailing slash.
fn base_url(config: &Config) -> String {
    config
        .public_url
        .clone()
        .unwrap_or_else(|| {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", config.listen)
        })
        .trim_end_matches('/')
        .to_owned()
}

fn router(app: Shared) -> Router {
    use handlers as h;
    Router::new()
        .route("/", get(h::queue))
        .route("/style.css", get(style))
        .route("/login", get(h::login))
        .route("/callback", get(h::callback))
        .route("/logout", post(h::logout))
        .route("/logged-out", get(h::logged_out))
        .route("/v/{name}/{version}", get(h::version))
        .route("/v/{name}/{version}/record/{n}", get(h::record))
        .route("/v/{name}/{version}/record/{n}/page/{p}", get(h::page))
        .route("/v/{name}/{version}/image/{n}/{p}", get(h::image))
        .route("/v/{name}/{version}/sentence/{i}", get(h::sentence))
        .route("/v/{name}/{version}/file/{which}", get(h::file))
        .route("/v/{name}/{version}/comment", post(h::comment))
        .route("/v/{name}/{version}/decide", post(h::decide))
        .route("/r/{run}", get(runs::run))
        .route("/r/{run}/report", get(runs::report))
        .route("/r/{run}/doc/{i}", get(runs::doc))
        .route("/r/{run}/decide", post(runs::decide))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

/// The headers of every response: no script, nothing from elsewhere, no
/// framing, no caching of pages that show letters.
async fn secure_headers(mut res: Response) -> Response {
    let h: &mut HeaderMap = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}
