//! Rewrites dirty minutes from PostgreSQL: a minute goes dirty when a batch was acknowledged
//! without being counted (another consumer had taken some of its entries over). Once the minute
//! is closed, its counts, seconds and users are replaced by `count(*)`, `sum(amount)` and the
//! distinct users of its rows.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use super::{LiveKeys, MINUTE_TTL, SECOND_TTL};
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
pub async fn reconcile_once(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    keys: &LiveKeys,
) -> Result<usize, ReconcileError> {
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

/// Replaces one minute's live keys with what PostgreSQL holds for it.
pub async fn rewrite_minute(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    keys: &LiveKeys,
    minute: i64,
) -> Result<(), ReconcileError> {
    let cells: Vec<(i64, String, String, i64, i64)> =
        sqlx::query_as(include_str!("sql/minute_cells.sql")).bind(minute * 60).fetch_all(pool).await?;
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT user_id FROM events WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 60) \
         AND user_id IS NOT NULL",
    )
    .bind(minute * 60)
    .fetch_all(pool)
    .await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.del(keys.minute(minute)).ignore().del(keys.users(minute)).ignore();
    for sec in minute * 60..minute * 60 + 60 {
        pipe.del(keys.second(sec)).ignore();
    }
    for (sec, event_type, source, events, revenue) in &cells {
        let field = format!("{event_type}|{source}");
        pipe.hincr(keys.second(*sec), format!("c|{field}"), *events).ignore();
        pipe.hincr(keys.minute(minute), format!("c|{field}"), *events).ignore();
        if *revenue != 0 {
            pipe.hincr(keys.second(*sec), format!("r|{field}"), *revenue).ignore();
            pipe.hincr(keys.minute(minute), format!("r|{field}"), *revenue).ignore();
        }
        pipe.expire(keys.second(*sec), SECOND_TTL as i64).ignore();
    }
    for chunk in users.chunks(1000) {
        pipe.pfadd(keys.users(minute), chunk).ignore();
    }
    pipe.expire(keys.minute(minute), MINUTE_TTL as i64).ignore().expire(keys.users(minute), MINUTE_TTL as i64).ignore();
    let _: () = pipe.query_async(redis).await?;
    tracing::info!(minute, rows = cells.iter().map(|c| c.3).sum::<i64>(), "live minute rewritten from PostgreSQL");
    Ok(())
}

/// Reconciles every few seconds until shutdown.
pub async fn run(pool: PgPool, mut redis: ConnectionManager, keys: LiveKeys, shutdown: Shutdown) -> anyhow::Result<()> {
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
