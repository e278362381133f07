//! Acknowledging stored entries when Redis is out of memory (SPEC section 13: a full Redis must
//! not wedge storage). At `maxmemory` Redis refuses every MULTI/EXEC and every command that may
//! need memory, so the consumer's usual acknowledge (a transaction that also adds the batch to
//! the live counters) fails, nothing is acknowledged or trimmed, and nothing frees memory.
//!
//! Here the batch is acknowledged without counting it: XACK is not refused at OOM (it frees
//! memory, and so does the XTRIM after it), and the batch's minutes go to the dirty set, which
//! needs a few bytes, in a `#!lua flags=allow-oom` script: the reconciler rewrites them from
//! PostgreSQL once they are closed and Redis has room (`live::reconcile`), as for a batch another
//! consumer took over. Dead letters need memory: entries with one stay pending and are retried
//! (their stored events are skipped by the primary key) until Redis has room.

use std::collections::BTreeSet;

use super::{StreamKeys, dead_letter::DeadLetter};
use crate::redis_conn::RedisConn;

/// KEYS: the stream, then (optionally) the dirty set. ARGV: group, minutes as JSON, ids...
/// XACKs the ids; when the dirty set is given, marks the minutes dirty. `allow-oom`: runs at
/// `maxmemory` (its only growth is a few set members).
const ACK_UNCOUNTED: &str = r#"#!lua flags=allow-oom
local acked = 0
for i = 3, #ARGV, 1000 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #KEYS > 1 then
  for _, m in ipairs(cjson.decode(ARGV[2])) do redis.call('SADD', KEYS[2], m) end
end
return acked
"#;

/// KEYS: the dirty set. ARGV: minutes as JSON. For shards whose stream is not in the counters'
/// slot: the minutes are marked before the XACK.
const MARK_DIRTY: &str = r#"#!lua flags=allow-oom
for _, m in ipairs(cjson.decode(ARGV[1])) do redis.call('SADD', KEYS[1], m) end
return 1
"#;

/// Acknowledges `settled` at OOM without counting, marking `minutes` dirty; entries that carry a
/// dead letter are left pending (see the module doc). Answers how many entries were acknowledged.
pub async fn acknowledge_uncounted(
    conn: &mut RedisConn,
    keys: &StreamKeys,
    settled: &[&str],
    letters: &[DeadLetter],
    minutes: &BTreeSet<i64>,
) -> redis::RedisResult<usize> {
    let lettered: BTreeSet<&str> = letters.iter().map(|l| l.entry_id.split('#').next().unwrap_or("")).collect();
    let ids: Vec<&str> = settled.iter().copied().filter(|id| !lettered.contains(id)).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let minutes_json = serde_json::to_string(minutes).expect("integers serialize");
    let mut script = redis::cmd("EVAL");
    script.arg(ACK_UNCOUNTED);
    if keys.counts_with_ack() && !minutes.is_empty() {
        script.arg(2).arg(&keys.events).arg(keys.live.dirty());
    } else {
        if !minutes.is_empty() {
            redis::cmd("EVAL")
                .arg(MARK_DIRTY)
                .arg(1)
                .arg(keys.live.dirty())
                .arg(&minutes_json)
                .query_async::<()>(conn)
                .await?;
        }
        script.arg(1).arg(&keys.events);
    }
    let acked: usize = script.arg(&keys.group).arg(&minutes_json).arg(&ids).query_async(conn).await?;
    tracing::debug!(acked, kept = settled.len() - ids.len(), minutes = minutes.len(), "acknowledged uncounted");
    Ok(acked)
}
