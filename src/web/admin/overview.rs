//! The admin front page (eventmill's own; the board's queue pages are linked from it): every queue with its counts, throughput, failure rate, workers and paused
//! flag, and the ingestion stream's summary. Page `/admin`, API `/admin/api/overview` (which the page
//! polls to keep its counts live).

use askama::Template;
use axum::{Json, extract::State, http::Uri};
use serde::Serialize;

use super::{
    error::PageResult,
    pages::{Nav, render},
    stream::{self, StreamOverview},
};
use crate::web::{ApiError, AppState, auth::Principal};
use eventmill_jobs::board::{QueueSummary, queue_summaries};

/// What the front page shows.
#[derive(Serialize)]
pub struct Overview {
    pub queues: Vec<QueueSummary>,
    pub stream: StreamOverview,
}

async fn gather(state: &AppState) -> Result<Overview, ApiError> {
    let mut conn = state.redis.clone();
    Ok(Overview {
        queues: queue_summaries(&state.queues).await?,
        stream: stream::overview(&mut conn, &state.shards).await?,
    })
}

/// `GET /admin/api/overview`
pub async fn api(_: Principal, State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    Ok(Json(gather(&state).await?))
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    nav: Nav,
    overview: Overview,
}

/// `GET /admin`
pub async fn page(principal: Principal, State(state): State<AppState>, uri: Uri) -> PageResult {
    let overview = gather(&state).await?;
    render(&OverviewPage { nav: Nav::new(&principal, "overview", &uri), overview })
}
