//! Edit a job's data before it runs again (`POST /api/jobs/{id}/data`, the job page's
//! `#edit-data-form`): for a waiting, delayed, failed or cancelled job, never a running one. The
//! new data is checked against the job's kind like an enqueued job's (the same canonical JSON is
//! stored), and the edit is written to the job's log with who made it, when, and the data it
//! replaced; a failed job then runs with it when retried.

use axum::{
    extract::{Path, State},
    response::Response,
};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Action, BoardError, BoardState};
use crate::queue::{DataEdit, JobState, registry::checked_job};

/// Characters of the replaced data kept in the log line.
const WAS_CHARS: usize = 2000;

/// The states whose data may be edited.
pub(crate) fn editable(state: JobState) -> bool {
    matches!(state, JobState::Waiting | JobState::Delayed | JobState::Failed | JobState::Cancelled)
}

/// The body of an edit: the job's new data, a JSON object (or its text, as a form sends it).
#[derive(Deserialize)]
pub(crate) struct EditBody {
    data: Value,
}

/// The new data as an object of fields: JSON text is parsed, `job_type` may stay but not change.
fn new_fields(data: &Value, kind: &str) -> Result<Map<String, Value>, BoardError> {
    let parsed = match data {
        Value::String(text) => serde_json::from_str::<Value>(text).map_err(|e| {
            BoardError::Invalid(format!(
                "the new data is not valid JSON ({e}): nothing was changed; fix it and save again"
            ))
        })?,
        other => other.clone(),
    };
    let Value::Object(fields) = parsed else {
        return Err(BoardError::Invalid(format!("the data of a {kind} job must be a JSON object {{...}}")));
    };
    match fields.get("job_type").or_else(|| fields.get("jobType")) {
        Some(Value::String(named)) if named != kind => Err(BoardError::Invalid(format!(
            "job_type cannot change ({kind} -> {named}): enqueue a new {named} job instead"
        ))),
        Some(Value::String(_)) | None => Ok(fields),
        Some(other) => Err(BoardError::Invalid(format!("job_type must be the string {kind:?}, not {other}"))),
    }
}

/// The first `max` characters of `text`, `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `POST /api/jobs/{id}/data` (`data`: the new JSON object, or its text): replaces the data of a
/// waiting, delayed, failed or cancelled job (409 for any other state, 422 for data its kind
/// refuses), logging who, when and the data replaced.
pub(crate) async fn edit_data(
    State(board): State<BoardState>,
    Path(id): Path<String>,
    action: Action<EditBody>,
) -> Response {
    let result = async {
        let job = board.queues.job(&id).await?.ok_or_else(|| BoardError::NotFound(format!("no job with id {id}")))?;
        let refused = |state: JobState| {
            let why = match state {
                JobState::Active => {
                    "it is running: its processor has the data now; cancel it, or wait until it \
                                     ends (a failed job can be edited, then retried)"
                }
                JobState::Completed => "it completed: enqueue a new job with the data instead",
                _ => "only a waiting, delayed, failed or cancelled job's data can be edited",
            };
            BoardError::Conflict(format!("job {id} is {state}: {why}"))
        };
        if !editable(job.state) {
            return Err(refused(job.state));
        }
        let kind = board
            .queues
            .catalog()
            .kind(&job.kind)
            .map_err(|e| BoardError::Invalid(format!("job {id}'s kind cannot check new data here: {e}")))?;
        let fields = new_fields(&action.body.data, kind.name())?;
        let checked = checked_job(kind.as_ref(), fields).map_err(BoardError::Invalid)?;
        let payload = checked.payload.to_string();
        let queue = board.queues.queue_of(&id).await?;
        let was = queue.raw_payload(&id).await?.ok_or_else(|| BoardError::NotFound(format!("no job with id {id}")))?;
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let who = &action.viewer.name;
        let line = format!(
            "data edited by {who} ({}) at {at} from the board; was: {}",
            action.viewer.role.as_str(),
            cut(&was, WAS_CHARS)
        );
        match queue.edit_data(&id, &was, &payload, &line).await? {
            DataEdit::Edited => {
                let next = match job.state {
                    JobState::Failed | JobState::Cancelled => " Retry it to run it with the new data.",
                    _ => " It runs with the new data.",
                };
                Ok((
                    format!("Data of job {id} edited.{next}"),
                    json!({ "edited": 1, "id": id, "data": checked.payload }),
                ))
            }
            DataEdit::NotFound => Err(BoardError::NotFound(format!("no job with id {id}"))),
            DataEdit::NotEditable(state) => Err(refused(state)),
            DataEdit::Changed => Err(BoardError::Conflict(format!(
                "job {id}'s data changed while you edited it: nothing was changed; reload the page and edit again"
            ))),
        }
    }
    .await;
    action.respond("job.edit_data", &id, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_data_is_an_object_whose_job_type_may_stay_but_not_change() {
        let kind = "SEND_WELCOME";
        assert!(new_fields(&json!(r#"{"user_id": "u1"}"#), kind).is_ok());
        assert!(new_fields(&json!({ "user_id": "u1", "job_type": kind }), kind).is_ok());
        let error = new_fields(&json!("{not json"), kind).unwrap_err().to_string();
        assert!(error.contains("not valid JSON"), "{error}");
        let error = new_fields(&json!("[1, 2]"), kind).unwrap_err().to_string();
        assert!(error.contains("must be a JSON object"), "{error}");
        let error = new_fields(&json!({ "job_type": "OTHER" }), kind).unwrap_err().to_string();
        assert!(error.contains("cannot change"), "{error}");
    }

    #[test]
    fn the_replaced_data_is_cut_on_a_character() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("hé", 2), "hé");
    }
}
