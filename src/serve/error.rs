//! The one shape of every error the service answers: JSON
//! `{"error", "code", "field"?, "line"?}` with the status that says what
//! to do about it, and `Retry-After` where waiting helps.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program: `unauthorized`, `forbidden`,
    /// `bad_request`, `unsupported_media_type`, `not_found`,
    /// `unknown_layout`, `not_cleared`, `idempotency_key_reused`,
    /// `too_large`, `invalid_record`, `invalid_request`, `invalid_data`, `busy`,
    /// `timeout`, `draining`, `environment`.
    pub code: String,
    /// The field of the request or record it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line of the data it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The status (not in the body).
    #[serde(skip)]
    pub status: u16,
    /// Seconds to wait before asking again (the `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and a reason.
    pub fn new(status: StatusCode, code: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            error: error.into(),
            code: code.to_owned(),
            field: None,
            line: None,
            status: status.as_u16(),
            retry_after: None,
        }
    }

    /// The same, about `field`.
    pub fn field(mut self, field: Option<String>) -> ApiError {
        self.field = field;
        self
    }

    /// The same, worth asking again after `seconds`.
    pub fn retry(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(why: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", why)
    }

    /// 404: no such thing.
    pub fn not_found(why: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", why)
    }

    /// 422: the request is readable but not acceptable.
    pub fn invalid(why: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", why)
    }

    /// 503: the environment (a disk) failed; nothing was done.
    pub fn environment(why: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "environment", why).retry(5)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("an error serializes");
        let mut res = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"letterpress\""),
            );
        }
        res
    }
}
