//! `/healthz` (liveness) and `/healthz/detailed` (dependencies, stream backlog, job queue sizes,
//! default-partition rows) with one overall state (docs/operations.md "Health"):
//! - `ok` (200): Redis and PostgreSQL answer and the stream has room;
//! - `degraded` (200): events are still accepted (202) but something needs attention: PostgreSQL is
//!   down (events wait in the stream), or the stream holds 80 % or more of its high-water mark;
//! - `down` (503): new events are refused: Redis is down, or the stream is at its high-water mark (429).
//!
//! Redis' memory (used, `maxmemory`, policy) is reported too, judged by `redis_health`: near the
//! memory high-water mark is `degraded`, past it (429) or at `maxmemory` `down`, and so is a Redis
//! that refuses a probe write (read-only replica, `MISCONF`) or evicts keys.

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use crate::{metrics::StreamGauges, redis_limits::Refusal, stream::dead_letter};

/// Longest a dependency check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Share of the high-water mark from which the stream's fill is reported as `degraded`.
const FILL_WARNING: f64 = 0.8;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(live)).route("/healthz/detailed", get(detailed))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// One dependency's state.
#[derive(Serialize)]
pub(super) struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Redis only: its memory (used, max, policy, the high-water share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Value>,
}

/// Dependencies and backlog: Redis, PostgreSQL, stream length/lag/pending/dead letters, job queue
/// sizes, default-partition rows, and the overall state with the reasons for it.
#[utoipa::path(get, path = "/healthz/detailed", tag = "operations", responses(
    (status = 200, description = "`ok`, or `degraded` (events still accepted; see `reasons`)"),
    (status = 503, description = "`down`: new events are refused (Redis down, refusing writes or out of memory, or the stream full; see `reasons`)"),
))]
pub(crate) async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (mut redis, stream, queues) = redis_report(&state).await;
    let (postgres, storage) = postgres_report(&state).await;
    let (mut overall, mut reasons) = assess(&state, &redis, &postgres, &stream);
    if redis.ok {
        let limits = super::redis_health::assess(&state, &mut redis).await;
        overall = overall.max(limits.0);
        reasons.extend(limits.1);
    }
    let status = if overall == Overall::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({
        "status": overall,
        "reasons": reasons,
        "redis": redis,
        "postgres": postgres,
        "stream": stream,
        "queues": queues,
        "storage": storage,
    });
    (status, Json(body))
}

/// The overall state of `/healthz/detailed`.
/// Ordered from best to worst, so the worst problem wins (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Overall {
    Ok,
    Degraded,
    Down,
}

/// The overall state from the checks, and a sentence per problem saying what it means for clients.
fn assess(state: &AppState, redis: &Check, postgres: &Check, stream: &Value) -> (Overall, Vec<String>) {
    let mut reasons = Vec::new();
    if !redis.ok {
        reasons.push(match redis.error.as_deref().and_then(Refusal::of_message) {
            // Up, but refusing writes (and PING, under MISCONF).
            Some(refusal) => format!("{}: new events are refused with 503", refusal.describe(None)),
            None => "Redis is unreachable: new events are refused with 503".to_owned(),
        });
        return (Overall::Down, reasons);
    }
    let high_water = state.settings.ingest.stream_high_water;
    let entries = stream["length"].as_u64().unwrap_or(0);
    let backlog = state.producer.events_in(entries);
    let mut overall = Overall::Ok;
    if backlog >= high_water {
        reasons.push(format!(
            "the stream holds about {backlog} events, its high-water mark is {high_water}: new events are refused with 429"
        ));
        overall = Overall::Down;
    } else if backlog as f64 >= high_water as f64 * FILL_WARNING {
        reasons.push(format!("the stream holds about {backlog} of at most {high_water} events: consumers fall behind"));
        overall = Overall::Degraded;
    }
    if !postgres.ok {
        reasons
            .push("PostgreSQL is unreachable: events are accepted and wait in the stream until it is back".to_owned());
        overall = overall.max(Overall::Degraded);
    }
    (overall, reasons)
}

/// Redis's state: the stream's backlog and the job queues' sizes.
async fn redis_report(state: &AppState) -> (Check, Value, Value) {
    let work = async {
        // Every master answers (a cluster's down master fails the check, not a random node's PING).
        state.redis.clone().on_every_master::<String>(&redis::cmd("PING")).await.map_err(|e| e.to_string())?;
        let backlog = stream_backlog(state).await.map_err(|e| e.to_string())?;
        let stream = json!({
            "length": backlog.length,
            "lag": backlog.lag,
            "pending": backlog.pending,
            "consumers": backlog.consumers,
            "dead_letters": backlog.dead_letters,
        });
        let mut queues = serde_json::Map::new();
        for queue in state.queues.all() {
            let counts = queue.counts().await.map_err(|e| e.to_string())?;
            queues.insert(queue.name.to_owned(), json!(counts));
        }
        Ok::<_, String>((stream, Value::Object(queues)))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(Ok((stream, queues))) => (Check { ok: true, error: None, memory: None }, stream, queues),
        Ok(Err(e)) => (Check { ok: false, error: Some(e), memory: None }, Value::Null, Value::Null),
        Err(_) => (
            Check { ok: false, error: Some("no answer within 2 s".to_owned()), memory: None },
            Value::Null,
            Value::Null,
        ),
    }
}

/// The stream's length, the group's lag, pending entries and consumers (`None` before the group
/// exists) and the dead letters: what `/healthz/detailed` and `/metrics` report.
/// Summed over the stream shards.
pub(super) async fn stream_backlog(state: &AppState) -> redis::RedisResult<StreamGauges> {
    let mut conn = state.redis.clone();
    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    let mut gauges =
        StreamGauges { dead_letters: dead_letter::count(&mut conn, &state.shards).await?, ..Default::default() };
    for keys in state.shards.iter() {
        gauges.length += redis::cmd("XLEN").arg(&keys.events).query_async::<u64>(&mut conn).await?;
        let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
            redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(&mut conn).await;
        let group = groups.ok().and_then(|g| g.groups.into_iter().find(|g| g.name == keys.group));
        gauges.lag = add(gauges.lag, group.as_ref().and_then(|g| g.lag.map(|l| l as u64)));
        gauges.pending = add(gauges.pending, group.as_ref().map(|g| g.pending as u64));
        gauges.consumers = add(gauges.consumers, group.as_ref().map(|g| g.consumers as u64));
    }
    Ok(gauges)
}

async fn postgres_report(state: &AppState) -> (Check, Value) {
    let work = async {
        // Counting stops at a million: a default partition that large is the alarm in itself.
        let default_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM events_default LIMIT 1000000) d")
                .fetch_one(&state.pool)
                .await?;
        let partitions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'",
        )
        .fetch_one(&state.pool)
        .await?;
        Ok::<_, sqlx::Error>(json!({
            "default_partition_rows": default_rows,
            "partitions": partitions - 1,
        }))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(Ok(storage)) => (Check { ok: true, error: None, memory: None }, storage),
        Ok(Err(e)) => (Check { ok: false, error: Some(e.to_string()), memory: None }, Value::Null),
        Err(_) => (Check { ok: false, error: Some("no answer within 2 s".to_owned()), memory: None }, Value::Null),
    }
}
