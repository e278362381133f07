//! Adopting the queue keys of an older eventmill. Before Redis Cluster support they were named
//! `<prefix>:queue:...`; now every one carries the hash tag `{<prefix>:queue}` (see `Queue`). On
//! one node, `adopt_legacy_keys` renames each old key into place at start (`eventmill worker`,
//! `run` and `migrate`), so an upgrade loses no job: waiting, delayed, running, failed jobs and
//! their logs, idempotency keys and the id counter. A cluster never held the old names.

use crate::redis_conn::RedisConn;

/// The fields of a flow parent's hash that name its queue's keys.
const KEY_FIELDS: [&str; 5] = ["k_children", "k_waiting", "k_order", "k_marker", "k_failed"];

/// Renames every `<prefix>:queue:*` key to its tagged name; answers how many moved. The id
/// counter moves last, so an interrupted adoption is finished by the next start. A key whose new
/// name is taken already (a newer process ran first) stays, and is reported.
pub async fn adopt_legacy_keys(conn: &mut RedisConn, prefix: &str) -> redis::RedisResult<usize> {
    let legacy = format!("{prefix}:queue:");
    let seq = format!("{legacy}seq");
    if conn.is_cluster() || !redis::cmd("EXISTS").arg(&seq).query_async::<bool>(conn).await? {
        return Ok(0);
    }
    let base = super::key_base(prefix);
    let pattern = format!("{}*", legacy.replace('[', "\\[").replace('*', "\\*").replace('?', "\\?"));
    let mut keys = conn.keys_in_slot_of(&legacy, &pattern).await?;
    keys.retain(|k| k != &seq);
    keys.push(seq);
    let (mut moved, mut kept) = (0, 0);
    for old in keys {
        let new = format!("{base}{}", &old[legacy.len()..]);
        if !redis::cmd("RENAMENX").arg(&old).arg(&new).query_async::<bool>(conn).await? {
            kept += 1;
            continue;
        }
        moved += 1;
        if new.starts_with(&format!("{base}job:")) && !new.ends_with(":log") {
            retag_parent_fields(conn, &new, &legacy, &base).await?;
        }
    }
    if kept > 0 {
        tracing::error!(kept, "queue keys of an older eventmill were not adopted: their new names were taken");
    }
    tracing::info!(moved, "queue keys of an older eventmill adopted");
    Ok(moved)
}

/// A flow parent keeps its queue's key names: point them at the new names.
async fn retag_parent_fields(conn: &mut RedisConn, job: &str, legacy: &str, base: &str) -> redis::RedisResult<()> {
    let values: Vec<Option<String>> = redis::cmd("HMGET").arg(job).arg(&KEY_FIELDS[..]).query_async(conn).await?;
    for (field, value) in KEY_FIELDS.iter().zip(values) {
        if let Some(rest) = value.as_deref().and_then(|v| v.strip_prefix(legacy)) {
            let _: () = redis::cmd("HSET").arg(job).arg(*field).arg(format!("{base}{rest}")).query_async(conn).await?;
        }
    }
    Ok(())
}
