//! The queue admin web view (SPEC section 11): server-rendered pages under `/admin` and the JSON API
//! under `/admin/api` that backs every one of them.
//!
//! `web::auth` says who is asking (admin or read-only token, bearer or login cookie), `action` guards
//! every state change (admin only, same origin, CSRF token, audit line), `pages` holds the shared
//! frame and the login page, and each area (`overview`, `queues`, `jobs`, `schedules`, `stream`) has its page and API beside it.
//! Templates are compiled in from `templates/admin/`, the CSS and JS from `assets/admin/`.

pub mod action;
pub mod error;
pub mod jobs;
pub mod overview;
pub mod pages;
pub mod queues;
pub mod schedules;
pub mod stream;

use axum::{
    Router,
    http::{HeaderValue, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::web::AppState;

/// Every admin route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/", get(overview::page))
        .route("/admin/login", get(pages::login_form).post(pages::login))
        .route("/admin/logout", post(pages::logout))
        .route("/admin/stream", get(stream::page))
        .route("/admin/queues/{queue}", get(queues::page))
        .route("/admin/jobs/{id}", get(jobs::page))
        .route("/admin/enqueue", get(jobs::enqueue_page))
        .route("/admin/api/queues", get(queues::api_queues))
        .route("/admin/api/queues/{queue}/jobs", get(queues::api_jobs))
        .route("/admin/api/queues/{queue}/retry-failed", post(queues::retry_all))
        .route("/admin/api/queues/{queue}/pause", post(queues::pause))
        .route("/admin/api/queues/{queue}/resume", post(queues::resume))
        .route("/admin/api/jobs/{id}", get(jobs::api_job))
        .route("/admin/api/jobs/{id}/retry", post(jobs::retry))
        .route("/admin/api/jobs/{id}/remove", post(jobs::remove))
        .route("/admin/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/admin/api/jobs/{id}/promote", post(jobs::promote))
        .route("/admin/api/enqueue", post(jobs::enqueue))
        .route("/admin/schedules", get(schedules::page))
        .route("/admin/api/schedules", get(schedules::api))
        .route("/admin/api/schedules/{name}/run", post(schedules::run_now))
        .route("/admin/api/overview", get(overview::api))
        .route("/admin/api/stream", get(stream::api_stream))
        .route("/admin/api/dead-letters", get(stream::api_dead_letters))
        .route("/admin/api/dead-letters/replay-all", post(stream::replay_all))
        .route("/admin/api/dead-letters/{id}/replay", post(stream::replay_one))
        .route("/admin/assets/admin.css", get(css))
        .route("/admin/assets/admin.js", get(js))
        .layer(middleware::map_response(security_headers))
}

/// No inline script or style runs, nothing loads from elsewhere, no framing, no caching.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../../assets/admin/admin.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../../assets/admin/admin.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
