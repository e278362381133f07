//! What the board answers when something is not a success: JSON for the API
//! (`{"error": code, "message", "details": []}`), a small error page for pages and form posts.
//! 5xx causes are logged, never shown.

use askama::Template;
use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::json;

use super::BoardState;
use crate::QueueError;

/// What the integrator forgot when no viewer is set.
const NO_VIEWER: &str = "no viewer: the board reads who is asking from an `eventmill_jobs::board::Viewer` request \
     extension, which the application's authentication layer must insert (see the `eventmill_jobs::board` docs)";

/// Every failure of a board request.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The request reached the board without a [`Viewer`](super::Viewer): the host's auth layer
    /// is missing (401).
    #[error("{NO_VIEWER}")]
    NoViewer,
    /// The viewer may not do this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such job, queue or schedule (404).
    #[error("{0}")]
    NotFound(String),
    /// A well-formed request the board cannot act on: a bad job, an unknown state (422).
    #[error("{0}")]
    Invalid(String),
    /// The job is not in a state the action applies to (409).
    #[error("{0}")]
    Conflict(String),
    /// A destructive action sent without `confirm` (428).
    #[error("{0}")]
    ConfirmationRequired(String),
    /// Redis did not answer (503).
    #[error("Redis is unavailable")]
    Redis(#[from] redis::RedisError),
    /// Anything else (500); the cause is logged.
    #[error("internal error")]
    Internal(String),
}

impl BoardError {
    /// The HTTP status and the `error` code of the JSON body.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NoViewer => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::ConfirmationRequired(_) => (StatusCode::PRECONDITION_REQUIRED, "confirmation_required"),
            Self::Redis(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Logs what an operator must see: the cause of a 5xx, and a board mounted without auth.
    fn log(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = %cause, "board request failed"),
            Self::Redis(cause) => tracing::warn!(error = %cause, "board request failed: Redis unavailable"),
            Self::NoViewer => tracing::warn!("board request refused: {NO_VIEWER}"),
            _ => {}
        }
    }

    /// The error as a page of `board` (for pages and form posts).
    pub(crate) fn into_page(self, board: &BoardState) -> Response {
        self.log();
        let (status, _) = self.status_and_code();
        (status, error_page(board, status, &self.to_string())).into_response()
    }
}

impl From<QueueError> for BoardError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Redis(e) => Self::Redis(e),
            QueueError::NotFound(id) => Self::NotFound(format!("no job with id {id}")),
            QueueError::Invalid(message) => Self::Invalid(message),
        }
    }
}

impl IntoResponse for BoardError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        self.log();
        let body = Json(json!({ "error": code, "message": self.to_string(), "details": [] }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A page handler's error: shown as the board's error page.
pub(crate) struct PageError(pub(crate) BoardError);

impl<E: Into<BoardError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

/// A failed page, marked for [`render_failed_pages`] (which knows the board's paths).
#[derive(Clone)]
struct FailedPage(String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let (status, _) = self.0.status_and_code();
        let message = self.0.to_string();
        let mut response = (status, message.clone()).into_response();
        response.extensions_mut().insert(FailedPage(message));
        response
    }
}

/// What page handlers return.
pub(crate) type PageResult = Result<Html<String>, PageError>;

/// Turns a failed page's plain answer into the board's error page.
pub(crate) async fn render_failed_pages(State(board): State<BoardState>, response: Response) -> Response {
    match response.extensions().get::<FailedPage>().cloned() {
        Some(FailedPage(message)) => {
            let status = response.status();
            (status, error_page(&board, status, &message)).into_response()
        }
        None => response,
    }
}

#[derive(Template)]
#[template(path = "board/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
    base: &'a str,
    title: &'a str,
}

fn error_page(board: &BoardState, status: StatusCode, message: &str) -> Html<String> {
    let page = ErrorPage { status: status.as_u16(), message, base: &board.base, title: &board.title };
    Html(page.render().unwrap_or_else(|_| "error".to_owned()))
}
