//! Maintenance of one queue from the board, each a Lua script that handles a bounded chunk
//! of jobs per call (so one call never blocks Redis for long), called again while more are left:
//! cleaning old finished jobs, promoting every delayed job, emptying a queue.

use std::time::Duration;

use super::{JobState, QueueError, now_ms, scripts, scripts::BulkLimit, store::Queue};

/// Jobs one call of a bulk script handles at most.
pub const BULK_CHUNK: usize = 1000;

/// What one call of a bulk script did: how many jobs it handled, and whether more are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkStep {
    /// Jobs handled by this call.
    pub done: u64,
    /// More jobs are left to handle (call again).
    pub more: bool,
}

/// The finished states a clean applies to.
fn finished_set(state: JobState) -> Result<JobState, QueueError> {
    match state {
        JobState::Completed => Ok(JobState::Completed),
        JobState::Failed | JobState::Cancelled => Ok(JobState::Failed),
        other => Err(QueueError::Invalid(format!("only completed or failed jobs can be cleaned, not {other} ones"))),
    }
}

/// Bulk operations: clean, promote all, empty.
impl Queue {
    /// Deletes the `state` jobs (completed, or failed with the cancelled ones) that finished more
    /// than `older_than` ago, with their logs; newer ones stay. Works in atomic chunks of
    /// [`BULK_CHUNK`] jobs against one cutoff taken at the start; answers how many went.
    pub async fn clean(&self, state: JobState, older_than: Duration) -> Result<u64, QueueError> {
        let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let step = self.clean_step(state, before, BULK_CHUNK).await?;
            total += step.done;
            if !step.more {
                return Ok(total);
            }
        }
    }

    /// One atomic step of [`clean`](Self::clean): deletes at most `limit` of the oldest `state`
    /// jobs that finished before `before_ms` (unix ms), and says whether more such jobs are left.
    pub async fn clean_step(&self, state: JobState, before_ms: i64, limit: usize) -> Result<BulkStep, QueueError> {
        let set = finished_set(state)?;
        let clean = scripts::Clean { before: before_ms, limit };
        Ok(scripts::clean(&mut self.redis.clone(), &self.keys, set, &clean).await?)
    }

    /// Moves every delayed job (retries waiting out their backoff included) to `waiting` now, the
    /// soonest due first, in atomic chunks of [`BULK_CHUNK`]; answers how many.
    pub async fn promote_all(&self) -> Result<u64, QueueError> {
        // Never more rounds than the jobs there at the start need: jobs delayed meanwhile do not
        // keep it going forever.
        let start = self.counts().await?.delayed;
        let mut total = 0;
        loop {
            let step = BulkLimit { now: now_ms(), limit: BULK_CHUNK };
            let step = scripts::promote_all(&mut self.redis.clone(), &self.keys, &step).await?;
            total += step.done;
            if !step.more || step.done == 0 || total >= start {
                return Ok(total);
            }
        }
    }

    /// Deletes every waiting and delayed job with its log (a flow's child counts as failed for its
    /// parent, as [`remove`](Self::remove)), in atomic chunks of [`BULK_CHUNK`]; running and
    /// finished jobs stay. Answers how many went.
    pub async fn empty(&self) -> Result<u64, QueueError> {
        let counts = self.counts().await?;
        let start = counts.waiting + counts.delayed;
        let mut total = 0;
        loop {
            let step = BulkLimit { now: now_ms(), limit: BULK_CHUNK };
            let step = scripts::empty(&mut self.redis.clone(), &self.keys, &step).await?;
            total += step.done;
            if !step.more || step.done == 0 || total >= start {
                return Ok(total);
            }
        }
    }
}
