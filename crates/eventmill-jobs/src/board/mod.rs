//! The board: the queue admin pages and the JSON API behind them, as an axum [`Router`] your
//! application mounts under any path, behind its own authentication.
//!
//! ```text
//!  your Router ── your auth layer (sets a Viewer) ── nest("/jobs", board::router(state))
//!                                                      │ pages: queues, a queue's jobs, a job,
//!                                                      │        the enqueue form, schedules
//!                                                      └ /api: the same as JSON, and the actions
//! ```
//!
//! Everything it shows comes from the [`Catalog`](crate::Catalog) of your registry: the queues,
//! the kinds and the enqueue form are never hard-coded. The board never checks a password or a
//! token: your middleware says who is asking by inserting a [`Viewer`] into the request's
//! extensions. A [`Role::ReadOnly`] viewer sees every page and every action answers 403; a request
//! without a viewer is refused with 401 (your auth layer is missing). Actions check the origin,
//! the viewer's CSRF token when it has one (a cookie session), ask before deleting anything
//! (`confirm`) and leave an audit record ([`AuditEntry`]).
//!
//! ```no_run
//! use axum::{Router, extract::Request, middleware::{self, Next}, response::Response};
//! use eventmill_jobs::board::{self, BoardState, Viewer};
//!
//! async fn my_auth(mut request: Request, next: Next) -> Response {
//!     // check your session or token here; this one lets everyone in as an admin
//!     request.extensions_mut().insert(Viewer::admin("ops"));
//!     next.run(request).await
//! }
//!
//! # fn app(queues: eventmill_jobs::Queues) -> Router {
//! let state = BoardState::new(queues, "/jobs").title("my app jobs");
//! Router::new().nest("/jobs", board::router(state).layer(middleware::from_fn(my_auth)))
//! # }
//! ```
//!
//! Routes, relative to the mount point: `/` and `/queues` (every queue with its counts),
//! `/queues/{queue}`, `/jobs/{id}`, `/enqueue`, `/schedules`, `/schedules/{name}`, `/workers`, `/slos`; `/api/queues`,
//! `/api/queues/{queue}/jobs`, `/api/queues/{queue}/history?window=1h|24h|14d`, `POST /api/queues/{queue}/{retry-failed,pause,resume,clean,promote-all,empty,limits}`,
//! `POST /api/queues/{pause-all,resume-all}`,
//! `/api/jobs/{id}`, `POST /api/jobs/{id}/{retry,remove,cancel,promote,data}`, `POST /api/enqueue`,
//! `/api/schedules`, `/api/schedules/{name}` (with its ledger), `POST /api/schedules` (add),
//! `POST /api/schedules/{name}/{run,pause,resume,remove}`, `/api/redis`, `/api/workers`, `/api/slos`; `/assets/admin.{css,js}` (public).

mod action;
mod edit;
mod enqueue;
mod error;
mod jobs;
mod limits;
mod pages;
mod queues;
mod schedules;
mod slos;
mod state;
mod workers;

pub use action::{Action, AuditEntry, AuditOutcome, NoBody, same_origin};
pub use error::BoardError;
pub use jobs::{JobDetail, JobRow};
pub use queues::{JobList, QueueSummary, queue_summaries};
pub use schedules::{LedgerRow, ScheduleDetailView, ScheduleRow};
pub use slos::SlosReply;
pub use state::{BoardState, Role, ScheduleSource, Viewer};
pub use workers::WorkersReply;

use axum::{
    Router,
    http::{HeaderValue, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};

/// Every board route, for mounting with `Router::nest(base_path, ..)` behind your auth layer.
pub fn router<S: Clone + Send + Sync + 'static>(state: BoardState) -> Router<S> {
    let home = state.home;
    let pages = Router::new()
        .route("/queues", get(queues::list_page))
        .route("/queues/{queue}", get(queues::page))
        .route("/jobs/{id}", get(jobs::page))
        .route("/enqueue", get(enqueue::page))
        .route("/schedules", get(schedules::page))
        .route("/slos", get(slos::page))
        .route("/api/slos", get(slos::api))
        .route("/workers", get(workers::page))
        .route("/api/workers", get(workers::api))
        .route("/api/queues", get(queues::api_queues))
        .route("/api/redis", get(queues::api_redis))
        .route("/api/queues/{queue}/jobs", get(queues::api_jobs))
        .route("/api/queues/{queue}/history", get(queues::api_history))
        .route("/api/queues/{queue}/retry-failed", post(queues::retry_all))
        .route("/api/queues/{queue}/pause", post(queues::pause))
        .route("/api/queues/{queue}/resume", post(queues::resume))
        .route("/api/queues/{queue}/clean", post(queues::clean))
        .route("/api/queues/{queue}/promote-all", post(queues::promote_all))
        .route("/api/queues/{queue}/empty", post(queues::empty))
        .route("/api/queues/{queue}/limits", post(limits::set_limits))
        .route("/api/queues/pause-all", post(queues::pause_all))
        .route("/api/queues/resume-all", post(queues::resume_all))
        .route("/api/jobs/{id}", get(jobs::api_job))
        .route("/api/jobs/{id}/retry", post(jobs::retry))
        .route("/api/jobs/{id}/remove", post(jobs::remove))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/promote", post(jobs::promote))
        .route("/api/jobs/{id}/data", post(edit::edit_data))
        .route("/api/enqueue", post(enqueue::enqueue))
        .route("/schedules/{name}", get(schedules::one_page))
        .route("/api/schedules", get(schedules::api).post(schedules::add))
        .route("/api/schedules/{name}", get(schedules::api_one))
        .route("/api/schedules/{name}/run", post(schedules::run_now))
        .route("/api/schedules/{name}/pause", post(schedules::pause))
        .route("/api/schedules/{name}/resume", post(schedules::resume))
        .route("/api/schedules/{name}/remove", post(schedules::remove))
        .route("/assets/admin.css", get(css))
        .route("/assets/admin.js", get(js))
        .route("/assets/flow.js", get(flow_js));
    let pages = if home { pages.route("/", get(queues::list_page)) } else { pages };
    pages
        .layer(middleware::map_response_with_state(state.clone(), error::render_failed_pages))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Whether a path (relative to the mount point) is one of the board's static assets, which need
/// no viewer: an auth layer that redirects strangers to a login page lets these through, so the
/// login page can have its styles.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/assets/")
}

/// No inline script or style runs, nothing loads from elsewhere, no framing, no caching: the
/// headers every board response carries (a host may put them on its own pages too).
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
    asset("text/css; charset=utf-8", include_str!("../../assets/admin.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../assets/admin.js"))
}

/// The job page's flow tree (drawn from `GET /api/jobs/{id}`'s `flow`).
async fn flow_js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../assets/flow.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
