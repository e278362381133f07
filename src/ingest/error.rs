//! HTTP errors of the API: each maps to a status and `{"error", "message", "details"}`.
//! 5xx causes are logged, never returned.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::domain::EventError;

/// Everything the API answers that is not a success.
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
    #[error("{0}")]
    BadRequest(String),
    #[error("the event stream is full; retry after {retry_after} s")]
    Backpressure { retry_after: u32 },
    #[error("the event store is unavailable; retry after {retry_after} s")]
    Unavailable { retry_after: u32 },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedJson { .. } => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::InvalidBody { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            Self::InvalidEvents(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_events"),
            Self::TooManyEvents { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Backpressure { .. } => (StatusCode::TOO_MANY_REQUESTS, "backpressure"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        }
        let details = match &self {
            Self::InvalidEvents(errors) => json!(errors),
            Self::MalformedJson { line, column, .. } => json!([{ "line": line, "column": column }]),
            _ => json!([]),
        };
        let body = Json(json!({ "error": code, "message": self.to_string(), "details": details }));
        let mut response = (status, body).into_response();
        if let Self::Backpressure { retry_after } | Self::Unavailable { retry_after } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
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
