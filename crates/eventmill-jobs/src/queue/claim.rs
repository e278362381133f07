//! The worker's round trips: one script records any number of finished attempts and claims the
//! next jobs (`finish_and_fetch`), one reports every running job's lease, progress and log lines
//! (`report_live`), one declares the queue at start.

use std::time::Duration;

use super::{JobError, Queue, QueueError, history::Histogram, now_ms, scripts};
use crate::redis_conn::RedisConn;

/// Due delayed jobs and expired leases handled per round trip (a backlog drains over several).
pub(crate) const PROMOTE_CHUNK: usize = 500;

/// A job claimed by a worker (decoded from the fetch script's reply in `scripts`).
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The job's id.
    pub(crate) id: String,
    /// Its kind (a registered `Processor::NAME`).
    pub(crate) kind: String,
    /// The payload JSON as enqueued.
    pub(crate) payload: String,
    /// This attempt's number, from 1.
    pub(crate) attempt: u32,
    /// Runs in total, the first included.
    pub(crate) max_attempts: u32,
    /// How long this attempt may run; `None` (no `timeout_ms` in the hash, as enqueue.lua writes
    /// it): the kind's policy.
    pub(crate) timeout: Option<Duration>,
    /// The W3C `traceparent` of its enqueue (`queue::trace`): the attempt's span continues it.
    pub(crate) trace: Option<String>,
    /// When it was enqueued (unix ms; `None`: not in its hash).
    pub(crate) created_at: Option<i64>,
    /// When this attempt became due (unix ms: its delay's or retry's end; `None`: due at enqueue).
    pub(crate) run_at: Option<i64>,
}

/// A finished attempt's latency for the queue's history, as buckets of [`Histogram`] (docs/jobs.md,
/// "Throughput and latency history"). Measured by the worker, which knows when the attempt really
/// started and ended, and sent with its result: the finish script only adds them up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Latency {
    /// Due (or enqueued) -> started.
    pub(crate) wait: u32,
    /// Started -> finished.
    pub(crate) run: u32,
    /// Enqueued -> finished (counted for completed and failed jobs, not for a retried attempt).
    pub(crate) end_to_end: u32,
}

impl Latency {
    /// An attempt of a job enqueued at `created_at`, due at `run_at` (both as its claim read them:
    /// `Fetched`), started at `started` and finished at `finished` (unix ms) after running `ran`.
    pub(crate) fn measure(
        created_at: Option<i64>,
        run_at: Option<i64>,
        started: i64,
        ran: Duration,
        finished: i64,
    ) -> Self {
        let created = created_at.unwrap_or(started);
        let due = run_at.unwrap_or(created).max(created);
        Latency {
            wait: Histogram::bucket_of((started - due) as f64),
            run: Histogram::bucket_of(ran.as_secs_f64() * 1000.0),
            end_to_end: Histogram::bucket_of((finished - created) as f64),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Succeeded with this result (stored with the job).
    Completed(serde_json::Value),
    /// Failed; retried at `retry_at` (unix ms) if the error is retryable and attempts are left.
    Failed {
        /// What went wrong, and whether a retry can help.
        error: JobError,
        /// When to run again (unix ms), if it is retried.
        retry_at: i64,
    },
    /// Handed back untouched (shutdown): next in line, attempt not counted.
    Released,
    /// `JobError::delay_until`: delayed until this time (unix ms), attempt not counted.
    Postponed(i64),
    /// `JobError::rate_limited`: back first in line, attempt not counted; the queue takes no job
    /// for this long.
    RateLimited(Duration),
}

/// A finished attempt with the log lines not yet written.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// The job's id.
    pub(crate) id: String,
    /// The job's kind (for its lifecycle event).
    pub(crate) kind: String,
    /// This attempt's number, from 1.
    pub(crate) attempt: u32,
    /// How it ended.
    pub(crate) outcome: Outcome,
    /// Log lines the processor wrote since the last report.
    pub(crate) logs: Vec<String>,
    /// How long the attempt ran (the worker holds jobs ahead only while they are short).
    pub(crate) ran: Duration,
    /// Its latency buckets (unused for a job handed back).
    pub(crate) latency: Latency,
}

/// What the queue recorded for a finished attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// The job is completed.
    Completed,
    /// The attempt failed; the job waits out its backoff in `delayed`.
    Retrying,
    /// The job failed for good (permanent error, or out of attempts).
    Failed,
    /// The job is back in `waiting`, first in line, its attempt not counted.
    Released,
    /// The job waits in `delayed` as its processor asked, its attempt not counted.
    Postponed,
    /// The job is back in `waiting` and the queue pauses for the asked time, its attempt not counted.
    RateLimited,
    /// Nothing was recorded: the claim was lost meanwhile (lease expired, removed or cancelled).
    Lost,
}

/// What one round trip answered.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Per finished attempt, in the order they were sent: what the queue recorded.
    pub(crate) recorded: Vec<Recorded>,
    /// The jobs claimed, with a lease, their attempt counted.
    pub(crate) claimed: Vec<Fetched>,
    /// When the next delayed job or lease becomes due (unix ms).
    pub(crate) next_due: Option<i64>,
    /// The queue is paused: held jobs must not start (the worker hands them back).
    pub(crate) paused: bool,
}

/// One running job's news for `report_live`.
#[derive(Debug)]
pub(crate) struct Live<'a> {
    /// The job's id.
    pub(crate) id: &'a str,
    /// Its progress percent and message, if they changed.
    pub(crate) progress: Option<(u8, String)>,
    /// Log lines written since the last report.
    pub(crate) logs: Vec<String>,
}

impl Queue {
    /// Records `started` held jobs and `finished` attempts, claims up to `want` jobs to start and
    /// `hold` more to hold ahead for `worker`, in one script.
    pub(crate) async fn finish_and_fetch(
        &self,
        worker: &str,
        started: &[String],
        finished: &[Finished],
        want: usize,
        hold: usize,
    ) -> Result<Round, QueueError> {
        let round = scripts::FinishAndFetch {
            now: now_ms(),
            worker,
            want,
            hold,
            started,
            settings: &self.settings,
            rate_limit: self.rate_limit,
            finished,
        };
        Ok(scripts::finish_and_fetch(&mut self.redis.clone(), &self.keys, &round).await?)
    }

    /// Writes running jobs' progress and log lines, extending their leases when `renew`; answers
    /// the ids that are no longer active.
    pub(crate) async fn report_live(&self, renew: bool, jobs: &[Live<'_>]) -> Result<Vec<String>, QueueError> {
        let lease_until = renew.then(|| now_ms() + self.settings.lease.as_millis() as i64);
        Ok(scripts::report_live(&mut self.redis.clone(), &self.keys, lease_until, jobs).await?)
    }

    /// Declares the queue as a worker starts on it: `paused` applies on its very first start.
    /// Answers whether this was the queue's very first start.
    pub async fn declare(&self, paused: bool, concurrency: usize) -> Result<bool, QueueError> {
        let mut redis = self.redis.clone();
        Ok(scripts::declare(
            &mut redis,
            &self.keys,
            now_ms(),
            paused,
            concurrency,
            self.rate_limit,
            self.global_concurrency,
        )
        .await?)
    }

    /// A connection of its own for blocking on the queue's marker.
    pub(super) fn blocking_connection(&self) -> Result<RedisConn, QueueError> {
        Ok(self.client.connect(self.settings.idle_check + Duration::from_secs(10))?)
    }

    /// Waits (on `conn`) until a job may be runnable: answers true when woken by the marker,
    /// false after `timeout`.
    pub(super) async fn wait_for_marker(&self, conn: &mut RedisConn, timeout: Duration) -> Result<bool, QueueError> {
        let popped: Option<(String, String, f64)> =
            redis::cmd("BZPOPMIN").arg(&self.keys.marker).arg(timeout.as_secs_f64()).query_async(conn).await?;
        Ok(popped.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_waits_from_its_due_time_and_ends_after_its_run() {
        let bucket = Histogram::bucket_of;
        // Enqueued at 1,000, due at 1,600 (a delay or a retry), started at 1,650, ran 12.5 ms.
        let latency = Latency::measure(Some(1_000), Some(1_600), 1_650, Duration::from_micros(12_500), 1_663);
        assert_eq!(latency, Latency { wait: bucket(50.0), run: bucket(12.5), end_to_end: bucket(663.0) });
        // A run-at before the enqueue (due at once) waits from the enqueue.
        let latency = Latency::measure(Some(1_000), Some(10), 1_000, Duration::ZERO, 1_000);
        assert_eq!((latency.wait, latency.run, latency.end_to_end), (0, 0, 0));
        // No times in the hash: nothing is invented (under 1 ms).
        assert_eq!(Latency::measure(None, None, 5_000, Duration::ZERO, 5_000).wait, 0);
    }
}
