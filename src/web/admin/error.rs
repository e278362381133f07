//! Errors of the admin view: JSON `{"error", "message", "details"}` on `/admin/api`, a small HTML
//! page (or the login redirect) on the pages. 5xx causes are logged, never shown.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde_json::json;

/// Everything the admin view answers that is not a success.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No valid token on an API route.
    #[error("send the admin or read-only token as `Authorization: Bearer <token>`, or log in at /admin/login")]
    Unauthorized,
    /// No valid token on a page: go log in, then come back to `next`.
    #[error("log in first")]
    Login { next: String },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Redis is unavailable")]
    Redis(#[from] redis::RedisError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AdminError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized | Self::Login { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Redis(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn log(&self) {
        match self {
            Self::Redis(e) => tracing::warn!(error = %e, "admin request failed: Redis unavailable"),
            Self::Internal(e) => tracing::error!(error = ?e, "admin request failed"),
            _ => {}
        }
    }

    /// The error as an HTML page, for page routes.
    pub fn into_page(self) -> Response {
        self.log();
        if let Self::Login { next } = &self {
            return Redirect::to(&format!("/admin/login?next={}", urlencode(next))).into_response();
        }
        let (status, _) = self.status_and_code();
        let body = super::pages::ErrorPage { status: status.as_u16(), message: self.to_string() }.html();
        (status, body).into_response()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        if matches!(self, Self::Login { .. }) {
            return self.into_page();
        }
        self.log();
        let (status, code) = self.status_and_code();
        let mut response =
            (status, Json(json!({ "error": code, "message": self.to_string(), "details": [] }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
        }
        response
    }
}

/// A page handler's error: rendered as HTML.
pub struct PageError(pub AdminError);

impl<E: Into<AdminError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.into_page()
    }
}

/// What page handlers return.
pub type PageResult = Result<Html<String>, PageError>;

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}
