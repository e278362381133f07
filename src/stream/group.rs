//! Consumer-group housekeeping beside the consumers' main loop: creating the group, trimming
//! what every consumer has acknowledged, and forgetting consumers that stopped.

use std::time::Duration;

use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply, StreamPendingReply};

use super::StreamKeys;
use crate::redis_conn::RedisConn;

/// Creates the consumer group (and the stream) when missing; reading starts at the stream's beginning
/// so events added before the first consumer ever ran are stored too.
pub async fn ensure_group(conn: &mut RedisConn, keys: &StreamKeys) -> redis::RedisResult<()> {
    adopt_legacy_dead_letters(conn, keys).await?;
    // Looked up first: a Redis out of memory refuses XGROUP CREATE even when the group exists,
    // and a consumer must start then (storing is what frees memory).
    let groups: redis::RedisResult<StreamInfoGroupsReply> =
        redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(conn).await;
    if groups.is_ok_and(|g| g.groups.iter().any(|g| g.name == keys.group)) {
        return Ok(());
    }
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys.events)
        .arg(&keys.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Before the stream's keys were hash-tagged for Redis Cluster, dead letters were kept under
/// `<stream>:dead`: on one node, a first start of this version renames them into place, so no
/// dead letter is lost by an upgrade (a cluster never held the old name).
async fn adopt_legacy_dead_letters(conn: &mut RedisConn, keys: &StreamKeys) -> redis::RedisResult<()> {
    let legacy = format!("{}:dead", keys.events);
    if conn.is_cluster() || keys.shard != 0 || !redis::cmd("EXISTS").arg(&legacy).query_async::<bool>(conn).await? {
        return Ok(());
    }
    let moved: bool = redis::cmd("RENAMENX").arg(&legacy).arg(&keys.dead).query_async(conn).await?;
    tracing::info!(from = %legacy, to = %keys.dead, moved, "dead letters of an older eventmill adopted");
    Ok(())
}

/// Trims entries every consumer has acknowledged, so the stream's length is the unsaved backlog
/// that ingestion's backpressure watches. Never trims an unread or pending entry.
pub async fn trim_stored(conn: &mut RedisConn, keys: &StreamKeys) -> redis::RedisResult<()> {
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(conn).await?;
    let Some(group) = groups.groups.into_iter().find(|g| g.name == keys.group) else { return Ok(()) };
    let mut threshold = next_id(&group.last_delivered_id);
    if group.pending > 0 {
        let summary: StreamPendingReply =
            redis::cmd("XPENDING").arg(&keys.events).arg(&keys.group).query_async(conn).await?;
        if let StreamPendingReply::Data(data) = summary {
            threshold = min_id(threshold, data.start_id);
        }
    }
    // `~` trims whole radix-tree nodes (cheap); `LIMIT 0` lifts its default cap of 10,000 entries
    // per call, which trailed ingestion above 10,000 events/s per consumer.
    redis::cmd("XTRIM")
        .arg(&keys.events)
        .arg("MINID")
        .arg("~")
        .arg(threshold)
        .arg("LIMIT")
        .arg(0)
        .query_async(conn)
        .await
}

/// Removes group members that hold nothing and have been silent for `silent`: consumer names
/// are unique per start, so without this every restart would leave a name behind for good.
pub async fn forget_stopped_consumers(
    conn: &mut RedisConn,
    keys: &StreamKeys,
    own_name: &str,
    silent: Duration,
) -> redis::RedisResult<()> {
    let silent_ms = silent.as_millis() as usize;
    let members: StreamInfoConsumersReply =
        redis::cmd("XINFO").arg("CONSUMERS").arg(&keys.events).arg(&keys.group).query_async(conn).await?;
    for member in members.consumers {
        if member.pending == 0 && member.idle > silent_ms && member.name != own_name {
            redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(&keys.events)
                .arg(&keys.group)
                .arg(&member.name)
                .query_async::<()>(conn)
                .await?;
            tracing::info!(consumer = %member.name, "forgot a stopped consumer");
        }
    }
    Ok(())
}

/// Parses `ms-seq` stream ids.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// The smallest id greater than `id`.
fn next_id(id: &str) -> String {
    let (ms, seq) = parse_id(id);
    match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms + 1),
    }
}

fn min_id(a: String, b: String) -> String {
    if parse_id(&a) <= parse_id(&b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_numerically() {
        assert_eq!(next_id("5-9"), "5-10");
        assert_eq!(min_id("10-0".into(), "9-5".into()), "9-5");
    }
}
