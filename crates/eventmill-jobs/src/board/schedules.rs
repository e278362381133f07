//! Schedules on the board: every schedule of the host's [`ScheduleSource`](super::ScheduleSource),
//! `scheduler.toml`'s (read-only) and the run-time ones in Redis together, each with its timing,
//! source, pause, runs of its limit, last and next run in human time (exact UTC on hover), and
//! its actions: run now, pause, resume, remove (run-time ones, confirmed), add (a form and the
//! JSON API). A schedule's own page shows its ledger: each due tick, when its job was enqueued
//! and how late, the job and its outcome, the skipped ticks with why.
//!
//! Routes: `/schedules`, `/schedules/{name}`; `GET /api/schedules`, `GET /api/schedules/{name}`,
//! `POST /api/schedules` (add or replace), `POST /api/schedules/{name}/{run,pause,resume,remove}`.

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    response::Response,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Action, BoardError, BoardState, NoBody, Viewer,
    error::PageResult,
    pages::{Nav, render},
};
use crate::scheduler::{
    DefinedIn, LedgerEntry, Misfire, ScheduleSpec, ScheduleStatus, Scheduler, Upserted, status::human_time,
};

/// One schedule as listed.
#[derive(Serialize)]
pub struct ScheduleRow {
    /// The schedule's name.
    pub name: String,
    /// `file` (`scheduler.toml`: read-only here) or `redis` (run-time: may be removed).
    pub defined_in: &'static str,
    /// Its cron expression, or `every 30s`.
    pub cron: String,
    /// The timezone its ticks follow.
    pub timezone: String,
    /// `run_once` or `skip`.
    pub misfire: &'static str,
    /// The kind of job it enqueues.
    pub job_type: String,
    /// Paused: its ticks are skipped (ledgered as `paused`) until resumed.
    pub paused: bool,
    /// Ended: its limit is used up or its end time is past.
    pub ended: bool,
    /// Ticks that enqueued a job so far.
    pub runs: u64,
    /// At most this many runs.
    pub limit: Option<u64>,
    /// No tick before this time, RFC 3339 UTC.
    pub start: Option<String>,
    /// No tick after this time, RFC 3339 UTC.
    pub end: Option<String>,
    /// The last tick enqueued (or skipped), RFC 3339 UTC.
    pub last_run: Option<String>,
    /// `last_run` for people ("2 h ago").
    pub last_run_human: Option<String>,
    /// The job the schedule enqueued last.
    pub last_job: Option<String>,
    /// How that job went: its state, with its error when failed; `removed` once retention
    /// dropped it.
    pub last_outcome: Option<String>,
    /// The next tick, RFC 3339 UTC.
    pub next_run: Option<String>,
    /// `next_run` for people ("in 3 min").
    pub next_run_human: Option<String>,
}

impl ScheduleRow {
    /// `active`, `paused` or `ended`.
    pub fn state(&self) -> &'static str {
        if self.ended {
            "ended"
        } else if self.paused {
            "paused"
        } else {
            "active"
        }
    }

    /// Whether it is defined in `scheduler.toml` (read-only here).
    pub fn is_file(&self) -> bool {
        self.defined_in == "file"
    }
}

/// One ledger entry as shown: the stored entry, with its times for people.
#[derive(Serialize)]
pub struct LedgerRow {
    /// The entry (due, enqueued, reason, enqueued_at, late_ms, job, outcome).
    #[serde(flatten)]
    pub entry: LedgerEntry,
    /// `due`, RFC 3339 UTC to the second.
    pub due_utc: String,
    /// `due` for people ("5 min ago").
    pub due_human: String,
    /// `late_ms` for people ("0.3 s").
    pub late: Option<String>,
    /// `reason` as text (`paused`, `downtime`, `redis_unreachable`).
    pub reason_text: Option<String>,
}

/// `GET /api/schedules/{name}`: the schedule and its ledger.
#[derive(Serialize)]
pub struct ScheduleDetailView {
    /// Its state, as listed.
    #[serde(flatten)]
    pub row: ScheduleRow,
    /// A run-time schedule's job template as stored (`job_type`, fields, `options`).
    pub job: Option<Value>,
    /// Its due ticks, newest first (at most the last 100).
    pub ledger: Vec<LedgerRow>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn text<T: Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
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

fn required(board: &BoardState) -> Result<Scheduler, BoardError> {
    scheduler(board)?.ok_or_else(|| BoardError::NotFound("this board has no schedules".into()))
}

async fn row(board: &BoardState, s: ScheduleStatus, now: DateTime<Utc>) -> Result<ScheduleRow, BoardError> {
    let last_outcome = match &s.last_job {
        Some(id) => Some(outcome(board, id).await?),
        None => None,
    };
    Ok(ScheduleRow {
        defined_in: match s.defined_in {
            DefinedIn::File => "file",
            DefinedIn::Redis => "redis",
        },
        misfire: match s.misfire {
            Misfire::RunOnce => "run_once",
            Misfire::Skip => "skip",
        },
        last_run: s.last_run.map(utc),
        last_run_human: s.last_run.map(|t| human_time(t, now)),
        next_run: s.next_run.map(utc),
        next_run_human: s.next_run.map(|t| human_time(t, now)),
        start: s.start.map(utc),
        end: s.end.map(utc),
        last_outcome,
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        job_type: s.job_type,
        paused: s.paused,
        ended: s.ended,
        runs: s.runs,
        limit: s.limit,
        last_job: s.last_job,
    })
}

async fn rows(board: &BoardState) -> Result<Vec<ScheduleRow>, BoardError> {
    let Some(scheduler) = scheduler(board)? else { return Ok(Vec::new()) };
    let now = Utc::now();
    let mut rows = Vec::new();
    for status in scheduler.statuses().await? {
        rows.push(row(board, status, now).await?);
    }
    Ok(rows)
}

/// Schedule `name` with its ledger; 404 for an unknown name.
async fn detail(board: &BoardState, name: &str) -> Result<ScheduleDetailView, BoardError> {
    let scheduler = required(board)?;
    if !scheduler.all().await?.iter().any(|s| s.name == name) {
        return Err(BoardError::NotFound(format!("no schedule named {name:?}")));
    }
    let detail = scheduler.detail(name).await?;
    let now = Utc::now();
    let ledger = detail
        .ledger
        .into_iter()
        .map(|entry| LedgerRow {
            due_utc: utc(entry.due),
            due_human: human_time(entry.due, now),
            late: entry.late_ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)),
            reason_text: entry.reason.map(text),
            entry,
        })
        .collect();
    Ok(ScheduleDetailView { row: row(board, detail.status, now).await?, job: detail.job, ledger })
}

/// `GET /api/schedules`
pub(crate) async fn api(_: Viewer, State(board): State<BoardState>) -> Result<Json<Vec<ScheduleRow>>, BoardError> {
    Ok(Json(rows(&board).await?))
}

/// `GET /api/schedules/{name}`
pub(crate) async fn api_one(
    _: Viewer,
    State(board): State<BoardState>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDetailView>, BoardError> {
    Ok(Json(detail(&board, &name).await?))
}

#[derive(Template)]
#[template(path = "board/schedules.html")]
struct SchedulesPage {
    nav: Nav,
    schedules: Vec<ScheduleRow>,
    example: &'static str,
}

/// The add form's example job.
const EXAMPLE_JOB: &str = r#"{"job_type": "KIND", "field": "value"}"#;

/// `GET /schedules`
pub(crate) async fn page(viewer: Viewer, State(board): State<BoardState>, OriginalUri(uri): OriginalUri) -> PageResult {
    let schedules = rows(&board).await?;
    render(&SchedulesPage { nav: Nav::new(&board, &viewer, "schedules", &uri), schedules, example: EXAMPLE_JOB })
}

#[derive(Template)]
#[template(path = "board/schedule.html")]
struct SchedulePage {
    nav: Nav,
    s: ScheduleDetailView,
    job: String,
}

/// `GET /schedules/{name}`
pub(crate) async fn one_page(
    viewer: Viewer,
    State(board): State<BoardState>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let s = detail(&board, &name).await?;
    let job = s.job.as_ref().map_or_else(|| format!("{} (see scheduler.toml)", s.row.job_type), Value::to_string);
    render(&SchedulePage { nav: Nav::new(&board, &viewer, "schedules", &uri), s, job })
}

/// `POST /api/schedules/{name}/run`: enqueues the schedule's job now.
pub(crate) async fn run_now(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = async {
        let done = required(&board)?.run_now(&name).await?;
        Ok((format!("Schedule {name} run now: job {} enqueued.", done.id), json!({ "id": done.id })))
    }
    .await;
    action.respond("schedule.run_now", &name, result)
}

async fn set_paused(board: &BoardState, name: &str, paused: bool) -> Result<(String, Value), BoardError> {
    let scheduler = required(board)?;
    if !scheduler.all().await?.iter().any(|s| s.name == name) {
        return Err(BoardError::NotFound(format!("no schedule named {name:?}")));
    }
    let changed = scheduler.set_paused(name, paused).await?;
    let message = match (paused, changed) {
        (true, true) => format!("Schedule {name} paused: its ticks are skipped until resumed."),
        (true, false) => format!("Schedule {name} was already paused."),
        (false, true) => format!("Schedule {name} resumed."),
        (false, false) => format!("Schedule {name} was not paused."),
    };
    Ok((message, json!({ "paused": paused, "changed": changed })))
}

/// `POST /api/schedules/{name}/pause`: every scheduler skips its ticks until resumed.
pub(crate) async fn pause(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = set_paused(&board, &name, true).await;
    action.respond("schedule.pause", &name, result)
}

/// `POST /api/schedules/{name}/resume`
pub(crate) async fn resume(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let result = set_paused(&board, &name, false).await;
    action.respond("schedule.resume", &name, result)
}

/// `POST /api/schedules/{name}/remove` (confirmed): a run-time schedule, its runs and ledger.
pub(crate) async fn remove(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<NoBody>,
) -> Response {
    let question = format!("Remove schedule {name}? Its definition, run count and ledger are deleted.");
    if let Some(ask) = action.unconfirmed("schedule.remove", &name, &question) {
        return ask;
    }
    let result = async {
        let scheduler = required(&board)?;
        match scheduler.all().await?.iter().find(|s| s.name == name).map(|s| s.defined_in) {
            None => return Err(BoardError::NotFound(format!("no schedule named {name:?}"))),
            Some(DefinedIn::File) => {
                return Err(BoardError::Conflict(format!(
                    "schedule {name:?} is defined in scheduler.toml: edit the file to remove it"
                )));
            }
            Some(DefinedIn::Redis) => scheduler.remove(&name).await?,
        }
        Ok((format!("Schedule {name} removed."), json!({ "removed": name })))
    }
    .await;
    action.respond("schedule.remove", &name, result)
}

/// The add form or JSON body: a run-time schedule. Form fields are text; the JSON API may send
/// `limit` as a number and `job` as an object.
#[derive(Deserialize)]
pub(crate) struct AddBody {
    name: String,
    #[serde(default)]
    cron: Option<String>,
    /// `30s`, `5m`.
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    limit: Option<Value>,
    /// `run_once` (default) or `skip`.
    #[serde(default)]
    misfire: Option<String>,
    /// The job template: an object, or its JSON text (the form).
    job: Value,
}

fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn time(text: &Option<String>, what: &str) -> Result<Option<DateTime<Utc>>, BoardError> {
    given(text)
        .map(|t| {
            DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                BoardError::Invalid(format!("{what} {t:?}: {e} (expected RFC 3339, e.g. 2026-12-24T08:00:00Z)"))
            })
        })
        .transpose()
}

impl AddBody {
    fn spec(&self) -> Result<ScheduleSpec, BoardError> {
        let invalid = |m: String| BoardError::Invalid(m);
        let mut spec = match (given(&self.cron), given(&self.every)) {
            (Some(cron), None) => ScheduleSpec::cron(cron),
            (None, Some(every)) => ScheduleSpec::every(
                humantime::parse_duration(every)
                    .map_err(|e| invalid(format!("every {every:?}: {e} (e.g. \"30s\", \"5m\")")))?,
            ),
            _ => return Err(invalid("give exactly one of a cron expression or an interval (every 30s)".into())),
        };
        spec.timezone = given(&self.timezone).map(str::to_owned);
        spec.start = time(&self.start, "start")?;
        spec.end = time(&self.end, "end")?;
        spec.limit = match &self.limit {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| invalid(format!("limit {n}: a whole number")))?),
            Some(Value::String(t)) if t.trim().is_empty() => None,
            Some(Value::String(t)) => {
                Some(t.trim().parse().map_err(|_| invalid(format!("limit {t:?}: a whole number")))?)
            }
            Some(other) => return Err(invalid(format!("limit {other}: a whole number"))),
        };
        spec.misfire = match given(&self.misfire) {
            None | Some("run_once") => Misfire::RunOnce,
            Some("skip") => Misfire::Skip,
            Some(other) => return Err(invalid(format!("misfire {other:?}: run_once or skip"))),
        };
        let job = match &self.job {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| invalid(format!("job: {e} (a JSON object: {{\"job_type\": KIND, field: value}})")))?,
            other => other.clone(),
        };
        Ok(spec.job(job))
    }
}

/// `POST /api/schedules`: creates or replaces a run-time schedule (a `scheduler.toml` name is
/// refused: edit the file).
pub(crate) async fn add(State(board): State<BoardState>, action: Action<AddBody>) -> Response {
    let name = action.body.name.trim().to_owned();
    let result = async {
        let scheduler = required(&board)?;
        let spec = action.body.spec()?;
        let done = scheduler.upsert(&name, &spec).await?;
        let message = match done {
            Upserted::Created => format!("Schedule {name} created."),
            Upserted::Updated => format!("Schedule {name} updated: schedulers follow within 2 s."),
            Upserted::Unchanged => format!("Schedule {name} unchanged: the same definition was stored."),
        };
        Ok((message, json!({ "name": name, "upserted": done })))
    }
    .await;
    action.respond("schedule.add", &name, result)
}
