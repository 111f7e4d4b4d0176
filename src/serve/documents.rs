//! `POST /v1/documents`: one record's document, made now.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::{Client, Scope};
use super::error::ApiError;
use super::lane::timed_out;
use super::metrics::LayoutLabel;
use super::Shared;
use letterpress::model::manifest::ServedEntry;
use letterpress::model::vocab::Channel;
use letterpress::ops::ondemand::{Desk, Made, Refused};
use letterpress::util::clock::{now_rfc3339, Date};

/// A channel's name.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelName {
    /// The letter (`application/pdf`).
    Pdf,
    /// The email (`message/rfc822`).
    Email,
    /// The web letter (`text/html`).
    Web,
}

impl From<ChannelName> for Channel {
    fn from(c: ChannelName) -> Channel {
        match c {
            ChannelName::Pdf => Channel::Pdf,
            ChannelName::Email => Channel::Email,
            ChannelName::Web => Channel::Web,
        }
    }
}

/// A document asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DocumentRequest {
    /// The layout's name.
    #[schema(example = "welcome-letter")]
    pub layout: String,
    /// Its version (default: the one approved and in effect on `as_of`).
    #[schema(minimum = 1, maximum = 4294967295u64)]
    pub version: Option<u32>,
    /// The day the document is made for, `YYYY-MM-DD` (default today, UTC).
    #[schema(value_type = Option<String>, format = Date, example = "2026-12-05")]
    pub as_of: Option<String>,
    /// The channel.
    pub channel: ChannelName,
    /// The record, as one element of a JSON data file.
    #[schema(value_type = Object)]
    pub record: Map<String, Value>,
}

/// Makes one record's document, exactly as a batch run would make it.
///
/// Needs the scope `render`.
#[utoipa::path(
    post,
    path = "/v1/documents",
    tag = "documents",
    request_body(content = DocumentRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The document: the bytes a batch run makes for this record, layout version and day",
            headers(
                ("Letterpress-Layout" = String, description = "The layout version, NAME@N"),
                ("Letterpress-Digest" = String, description = "The digest of the layout version's files"),
                ("Letterpress-Sha256" = String, description = "SHA-256 of the body"),
                ("Letterpress-Request" = String, description = "The request's id in the on-demand journal"),
            ),
            content(
                (String = "application/pdf"),
                (String = "message/rfc822"),
                (String = "text/html"),
            )),
        (status = 400, description = "The body is not JSON", body = ApiError),
        (status = 404, description = "No such layout or version", body = ApiError),
        (status = 409, description = "The version is not approved or not in effect on the day", body = ApiError),
        (status = 413, description = "The body is larger than --max-body", body = ApiError),
        (status = 415, description = "The body is not application/json", body = ApiError),
        (status = 422, description = "The request or the record fails its checks (the reasons a batch gives)", body = ApiError),
        (status = 429, description = "The on-demand lane is full: ask again after Retry-After", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Draining, the time budget spent, or the journal's disk failed", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<Shared>,
    client: Client,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let deadline = arrived + app.config.timeout;
    client.needs(Scope::Render)?;
    if app.lane.full() {
        return Err(app.lane.busy());
    }
    let asked = read(&headers, body, app.config.max_body).await?;
    let channel = Channel::from(asked.channel);
    let as_of = super::day(asked.as_of.as_deref())?;
    let work = app.clone();
    let request_id = letterpress::util::digest::random_hex()[..20].to_owned();
    let made = app
        .lane
        .submit(move || make(&work, asked, channel, as_of, deadline))?;
    // Answered at the deadline at the latest: a render still going then is
    // left to end (or to be given up) on its own, its document unused.
    let made = match tokio::time::timeout_at(deadline.into(), made).await {
        Ok(Ok(made)) => made,
        Ok(Err(_)) => return Err(ApiError::environment("the document's worker stopped")),
        Err(_) => Err(timed_out()),
    };
    let made = match made {
        Ok((made, desk)) => journal(&app, client.name, request_id.clone(), &made, &desk)
            .await
            .map(|()| (made, desk.layout_id(), desk.digest().to_owned())),
        Err(e) => Err(e),
    };
    let (made, layout, digest) = match made {
        Ok(m) => m,
        Err(e) => {
            app.metrics.document(channel.name(), &e.code);
            return Err(e);
        }
    };
    app.metrics.document(channel.name(), "");
    let sha = made.entry.sha256.clone().unwrap_or_default();
    let mut res = (StatusCode::OK, made.bytes).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(made.media_type),
    );
    for (name, value) in [
        ("letterpress-layout", &layout),
        ("letterpress-digest", &digest),
        ("letterpress-sha256", &sha),
        ("letterpress-request", &request_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    res.extensions_mut().insert(LayoutLabel(layout));
    Ok(res)
}

/// Reads the request: 415, 413, 400 or 422 when it cannot be used.
async fn read(headers: &HeaderMap, body: Body, max: usize) -> Result<DocumentRequest, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {max} bytes (--max-body)"),
        )
    })?;
    serde_json::from_slice::<DocumentRequest>(&bytes).map_err(|e| {
        let mut err = match e.classify() {
            serde_json::error::Category::Data => ApiError::invalid(e.to_string()),
            _ => ApiError::bad_request(format!("the body is not JSON: {e}")),
        };
        err.field = letterpress::ops::ondemand::named_field(&e.to_string());
        err.line = Some(e.line() as u64);
        err
    })
}

/// Makes the document (in a blocking thread, holding a worker's permit).
fn make(
    app: &super::App,
    asked: DocumentRequest,
    channel: Channel,
    as_of: Date,
    deadline: Instant,
) -> Result<(Made, Arc<Desk>), ApiError> {
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let desk = app
        .desks
        .desk(&asked.layout, asked.version, as_of)
        .map_err(refusal)?;
    let made = desk.make(asked.record, channel).map_err(refusal)?;
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    Ok((made, desk))
}

/// Records the document in the day's journal, on disk before it is
/// answered: if it cannot be, it is not served. No thread waits for the
/// disk meanwhile.
async fn journal(
    app: &super::App,
    client: String,
    request_id: String,
    made: &Made,
    desk: &Desk,
) -> Result<(), ApiError> {
    let served_at = now_rfc3339();
    let entry = ServedEntry {
        document: made.entry.clone(),
        served_at: served_at.clone(),
        client,
        request_id,
        layout: desk.layout_id(),
        layout_digest: desk.digest().to_owned(),
        as_of: desk.as_of().to_string(),
    };
    let (done, written) = tokio::sync::oneshot::channel();
    app.log.submit(
        &served_at[..10],
        entry,
        Box::new(move |r| {
            let _ = done.send(r);
        }),
    );
    match written.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(why)) => Err(ApiError::environment(format!(
            "the document was not served: its journal cannot be written ({why})"
        ))),
        Err(_) => Err(ApiError::environment("the journal's writer stopped")),
    }
}

/// The answer to a refusal.
pub fn refusal(r: Refused) -> ApiError {
    match r {
        Refused::Unknown(why) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_layout", why).field(Some("layout".into()))
        }
        Refused::NotCleared(why) => ApiError::new(StatusCode::CONFLICT, "not_cleared", why),
        Refused::Invalid { why, field } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_record", why).field(field)
        }
        Refused::Environment(why) => ApiError::environment(why),
    }
}
