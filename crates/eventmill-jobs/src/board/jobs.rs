//! One job on the board: its row in a list (with its timeline: added, waited, started, ran,
//! finished), its detail (payload, attempts, every error, progress, timestamps,
//! duration; `/jobs/{id}`, `/api/jobs/{id}`) and the job actions (retry, remove, cancel, promote).

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{
    Action, BoardError, BoardState, NoBody, Viewer,
    error::PageResult,
    pages::{Nav, render},
};
use crate::{
    Queues,
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
    /// When its last attempt started (empty before it ran).
    pub started: String,
    /// When it finished (empty while not finished).
    pub finished: String,
    /// How long it waited before its last attempt started: from its run-at time (delayed jobs,
    /// retries) or else from when it was added; `None` before it ran.
    pub waited_ms: Option<i64>,
    /// How long its last attempt ran, start to finish; `None` until it finished.
    pub ran_ms: Option<i64>,
}

impl JobRow {
    /// [`waited_ms`](Self::waited_ms) for people (`1.2 s`), empty for none.
    pub fn waited(&self) -> String {
        self.waited_ms.map(human_ms).unwrap_or_default()
    }

    /// [`ran_ms`](Self::ran_ms) for people (`3 min 4 s`), empty for none.
    pub fn ran(&self) -> String {
        self.ran_ms.map(human_ms).unwrap_or_default()
    }
}

/// A duration for people: `850 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn human_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let (s, min, h, d) = (ms / 1000, ms / 60_000, ms / 3_600_000, ms / 86_400_000);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{}.{} s", s, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{min} min {} s", s % 60),
        3_600_000..86_400_000 => format!("{h} h {} min", min % 60),
        _ => format!("{d} d {} h", h % 24),
    }
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
            started: time(job.started_at),
            finished: time(job.finished_at),
            waited_ms: job.started_at.map(|started| (started - job.run_at.unwrap_or(job.created_at)).max(0)),
            ran_ms: job.started_at.zip(job.finished_at).map(|(started, finished)| (finished - started).max(0)),
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
    /// How long it waited before its last attempt started (see [`JobRow::waited_ms`]).
    pub waited_ms: Option<i64>,
    /// How long its last attempt ran, start to finish (see [`JobRow::ran_ms`]).
    pub ran_ms: Option<i64>,
    /// The flow the job belongs to, from its parent down (absent for a job in no flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<crate::queue::FlowNode>,
}

async fn detail(queues: &Queues, id: &str) -> Result<JobDetail, BoardError> {
    let job = queues.job(id).await?.ok_or_else(|| BoardError::NotFound(format!("no job with id {id}")))?;
    let end = job.finished_at.or_else(|| (job.state == JobState::Active).then(crate::queue::now_ms));
    let duration_ms = job.started_at.zip(end).map(|(start, end)| end - start);
    let flow = queues.flow(id).await?;
    let row = JobRow::from(&job);
    Ok(JobDetail { job, duration_ms, waited_ms: row.waited_ms, ran_ms: row.ran_ms, flow })
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
    /// The job as a list row: its timeline (added, waited, started, ran, finished).
    row: JobRow,
    /// Its data may be edited (waiting, delayed, failed or cancelled).
    editable: bool,
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
    let (row, editable) = (JobRow::from(&job.job), super::edit::editable(job.job.state));
    render(&JobPage { nav, job, payload, result, errors, times, log, children, row, editable })
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

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn durations_read_as_people_say_them() {
        let cases = [(0, "0 ms"), (850, "850 ms"), (1_234, "1.2 s"), (184_000, "3 min 4 s")];
        let more = [(7_500_000, "2 h 5 min"), (273_600_000, "3 d 4 h"), (-5, "0 ms")];
        for (ms, text) in cases.into_iter().chain(more) {
            assert_eq!(human_ms(ms), text);
        }
    }
}
