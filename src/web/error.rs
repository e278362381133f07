//! The one HTTP error type of every area (ingest, admin, query, dashboard): each maps to a status
//! and `{"error", "message", "details"}`. 5xx causes are logged, never returned. A page route that
//! needs a login gets a redirect to the login form instead (`Login`).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde_json::json;

use crate::domain::EventError;

/// What a 401 on the admin, query and dashboard routes tells the caller to do.
pub const TOKEN_REQUIRED: &str =
    "send the admin or read-only token as `Authorization: Bearer <token>`, or log in at /admin/login";

/// Everything the HTTP API answers that is not a success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson { line: usize, column: usize, message: String },
    #[error("{message}")]
    InvalidBody { message: String },
    #[error("{} invalid event(s); nothing was accepted", .0.len())]
    InvalidEvents(Vec<EventError>),
    #[error("{count} events in one request; at most {max} are accepted")]
    TooManyEvents { count: usize, max: usize },
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No valid token on a page: go log in, then come back to `next`.
    #[error("log in first")]
    Login { next: String },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter that cannot be used, by name.
    #[error("parameter `{name}`: {reason}")]
    BadParameter { name: String, reason: String },
    /// A well-formed request the admin view cannot act on (a bad job payload, an unknown state).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// A destructive admin action sent without `confirm` (the board's `Action::unconfirmed`).
    #[error("{0}")]
    ConfirmationRequired(String),
    #[error("the event stream is full; retry after {retry_after} s")]
    Backpressure { retry_after: u32 },
    #[error("the event store is unavailable; retry after {retry_after} s")]
    Unavailable { retry_after: u32 },
    /// Redis' memory is above its high-water mark, or full (429): the message names the figures.
    #[error("{message}; retry after {retry_after} s")]
    RedisFull { message: String, retry_after: u32 },
    /// Redis is up but refuses writes (read-only replica, persistence failing; 503): cause and fix.
    #[error("{message}; retry after {retry_after} s")]
    RedisRefusing { message: String, retry_after: u32 },
    #[error("Redis is unavailable")]
    Redis(#[from] redis::RedisError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedJson { .. } => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            Self::InvalidBody { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            Self::InvalidEvents(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_events"),
            Self::TooManyEvents { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Unauthorized(_) | Self::Login { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::ConfirmationRequired(_) => (StatusCode::PRECONDITION_REQUIRED, "confirmation_required"),
            Self::Redis(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Backpressure { .. } => (StatusCode::TOO_MANY_REQUESTS, "backpressure"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::RedisFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "backpressure"),
            Self::RedisRefusing { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Login { next } = &self {
            return Redirect::to(&format!("/admin/login?next={}", urlencode(next))).into_response();
        }
        let (status, code) = self.status_and_code();
        self.log();
        let details = match &self {
            Self::InvalidEvents(errors) => json!(errors),
            Self::MalformedJson { line, column, .. } => json!([{ "line": line, "column": column }]),
            Self::BadParameter { name, reason } => json!([{ "parameter": name, "reason": reason }]),
            _ => json!([]),
        };
        let body = Json(json!({ "error": code, "message": self.to_string(), "details": details }));
        let mut response = (status, body).into_response();
        if let Self::Backpressure { retry_after }
        | Self::Unavailable { retry_after }
        | Self::RedisFull { retry_after, .. }
        | Self::RedisRefusing { retry_after, .. } = self
        {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    /// Logs what an operator must see: the cause of a 5xx, and refusals under load.
    pub fn log(&self) {
        let (status, _) = self.status_and_code();
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Redis(cause) => tracing::warn!(error = %cause, "request failed: Redis unavailable"),
            // Said once when it starts by `redis_limits::RedisWatch`, not once per request.
            Self::RedisFull { .. } | Self::RedisRefusing { .. } => tracing::debug!(error = %self, "request refused"),
            _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                tracing::warn!(status = status.as_u16(), error = %self, "request refused")
            }
            _ => {}
        }
    }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}

impl From<serde_json::Error> for ApiError {
    /// Syntax errors are 400 with the position; JSON of the wrong shape is 422.
    fn from(error: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                Self::MalformedJson { line: error.line(), column: error.column(), message: error.to_string() }
            }
            Category::Data => Self::InvalidBody { message: error.to_string() },
        }
    }
}

/// Every error answer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_events`.
    error: String,
    message: String,
    /// For 422: `{index, field, reason}` per problem; for 400: `{line, column}`.
    #[schema(value_type = Vec<Object>)]
    details: Vec<serde_json::Value>,
}

impl From<eventmill_jobs::board::BoardError> for ApiError {
    /// The board's errors where eventmill's own pages reuse the board (the queue summaries).
    fn from(error: eventmill_jobs::board::BoardError) -> Self {
        use eventmill_jobs::board::BoardError;
        match error {
            BoardError::NoViewer => Self::Unauthorized(TOKEN_REQUIRED),
            BoardError::Forbidden(why) => Self::Forbidden(why),
            BoardError::NotFound(message) => Self::NotFound(message),
            BoardError::Invalid(message) => Self::Invalid(message),
            BoardError::Conflict(message) => Self::Conflict(message),
            BoardError::ConfirmationRequired(message) => Self::ConfirmationRequired(message),
            BoardError::Redis(e) => Self::Redis(e),
            BoardError::Internal(cause) => Self::Internal(anyhow::anyhow!(cause)),
            // A new kind of board failure: a server error until mapped here.
            other => Self::Internal(anyhow::anyhow!(other.to_string())),
        }
    }
}
