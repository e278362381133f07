//! The ingestion stream as the admin sees it: stream length, the storage group's lag and pending
//! entries, each consumer's pending count and idle time, and the dead letters with their reason,
//! replayable one by one or all at once. Page `/admin/stream`, API `/admin/api/stream` and
//! `/admin/api/dead-letters`.

use askama::Template;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::Uri,
};
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply};
use serde::{Deserialize, Serialize};
use serde_json::json;

use eventmill_jobs::board::{Action, BoardError, NoBody};

use super::{
    error::PageResult,
    pages::{Nav, render},
};
use crate::{
    stream::{StreamKeys, dead_letter, dead_letter::DeadLetter},
    web::{ApiError, AppState, auth::Principal},
};

/// Dead letters shown per page.
const PAGE_SIZE: usize = 50;

/// The stream's state, as the page and `/admin/api/stream` show it.
#[derive(Debug, Serialize)]
pub struct StreamOverview {
    pub stream: String,
    pub length: u64,
    pub group: String,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell).
    pub lag: Option<u64>,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
    pub last_delivered_id: Option<String>,
    pub consumers: Vec<ConsumerInfo>,
    pub dead_letters: u64,
}

/// One member of the storage group.
#[derive(Debug, Serialize)]
pub struct ConsumerInfo {
    pub name: String,
    pub pending: u64,
    /// Milliseconds since it last read or claimed.
    pub idle_ms: u64,
}

/// Reads the stream's state (a missing stream or group reads as empty).
pub async fn overview(
    conn: &mut crate::redis_conn::RedisConn,
    shards: &[StreamKeys],
) -> redis::RedisResult<StreamOverview> {
    let mut total = shard_overview(conn, &shards[0]).await?;
    for keys in &shards[1..] {
        let shard = shard_overview(conn, keys).await?;
        total.stream = format!("{} + {}", total.stream, shard.stream);
        total.length += shard.length;
        total.lag = total.lag.zip(shard.lag).map(|(a, b)| a + b);
        total.pending += shard.pending;
        total.last_delivered_id = None;
        total.consumers.extend(shard.consumers);
    }
    total.dead_letters = dead_letter::count(conn, shards).await?;
    Ok(total)
}

/// One shard's state (its dead letters are counted by `overview`).
async fn shard_overview(
    conn: &mut crate::redis_conn::RedisConn,
    keys: &StreamKeys,
) -> redis::RedisResult<StreamOverview> {
    let length: u64 = redis::cmd("XLEN").arg(&keys.events).query_async(conn).await?;
    let groups: StreamInfoGroupsReply =
        redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(conn).await.unwrap_or_default();
    let group = groups.groups.into_iter().find(|g| g.name == keys.group);
    let consumers: StreamInfoConsumersReply = if group.is_some() {
        redis::cmd("XINFO").arg("CONSUMERS").arg(&keys.events).arg(&keys.group).query_async(conn).await?
    } else {
        StreamInfoConsumersReply::default()
    };
    let dead_letters = 0;
    Ok(StreamOverview {
        stream: keys.events.clone(),
        length,
        group: keys.group.clone(),
        lag: group.as_ref().and_then(|g| g.lag).map(|l| l as u64),
        pending: group.as_ref().map_or(0, |g| g.pending as u64),
        last_delivered_id: group.map(|g| g.last_delivered_id),
        consumers: consumers
            .consumers
            .into_iter()
            .map(|c| ConsumerInfo { name: c.name, pending: c.pending as u64, idle_ms: c.idle as u64 })
            .collect(),
        dead_letters,
    })
}

/// `GET /admin/api/stream`
pub async fn api_stream(_: Principal, State(state): State<AppState>) -> Result<Json<StreamOverview>, ApiError> {
    let mut conn = state.redis.clone();
    Ok(Json(overview(&mut conn, &state.shards).await?))
}

#[derive(Deserialize)]
pub struct LetterQuery {
    /// Show letters after this dead-letter id.
    after: Option<String>,
    limit: Option<usize>,
}

/// One page of dead letters and the cursor of the next.
#[derive(Serialize)]
pub struct LetterPage {
    pub dead_letters: Vec<DeadLetter>,
    pub next_after: Option<String>,
}

async fn letter_page(state: &AppState, query: &LetterQuery) -> redis::RedisResult<LetterPage> {
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, 500);
    let mut conn = state.redis.clone();
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let mut letters = dead_letter::list_after(&mut conn, &state.shards, after, limit + 1).await?;
    let more = letters.len() > limit;
    letters.truncate(limit);
    let next_after = more.then(|| letters.last().map(|l| l.id.clone())).flatten();
    Ok(LetterPage { dead_letters: letters, next_after })
}

/// `GET /admin/api/dead-letters?after=&limit=`
pub async fn api_dead_letters(
    _: Principal,
    State(state): State<AppState>,
    Query(query): Query<LetterQuery>,
) -> Result<Json<LetterPage>, ApiError> {
    Ok(Json(letter_page(&state, &query).await?))
}

/// `POST /admin/api/dead-letters/{id}/replay`
pub async fn replay_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    action: Action<NoBody>,
) -> axum::response::Response {
    let question = format!("Replay dead letter {id}? Its events go back to the stream and the dead letter is deleted.");
    if let Some(ask) = action.unconfirmed("dead_letter.replay", &id, &question) {
        return ask;
    }
    let mut conn = state.redis.clone();
    let result = match dead_letter::replay(&mut conn, &state.shards, std::slice::from_ref(&id)).await {
        Ok(done) if done.replayed == 1 => Ok((format!("Dead letter {id} replayed."), json!(done))),
        Ok(_) => Err(BoardError::NotFound(format!("no dead letter {id}"))),
        Err(e) => Err(e.into()),
    };
    action.respond("dead_letter.replay", &id, result)
}

/// `POST /admin/api/dead-letters/replay-all`
pub async fn replay_all(State(state): State<AppState>, action: Action<NoBody>) -> axum::response::Response {
    let question = "Replay every dead letter? Their events go back to the stream and the dead letters are deleted.";
    if let Some(ask) = action.unconfirmed("dead_letter.replay_all", "all", question) {
        return ask;
    }
    let mut conn = state.redis.clone();
    let result = dead_letter::replay_all(&mut conn, &state.shards)
        .await
        .map(|done| (format!("{} dead letter(s) replayed.", done.replayed), json!(done)))
        .map_err(BoardError::from);
    action.respond("dead_letter.replay_all", "all", result)
}

#[derive(Template)]
#[template(path = "admin/stream.html")]
struct StreamPage {
    nav: Nav,
    stream: StreamOverview,
    letters: LetterPage,
}

/// `GET /admin/stream`
pub async fn page(
    principal: Principal,
    State(state): State<AppState>,
    Query(query): Query<LetterQuery>,
    uri: Uri,
) -> PageResult {
    let mut conn = state.redis.clone();
    let stream = overview(&mut conn, &state.shards).await?;
    let letters = letter_page(&state, &query).await?;
    render(&StreamPage { nav: Nav::new(&principal, "stream", &uri), stream, letters })
}
