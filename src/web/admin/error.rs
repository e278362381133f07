//! How eventmill's own admin pages show an `ApiError`: a small HTML page (or the login redirect)
//! instead of the JSON the API routes answer. 5xx causes are logged, never shown.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use crate::web::ApiError;

/// An error rendered as a page rather than as JSON.
pub trait IntoPage {
    fn into_page(self) -> Response;
}

impl IntoPage for ApiError {
    fn into_page(self) -> Response {
        if matches!(self, Self::Login { .. }) {
            return self.into_response();
        }
        self.log();
        let (status, _) = self.status_and_code();
        let body = ErrorPage { status: status.as_u16(), message: self.to_string() }.html();
        (status, body).into_response()
    }
}

/// An error shown as a page.
#[derive(Template)]
#[template(path = "admin/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

impl ErrorPage {
    pub fn html(&self) -> Html<String> {
        Html(self.render().unwrap_or_else(|_| "error".to_owned()))
    }
}

/// A page handler's error: rendered as HTML.
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
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
