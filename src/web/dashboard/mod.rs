//! The live dashboard (SPEC section 11): `/dashboard`, the first page after login, and the SSE feed
//! `/v1/analytics/live` its charts move with. The page is server-rendered in the admin frame; its
//! chart code (SVG, ours) and styles are compiled in from `assets/dashboard/`.

pub mod feed;

use askama::Template;
use axum::{
    Router,
    extract::State,
    http::{Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::{
    AppState,
    admin::{
        error::PageResult,
        pages::{Nav, render},
    },
    auth::Principal,
};

/// The dashboard routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/v1/analytics/live", get(feed::live))
        .route("/dashboard/assets/dashboard.js", get(js))
        .route("/dashboard/assets/dashboard.css", get(css))
        .layer(axum::middleware::map_response(super::admin::security_headers))
}

#[derive(Template)]
#[template(path = "dashboard/page.html")]
struct DashboardPage {
    nav: Nav,
    /// Default error-rate alert threshold, in percent.
    threshold: f64,
}

/// `GET /dashboard`.
pub async fn page(principal: Principal, State(state): State<AppState>, uri: Uri) -> PageResult {
    render(&DashboardPage {
        nav: Nav::new(&principal, "dashboard", &uri),
        threshold: state.settings.dashboard_error_threshold,
    })
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../../assets/dashboard/dashboard.js"))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../../assets/dashboard/dashboard.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
