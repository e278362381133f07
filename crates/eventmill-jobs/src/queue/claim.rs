//! The worker's round trips: one script records any number of finished attempts and claims the
//! next jobs (`finish_and_fetch`), one reports every running job's lease, progress and log lines
//! (`report_live`), one declares the queue at start.

use std::time::Duration;

use super::{JobError, Queue, QueueError, now_ms, scripts};
use crate::redis_conn::RedisConn;

/// Due delayed jobs and expired leases handled per round trip (a backlog drains over several).
pub const PROMOTE_CHUNK: usize = 500;

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub id: String,
    pub kind: String,
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(serde_json::Value),
    /// Failed; retried at `retry_at` (unix ms) if the error is retryable and attempts are left.
    Failed {
        error: JobError,
        retry_at: i64,
    },
    /// Handed back untouched (shutdown): next in line, attempt not counted.
    Released,
}

/// A finished attempt with the log lines not yet written.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: String,
    /// The job's kind and this attempt's number (for its lifecycle event).
    pub kind: String,
    pub attempt: u32,
    pub outcome: Outcome,
    pub logs: Vec<String>,
}

/// What one round trip answered.
#[derive(Debug, Default)]
pub struct Round {
    /// Per finished attempt: `completed`, `retry`, `failed`, `released` or `lost` (the claim was
    /// lost meanwhile: lease expired, or removed).
    pub statuses: Vec<String>,
    pub claimed: Vec<Fetched>,
    /// When the next delayed job or lease becomes due (unix ms).
    pub next_due: Option<i64>,
}

/// One running job's news for `report_live`.
pub struct Live<'a> {
    pub id: &'a str,
    pub progress: Option<(u8, String)>,
    pub logs: Vec<String>,
}

type Claimed = (String, String, String, u32, u32, u64);

impl Queue {
    /// Records `finished` and claims up to `want` jobs for `worker`, in one script.
    pub async fn finish_and_fetch(
        &self,
        worker: &str,
        finished: &[Finished],
        want: usize,
    ) -> Result<Round, QueueError> {
        let mut script = scripts::FINISH_AND_FETCH.prepare_invoke();
        for key in [
            &self.waiting,
            &self.delayed,
            &self.active,
            &self.completed,
            &self.failed,
            &self.paused,
            &self.marker,
            &self.order,
            &self.limiter,
        ] {
            script.key(key);
        }
        let s = &self.settings;
        script
            .arg(&self.job_prefix)
            .arg(now_ms())
            .arg(worker)
            .arg(s.lease.as_millis() as u64)
            .arg(want)
            .arg(PROMOTE_CHUNK)
            .arg(s.keep_completed)
            .arg(s.keep_completed_age.as_millis() as u64)
            .arg(s.keep_failed)
            .arg(s.keep_failed_age.as_millis() as u64)
            .arg(self.rate_limit.map_or(0, |r| r.max))
            .arg(self.rate_limit.map_or(0, |r| r.per.as_millis().max(1) as u64));
        for done in finished {
            let (kind, a, b) = match &done.outcome {
                Outcome::Completed(result) => ("c", result.to_string(), String::new()),
                Outcome::Failed { error, retry_at } if error.is_retryable() => {
                    ("r", error.to_string(), retry_at.to_string())
                }
                Outcome::Failed { error, .. } => ("f", error.to_string(), String::new()),
                Outcome::Released => ("h", String::new(), String::new()),
            };
            script.arg(&done.id).arg(kind).arg(a).arg(b).arg(logs_arg(&done.logs));
        }
        let (statuses, claimed, next_due): (Vec<String>, Vec<Claimed>, i64) =
            script.invoke_async(&mut self.redis.clone()).await?;
        let claimed = claimed
            .into_iter()
            .map(|(id, kind, payload, attempt, max_attempts, timeout_ms)| Fetched {
                id,
                kind,
                payload,
                attempt,
                max_attempts,
                timeout: Duration::from_millis(timeout_ms),
            })
            .collect();
        Ok(Round { statuses, claimed, next_due: (next_due >= 0).then_some(next_due) })
    }

    /// Claims up to `want` waiting jobs (after promoting due ones) for `worker`.
    pub async fn fetch(&self, worker: &str, want: usize) -> Result<Vec<Fetched>, QueueError> {
        Ok(self.finish_and_fetch(worker, &[], want).await?.claimed)
    }

    /// Writes running jobs' progress and log lines, extending their leases when `renew`; answers
    /// the ids that are no longer active.
    pub async fn report_live(&self, renew: bool, jobs: &[Live<'_>]) -> Result<Vec<String>, QueueError> {
        let mut script = scripts::REPORT_LIVE.prepare_invoke();
        let until = if renew { (now_ms() + self.settings.lease.as_millis() as i64).to_string() } else { String::new() };
        script.key(&self.active).arg(&self.job_prefix).arg(until);
        for job in jobs {
            let (percent, message) = match &job.progress {
                Some((p, m)) => (p.to_string(), m.as_str()),
                None => (String::new(), ""),
            };
            script.arg(job.id).arg(percent).arg(message).arg(logs_arg(&job.logs));
        }
        Ok(script.invoke_async(&mut self.redis.clone()).await?)
    }

    /// Declares the queue as a worker starts on it: `paused` applies on its very first start.
    pub async fn declare(&self, paused: bool, concurrency: usize) -> Result<bool, QueueError> {
        let first: i64 = scripts::DECLARE
            .key(&self.meta)
            .key(&self.paused)
            .key(&self.marker)
            .key(&self.waiting)
            .key(&self.order)
            .arg(now_ms())
            .arg(if paused { "1" } else { "0" })
            .arg(concurrency)
            .arg(&self.job_prefix)
            .arg(self.rate_limit.map_or(String::new(), |r| r.to_string()))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(first == 1)
    }

    /// A connection of its own for blocking on the queue's marker.
    pub(super) fn blocking_connection(&self) -> Result<RedisConn, QueueError> {
        Ok(self.client.connect(self.settings.idle_check + Duration::from_secs(10))?)
    }

    /// Waits (on `conn`) until a job may be runnable: answers true when woken by the marker,
    /// false after `timeout`.
    pub(super) async fn wait_for_marker(&self, conn: &mut RedisConn, timeout: Duration) -> Result<bool, QueueError> {
        let popped: Option<(String, String, f64)> =
            redis::cmd("BZPOPMIN").arg(&self.marker).arg(timeout.as_secs_f64()).query_async(conn).await?;
        Ok(popped.is_some())
    }
}

fn logs_arg(logs: &[String]) -> String {
    if logs.is_empty() { String::new() } else { serde_json::to_string(logs).unwrap_or_default() }
}
