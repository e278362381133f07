//! One job in the admin view: its detail (payload, attempts, every error, progress, timestamps,
//! duration; `/admin/jobs/{id}`, `/admin/api/jobs/{id}`), the job actions (retry, remove, promote)
//! and enqueueing a job from a form (`/admin/enqueue`), checked as strictly as a job file.

use askama::Template;
use axum::{
    Json,
    extract::{Path, State},
    http::Uri,
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    action::{Action, NoBody},
    error::PageResult,
    pages::{Nav, render},
};
use eventmill_jobs::job::{JobOptions, JobTemplate, PlannedJob};

use crate::{
    queue::{Cancelled, Catalog, JobRecord, JobState},
    web::{ApiError, AppState, auth::Principal},
};

/// Characters of a payload shown in a list row.
const PREVIEW_CHARS: usize = 160;

/// Unix ms as an RFC 3339 UTC time (empty for none).
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// A job as one list row.
#[derive(Serialize)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub state: JobState,
    pub payload: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: u8,
    pub last_error: String,
    pub created: String,
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
    #[serde(flatten)]
    pub job: JobRecord,
    /// Milliseconds from the last start to the end (or to now while running).
    pub duration_ms: Option<i64>,
}

async fn detail(state: &AppState, id: &str) -> Result<JobDetail, ApiError> {
    let job = state.queues.job(id).await?.ok_or_else(|| ApiError::NotFound(format!("no job with id {id}")))?;
    let end = job.finished_at.or_else(|| (job.state == JobState::Active).then(crate::queue::now_ms));
    let duration_ms = job.started_at.zip(end).map(|(start, end)| end - start);
    Ok(JobDetail { job, duration_ms })
}

/// `GET /admin/api/jobs/{id}`
pub async fn api_job(
    _: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    Ok(Json(detail(&state, &id).await?))
}

#[derive(Template)]
#[template(path = "admin/job.html")]
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

/// `GET /admin/jobs/{id}`
pub async fn page(principal: Principal, State(state): State<AppState>, Path(id): Path<String>, uri: Uri) -> PageResult {
    let job = detail(&state, &id).await?;
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
    let log = state.queues.log(&id).await.map_err(ApiError::from)?;
    let mut children = Vec::with_capacity(job.job.children.len());
    for child in &job.job.children {
        let state = state.queues.job(child).await.map_err(ApiError::from)?;
        children.push((child.clone(), state.map_or("removed".to_owned(), |c| c.state.to_string())));
    }
    let nav = Nav::new(&principal, "queues", &uri);
    render(&JobPage { nav, job, payload, result, errors, times, log, children })
}

/// The job of `id` and its queue, for actions.
async fn queue_of<'a>(state: &'a AppState, id: &str) -> Result<&'a crate::queue::Queue, ApiError> {
    Ok(state.queues.queue_of(id).await?)
}

/// `POST /admin/api/jobs/{id}/retry`: a failed job back to waiting.
pub async fn retry(State(state): State<AppState>, Path(id): Path<String>, action: Action<NoBody>) -> Response {
    let result = async {
        match queue_of(&state, &id).await?.retry_failed(Some(&id), 1).await? {
            1 => Ok((format!("Job {id} retried."), json!({ "retried": 1 }))),
            _ => Err(ApiError::Conflict(format!("job {id} is not failed"))),
        }
    }
    .await;
    action.respond("job.retry", &id, result)
}

/// `POST /admin/api/jobs/{id}/remove`
pub async fn remove(State(state): State<AppState>, Path(id): Path<String>, action: Action<NoBody>) -> Response {
    if let Some(ask) = action.unconfirmed("job.remove", &id, &format!("Remove job {id}? It is deleted for good.")) {
        return ask;
    }
    let result = async {
        match queue_of(&state, &id).await?.remove(&id).await? {
            true => Ok((format!("Job {id} removed."), json!({ "removed": 1 }))),
            false => Err(ApiError::NotFound(format!("no job with id {id}"))),
        }
    }
    .await;
    action.respond("job.remove", &id, result)
}

/// `POST /admin/api/jobs/{id}/cancel`: a waiting or delayed job is removed, a running one is
/// asked to stop and ends `cancelled`.
pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>, action: Action<NoBody>) -> Response {
    let question = format!("Cancel job {id}? A waiting job is removed, a running one is stopped.");
    if let Some(ask) = action.unconfirmed("job.cancel", &id, &question) {
        return ask;
    }
    let result = async {
        match queue_of(&state, &id).await?.cancel(&id).await? {
            Cancelled::Removed => {
                Ok((format!("Job {id} cancelled: removed before it ran."), json!({ "cancelled": "removed" })))
            }
            Cancelled::Running => {
                Ok((format!("Job {id} cancelled: it is asked to stop."), json!({ "cancelled": "running" })))
            }
            Cancelled::AlreadyFinished(state) => {
                Err(ApiError::Conflict(format!("job {id} is {state}: nothing to cancel")))
            }
        }
    }
    .await;
    action.respond("job.cancel", &id, result)
}

/// `POST /admin/api/jobs/{id}/promote`: a delayed job runs now.
pub async fn promote(State(state): State<AppState>, Path(id): Path<String>, action: Action<NoBody>) -> Response {
    let result = async {
        match queue_of(&state, &id).await?.promote_job(&id).await? {
            true => Ok((format!("Job {id} promoted: it runs next."), json!({ "promoted": 1 }))),
            false => Err(ApiError::Conflict(format!("job {id} is not delayed"))),
        }
    }
    .await;
    action.respond("job.promote", &id, result)
}

/// The enqueue form: a job file's text (TOML or JSON), optionally delayed.
#[derive(Deserialize)]
pub struct EnqueueForm {
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

/// Parses a job file's text exactly as `eventmill enqueue --file` does (`JobTemplate`: one object,
/// `job_type` of a registered kind plus that kind's fields, unknown fields refused, relative dates
/// resolved now).
pub fn parse_job(text: &str, registry: &Catalog) -> Result<PlannedJob, String> {
    let trimmed = text.trim();
    let value: serde_json::Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| format!("invalid job (JSON): {e}"))?
    } else {
        toml::from_str(trimmed).map_err(|e| format!("invalid job (TOML): {e}"))?
    };
    JobTemplate::from_value(value, registry)?.plan(Utc::now())
}

/// `POST /admin/api/enqueue`
pub async fn enqueue(State(state): State<AppState>, action: Action<EnqueueForm>) -> Response {
    let result = async {
        let mut plan = parse_job(&action.body.job, state.queues.catalog()).map_err(ApiError::Invalid)?;
        let delay = match action.body.delay_seconds.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => Some(std::time::Duration::from_secs(
                d.parse().map_err(|_| ApiError::Invalid(format!("delay {d:?} is not a number of seconds")))?,
            )),
        };
        let origin = format!("admin:{}", action.principal.fingerprint);
        let key = action.body.key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
        let priority = match action.body.priority.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| ApiError::Invalid(format!("priority {p:?} is not a whole number")))?),
        };
        let form = JobOptions { priority, delay, key, key_window: None };
        plan.options = plan.options.or(form);
        plan.options.check().map_err(ApiError::Invalid)?;
        let options = plan.options.enqueue_options(&origin);
        let done = state.queues.enqueue_planned(&plan, options).await?;
        Ok((format!("Job {} enqueued.", done.id), json!({ "id": done.id, "created": done.created })))
    }
    .await;
    action.respond("job.enqueue", "new", result)
}

#[derive(Template)]
#[template(path = "admin/enqueue.html")]
struct EnqueuePage {
    nav: Nav,
}

/// `GET /admin/enqueue`
pub async fn enqueue_page(principal: Principal, uri: Uri) -> PageResult {
    render(&EnqueuePage { nav: Nav::new(&principal, "enqueue", &uri) })
}
