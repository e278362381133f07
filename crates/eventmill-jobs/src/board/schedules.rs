//! Schedules on the board: each schedule of the host's [`ScheduleSource`](super::ScheduleSource)
//! with its cron expression, timezone, misfire policy, last run, last job and next run, and
//! "run now" (`/schedules`, `/api/schedules`, `POST /api/schedules/{name}/run`).

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    response::Response,
};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::{
    Action, BoardError, BoardState, NoBody, Viewer,
    error::PageResult,
    pages::{Nav, render},
};
use crate::scheduler::{Misfire, Scheduler};

/// One schedule as listed.
#[derive(Serialize)]
pub struct ScheduleRow {
    /// The schedule's name.
    pub name: String,
    /// Its cron expression.
    pub cron: String,
    /// The timezone its ticks follow.
    pub timezone: String,
    /// `run_once` or `skip`.
    pub misfire: &'static str,
    /// The kind of job it enqueues.
    pub job_type: String,
    /// The last tick enqueued (or skipped by the misfire policy), RFC 3339 UTC.
    pub last_run: Option<String>,
    /// The job the schedule enqueued last.
    pub last_job: Option<String>,
    /// How that job went: its state, with its error when failed; `removed` once retention
    /// dropped it.
    pub last_outcome: Option<String>,
    /// The next tick, RFC 3339 UTC.
    pub next_run: Option<String>,
}

/// A job's state as a schedule's outcome.
async fn outcome(board: &BoardState, id: &str) -> Result<String, BoardError> {
    Ok(match board.queues.job(id).await? {
        None => "removed".to_owned(),
        Some(job) => match (job.state.as_str(), job.last_error()) {
            ("failed", Some(error)) => format!("failed: {error}"),
            (state, _) => state.to_owned(),
        },
    })
}

/// The host's schedules, read afresh (a bad file is shown, not hidden); `None` without a source.
fn scheduler(board: &BoardState) -> Result<Option<Scheduler>, BoardError> {
    board.schedules.as_ref().map(|source| source().map_err(BoardError::Conflict)).transpose()
}

async fn rows(board: &BoardState) -> Result<Vec<ScheduleRow>, BoardError> {
    let Some(scheduler) = scheduler(board)? else { return Ok(Vec::new()) };
    let now = Utc::now();
    let mut rows = Vec::new();
    for s in &scheduler.schedules {
        let text = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let last_job = scheduler.last_job(&s.name).await?;
        rows.push(ScheduleRow {
            name: s.name.clone(),
            cron: s.cron.expression.clone(),
            timezone: s.cron.timezone.name().to_owned(),
            misfire: match s.misfire {
                Misfire::RunOnce => "run_once",
                Misfire::Skip => "skip",
            },
            job_type: s.job.kind().to_owned(),
            last_run: scheduler.last_run(&s.name).await?.map(text),
            last_outcome: match &last_job {
                Some(id) => Some(outcome(board, id).await?),
                None => None,
            },
            last_job,
            next_run: s.cron.next_after(now).map(text),
        });
    }
    Ok(rows)
}

/// `GET /api/schedules`
pub(crate) async fn api(_: Viewer, State(board): State<BoardState>) -> Result<Json<Vec<ScheduleRow>>, BoardError> {
    Ok(Json(rows(&board).await?))
}

#[derive(Template)]
#[template(path = "board/schedules.html")]
struct SchedulesPage {
    nav: Nav,
    schedules: Vec<ScheduleRow>,
}

/// `GET /schedules`
pub(crate) async fn page(viewer: Viewer, State(board): State<BoardState>, OriginalUri(uri): OriginalUri) -> PageResult {
    let schedules = rows(&board).await?;
    render(&SchedulesPage { nav: Nav::new(&board, &viewer, "schedules", &uri), schedules })
}

/// `POST /api/schedules/{name}/run`: enqueues the schedule's job now.
pub(crate) async fn run_now(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = async {
        let scheduler = scheduler(&board)?.ok_or_else(|| BoardError::NotFound("this board has no schedules".into()))?;
        let done = scheduler.run_now(&name).await?;
        Ok((format!("Schedule {name} run now: job {} enqueued.", done.id), json!({ "id": done.id })))
    }
    .await;
    action.respond("schedule.run_now", &name, result)
}
