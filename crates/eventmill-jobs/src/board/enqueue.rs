//! Enqueueing a job from the board (`/enqueue`, `POST /api/enqueue`): a job file's text, checked
//! as strictly as `enqueue --file`, beside a list of the catalog's kinds and their queues.

use askama::Template;
use axum::{
    extract::{OriginalUri, State},
    response::Response,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{
    Action, BoardError, BoardState, Viewer,
    error::PageResult,
    pages::{Nav, render},
};
use crate::{
    Catalog,
    job::{JobOptions, JobTemplate, PlannedJob},
};

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
        plan.options =
            plan.options.or(JobOptions { priority, delay, key, key_window: None, on_failure: None, dedup: None });
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
pub(crate) async fn page(viewer: Viewer, State(board): State<BoardState>, OriginalUri(uri): OriginalUri) -> PageResult {
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
