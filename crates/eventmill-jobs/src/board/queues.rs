//! Queues on the board: each queue's counts, last-hour throughput and failure rate, workers
//! alive, paused flag and the age of the next waiting job (`/queues`, `/api/queues`), the Redis panel (`/api/redis`), the job list of one queue and state with
//! paging and payload search (`/queues/{queue}`, `/api/queues/{queue}/jobs`), and the queue
//! actions: retry all failed, pause, resume, clean old finished jobs, promote all delayed jobs,
//! empty; pause and resume every queue at once. A queue's history (throughput and latency per
//! kind over 1 h, 24 h or 14 days: `/api/queues/{queue}/history`) is charted on its page.

use std::time::Duration;

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, Path, Query, State},
    response::Response,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Action, BoardError, BoardState, NoBody, Viewer,
    error::PageResult,
    jobs::JobRow,
    pages::{Nav, render},
};
use crate::{
    Queues,
    queue::{History, JobState, Queue, QueueCounts, RedisInfo, Window},
};

/// Jobs per page.
const PAGE_SIZE: usize = 25;
/// Jobs one search request looks at (bounded so a search never blocks Redis for long).
const SEARCH_BUDGET: usize = 20_000;
/// A worker counts as alive when it polled within this.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// One queue as the queue list (and a host's overview) shows it.
#[derive(Serialize)]
pub struct QueueSummary {
    /// The declared queue's name.
    pub name: &'static str,
    /// Jobs per state, and the paused flag.
    #[serde(flatten)]
    pub counts: QueueCounts,
    /// Jobs completed in the last hour.
    pub completed_last_hour: u64,
    /// Jobs failed in the last hour.
    pub failed_last_hour: u64,
    /// Failed / finished in the last hour, in percent (0 when nothing finished).
    pub failure_rate: f64,
    /// Workers seen polling in the last 30 s.
    pub workers: Vec<String>,
    /// The rate limit in force for every worker (`100/1s`), if any: as kept in Redis (declared
    /// by code or the environment, or changed from the board).
    pub rate_limit: Option<String>,
    /// Jobs of the queue running at once at most, across every worker process, if limited (as
    /// kept in Redis, like `rate_limit`).
    pub global_concurrency: Option<u32>,
    /// How long the next waiting job has waited since it became due (ms), `None` when none waits.
    pub oldest_waiting_ms: Option<i64>,
}

async fn summary(queue: &Queue) -> Result<QueueSummary, BoardError> {
    let counts = queue.counts().await?;
    let (completed, failed) = queue.finished_since(crate::queue::now_ms() - 3_600_000).await?;
    let workers = queue.workers(ALIVE_WITHIN).await?.into_iter().map(|(name, _)| name).collect();
    let limits = queue.limits().await?;
    let finished = completed + failed;
    let failure_rate = if finished == 0 { 0.0 } else { failed as f64 * 100.0 / finished as f64 };
    Ok(QueueSummary {
        name: queue.name,
        counts,
        completed_last_hour: completed,
        failed_last_hour: failed,
        failure_rate,
        workers,
        rate_limit: limits.rate_limit.map(|limit| limit.to_string()),
        global_concurrency: limits.global_concurrency,
        oldest_waiting_ms: queue.oldest_waiting_ms().await?,
    })
}

/// Every declared queue's summary, in declaration order: what `/api/queues` answers, for a host
/// page that shows the queues beside its own figures.
pub async fn queue_summaries(queues: &Queues) -> Result<Vec<QueueSummary>, BoardError> {
    let mut all = Vec::new();
    for queue in queues.all() {
        all.push(summary(queue).await?);
    }
    Ok(all)
}

/// `GET /api/queues`
pub(crate) async fn api_queues(
    _: Viewer,
    State(board): State<BoardState>,
) -> Result<Json<Vec<QueueSummary>>, BoardError> {
    Ok(Json(queue_summaries(&board.queues).await?))
}

#[derive(Template)]
#[template(path = "board/queues.html")]
struct QueuesPage {
    nav: Nav,
    queues: Vec<QueueSummary>,
    /// The Redis panel: one entry per master.
    redis: Vec<RedisInfo>,
}

/// `GET /api/redis`: `{"nodes": [RedisInfo]}`, one per master (one on a single node).
pub(crate) async fn api_redis(
    _: Viewer,
    State(board): State<BoardState>,
) -> Result<Json<serde_json::Value>, BoardError> {
    Ok(Json(json!({ "nodes": board.queues.redis_info().await? })))
}

/// `GET /queues` (and `/` unless the host has its own front page)
pub(crate) async fn list_page(
    viewer: Viewer,
    State(board): State<BoardState>,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let queues = queue_summaries(&board.queues).await?;
    let redis = board.queues.redis_info().await?;
    render(&QueuesPage { nav: Nav::new(&board, &viewer, "queues", &uri), queues, redis })
}

/// The job list's query string.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    /// Payload search text.
    q: Option<String>,
    /// The history's window (`1h`, `24h`, `14d`).
    window: Option<String>,
}

/// One page of a job list.
#[derive(Serialize)]
pub struct JobList {
    /// The queue listed.
    pub queue: &'static str,
    /// The state listed.
    pub state: JobState,
    /// This page's jobs.
    pub jobs: Vec<JobRow>,
    /// Jobs in this state (without a search).
    pub total: u64,
    /// Where this page starts.
    pub offset: usize,
    /// Jobs per page.
    pub limit: usize,
    /// The payload search text (empty for none).
    pub query: String,
    /// Where the next page starts (`None` on the last page).
    pub next_offset: Option<usize>,
    /// Where the previous page starts (`None` on the first page, and with a search).
    pub prev_offset: Option<usize>,
    /// With a search: how many jobs were looked at to fill this page.
    pub scanned_to: Option<usize>,
}

async fn list(queues: &Queues, name: &str, query: &ListQuery) -> Result<JobList, BoardError> {
    let queue = queues.named(name)?;
    let job_state: JobState = query.state.as_deref().unwrap_or("failed").parse().map_err(BoardError::Invalid)?;
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
        if let Some(record) = queues.job(&id).await? {
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

fn count_of(counts: &QueueCounts, state: JobState) -> u64 {
    match state {
        JobState::Waiting => counts.waiting,
        JobState::WaitingChildren => counts.waiting_children,
        JobState::Delayed => counts.delayed,
        JobState::Active => counts.active,
        JobState::Completed => counts.completed,
        JobState::Failed | JobState::Cancelled => counts.failed,
    }
}

/// `GET /api/queues/{queue}/jobs?state=&offset=&limit=&q=`
pub(crate) async fn api_jobs(
    _: Viewer,
    State(board): State<BoardState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobList>, BoardError> {
    Ok(Json(list(&board.queues, &name, &query).await?))
}

/// The history's query string.
#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    window: Option<String>,
}

/// `GET /api/queues/{queue}/history?window=1h|24h|14d`: completed, retried and failed attempts per
/// step (per kind too), and the wait, run and end-to-end percentiles per kind over the window.
pub(crate) async fn api_history(
    _: Viewer,
    State(board): State<BoardState>,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<History>, BoardError> {
    let window: Window = query.window.as_deref().unwrap_or("1h").parse().map_err(BoardError::Invalid)?;
    Ok(Json(board.queues.named(&name)?.history(window).await?))
}

#[derive(Template)]
#[template(path = "board/queue.html")]
struct QueuePage {
    nav: Nav,
    summary: QueueSummary,
    list: JobList,
    states: Vec<(&'static str, u64)>,
    /// Every declared queue's name, from the catalog.
    queue_names: Vec<&'static str>,
    /// The history shown under the counts (the chart redraws it live from the JSON API).
    history: History,
    /// The windows the history can show.
    windows: [Window; 3],
    /// This queue's place in `/api/queues` (the counts under `data-live` are read from there).
    live_index: usize,
}

/// `GET /queues/{queue}?state=&offset=&q=`
pub(crate) async fn page(
    viewer: Viewer,
    State(board): State<BoardState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let list = list(&board.queues, &name, &query).await?;
    let summary = summary(board.queues.named(&name)?).await?;
    let states = JobState::ALL.iter().map(|s| (s.as_str(), count_of(&summary.counts, *s))).collect();
    let queue_names = board.queues.catalog().queue_names();
    let window: Window = query.window.as_deref().unwrap_or("1h").parse().map_err(BoardError::Invalid)?;
    let history = board.queues.named(&name)?.history(window).await?;
    let live_index = board.queues.all().iter().position(|queue| queue.name == summary.name).unwrap_or_default();
    render(&QueuePage {
        nav: Nav::new(&board, &viewer, "queues", &uri),
        summary,
        list,
        states,
        queue_names,
        history,
        windows: Window::ALL,
        live_index,
    })
}

/// `POST /api/queues/{queue}/retry-failed`: every failed job back to waiting.
pub(crate) async fn retry_all(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = async {
        let queue = board.queues.named(&name)?;
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

/// `POST /api/queues/{queue}/pause`
pub(crate) async fn pause(board: State<BoardState>, name: Path<String>, action: Action<NoBody>) -> Response {
    set_paused(board, name, action, true).await
}

/// `POST /api/queues/{queue}/resume`
pub(crate) async fn resume(board: State<BoardState>, name: Path<String>, action: Action<NoBody>) -> Response {
    set_paused(board, name, action, false).await
}

async fn set_paused(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
    paused: bool,
) -> Response {
    let result = async {
        board.queues.named(&name)?.set_paused(paused).await?;
        let word = if paused { "paused" } else { "resumed" };
        Ok((format!("Queue {name} {word}."), json!({ "queue": name, "paused": paused })))
    }
    .await;
    action.respond(if paused { "queue.pause" } else { "queue.resume" }, &name, result)
}

/// The fields of a bulk clean: which finished jobs, and how old.
#[derive(Deserialize)]
pub(crate) struct CleanBody {
    /// `completed` or `failed` (cancelled jobs are kept, and cleaned, with the failed ones).
    state: String,
    /// A duration such as `1h`, `7d`, `30m`: jobs that finished longer ago than this go.
    older_than: String,
}

/// The state and age of a clean, checked.
fn clean_fields(body: &CleanBody) -> Result<(JobState, Duration), BoardError> {
    let state = match body.state.trim() {
        "completed" => JobState::Completed,
        "failed" => JobState::Failed,
        other => {
            return Err(BoardError::Invalid(format!("state {other:?}: only completed or failed jobs are cleaned")));
        }
    };
    let age = humantime::parse_duration(body.older_than.trim()).map_err(|_| {
        BoardError::Invalid(format!("older_than {:?}: expected an age such as 30m, 1h or 7d", body.older_than))
    })?;
    Ok((state, age))
}

/// `POST /api/queues/{queue}/clean` (`state`, `older_than`; confirm): deletes the completed or
/// failed jobs that finished longer ago than `older_than`, with their logs.
pub(crate) async fn clean(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<CleanBody>,
) -> Response {
    let checked = board.queues.named(&name).map_err(BoardError::from).and_then(|queue| {
        let (state, age) = clean_fields(&action.body)?;
        Ok((queue, state, age))
    });
    let (queue, state, age) = match checked {
        Ok(checked) => checked,
        Err(error) => return action.respond("queue.clean", &name, Err(error)),
    };
    let older_than = action.body.older_than.trim().to_owned();
    let question = format!(
        "Remove the {state} jobs of queue {name} that finished more than {older_than} ago? They are deleted \
         for good, with their logs."
    );
    if let Some(ask) = action.unconfirmed("queue.clean", &name, &question) {
        return ask;
    }
    let result = async {
        let removed = queue.clean(state, age).await?;
        let message = format!("{removed} {state} job(s) of queue {name} older than {older_than} removed.");
        Ok((message, json!({ "queue": name, "state": state, "older_than": older_than, "removed": removed })))
    }
    .await;
    action.respond("queue.clean", &name, result)
}

/// `POST /api/queues/pause-all`: every queue stops fetching; running jobs finish.
pub(crate) async fn pause_all(board: State<BoardState>, action: Action<NoBody>) -> Response {
    set_all_paused(board, action, true).await
}

/// `POST /api/queues/resume-all`
pub(crate) async fn resume_all(board: State<BoardState>, action: Action<NoBody>) -> Response {
    set_all_paused(board, action, false).await
}

async fn set_all_paused(State(board): State<BoardState>, action: Action<NoBody>, paused: bool) -> Response {
    let result = async {
        let queues = board.queues.set_all_paused(paused).await?;
        let word = if paused { "paused" } else { "resumed" };
        Ok((format!("All {} queue(s) {word}.", queues.len()), json!({ "queues": queues, "paused": paused })))
    }
    .await;
    action.respond(if paused { "queues.pause_all" } else { "queues.resume_all" }, "all queues", result)
}

/// `POST /api/queues/{queue}/promote-all`: every delayed job runs now, the soonest due first.
pub(crate) async fn promote_all(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = async {
        let promoted = board.queues.named(&name)?.promote_all().await?;
        Ok((format!("{promoted} delayed job(s) of queue {name} promoted."), json!({ "promoted": promoted })))
    }
    .await;
    action.respond("queue.promote_all", &name, result)
}

/// `POST /api/queues/{queue}/empty` (confirm): deletes every waiting and delayed job.
pub(crate) async fn empty(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let queue = match board.queues.named(&name) {
        Ok(queue) => queue,
        Err(error) => return action.respond("queue.empty", &name, Err(error.into())),
    };
    let question = format!(
        "Empty queue {name}? Every waiting and delayed job is deleted for good (running and finished jobs stay)."
    );
    if let Some(ask) = action.unconfirmed("queue.empty", &name, &question) {
        return ask;
    }
    let result = async {
        let removed = queue.empty().await?;
        Ok((
            format!("Queue {name} emptied: {removed} waiting or delayed job(s) removed."),
            json!({ "removed": removed }),
        ))
    }
    .await;
    action.respond("queue.empty", &name, result)
}
