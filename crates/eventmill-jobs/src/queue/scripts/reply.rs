//! What the scripts answer, decoded into the queue's types as the reply arrives. A reply of any
//! other shape is a clear error naming the script and the part that did not fit (a script and its
//! decoder out of step), never a value read by position further in.

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, Value};

use crate::queue::{BulkStep, Enqueued, Fetched, FlowEnqueued, Recorded, Round};

/// `enqueue.lua`: `{created (1 new | 0 duplicate | 2 a debounce duplicate that replaced the
/// pending job's payload), id}`.
impl FromRedisValue for Enqueued {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [created, id] = items(v, "enqueue")?;
        let created: i64 = part(created, "enqueue: created")?;
        Ok(Self { id: part(id, "enqueue: the job id")?, created: created == 1, replaced: created == 2, watch: None })
    }
}

/// `enqueue_flow.lua`: `{created (1|0), parent id, child ids}` (no child ids for a duplicate).
impl FromRedisValue for FlowEnqueued {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [created, id, children] = items(v, "enqueue_flow")?;
        Ok(Self {
            id: part(id, "enqueue_flow: the parent's id")?,
            created: part(created, "enqueue_flow: created")?,
            children: part(children, "enqueue_flow: the children's ids")?,
        })
    }
}

/// `finish_and_fetch.lua`: `{statuses, claimed jobs, next due time (ms, -1 = nothing), paused
/// (1|0)}`.
impl FromRedisValue for Round {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [recorded, claimed, next_due, paused] = items(v, "finish_and_fetch")?;
        let next_due: i64 = part(next_due, "finish_and_fetch: the next due time")?;
        Ok(Self {
            paused: part(paused, "finish_and_fetch: paused")?,
            recorded: list(recorded, "finish_and_fetch: the statuses")?,
            claimed: list(claimed, "finish_and_fetch: the claimed jobs")?,
            next_due: (next_due >= 0).then_some(next_due),
        })
    }
}

/// One finished attempt's status in `finish_and_fetch.lua`'s reply.
impl FromRedisValue for Recorded {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(match word(&v) {
            Some(b"completed") => Self::Completed,
            Some(b"retry") => Self::Retrying,
            Some(b"failed") => Self::Failed,
            Some(b"released") => Self::Released,
            Some(b"delayed") => Self::Postponed,
            Some(b"rate-limited") => Self::RateLimited,
            Some(b"lost") => Self::Lost,
            _ => return Err(format!("finish_and_fetch: unknown status of a finished attempt: {v:?}").into()),
        })
    }
}

/// A claimed job in `finish_and_fetch.lua`'s reply: its id, then its hash's `kind`, `payload`,
/// `attempts`, `max_attempts`, `timeout_ms` (nil: not written at enqueue, the kind's policy),
/// `trace` (nil: none), `created_at`, `run_at` (nil: due at enqueue).
impl FromRedisValue for Fetched {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [id, kind, payload, attempt, max_attempts, timeout_ms, trace, created_at, run_at] =
            items(v, "finish_and_fetch: a claimed job")?;
        let id: String = part(id, "claimed job: id")?;
        // The error's text is built only when a field does not fit (this runs for every job).
        let field = |name: &'static str| {
            let id = &id;
            move |error: ParsingError| ParsingError::from(format!("claimed job {id}: {name}: {error}"))
        };
        Ok(Self {
            kind: String::from_redis_value(kind).map_err(field("kind"))?,
            payload: String::from_redis_value(payload).map_err(field("payload"))?,
            attempt: u32::from_redis_value(attempt).map_err(field("attempts"))?,
            max_attempts: u32::from_redis_value(max_attempts).map_err(field("max_attempts"))?,
            timeout: Option::<u64>::from_redis_value(timeout_ms)
                .map_err(field("timeout_ms"))?
                .map(Duration::from_millis),
            trace: Option::<String>::from_redis_value(trace).map_err(field("trace"))?,
            // Times only feed the history's latency: one that does not read leaves it unknown,
            // never the claim failed.
            created_at: unix_ms(created_at),
            run_at: unix_ms(run_at),
            id,
        })
    }
}

/// A time field of a job hash (unix ms, as the scripts write it), `None` when absent or unreadable.
/// Read in place: this runs twice per claimed job.
fn unix_ms(value: Value) -> Option<i64> {
    let Value::BulkString(bytes) = value else { return None };
    let text = std::str::from_utf8(&bytes).ok()?;
    text.parse::<i64>().ok().or_else(|| text.parse::<f64>().ok().filter(|ms| ms.is_finite()).map(|ms| ms as i64))
}

/// One call of `search.lua`: the matching ids and where to go on from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SearchPage {
    pub(crate) ids: Vec<String>,
    /// The position to continue from; `None`: the end was reached.
    pub(crate) next: Option<usize>,
}

/// `search.lua`: `{matching ids, next position or -1 at the end}`.
impl FromRedisValue for SearchPage {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [ids, next] = items(v, "search")?;
        let next: i64 = part(next, "search: the next position")?;
        Ok(Self { ids: part(ids, "search: the matching ids")?, next: usize::try_from(next).ok() })
    }
}

/// `clean.lua`, `promote_all.lua`, `empty.lua`: `{jobs handled, more left (1|0)}`.
impl FromRedisValue for BulkStep {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let [done, more] = items(v, "bulk step")?;
        Ok(Self { done: part(done, "bulk step: jobs handled")?, more: part(more, "bulk step: more left")? })
    }
}

/// What `cancel.lua` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelReply {
    /// It was waiting or delayed: deleted.
    Removed,
    /// It was running: now `cancelled` in `failed`; its worker learns the claim is gone.
    Stopping,
    /// No such job.
    Missing,
    /// It had already ended, in this state (`?` if its hash says none).
    Ended(String),
}

/// `cancel.lua`: `removed`, `stopping`, `missing` or `ended:<state>`.
impl FromRedisValue for CancelReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(match word(&v) {
            Some(b"removed") => Self::Removed,
            Some(b"stopping") => Self::Stopping,
            Some(b"missing") => Self::Missing,
            Some(ended) if ended.starts_with(b"ended:") => Self::Ended(String::from_utf8(ended[6..].to_vec())?),
            _ => return Err(format!("cancel: unknown answer {v:?}").into()),
        })
    }
}

/// The `N` parts of an array reply, or an error naming `what` was expected.
fn items<const N: usize>(v: Value, what: &str) -> Result<[Value; N], ParsingError> {
    match v {
        Value::Array(items) => items
            .try_into()
            .map_err(|items: Vec<Value>| format!("{what}: expected {N} values, got {}: {items:?}", items.len()).into()),
        other => Err(format!("{what}: expected an array of {N} values, got {other:?}").into()),
    }
}

/// An array reply's values as `T`s, in one allocation (this runs on every round trip; redis-rs'
/// own `Vec<T>` decoding grows the vector as it goes).
fn list<T: FromRedisValue>(v: Value, what: &str) -> Result<Vec<T>, ParsingError> {
    let Value::Array(items) = v else { return Err(format!("{what}: expected an array, got {v:?}").into()) };
    let mut list = Vec::with_capacity(items.len());
    for item in items {
        list.push(T::from_redis_value(item)?);
    }
    Ok(list)
}

/// One part of a reply as `T`, or an error naming it.
fn part<T: FromRedisValue>(v: Value, what: &str) -> Result<T, ParsingError> {
    T::from_redis_value(v).map_err(|error| format!("{what}: {error}").into())
}

/// The text of a string reply.
fn word(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn claimed(id: &str, attempts: &str) -> Value {
        let times = [text("1700000000000"), Value::Nil];
        let fields = [text(id), text("NOOP"), text("{}"), text(attempts), text("3"), text("30000"), Value::Nil];
        Value::Array(fields.into_iter().chain(times).collect())
    }

    #[test]
    fn a_round_decodes_into_statuses_claimed_jobs_and_the_next_due_time() {
        let Value::Array(mut traced) = claimed("9", "1") else { unreachable!() };
        traced[6] = text("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let traced = Value::Array(traced);
        let reply = Value::Array(vec![
            Value::Array(vec![text("completed"), text("retry"), text("failed"), text("released"), text("lost")]),
            Value::Array(vec![claimed("7", "1"), claimed("8", "2"), traced]),
            Value::Int(1_700_000_000_000),
            Value::Int(0),
        ]);
        let round = Round::from_redis_value(reply).unwrap();
        use Recorded::*;
        assert_eq!(round.recorded, [Completed, Retrying, Failed, Released, Lost]);
        assert_eq!(round.claimed.len(), 3);
        assert_eq!(round.claimed[0].trace, None, "no trace field: none");
        assert_eq!(round.claimed[2].trace.as_deref(), Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let job = &round.claimed[1];
        assert_eq!((job.id.as_str(), job.kind.as_str(), job.payload.as_str()), ("8", "NOOP", "{}"));
        assert_eq!((job.attempt, job.max_attempts, job.timeout), (2, 3, Some(Duration::from_secs(30))));
        assert_eq!((job.created_at, job.run_at), (Some(1_700_000_000_000), None), "no run_at: due at enqueue");
        assert_eq!(round.next_due, Some(1_700_000_000_000));
    }

    #[test]
    fn a_claimed_job_without_timeout_ms_takes_its_kinds_policy() {
        let job = Value::Array(vec![
            text("9"),
            text("NOOP"),
            text("{}"),
            text("1"),
            text("3"),
            Value::Nil,
            Value::Nil,
            text("5"),
            text("7"),
        ]);
        let reply = Value::Array(vec![Value::Array(vec![]), Value::Array(vec![job]), Value::Int(-1), Value::Int(0)]);
        let round = Round::from_redis_value(reply).unwrap();
        assert_eq!(round.claimed[0].timeout, None);
        assert_eq!((round.claimed[0].created_at, round.claimed[0].run_at), (Some(5), Some(7)));
    }

    #[test]
    fn an_unreadable_time_leaves_the_latency_unknown_and_the_claim_whole() {
        let Value::Array(mut job) = claimed("9", "1") else { unreachable!() };
        (job[7], job[8]) = (text("yesterday"), text("1.7e12"));
        let reply = Value::Array(vec![
            Value::Array(vec![]),
            Value::Array(vec![Value::Array(job)]),
            Value::Int(-1),
            Value::Int(0),
        ]);
        let round = Round::from_redis_value(reply).unwrap();
        assert_eq!((round.claimed[0].created_at, round.claimed[0].run_at), (None, Some(1_700_000_000_000)));
    }

    #[test]
    fn an_empty_round_has_nothing_due() {
        let reply = Value::Array(vec![Value::Array(vec![]), Value::Array(vec![]), Value::Int(-1), Value::Int(0)]);
        let round = Round::from_redis_value(reply).unwrap();
        assert!(round.recorded.is_empty() && round.claimed.is_empty());
        assert_eq!(round.next_due, None);
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_it() {
        let reply =
            Value::Array(vec![Value::Array(vec![text("c")]), Value::Array(vec![]), Value::Int(-1), Value::Int(0)]);
        let error = Round::from_redis_value(reply).unwrap_err().to_string();
        assert!(error.contains("unknown status") && error.contains('c'), "{error}");
    }

    #[test]
    fn a_claimed_job_with_a_missing_field_is_an_error_naming_the_job_and_field() {
        let Value::Array(mut job) = claimed("9", "1") else { unreachable!() };
        job[1] = Value::Nil;
        let job = Value::Array(job);
        let reply = Value::Array(vec![Value::Array(vec![]), Value::Array(vec![job]), Value::Int(-1), Value::Int(0)]);
        let error = Round::from_redis_value(reply).unwrap_err().to_string();
        assert!(error.contains("claimed job 9: kind"), "{error}");
    }

    #[test]
    fn a_claimed_job_of_the_wrong_length_is_an_error() {
        let job = Value::Array(vec![text("9"), text("NOOP")]);
        let reply = Value::Array(vec![Value::Array(vec![]), Value::Array(vec![job]), Value::Int(-1), Value::Int(0)]);
        let error = Round::from_redis_value(reply).unwrap_err().to_string();
        assert!(error.contains("a claimed job: expected 9 values, got 2"), "{error}");
    }

    #[test]
    fn a_reply_that_is_not_an_array_is_an_error_naming_the_script() {
        let error = Round::from_redis_value(Value::Int(1)).unwrap_err().to_string();
        assert!(error.contains("finish_and_fetch: expected an array of 4 values"), "{error}");
        assert!(Enqueued::from_redis_value(Value::Nil).unwrap_err().to_string().contains("enqueue"));
    }

    #[test]
    fn enqueue_replies_say_whether_the_job_is_new() {
        let new = Enqueued::from_redis_value(Value::Array(vec![Value::Int(1), text("12")])).unwrap();
        assert_eq!((new.id.as_str(), new.created), ("12", true));
        let duplicate = Enqueued::from_redis_value(Value::Array(vec![Value::Int(0), text("12")])).unwrap();
        assert!(!duplicate.created);
        let flow = Value::Array(vec![Value::Int(1), text("3"), Value::Array(vec![text("4"), text("5")])]);
        let flow = FlowEnqueued::from_redis_value(flow).unwrap();
        assert_eq!(flow, FlowEnqueued { id: "3".into(), created: true, children: vec!["4".into(), "5".into()] });
    }

    #[test]
    fn cancel_answers_decode_into_the_enum() {
        let decode = |s: &str| CancelReply::from_redis_value(text(s));
        assert_eq!(decode("removed").unwrap(), CancelReply::Removed);
        assert_eq!(decode("stopping").unwrap(), CancelReply::Stopping);
        assert_eq!(decode("missing").unwrap(), CancelReply::Missing);
        assert_eq!(decode("ended:completed").unwrap(), CancelReply::Ended("completed".into()));
        assert!(decode("gone").unwrap_err().to_string().contains("cancel: unknown answer"));
    }

    #[test]
    fn a_bulk_step_says_how_many_and_whether_more_are_left() {
        let step = |n, more| BulkStep::from_redis_value(Value::Array(vec![Value::Int(n), Value::Int(more)]));
        assert_eq!(step(1000, 1).unwrap(), BulkStep { done: 1000, more: true });
        assert_eq!(step(3, 0).unwrap(), BulkStep { done: 3, more: false });
        assert!(BulkStep::from_redis_value(Value::Int(1)).unwrap_err().to_string().contains("bulk step"));
    }

    #[test]
    fn a_search_page_at_the_end_has_no_next_position() {
        let page =
            |next| SearchPage::from_redis_value(Value::Array(vec![Value::Array(vec![text("1")]), Value::Int(next)]));
        assert_eq!(page(-1).unwrap(), SearchPage { ids: vec!["1".into()], next: None });
        assert_eq!(page(200).unwrap().next, Some(200));
    }
}
