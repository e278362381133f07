//! One job in one slot: its handler runs under the job's timeout, a panic is an ordinary
//! (retryable) failure, and the outcome goes back to the worker loop, which records it in its next
//! round trip.

use std::{panic::AssertUnwindSafe, time::Duration};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{RunningJob, Slot, Worker, lock};
use crate::{
    queue::{Action, Fetched, Finished, JobError, Latency, Outcome, Progress, now_ms},
    settings::RetryPolicy,
};

impl Worker {
    /// Starts `job` in a slot of its own.
    pub(super) fn start(&mut self, job: Fetched) {
        let progress = Progress::default();
        let cancel = CancellationToken::new();
        let running = RunningJob {
            id: job.id.clone(),
            kind: job.kind.clone(),
            payload: job.payload,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            progress: progress.clone(),
            cancel: cancel.clone(),
            store: Some(self.store.clone()),
        };
        let handler = self.handler.clone();
        let attempt = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(running)));
        let policy = self.queue.policy(&job.kind);
        let (active, done, id, timeout) =
            (self.active.clone(), self.done.clone(), job.id.clone(), job.timeout.unwrap_or(policy.timeout));
        let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempt);
        // The attempt continues the trace its enqueue ran under (none: a root, or the worker's).
        if let Some(trace) = &job.trace {
            crate::queue::trace::set_parent(&span, trace);
        }
        let (queue, started) = (self.queue.name, std::time::Instant::now());
        let (created_at, run_at, started_at) = (job.created_at, job.run_at, now_ms());
        let slot_kind = job.kind.clone();
        // Registered before the task can finish: the task takes its slot back out under the lock.
        let mut slots = lock(&self.active);
        let abort = self.jobs.spawn(
            async move {
                let result = match attempt {
                    Ok(attempt) => run_attempt(attempt, timeout).await,
                    Err(panic) => Err(JobError::retryable(format!("job panicked: {}", panic_message(&panic)))),
                };
                let outcome = match result {
                    Ok(value) => Outcome::Completed(value),
                    Err(error) => match error.action() {
                        Action::RateLimited(pause) => {
                            tracing::info!(%error, "job rate limited by its processor (no attempt spent)");
                            Outcome::RateLimited(pause)
                        }
                        Action::DelayUntil(until) => {
                            tracing::info!(%error, "job delayed by its processor (no attempt spent)");
                            Outcome::Postponed(until)
                        }
                        Action::Fail => {
                            let retry_in = backoff(&policy, job.attempt);
                            tracing::warn!(%error, retryable = error.is_retryable(), retry_in_ms = retry_in.as_millis() as u64,
                                "job attempt failed");
                            Outcome::Failed { error, retry_at: now_ms() + retry_in.as_millis() as i64 }
                        }
                    },
                };
                crate::metrics::job_attempt(queue, &job.kind, crate::metrics::job_outcome(&outcome, job.attempt, job.max_attempts), started);
                let slot = lock(&active).remove(&id);
                if let Some(slot) = slot {
                    let logs = slot.progress.take().logs;
                    let ran = started.elapsed();
                    let latency = Latency::measure(created_at, run_at, started_at, ran, now_ms());
                    let _ = done.send(Finished { id, kind: job.kind, attempt: job.attempt, outcome, logs, ran, latency });
                }
            }
            .instrument(span),
        );
        slots.insert(job.id, Slot { kind: slot_kind, attempt: job.attempt, progress, cancel, abort: Some(abort) });
    }
}

/// One attempt under `timeout`, a panic turned into a retryable error.
async fn run_attempt(
    attempt: futures_util::future::BoxFuture<'static, Result<serde_json::Value, JobError>>,
    timeout: Duration,
) -> Result<serde_json::Value, JobError> {
    match tokio::time::timeout(timeout, AssertUnwindSafe(attempt).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(JobError::retryable(format!("job panicked: {}", panic_message(&panic)))),
        Err(_) => Err(JobError::retryable(format!("timed out after {} s", timeout.as_secs_f64()))),
    }
}

/// Wait before retrying after failed attempt `attempt`: base, 2 x base, 4 x base... with jitter.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponential = policy.backoff.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let spread = if policy.jitter > 0.0 { 1.0 + policy.jitter * (2.0 * rand::random::<f64>() - 1.0) } else { 1.0 };
    Duration::from_secs_f64((exponential * spread).max(0.0))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let policy = RetryPolicy { attempts: 3, backoff: Duration::from_secs(2), jitter: 0.0, timeout: Duration::ZERO };
        let waits: Vec<u64> = (1..=3).map(|a| backoff(&policy, a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8]);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy =
            RetryPolicy { attempts: 3, backoff: Duration::from_secs(2), jitter: 0.25, timeout: Duration::ZERO };
        for _ in 0..100 {
            let wait = backoff(&policy, 2).as_secs_f64();
            assert!((3.0..=5.0).contains(&wait), "{wait}");
        }
    }
}
