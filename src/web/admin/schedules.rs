//! Schedules in the admin view: each entry of `scheduler.toml` with its cron expression, timezone,
//! misfire policy, last run and next run, and "run now" (`/admin/schedules`,
//! `/admin/api/schedules`, `POST /admin/api/schedules/{name}/run`).

use askama::Template;
use axum::{
    Json,
    extract::{Path, State},
    http::Uri,
    response::Response,
};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::{
    action::{Action, NoBody},
    error::PageResult,
    pages::{Nav, render},
};
use crate::{
    scheduler::{Misfire, Scheduler, config},
    web::{ApiError, AppState, auth::Principal},
};

/// One schedule as listed.
#[derive(Serialize)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub misfire: &'static str,
    pub job_type: String,
    /// The last tick enqueued (or skipped by the misfire policy), RFC 3339 UTC.
    pub last_run: Option<String>,
    /// The job the schedule enqueued last and how it went (its state, and its error when failed;
    /// `removed` once retention dropped it).
    pub last_job: Option<String>,
    pub last_outcome: Option<String>,
    pub next_run: Option<String>,
}

/// A job's state as a schedule's outcome.
async fn outcome(state: &AppState, id: &str) -> Result<String, ApiError> {
    Ok(match state.queues.job(id).await? {
        None => "removed".to_owned(),
        Some(job) => match (job.state.as_str(), job.last_error()) {
            ("failed", Some(error)) => format!("failed: {error}"),
            (state, _) => state.to_owned(),
        },
    })
}

/// The scheduler of `EVENTMILL_SCHEDULER_FILE`, read afresh (a bad file is shown, not hidden).
fn scheduler(state: &AppState) -> Result<Scheduler, ApiError> {
    let file = &state.settings.scheduler_file;
    let schedules = config::load(file, state.queues.catalog())
        .map_err(|e| ApiError::Conflict(format!("{}: {e}", file.display())))?;
    Ok(Scheduler::new(schedules, state.queues.clone(), state.redis.clone(), &state.settings.redis.prefix))
}

async fn rows(state: &AppState) -> Result<Vec<ScheduleRow>, ApiError> {
    let scheduler = scheduler(state)?;
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
                Some(id) => Some(outcome(state, id).await?),
                None => None,
            },
            last_job,
            next_run: s.cron.next_after(now).map(text),
        });
    }
    Ok(rows)
}

/// `GET /admin/api/schedules`
pub async fn api(_: Principal, State(state): State<AppState>) -> Result<Json<Vec<ScheduleRow>>, ApiError> {
    Ok(Json(rows(&state).await?))
}

#[derive(Template)]
#[template(path = "admin/schedules.html")]
struct SchedulesPage {
    nav: Nav,
    schedules: Vec<ScheduleRow>,
}

/// `GET /admin/schedules`
pub async fn page(principal: Principal, State(state): State<AppState>, uri: Uri) -> PageResult {
    let schedules = rows(&state).await?;
    render(&SchedulesPage { nav: Nav::new(&principal, "schedules", &uri), schedules })
}

/// `POST /admin/api/schedules/{name}/run`: enqueues the schedule's job now.
pub async fn run_now(State(state): State<AppState>, Path(name): Path<String>, action: Action<NoBody>) -> Response {
    let result = async {
        let done = scheduler(&state)?.run_now(&name).await?;
        Ok((format!("Schedule {name} run now: job {} enqueued.", done.id), json!({ "id": done.id })))
    }
    .await;
    action.respond("schedule.run_now", &name, result)
}
