//! `eventmill enqueue` against Redis' limits: above the memory high-water mark a job is refused
//! before it is sent (as ingestion answers 429), and a refused enqueue says why once, with the
//! fix, instead of "is Redis running?" followed by the refusal repeated by each layer.

use std::time::Duration;

use super::{LimitSettings, RedisWatch, Refusal, memory};
use crate::redis_conn::RedisConn;

/// Longest wait for the one `INFO memory` an enqueue reads.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Refuses the job when Redis is full or above `EVENTMILL_REDIS_MEMORY_HIGH_WATER`, so the last
/// room is left to draining the stream. A Redis that does not answer now is left to the enqueue
/// itself to report.
pub async fn check_memory(redis: &RedisConn, limits: LimitSettings) -> anyhow::Result<()> {
    let mut conn = redis.clone();
    let Ok(Ok(reading)) = tokio::time::timeout(READ_TIMEOUT, memory::read(&mut conn)).await else {
        return Ok(());
    };
    if reading.is_full() {
        anyhow::bail!("could not enqueue: {}", Refusal::OutOfMemory.describe(Some(&reading)));
    }
    let watch = RedisWatch::new(limits);
    watch.record(&reading);
    match watch.refuses_new_writes() {
        Some(refused) => Err(anyhow::anyhow!("could not enqueue: {refused}")),
        None => Ok(()),
    }
}

/// A failed enqueue's error as the operator should read it: a refusal (full, read-only,
/// persistence failing) anywhere in its chain becomes one sentence with its cause and fix (a full
/// Redis with its figures, read now); any other error is returned as it is.
pub async fn explain(error: anyhow::Error, redis: &RedisConn) -> anyhow::Error {
    let Some(refusal) = error.chain().find_map(|e| e.downcast_ref::<redis::RedisError>().and_then(Refusal::of)) else {
        return error;
    };
    let mut conn = redis.clone();
    let reading = tokio::time::timeout(READ_TIMEOUT, memory::read(&mut conn)).await.ok().and_then(Result::ok);
    anyhow::anyhow!("could not enqueue: {}", refusal.describe(reading.as_ref()))
}
