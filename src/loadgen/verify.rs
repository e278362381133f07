//! `loadgen --verify`: waits until the stream is drained, then counts this run's rows.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use redis::streams::{StreamInfoGroupsReply, StreamInfoStreamReply};
use secrecy::ExposeSecret;

use crate::{settings::Settings, store, stream};

/// Gives up when the stream makes no progress for this long.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Waits until every accepted event is stored; prints the sustained rate; fails on any loss.
pub async fn wait_until_stored(
    settings: &Settings,
    tag: &str,
    accepted: u64,
    started_at: DateTime<Utc>,
    start: Instant,
) -> anyhow::Result<()> {
    let mut redis = settings.redis.target()?.connect(Duration::from_secs(5))?;
    let shards = stream::StreamKeys::shards(&settings.redis.prefix, settings.stream_shards);
    let mut last_backlog = u64::MAX;
    let mut last_progress = Instant::now();
    let drained = loop {
        let (mut backlog, mut drained) = (0u64, true);
        for keys in &shards {
            let info: StreamInfoStreamReply =
                redis::cmd("XINFO").arg("STREAM").arg(&keys.events).query_async(&mut redis).await?;
            let groups: StreamInfoGroupsReply =
                redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(&mut redis).await?;
            let group = groups
                .groups
                .into_iter()
                .find(|g| g.name == keys.group)
                .context("no consumer group: is an eventmill worker running?")?;
            backlog = backlog.saturating_add(group.lag.unwrap_or(u64::MAX as usize) as u64 + group.pending as u64);
            drained &= group.last_delivered_id == info.last_generated_id && group.pending == 0;
        }
        if drained {
            break start.elapsed();
        }
        if backlog < last_backlog {
            last_backlog = backlog;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_LIMIT {
            anyhow::bail!("the stream made no progress for {} s ({backlog} entries unstored)", STALL_LIMIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pool = store::connect(settings.database_url.expose_secret(), 1)
        .await
        .context("could not reach PostgreSQL at EVENTMILL_DATABASE_URL to verify")?;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE ts >= $1 AND properties->>'loadgen_run' = $2")
            .bind(started_at - chrono::Duration::minutes(1))
            .bind(tag)
            .fetch_one(&pool)
            .await?;
    let stored = stored as u64;
    eprintln!(
        "loadgen verify: {stored} of {accepted} accepted events stored; last row committed {:.1}s after the first send; \
         sustained {:.0} events/s HTTP-to-row; lost {}; duplicated {}",
        drained.as_secs_f64(),
        stored as f64 / drained.as_secs_f64(),
        accepted.saturating_sub(stored),
        stored.saturating_sub(accepted),
    );
    anyhow::ensure!(stored == accepted, "stored {stored} rows for {accepted} accepted events");
    Ok(())
}
