//! The dead-letter stream: entries that failed to store `max_deliveries` times, kept with the reason
//! until an operator replays them (CLI `dead-letters`, and the admin view).

use chrono::Utc;
use redis::streams::StreamRangeReply;

use crate::redis_conn::RedisConn;

use super::{
    StreamKeys,
    entry::{EVENT_FIELD, REQUEST_FIELD},
};

/// One dead letter, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    /// Id in the dead-letter stream, `@<shard>` after it for a shard other than the first (what
    /// `replay` takes).
    pub id: String,
    /// Id the entry had in the event stream.
    pub entry_id: String,
    pub reason: String,
    pub deliveries: u64,
    pub failed_at: String,
    pub request_id: String,
    /// The original entry payload, unchanged.
    pub payload: String,
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replayed {
    pub replayed: usize,
    pub not_found: Vec<String>,
}

/// Queues the move of a failed entry into the dead-letter stream on `pipe` (the caller acknowledges
/// the original in the same MULTI, so the entry is never in neither place).
pub fn queue_move(pipe: &mut redis::Pipeline, keys: &StreamKeys, letter: &DeadLetter) {
    pipe.cmd("XADD")
        .arg(&keys.dead)
        .arg("*")
        .arg(EVENT_FIELD)
        .arg(&letter.payload)
        .arg(REQUEST_FIELD)
        .arg(&letter.request_id)
        .arg("reason")
        .arg(&letter.reason)
        .arg("entry_id")
        .arg(&letter.entry_id)
        .arg("deliveries")
        .arg(letter.deliveries)
        .arg("failed_at")
        .arg(Utc::now().to_rfc3339())
        .ignore();
}

/// The oldest `limit` dead letters (shard by shard).
pub async fn list(conn: &mut RedisConn, shards: &[StreamKeys], limit: usize) -> redis::RedisResult<Vec<DeadLetter>> {
    list_after(conn, shards, None, limit).await
}

/// Up to `limit` dead letters after the id `after` (exclusive; `None` = from the oldest), oldest
/// first, shard by shard: the admin view pages through them with the last id it showed.
pub async fn list_after(
    conn: &mut RedisConn,
    shards: &[StreamKeys],
    after: Option<&str>,
    limit: usize,
) -> redis::RedisResult<Vec<DeadLetter>> {
    let (first_shard, mut start) = match after.map(parse_id) {
        Some((shard, id)) => (shard, format!("({id}")),
        None => (0, "-".to_owned()),
    };
    let mut letters = Vec::new();
    for keys in shards.iter().skip(first_shard) {
        if letters.len() >= limit {
            break;
        }
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys.dead)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(limit - letters.len())
            .query_async(conn)
            .await?;
        letters.extend(reply.ids.into_iter().map(|id| from_stream_id(id, keys.shard)));
        start = "-".to_owned();
    }
    Ok(letters)
}

/// How many dead letters wait, over every shard.
pub async fn count(conn: &mut RedisConn, shards: &[StreamKeys]) -> redis::RedisResult<u64> {
    let mut total = 0;
    for keys in shards {
        total += redis::cmd("XLEN").arg(&keys.dead).query_async::<u64>(conn).await?;
    }
    Ok(total)
}

/// Puts dead letters back on their shard's event stream (unchanged, with their request id) and
/// removes them from its dead-letter stream, each atomically.
pub async fn replay(conn: &mut RedisConn, shards: &[StreamKeys], ids: &[String]) -> redis::RedisResult<Replayed> {
    let mut done = Replayed::default();
    for id in ids {
        let (shard, stream_id) = parse_id(id);
        let Some(keys) = shards.get(shard) else {
            done.not_found.push(id.clone());
            continue;
        };
        let reply: StreamRangeReply =
            redis::cmd("XRANGE").arg(&keys.dead).arg(stream_id).arg(stream_id).query_async(conn).await?;
        let Some(letter) = reply.ids.into_iter().next().map(|e| from_stream_id(e, shard)) else {
            done.not_found.push(id.clone());
            continue;
        };
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&keys.events)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(&letter.payload)
            .arg(REQUEST_FIELD)
            .arg(&letter.request_id)
            .ignore()
            .cmd("XDEL")
            .arg(&keys.dead)
            .arg(stream_id)
            .ignore()
            .query_async::<()>(conn)
            .await?;
        tracing::info!(dead_letter = %id, entry_id = %letter.entry_id, request_id = %letter.request_id, "dead letter replayed");
        done.replayed += 1;
    }
    Ok(done)
}

/// Replays every dead letter.
pub async fn replay_all(conn: &mut RedisConn, shards: &[StreamKeys]) -> redis::RedisResult<Replayed> {
    let mut total = Replayed::default();
    loop {
        let batch: Vec<String> = list(conn, shards, 500).await?.into_iter().map(|l| l.id).collect();
        if batch.is_empty() {
            return Ok(total);
        }
        let done = replay(conn, shards, &batch).await?;
        total.replayed += done.replayed;
        total.not_found.extend(done.not_found);
    }
}

/// A dead letter's id: its id in the dead-letter stream, with `@<shard>` after it for shards other
/// than the first (so one-shard ids stay plain stream ids).
fn letter_id(stream_id: String, shard: usize) -> String {
    if shard == 0 { stream_id } else { format!("{stream_id}@{shard}") }
}

fn parse_id(id: &str) -> (usize, &str) {
    match id.rsplit_once('@') {
        Some((stream_id, shard)) => (shard.parse().unwrap_or(usize::MAX), stream_id),
        None => (0, id),
    }
}

fn from_stream_id(mut entry: redis::streams::StreamId, shard: usize) -> DeadLetter {
    let mut text = |field: &str| {
        entry.map.remove(field).and_then(|v| redis::from_redis_value::<String>(v).ok()).unwrap_or_default()
    };
    let payload = text(EVENT_FIELD);
    let request_id = text(REQUEST_FIELD);
    let reason = text("reason");
    let entry_id = text("entry_id");
    let deliveries = text("deliveries").parse().unwrap_or(0);
    let failed_at = text("failed_at");
    DeadLetter { id: letter_id(entry.id, shard), entry_id, reason, deliveries, failed_at, request_id, payload }
}
