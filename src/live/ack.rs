//! The one hook between storage and the live counters: XACK a batch's entries and add its tally
//! in one Lua call, so counts move exactly when entries leave the pending list. The first stream
//! shard does that; another shard's slot is not the counters', so it counts first (recording the
//! batch in flight), acknowledges, then settles: a batch not wholly acknowledged, or abandoned in
//! flight by a dead process, marks its minutes dirty for the reconciler.

use super::{LiveKeys, Tally};

/// Keys the script always takes before the counter keys.
const FIXED_KEYS: usize = 2;

/// Adds `tally` (a decoded `Tally::script_args` JSON) to the counter keys (a macro: `concat!`
/// takes literals only).
macro_rules! count_lua {
    () => {
        r#"
for _, c in ipairs(tally.h) do
  redis.call('HINCRBY', KEYS[c[1]], 'c|' .. c[2], c[3])
  if c[4] ~= 0 then redis.call('HINCRBY', KEYS[c[1]], 'r|' .. c[2], c[4]) end
end
for _, u in ipairs(tally.u) do
  for i = 1, #u[2], 1000 do redis.call('PFADD', KEYS[u[1]], unpack(u[2], i, math.min(i + 999, #u[2]))) end
end
for _, e in ipairs(tally.e) do redis.call('EXPIRE', KEYS[e[1]], e[2]) end
"#
    };
}

/// KEYS: stream, dirty set, then every counter key the tally touches (all in the stream's hash
/// slot, see `LiveKeys`). ARGV: group, tally JSON (`Tally::script_args`, keys by KEYS position),
/// ids... Counts are applied only if every id was still pending (XACK acknowledged them all):
/// otherwise another consumer took some over and counts them, so this batch's minutes go to the
/// dirty set and the reconciler rewrites them from PostgreSQL.
const SCRIPT: &str = concat!(
    r#"
local acked = 0
for i = 3, #ARGV, 1000 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #KEYS == 2 then return acked end
local tally = cjson.decode(ARGV[2])
if acked < #ARGV - 2 then
  for _, m in ipairs(tally.d) do redis.call('SADD', KEYS[2], m) end
  return acked
end
"#,
    count_lua!(),
    "return acked\n"
);

/// The other shards' first step: KEYS: the in-flight hash, the dirty set, then the counter keys.
/// ARGV: batch token, tally JSON. Counts, and records the batch's minutes under its token until
/// `SETTLE` says whether its XACK took every entry.
const COUNT_IN_FLIGHT: &str = concat!(
    r#"
local tally = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(tally.d))
"#,
    count_lua!(),
    "return 1\n"
);

/// KEYS: the in-flight hash, the dirty set. ARGV: batch token, "1" if the XACK took every entry.
/// Forgets the token; a batch not wholly acknowledged marks its minutes dirty.
const SETTLE: &str = r#"
local minutes = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] ~= '1' and minutes then
  for _, m in ipairs(cjson.decode(minutes)) do redis.call('SADD', KEYS[2], m) end
end
return 1
"#;

/// Adds "acknowledge `ids` and count `tally`" to an atomic pipeline (the consumer's acknowledge
/// step, beside its dead-letter moves).
pub fn queue_ack_and_count(
    pipe: &mut redis::Pipeline,
    stream: &str,
    group: &str,
    live: &LiveKeys,
    ids: &[&str],
    tally: &Tally,
) {
    if ids.is_empty() {
        return;
    }
    let args = tally.script_args(live, FIXED_KEYS + 1);
    pipe.cmd("EVAL")
        .arg(SCRIPT)
        .arg(FIXED_KEYS + args.keys.len())
        .arg(stream)
        .arg(live.dirty())
        .arg(&args.keys)
        .arg(group)
        .arg(args.json)
        .arg(ids)
        .ignore();
}

/// The first step of a shard whose slot is not the counters' (see `StreamKeys::counts_with_ack`):
/// counts `tally` and records it in flight; answers its token for `settle_in_flight`. A process
/// that dies before settling leaves the token, and the reconciler marks its minutes dirty once it
/// is older than `IN_FLIGHT_LIMIT_MS`: counts are exact again once PostgreSQL rewrote them.
pub async fn count_in_flight(
    conn: &mut crate::redis_conn::RedisConn,
    live: &LiveKeys,
    tally: &Tally,
) -> redis::RedisResult<String> {
    let token = format!("{}-{:08x}", chrono::Utc::now().timestamp_millis(), rand::random::<u32>());
    let args = tally.script_args(live, FIXED_KEYS + 1);
    redis::cmd("EVAL")
        .arg(COUNT_IN_FLIGHT)
        .arg(FIXED_KEYS + args.keys.len())
        .arg(live.in_flight())
        .arg(live.dirty())
        .arg(&args.keys)
        .arg(&token)
        .arg(args.json)
        .query_async::<()>(conn)
        .await?;
    Ok(token)
}

/// The last step: `all_acked` false (another consumer took some entries over) marks the batch's
/// minutes dirty.
pub async fn settle_in_flight(
    conn: &mut crate::redis_conn::RedisConn,
    live: &LiveKeys,
    token: &str,
    all_acked: bool,
) -> redis::RedisResult<()> {
    redis::cmd("EVAL")
        .arg(SETTLE)
        .arg(2)
        .arg(live.in_flight())
        .arg(live.dirty())
        .arg(token)
        .arg(if all_acked { "1" } else { "0" })
        .query_async(conn)
        .await
}

/// Batches in flight for longer than this are taken as abandoned by a dead process.
pub const IN_FLIGHT_LIMIT_MS: i64 = 60_000;

/// Marks the minutes of abandoned in-flight batches dirty (the reconciler's first step).
pub async fn settle_abandoned(conn: &mut crate::redis_conn::RedisConn, live: &LiveKeys) -> redis::RedisResult<usize> {
    let tokens: Vec<String> = redis::cmd("HKEYS").arg(live.in_flight()).query_async(conn).await?;
    let oldest = chrono::Utc::now().timestamp_millis() - IN_FLIGHT_LIMIT_MS;
    let mut settled = 0;
    for token in tokens {
        let started = token.split('-').next().and_then(|ms| ms.parse::<i64>().ok()).unwrap_or(0);
        if started < oldest {
            settle_in_flight(conn, live, &token, false).await?;
            settled += 1;
        }
    }
    Ok(settled)
}
