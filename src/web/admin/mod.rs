//! The admin web view (SPEC section 11): server-rendered pages under `/admin` and the JSON API under
//! `/admin/api` that backs every one of them.
//!
//! The queue pages (queues, jobs, enqueue form, schedules, their API and actions) are the job
//! framework's board (`eventmill_jobs::board`), nested at `/admin` behind `viewer`, which tells the
//! board who is asking from `web::auth`. What only eventmill has stays here: the front page
//! (`overview`: queues and the ingestion stream), the `stream` page with its dead letters, and the
//! login pages (`pages`). Its templates are compiled in from `templates/admin/`.

pub mod error;
pub mod overview;
pub mod pages;
pub mod stream;
pub mod viewer;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use eventmill_jobs::board::{self, BoardState};

use crate::{settings::Settings, web::AppState};

pub use board::security_headers;

/// Every admin route: eventmill's own pages and the framework's board beside them.
pub fn router(state: &AppState) -> Router<AppState> {
    let dead_letter_actions = Router::new()
        .route("/admin/api/dead-letters/replay-all", post(stream::replay_all))
        .route("/admin/api/dead-letters/{id}/replay", post(stream::replay_one))
        .route_layer(middleware::from_fn_with_state(state.clone(), viewer::tell_the_board));
    let board =
        board::router(state.board.clone()).layer(middleware::from_fn_with_state(state.clone(), viewer::tell_the_board));
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/", get(overview::page))
        .route("/admin/login", get(pages::login_form).post(pages::login))
        .route("/admin/logout", post(pages::logout))
        .route("/admin/stream", get(stream::page))
        .route("/admin/api/overview", get(overview::api))
        .route("/admin/api/stream", get(stream::api_stream))
        .route("/admin/api/dead-letters", get(stream::api_dead_letters))
        .merge(dead_letter_actions)
        .nest("/admin", board)
        .layer(middleware::map_response(security_headers))
}

/// The board as eventmill mounts it at `/admin`: its queues and kinds, the schedules of
/// `EVENTMILL_SCHEDULER_FILE`, eventmill's own pages in its navigation and its audit lines.
pub fn board_state(jobs: &eventmill_jobs::Jobs<crate::processors::Analytics>, settings: &Settings) -> BoardState {
    jobs.board("/admin")
        .title("eventmill admin")
        .home_page(false)
        .schedules(jobs.schedule_file(&settings.scheduler_file))
        .link("Dashboard", "/dashboard")
        .link("Overview", "/admin")
        .link_after("Ingestion stream", "/admin/stream")
        .logout("/admin/logout")
        .audit(viewer::audit_line)
}
