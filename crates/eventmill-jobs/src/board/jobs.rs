//! One job on the board: its detail (payload, attempts, every error, progress, timestamps,
//! duration; `/jobs/{id}`, `/api/jobs/{id}`), the job actions (retry, remove, cancel, promote)
//! and enqueueing a job from a form (`/enqueue`), checked as strictly as a job file, with the
//! kinds and queues of the catalog.

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Action, BoardError, BoardState, NoBody, Viewer,
    error::PageResult,
    pages::{Nav, render},
};
use crate::{
    Catalog, Queues,
    job::{JobOptions, JobTemplate, PlannedJob},
    queue::{Cancelled, JobRecord, JobState, Queue},
};

/// Characters of a payload shown in a list row.
const PREVIEW_CHARS: usize = 160;

/// Unix ms as an RFC 3339 UTC time (empty for none).
fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// A job as one row of a job list.
#[derive(Serialize)]
pub struct JobRow {
    /// The job's id.
    pub id: String,
    /// Its kind's name.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// The payload's JSON, cut after 160 characters.
    pub payload: String,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Progress in percent.
    pub progress: u8,
    /// The last attempt's error (empty for none).
    pub last_error: String,
    /// When it was enqueued (RFC 3339 UTC).
    pub created: String,
    /// When it finished (empty while not finished).
    pub finished: String,
}

impl From<&JobRecord> for JobRow {
    fn from(job: &JobRecord) -> Self {
        let payload = job.payload.to_string();
        let payload = match payload.char_indices().nth(PREVIEW_CHARS) {
            Some((cut, _)) => format!("{}…", &payload[..cut]),
            None => payload,
        };
        Self {
            id: job.id.clone(),
            kind: job.kind.clone(),
            state: job.state,
            payload,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            progress: job.progress,
            last_error: job.last_error().unwrap_or_default().to_owned(),
            created: time(Some(job.created_at)),
            finished: time(job.finished_at),
        }
    }
}

/// A job with its derived duration, as the detail API answers it.
#[derive(Serialize)]
pub struct JobDetail {
    /// The job as stored.
    #[serde(flatten)]
    pub job: JobRecord,
    /// Milliseconds from the last start to the end (or to now while running).
    pub duration_ms: Option<i64>,
}

async fn detail(queues: &Queues, id: &str) -> Result<JobDetail, BoardError> {
    let job = queues.job(id).await?.ok_or_else(|| BoardError::NotFound(format!("no job with id {id}")))?;
    let end = job.finished_at.or_else(|| (job.state == JobState::Active).then(crate::queue::now_ms));
    let duration_ms = job.started_at.zip(end).map(|(start, end)| end - start);
    Ok(JobDetail { job, duration_ms })
}

/// `GET /api/jobs/{id}`
pub(crate) async fn api_job(
    _: Viewer,
    State(board): State<BoardState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, BoardError> {
    Ok(Json(detail(&board.queues, &id).await?))
}

#[derive(Template)]
#[template(path = "board/job.html")]
struct JobPage {
    nav: Nav,
    job: JobDetail,
    payload: String,
    result: String,
    errors: Vec<(u32, String, String, String)>,
    times: Vec<(&'static str, String)>,
    /// The processor's log lines, oldest first.
    log: Vec<String>,
    /// A flow parent's children: id and state (`removed` when no longer kept).
    children: Vec<(String, String)>,
}

/// `GET /jobs/{id}`
pub(crate) async fn page(
    viewer: Viewer,
    State(board): State<BoardState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let job = detail(&board.queues, &id).await?;
    let payload = serde_json::to_string_pretty(&job.job.payload).unwrap_or_default();
    let result =
        job.job.result.as_ref().map(|r| serde_json::to_string_pretty(r).unwrap_or_default()).unwrap_or_default();
    let errors =
        job.job.errors.iter().map(|e| (e.attempt, time(Some(e.at)), e.error.clone(), e.worker.clone())).collect();
    let times = vec![
        ("Created", time(Some(job.job.created_at))),
        ("Run at", time(job.job.run_at)),
        ("Started", time(job.job.started_at)),
        ("Finished", time(job.job.finished_at)),
    ];
    let log = board.queues.log(&id).await?;
    let mut children = Vec::with_capacity(job.job.children.len());
    for child in &job.job.children {
        let state = board.queues.job(child).await?;
        children.push((child.clone(), state.map_or("removed".to_owned(), |c| c.state.to_string())));
    }
    let nav = Nav::new(&board, &viewer, "queues", &uri);
    render(&JobPage { nav, job, payload, result, errors, times, log, children })
}

/// The queue of job `id`, for actions.
async fn queue_of<'a>(board: &'a BoardState, id: &str) -> Result<&'a Queue, BoardError> {
    Ok(board.queues.queue_of(id).await?)
}

/// `POST /api/jobs/{id}/retry`: a failed job back to waiting.
pub(crate) async fn retry(State(board): State<BoardState>, Path(id): Path<String>, action: Action<NoBody>) -> Response {
    let result = async {
        match queue_of(&board, &id).await?.retry_failed(Some(&id), 1).await? {
            1 => Ok((format!("Job {id} retried."), json!({ "retried": 1 }))),
            _ => Err(BoardError::Conflict(format!("job {id} is not failed"))),
        }
    }
    .await;
    action.respond("job.retry", &id, result)
}

/// `POST /api/jobs/{id}/remove`
pub(crate) async fn remove(
    State(board): State<BoardState>,
    Path(id): Path<String>,
    action: Action<NoBody>,
) -> Response {
    if let Some(ask) = action.unconfirmed("job.remove", &id, &format!("Remove job {id}? It is deleted for good.")) {
        return ask;
    }
    let result = async {
        match queue_of(&board, &id).await?.remove(&id).await? {
            true => Ok((format!("Job {id} removed."), json!({ "removed": 1 }))),
            false => Err(BoardError::NotFound(format!("no job with id {id}"))),
        }
    }
    .await;
    action.respond("job.remove", &id, result)
}

/// `POST /api/jobs/{id}/cancel`: a waiting or delayed job is removed, a running one is asked to
/// stop and ends `cancelled`.
pub(crate) async fn cancel(
    State(board): State<BoardState>,
    Path(id): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let question = format!("Cancel job {id}? A waiting job is removed, a running one is stopped.");
    if let Some(ask) = action.unconfirmed("job.cancel", &id, &question) {
        return ask;
    }
    let result = async {
        match queue_of(&board, &id).await?.cancel(&id).await? {
            Cancelled::Removed => {
                Ok((format!("Job {id} cancelled: removed before it ran."), json!({ "cancelled": "removed" })))
            }
            Cancelled::Running => {
                Ok((format!("Job {id} cancelled: it is asked to stop."), json!({ "cancelled": "running" })))
            }
            Cancelled::AlreadyFinished(state) => {
                Err(BoardError::Conflict(format!("job {id} is {state}: nothing to cancel")))
            }
        }
    }
    .await;
    action.respond("job.cancel", &id, result)
}

/// `POST /api/jobs/{id}/promote`: a delayed job runs now.
pub(crate) async fn promote(
    State(board): State<BoardState>,
    Path(id): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = async {
        match queue_of(&board, &id).await?.promote_job(&id).await? {
            true => Ok((format!("Job {id} promoted: it runs next."), json!({ "promoted": 1 }))),
            false => Err(BoardError::Conflict(format!("job {id} is not delayed"))),
        }
    }
    .await;
    action.respond("job.promote", &id, result)
}

/// The enqueue form: a job file's text (TOML or JSON), optionally delayed.
#[derive(Deserialize)]
pub(crate) struct EnqueueForm {
    job: String,
    #[serde(default)]
    delay_seconds: Option<String>,
    /// Deduplication key (24 h window, as `enqueue --key`).
    #[serde(default)]
    key: Option<String>,
    /// 1 runs first (as `enqueue --priority`); empty = none.
    #[serde(default)]
    priority: Option<String>,
}

/// Parses a job file's text exactly as `enqueue --file` does (`JobTemplate`: one object,
/// `job_type` of a registered kind plus that kind's fields, unknown fields refused, relative
/// dates resolved now).
fn parse_job(text: &str, catalog: &Catalog) -> Result<PlannedJob, String> {
    let trimmed = text.trim();
    let value: serde_json::Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| format!("invalid job (JSON): {e}"))?
    } else {
        toml::from_str(trimmed).map_err(|e| format!("invalid job (TOML): {e}"))?
    };
    JobTemplate::from_value(value, catalog)?.plan(Utc::now())
}

/// An optional form field: `None` when empty, else parsed (`what` names the field when not).
fn optional<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<Option<T>, BoardError> {
    match field.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            BoardError::Invalid(format!(
                "{what} {v:?} is not {}",
                match what {
                    "delay" => "a number of seconds",
                    _ => "a whole number",
                }
            ))
        }),
    }
}

/// `POST /api/enqueue`
pub(crate) async fn enqueue(State(board): State<BoardState>, action: Action<EnqueueForm>) -> Response {
    let result = async {
        let form = &action.body;
        let mut plan = parse_job(&form.job, board.queues.catalog()).map_err(BoardError::Invalid)?;
        let delay = optional::<u64>(form.delay_seconds.as_deref(), "delay")?.map(std::time::Duration::from_secs);
        let origin = format!("admin:{}", action.viewer.name);
        let key = form.key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
        let priority = optional(form.priority.as_deref(), "priority")?;
        plan.options = plan.options.or(JobOptions { priority, delay, key, key_window: None });
        plan.options.check().map_err(BoardError::Invalid)?;
        let options = plan.options.enqueue_options(&origin);
        let done = board.queues.enqueue_planned(&plan, options).await?;
        Ok((format!("Job {} enqueued.", done.id), json!({ "id": done.id, "created": done.created })))
    }
    .await;
    action.respond("job.enqueue", "new", result)
}

/// One registered kind as the enqueue page lists it.
struct KindRow {
    name: &'static str,
    queue: &'static str,
    /// The payload fields that may be relative (`yesterday`, `-1h`).
    relative: String,
}

#[derive(Template)]
#[template(path = "board/enqueue.html")]
struct EnqueuePage {
    nav: Nav,
    kinds: Vec<KindRow>,
    /// A job file to start from: the first kind, its relative fields filled in.
    example: String,
}

/// `GET /enqueue`
pub(crate) async fn enqueue_page(
    viewer: Viewer,
    State(board): State<BoardState>,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let catalog = board.queues.catalog();
    let kinds: Vec<KindRow> = catalog
        .kinds()
        .map(|k| KindRow {
            name: k.name(),
            queue: k.queue(),
            relative: k.date_fields().iter().chain(k.time_fields()).copied().collect::<Vec<_>>().join(", "),
        })
        .collect();
    let example = catalog.kinds().next().map_or_else(String::new, |k| {
        let dates = k.date_fields().iter().map(|f| format!("\n{f} = \"yesterday\""));
        let times = k
            .time_fields()
            .iter()
            .enumerate()
            .map(|(i, f)| format!("\n{f} = \"{}\"", if i == 0 { "-1h" } else { "now" }));
        format!("job_type = \"{}\"{}", k.name(), dates.chain(times).collect::<String>())
    });
    render(&EnqueuePage { nav: Nav::new(&board, &viewer, "enqueue", &uri), kinds, example })
}
