//! A queue's global concurrency and rate limit on the board: shown on the queue list and the
//! queue page (`global_concurrency`, `rate_limit` of `/api/queues`), changed by
//! `POST /api/queues/{queue}/limits` (the queue page's `#limits-form`). The values live in Redis
//! (see `eventmill_jobs::queue::Limits`): every worker of the queue, in any process, obeys a change
//! from its next claim, and it holds across restarts until a deploy declares other values.

use axum::{
    extract::{Path, State},
    response::Response,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Action, BoardError, BoardState};
use crate::queue::RateLimit;

/// The largest global concurrency the board sets.
const MAX_GLOBAL_CONCURRENCY: u64 = 100_000;

/// The fields of a limits change; an absent field (or JSON `null`) leaves that limit as it is, an
/// empty one, `none` or `0` removes it.
#[derive(Deserialize)]
pub(crate) struct LimitsBody {
    #[serde(default)]
    global_concurrency: Option<Value>,
    #[serde(default)]
    rate_limit: Option<Value>,
}

/// A field's text (`5`, `"5"`, `""`, `"none"`), or `None` for an absent or null field.
fn text(value: &Option<Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(other) => Some(other.to_string()),
    }
}

fn is_none(text: &str) -> bool {
    matches!(text, "" | "0" | "none")
}

fn global_concurrency(value: &Option<Value>) -> Result<Option<Option<u32>>, BoardError> {
    let Some(text) = text(value) else { return Ok(None) };
    if is_none(&text) {
        return Ok(Some(None));
    }
    match text.parse::<u64>() {
        Ok(n) if n <= MAX_GLOBAL_CONCURRENCY => Ok(Some(Some(n as u32))),
        _ => Err(BoardError::Invalid(format!(
            "global_concurrency {text:?}: expected a whole number of jobs from 1 to {MAX_GLOBAL_CONCURRENCY}, \
             or none (0 or empty) for no limit"
        ))),
    }
}

fn rate_limit(value: &Option<Value>) -> Result<Option<Option<RateLimit>>, BoardError> {
    let Some(text) = text(value) else { return Ok(None) };
    if is_none(&text) {
        return Ok(Some(None));
    }
    let limit = text.parse::<RateLimit>().map_err(|e| BoardError::Invalid(format!("rate_limit: {e}, or none")))?;
    Ok(Some(Some(limit)))
}

/// `POST /api/queues/{queue}/limits` (`global_concurrency`: `5`, or none; `rate_limit`:
/// `100/1s`, or none): the queue's limits for every worker from its next claim; answers the limits
/// in force.
pub(crate) async fn set_limits(
    State(board): State<BoardState>,
    Path(name): Path<String>,
    action: Action<LimitsBody>,
) -> Response {
    let result = async {
        let queue = board.queues.named(&name)?;
        let global = global_concurrency(&action.body.global_concurrency)?;
        let rate = rate_limit(&action.body.rate_limit)?;
        if global.is_none() && rate.is_none() {
            return Err(BoardError::Invalid(
                "nothing to change: send global_concurrency and/or rate_limit (none removes a limit)".into(),
            ));
        }
        let limits = queue.set_limits(global, rate).await?;
        let said = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        let message = format!(
            "Limits of queue {name}: global concurrency {}, rate limit {}.",
            said(limits.global_concurrency.map(|n| n.to_string())),
            said(limits.rate_limit.map(|r| r.to_string()))
        );
        let mut body = serde_json::to_value(limits).map_err(|e| BoardError::Internal(e.to_string()))?;
        body["queue"] = json!(name);
        Ok((message, body))
    }
    .await;
    action.respond("queue.limits", &name, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_numbers_or_text_and_none_removes_them() {
        assert_eq!(global_concurrency(&None).unwrap(), None);
        assert_eq!(global_concurrency(&Some(json!(4))).unwrap(), Some(Some(4)));
        assert_eq!(global_concurrency(&Some(json!(" 4 "))).unwrap(), Some(Some(4)));
        assert_eq!(global_concurrency(&Some(json!(""))).unwrap(), Some(None));
        assert_eq!(global_concurrency(&Some(json!(0))).unwrap(), Some(None));
        assert!(global_concurrency(&Some(json!("-1"))).unwrap_err().to_string().contains("whole number"));
        assert_eq!(rate_limit(&Some(json!("none"))).unwrap(), Some(None));
        assert_eq!(rate_limit(&Some(json!("10/1m"))).unwrap().unwrap().unwrap().to_string(), "10/1m");
        assert!(rate_limit(&Some(json!("fast"))).unwrap_err().to_string().contains("jobs/duration"));
    }
}
