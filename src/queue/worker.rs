//! Queue workers: apalis' `WorkerBuilder` (concurrency limit, catch-panic, graceful drain) over a
//! custom backend whose fetcher polls one of our queues; the handler runs a `JobHandler` under a
//! timeout with a lease heartbeat and records the outcome in Redis itself (complete, or
//! fail-or-retry with exponential backoff). On shutdown a running job gets `shutdown_grace` to
//! finish, then is handed back to `waiting`.

use std::{convert::Infallible, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use apalis::prelude::{BackendBuilder, BoxDynError, Data, Task, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use futures_util::{FutureExt, SinkExt, StreamExt, future::BoxFuture, sink, stream};
use tracing::Instrument;

use super::{Fetched, JobError, Queue};
use crate::{settings::RetryPolicy, shutdown::Shutdown};

/// Runs one kind of work; eventmill's is `processors::Processors`, tests plug in their own.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt; the value is stored as the job's result.
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>>;
}

/// A claimed job as its handler sees it.
#[derive(Clone)]
pub struct RunningJob {
    pub id: String,
    pub kind: String,
    /// The payload JSON as enqueued (handlers parse it: a bad one is a permanent error).
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub progress: Progress,
}

/// Reports a running job's progress (0-100 and a message), visible in `jobs show` and `--wait`.
#[derive(Clone)]
pub struct Progress {
    queue: Queue,
    id: String,
}

impl Progress {
    pub async fn report(&self, percent: u8, message: &str) {
        if let Err(error) = self.queue.heartbeat(&self.id, Some((percent, message))).await {
            tracing::warn!(%error, job = %self.id, "could not store job progress");
        }
    }
}

/// How one worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique per process and start (apalis-redis defect 4: names could not be reused).
    pub name: String,
    pub concurrency: usize,
}

/// What the apalis handler needs, shared by every task of one worker.
struct Shared {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    name: String,
    shutdown: Shutdown,
}

/// Runs a worker on `queue` until `shutdown`; returns once running jobs are finished or handed back.
pub async fn run(
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    options: WorkerOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let shared =
        Arc::new(Shared { queue: queue.clone(), handler, name: options.name.clone(), shutdown: shutdown.clone() });
    let fetch_state = (queue, options.name.clone(), shutdown.clone());
    let backend = BackendBuilder::new()
        .database(fetch_state)
        .fetcher(|(queue, name, shutdown): &mut (Queue, String, Shutdown), _: &(), _: &WorkerContext| {
            stream::unfold((queue.clone(), name.clone(), shutdown.clone()), |state| async move {
                let next = next_job(&state.0, &state.1, &state.2).await?;
                Some((Ok::<_, BoxDynError>(Some(Task::new(next))), state))
            })
            .boxed()
        })
        .sink(|_, _| sink::drain().sink_map_err(|never: Infallible| -> BoxDynError { match never {} }))
        .build()?;
    let worker = WorkerBuilder::new(options.name.as_str())
        .backend(backend)
        .data(shared)
        .catch_panic()
        .concurrency(options.concurrency.max(1))
        .build(execute);
    tracing::info!(worker = %options.name, "job worker started");
    worker
        .run_with_ctx(move |ctx| {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                ctx.stop()
            }
        })
        .await?;
    Ok(())
}

/// Waits for the next job: promotes due delayed jobs, then claims one; sleeps a poll interval
/// between empty looks. `None` once shutdown is requested (the worker then drains and stops).
async fn next_job(queue: &Queue, worker: &str, shutdown: &Shutdown) -> Option<Fetched> {
    let poll = queue.settings().poll_interval;
    let mut last_promote: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        let look = async {
            if last_promote.is_none_or(|at| at.elapsed() >= poll) {
                queue.promote().await?;
                queue.beat_worker(worker).await?;
                last_promote = Some(tokio::time::Instant::now());
            }
            queue.fetch(worker).await
        };
        let wait = match look.await {
            Ok(Some(job)) => return Some(job),
            Ok(None) => {
                last_promote = None;
                poll
            }
            Err(error) => {
                tracing::warn!(%error, queue = queue.name, "could not fetch jobs; retrying in a second");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return None,
        }
    }
}

/// The apalis handler: one attempt of one job, outcome recorded in Redis.
async fn execute(job: Fetched, shared: Data<Arc<Shared>>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempt);
    attempt_once(job, &shared).instrument(span).await
}

async fn attempt_once(job: Fetched, shared: &Shared) -> Result<(), BoxDynError> {
    let Shared { queue, handler, name, shutdown } = shared;
    let running = RunningJob {
        id: job.id.clone(),
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        progress: Progress { queue: queue.clone(), id: job.id.clone() },
    };
    let started = std::time::Instant::now();
    let attempt = tokio::time::timeout(job.timeout, AssertUnwindSafe(handler.handle(running)).catch_unwind());
    let grace = queue.settings().shutdown_grace;
    let outcome = tokio::select! {
        outcome = attempt => outcome,
        () = keep_lease(queue, &job.id) => unreachable!("the heartbeat loop never ends"),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown: handing the running job back to the queue");
            queue.release(&job.id).await?;
            crate::metrics::job_attempt(queue.name, &job.kind, "released", started);
            return Ok(());
        }
    };
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(JobError::retryable(format!("job panicked: {}", panic_message(&panic)))),
        Err(_) => Err(JobError::retryable(format!("timed out after {} s", job.timeout.as_secs_f64()))),
    };
    match result {
        Ok(value) => {
            if !queue.complete(&job.id, &value).await? {
                tracing::warn!("job finished after its claim was lost (lease expired or removed)");
            }
            crate::metrics::job_attempt(queue.name, &job.kind, "completed", started);
        }
        Err(error) => {
            let retry_in = backoff(&queue.settings().policy(&job.kind), job.attempt);
            let state = queue.fail(&job.id, &error, retry_in, name).await?;
            crate::metrics::job_attempt(queue.name, &job.kind, &state, started);
            tracing::warn!(%error, outcome = %state, retry_in_ms = retry_in.as_millis() as u64, "job attempt failed");
        }
    }
    Ok(())
}

/// Renews the job's lease every third of its length while it runs.
async fn keep_lease(queue: &Queue, id: &str) {
    let every = queue.settings().lease / 3;
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = queue.heartbeat(id, None).await {
            tracing::warn!(%error, "could not renew the job's lease");
        }
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

/// A worker name unique to this process and start.
pub fn unique_worker_name(queue: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    let nonce: u32 = rand::random();
    format!("{}-{}-{queue}-{nonce:08x}", host.as_deref().unwrap_or("host"), std::process::id())
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
