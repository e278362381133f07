//! Rewrites dirty minutes from PostgreSQL: a minute goes dirty when a batch was acknowledged
//! without being counted (another consumer had taken some of its entries over). Once the minute
//! is closed, its counts, seconds and users are replaced by `count(*)`, `sum(amount)` and the
//! distinct users of its rows.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::redis_conn::RedisConn;
use sqlx::PgPool;

use super::{HOUR_TTL, LiveKeys, MINUTE_TTL, SECOND_TTL};
use crate::shutdown::Shutdown;

/// How long after its end a minute is considered closed (in-flight batches have landed).
const GRACE_SECONDS: i64 = 10;
/// How often dirty minutes are looked for.
const INTERVAL: Duration = Duration::from_secs(5);

/// Why a reconciliation step failed; the minute stays dirty and is retried.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Redis is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("PostgreSQL is unavailable: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// Rewrites every closed dirty minute; returns how many.
pub async fn reconcile_once(pool: &PgPool, redis: &mut RedisConn, keys: &LiveKeys) -> Result<usize, ReconcileError> {
    super::ack::settle_abandoned(redis, keys).await?;
    let dirty: Vec<i64> = redis::cmd("SMEMBERS").arg(keys.dirty()).query_async(redis).await?;
    let closed_before = (chrono::Utc::now().timestamp() - GRACE_SECONDS).div_euclid(60);
    let mut done = 0;
    for minute in dirty.into_iter().filter(|m| *m < closed_before) {
        rewrite_minute(pool, redis, keys, minute).await?;
        let _: () = redis::cmd("SREM").arg(keys.dirty()).arg(minute).query_async(redis).await?;
        done += 1;
    }
    Ok(done)
}

/// KEYS: minute, hour, minute users, hour users, the minute's 60 seconds, then the per-cell user
/// keys. ARGV: `{"s": [[second key, "type|source", n, revenue]...], "u": [user...],
/// "cu": [[key, [user...]]...]}` and the three TTLs. The minute's old figures are taken out of its
/// hour and the new ones put in, in one atomic step.
const REWRITE: &str = r#"
local old = redis.call('HGETALL', KEYS[1])
for i = 1, #old, 2 do redis.call('HINCRBY', KEYS[2], old[i], -tonumber(old[i + 1])) end
redis.call('DEL', KEYS[1], KEYS[3], unpack(KEYS, 5, 64))
local t = cjson.decode(ARGV[1])
local sttl, mttl, httl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, c in ipairs(t.s) do
  for _, k in ipairs({KEYS[c[1]], KEYS[1], KEYS[2]}) do
    redis.call('HINCRBY', k, 'c|' .. c[2], c[3])
    if c[4] ~= 0 then redis.call('HINCRBY', k, 'r|' .. c[2], c[4]) end
  end
  redis.call('EXPIRE', KEYS[c[1]], sttl)
end
local function add(key, users, ttl)
  for i = 1, #users, 1000 do redis.call('PFADD', key, unpack(users, i, math.min(i + 999, #users))) end
  redis.call('EXPIRE', key, ttl)
end
add(KEYS[3], t.u, mttl)
add(KEYS[4], t.u, httl)
for _, c in ipairs(t.cu) do add(KEYS[c[1]], c[2], httl) end
redis.call('EXPIRE', KEYS[1], mttl)
redis.call('EXPIRE', KEYS[2], httl)
return #t.s
"#;

/// Replaces one minute's live keys with what PostgreSQL holds for it (and corrects its hour).
pub async fn rewrite_minute(
    pool: &PgPool,
    redis: &mut RedisConn,
    keys: &LiveKeys,
    minute: i64,
) -> Result<(), ReconcileError> {
    let cells: Vec<(i64, String, String, i64, i64)> =
        sqlx::query_as(include_str!("sql/minute_cells.sql")).bind(minute * 60).fetch_all(pool).await?;
    let users: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT DISTINCT event_type, source, user_id FROM events \
         WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 60) AND user_id IS NOT NULL",
    )
    .bind(minute * 60)
    .fetch_all(pool)
    .await?;
    let hour = minute.div_euclid(60);
    let mut names = vec![keys.minute(minute), keys.hour(hour), keys.users(minute), keys.hour_users(hour)];
    names.extend((minute * 60..minute * 60 + 60).map(|sec| keys.second(sec)));
    let seconds: Vec<(i64, String, i64, i64)> =
        cells.iter().map(|(sec, t, s, n, r)| (sec - minute * 60 + 5, format!("{t}|{s}"), *n, *r)).collect();
    let mut per_cell: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (t, s, user) in &users {
        per_cell.entry(format!("{t}|{s}")).or_default().push(user);
    }
    let mut cell_users = Vec::new();
    for (cell, list) in per_cell {
        names.push(keys.cell_users(hour, &cell));
        cell_users.push((names.len(), list));
    }
    let minute_users: BTreeSet<&str> = users.iter().map(|(_, _, u)| u.as_str()).collect();
    let json = serde_json::json!({ "s": seconds, "u": minute_users, "cu": cell_users }).to_string();
    let _: i64 = redis::cmd("EVAL")
        .arg(REWRITE)
        .arg(names.len())
        .arg(&names)
        .arg(json)
        .arg(SECOND_TTL)
        .arg(MINUTE_TTL)
        .arg(HOUR_TTL)
        .query_async(redis)
        .await?;
    tracing::info!(minute, rows = cells.iter().map(|c| c.3).sum::<i64>(), "live minute rewritten from PostgreSQL");
    Ok(())
}

/// Reconciles every few seconds until shutdown.
pub async fn run(pool: PgPool, mut redis: RedisConn, keys: LiveKeys, shutdown: Shutdown) -> anyhow::Result<()> {
    while !shutdown.is_cancelled() {
        if let Err(error) = reconcile_once(&pool, &mut redis, &keys).await {
            tracing::warn!(%error, "live counter reconciliation failed; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {},
            () = shutdown.cancelled() => {},
        }
    }
    Ok(())
}
