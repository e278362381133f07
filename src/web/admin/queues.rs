//! Queues in the admin view: each queue's counts, last-hour throughput and failure rate, workers
//! alive and paused flag (`/admin/api/queues`, shown on the overview), the job list of one queue and
//! state with paging and payload search (`/admin/queues/{queue}`, `/admin/api/queues/{queue}/jobs`),
//! and the queue actions: retry all failed, pause, resume.

use std::time::Duration;

use askama::Template;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::Uri,
    response::Response,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    action::{Action, NoBody},
    error::PageResult,
    jobs::JobRow,
    pages::{Nav, render},
};
use crate::{
    queue::{JobState, Queue, QueueCounts, QueueError},
    web::{ApiError, AppState, auth::Principal},
};

/// Jobs per page.
const PAGE_SIZE: usize = 25;
/// Jobs one search request looks at (bounded so a search never blocks Redis for long).
const SEARCH_BUDGET: usize = 20_000;
/// A worker counts as alive when it polled within this.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Redis(e) => ApiError::Redis(e),
            QueueError::NotFound(id) => ApiError::NotFound(format!("no job with id {id}")),
            QueueError::Invalid(message) => ApiError::Invalid(message),
        }
    }
}

/// One queue as the overview shows it.
#[derive(Serialize)]
pub struct QueueSummary {
    pub name: &'static str,
    #[serde(flatten)]
    pub counts: QueueCounts,
    pub completed_last_hour: u64,
    pub failed_last_hour: u64,
    /// Failed / finished in the last hour, in percent (0 when nothing finished).
    pub failure_rate: f64,
    pub workers: Vec<String>,
    /// The rate limit in force (`100/1s`), if any.
    pub rate_limit: Option<String>,
}

pub async fn summary(queue: &Queue) -> Result<QueueSummary, ApiError> {
    let counts = queue.counts().await?;
    let (completed, failed) = queue.finished_since(crate::queue::now_ms() - 3_600_000).await?;
    let workers = queue.workers(ALIVE_WITHIN).await?.into_iter().map(|(name, _)| name).collect();
    let finished = completed + failed;
    let failure_rate = if finished == 0 { 0.0 } else { failed as f64 * 100.0 / finished as f64 };
    Ok(QueueSummary {
        name: queue.name,
        counts,
        completed_last_hour: completed,
        failed_last_hour: failed,
        failure_rate,
        workers,
        rate_limit: queue.rate_limit().map(|limit| limit.to_string()),
    })
}

pub async fn summaries(state: &AppState) -> Result<Vec<QueueSummary>, ApiError> {
    let mut all = Vec::new();
    for queue in state.queues.all() {
        all.push(summary(queue).await?);
    }
    Ok(all)
}

/// `GET /admin/api/queues`
pub async fn api_queues(_: Principal, State(state): State<AppState>) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    Ok(Json(summaries(&state).await?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    /// Payload search text.
    q: Option<String>,
}

/// One page of a job list.
#[derive(Serialize)]
pub struct JobList {
    pub queue: &'static str,
    pub state: JobState,
    pub jobs: Vec<JobRow>,
    /// Jobs in this state (without a search).
    pub total: u64,
    pub offset: usize,
    pub limit: usize,
    pub query: String,
    /// Where the next page starts (`None` on the last page).
    pub next_offset: Option<usize>,
    pub prev_offset: Option<usize>,
    /// With a search: how many jobs were looked at to fill this page.
    pub scanned_to: Option<usize>,
}

async fn list(state: &AppState, name: &str, query: &ListQuery) -> Result<JobList, ApiError> {
    let queue = state.queues.named(name)?;
    let job_state: JobState = query.state.as_deref().unwrap_or("failed").parse().map_err(ApiError::Invalid)?;
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, 200);
    let needle = query.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let (ids, next_offset, scanned_to) = if needle.is_empty() {
        let (ids, total) = queue.ids_page(job_state, query.offset, limit).await?;
        let next = query.offset + ids.len();
        (ids, (next < total as usize).then_some(next), None)
    } else {
        let (ids, next) = queue.search(job_state, &needle, query.offset, limit, SEARCH_BUDGET).await?;
        (ids, next, next)
    };
    let total = queue.counts().await.map(|c| count_of(&c, job_state))?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(record) = state.queues.job(&id).await? {
            jobs.push(JobRow::from(&record));
        }
    }
    let prev_offset = (query.offset > 0 && needle.is_empty()).then(|| query.offset.saturating_sub(limit));
    Ok(JobList {
        queue: queue.name,
        state: job_state,
        jobs,
        total,
        offset: query.offset,
        limit,
        query: needle,
        next_offset,
        prev_offset,
        scanned_to,
    })
}

pub fn count_of(counts: &QueueCounts, state: JobState) -> u64 {
    match state {
        JobState::Waiting => counts.waiting,
        JobState::WaitingChildren => counts.waiting_children,
        JobState::Delayed => counts.delayed,
        JobState::Active => counts.active,
        JobState::Completed => counts.completed,
        JobState::Failed | JobState::Cancelled => counts.failed,
    }
}

/// `GET /admin/api/queues/{queue}/jobs?state=&offset=&limit=&q=`
pub async fn api_jobs(
    _: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    Ok(Json(list(&state, &name, &query).await?))
}

#[derive(Template)]
#[template(path = "admin/queue.html")]
struct QueuePage {
    nav: Nav,
    summary: QueueSummary,
    list: JobList,
    states: Vec<(&'static str, u64)>,
}

/// `GET /admin/queues/{queue}?state=&offset=&q=`
pub async fn page(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
    uri: Uri,
) -> PageResult {
    let list = list(&state, &name, &query).await?;
    let summary = summary(state.queues.named(&name).map_err(ApiError::from)?).await?;
    let states = JobState::ALL.iter().map(|s| (s.as_str(), count_of(&summary.counts, *s))).collect();
    render(&QueuePage { nav: Nav::new(&principal, "queues", &uri), summary, list, states })
}

/// `POST /admin/api/queues/{queue}/retry-failed`: every failed job back to waiting.
pub async fn retry_all(State(state): State<AppState>, Path(name): Path<String>, action: Action<NoBody>) -> Response {
    let result = async {
        let queue = state.queues.named(&name)?;
        let mut total = 0;
        loop {
            let moved = queue.retry_failed(None, 1000).await?;
            total += moved;
            if moved < 1000 {
                break;
            }
        }
        Ok((format!("{total} failed job(s) retried."), json!({ "retried": total })))
    }
    .await;
    action.respond("queue.retry_failed", &name, result)
}

/// `POST /admin/api/queues/{queue}/pause`
pub async fn pause(state: State<AppState>, name: Path<String>, action: Action<NoBody>) -> Response {
    set_paused(state, name, action, true).await
}

/// `POST /admin/api/queues/{queue}/resume`
pub async fn resume(state: State<AppState>, name: Path<String>, action: Action<NoBody>) -> Response {
    set_paused(state, name, action, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
    paused: bool,
) -> Response {
    let result = async {
        state.queues.named(&name)?.set_paused(paused).await?;
        let word = if paused { "paused" } else { "resumed" };
        Ok((format!("Queue {name} {word}."), json!({ "queue": name, "paused": paused })))
    }
    .await;
    action.respond(if paused { "queue.pause" } else { "queue.resume" }, &name, result)
}
