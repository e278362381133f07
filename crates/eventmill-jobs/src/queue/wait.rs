//! Waiting for a job's end from the code that enqueued it (BullMQ's `job.waitUntilFinished`):
//! [`Enqueued::wait`] gives the job's result, or its failure, or a [`WaitError::TimedOut`] naming
//! the job and the timeout. `enqueue --wait` follows a job with the same loop ([`Queues::follow`]),
//! showing each change of its progress.
//!
//! The job's hash is polled (from 10 ms, doubling up to 200 ms): it works the same on one node and
//! on a cluster, from any process, and costs nothing while nobody waits.
//!
//! ```no_run
//! # use std::time::Duration;
//! # async fn demo(jobs: eventmill_jobs::Jobs<()>, job: eventmill_jobs::Job) -> anyhow::Result<()> {
//! use eventmill_jobs::{EnqueueOptions, queue::WaitError};
//! let enqueued = jobs.queues().enqueue(&job, EnqueueOptions::default()).await?;
//! match enqueued.wait(Duration::from_secs(30)).await {
//!     Ok(result) => println!("done: {result}"),
//!     Err(WaitError::Failed { error, .. }) => eprintln!("it failed: {error}"),
//!     Err(timeout @ WaitError::TimedOut { .. }) => eprintln!("{timeout}"), // still running: ask again later
//!     Err(other) => return Err(other.into()),
//! }
//! # Ok(()) }
//! ```

use std::{collections::HashMap, fmt, time::Duration};

use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Enqueued, JobRecord, JobState, QueueError, Queues};
use crate::redis_conn::RedisConn;

/// Why [`Enqueued::wait`] (or [`Queues::wait`]) gave no result.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The job failed for good (a permanent error, or its last attempt failed).
    #[error("job {id} failed after {attempts} attempt(s): {error}")]
    Failed {
        /// The job's id.
        id: String,
        /// Attempts it ran.
        attempts: u32,
        /// Its last error.
        error: String,
    },
    /// The job was cancelled (`jobs cancel`, the board, `Queue::cancel`).
    #[error("job {id} was cancelled")]
    Cancelled {
        /// The job's id.
        id: String,
    },
    /// The job had not finished when the timeout passed; it goes on (wait again, or cancel it).
    #[error(
        "job {id} did not finish within {}: it is {state}; wait again with a longer timeout, or cancel it",
        humantime::format_duration(*.timeout)
    )]
    TimedOut {
        /// The job's id.
        id: String,
        /// The timeout given.
        timeout: Duration,
        /// Where it was at the timeout.
        state: JobState,
    },
    /// The job's hash is gone: removed (`jobs remove`, emptied), or finished and trimmed by the
    /// retention limits before it was seen finished (raise `EVENTMILL_JOB_KEEP_COMPLETED`).
    #[error("job {id} was removed, or trimmed by the retention limits before its end was seen")]
    Removed {
        /// The job's id.
        id: String,
    },
    /// The result did not deserialize as the type asked ([`Enqueued::wait_as`]).
    #[error("job {id} completed, but its result {result} is not the type asked: {error}")]
    Result {
        /// The job's id.
        id: String,
        /// The result as stored.
        result: Value,
        /// What serde said.
        error: String,
    },
    /// Redis could not be read.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Where an enqueued job's hash is read from (kept in [`Enqueued`] so it can wait on itself).
#[derive(Clone)]
pub(crate) struct JobWatch {
    redis: RedisConn,
    job_prefix: String,
}

impl JobWatch {
    pub(crate) fn new(redis: RedisConn, job_prefix: &str) -> Self {
        Self { redis, job_prefix: job_prefix.to_owned() }
    }
}

impl fmt::Debug for JobWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobWatch")
    }
}

/// Two answers are equal when their ids and `created` are: where they are read from is no part of it.
impl PartialEq for JobWatch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for JobWatch {}

impl Enqueued {
    /// This answer, able to wait on its job through `redis`.
    pub(crate) fn watched(mut self, redis: &RedisConn, job_prefix: &str) -> Self {
        self.watch = Some(JobWatch::new(redis.clone(), job_prefix));
        self
    }

    /// Waits until the job completed (its result), failed or was cancelled (the error), at most
    /// `timeout` ([`WaitError::TimedOut`], the job goes on). A duplicate (`created == false`)
    /// waits for the job its key found.
    pub async fn wait(&self, timeout: Duration) -> Result<Value, WaitError> {
        let Some(watch) = &self.watch else {
            return Err(QueueError::Invalid(format!(
                "job {}: this answer was not made by an enqueue, so it cannot wait; use Queues::wait(id, timeout)",
                self.id
            ))
            .into());
        };
        outcome(follow(watch, &self.id, Some(timeout), |_| {}).await?)
    }

    /// [`Enqueued::wait`], the result deserialized as `T` (a [`WaitError::Result`] if it is not one).
    pub async fn wait_as<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, WaitError> {
        let result = self.wait(timeout).await?;
        serde_json::from_value(result.clone()).map_err(|e| WaitError::Result {
            id: self.id.clone(),
            result,
            error: e.to_string(),
        })
    }
}

impl Queues {
    /// Waits until job `id` completed (its result), failed or was cancelled (the error), at most
    /// `timeout`: [`Enqueued::wait`] for a job known by its id.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Value, WaitError> {
        outcome(self.follow(id, Some(timeout), |_| {}).await?)
    }

    /// Follows job `id` to its end (completed, failed or cancelled) and answers its record;
    /// `on_change` sees the job each time its state, progress, message or attempt changed (what
    /// `enqueue --wait` shows). `None`: no timeout.
    pub async fn follow(
        &self,
        id: &str,
        timeout: Option<Duration>,
        on_change: impl FnMut(&JobRecord),
    ) -> Result<JobRecord, WaitError> {
        follow(&JobWatch::new(self.connection(), self.job_prefix()), id, timeout, on_change).await
    }
}

/// A finished job as a wait's answer.
fn outcome(job: JobRecord) -> Result<Value, WaitError> {
    match job.state {
        JobState::Completed => Ok(job.result.unwrap_or(Value::Null)),
        JobState::Cancelled => Err(WaitError::Cancelled { id: job.id }),
        _ => Err(WaitError::Failed {
            error: job.last_error().unwrap_or("no error recorded").to_owned(),
            attempts: job.attempts,
            id: job.id,
        }),
    }
}

/// Polls job `id`'s hash until it is final or `timeout` passed.
async fn follow(
    watch: &JobWatch,
    id: &str,
    timeout: Option<Duration>,
    mut on_change: impl FnMut(&JobRecord),
) -> Result<JobRecord, WaitError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let key = format!("{}{id}", watch.job_prefix);
    let mut redis = watch.redis.clone();
    let (mut pause, mut last) = (Duration::from_millis(10), None);
    loop {
        let hash: HashMap<String, String> = redis.hgetall(&key).await.map_err(QueueError::from)?;
        let job = JobRecord::from_hash(id, hash).ok_or_else(|| WaitError::Removed { id: id.to_owned() })?;
        let seen = (job.state, job.progress, job.progress_message.clone(), job.attempts);
        if last.as_ref() != Some(&seen) {
            on_change(&job);
            last = Some(seen);
        }
        if job.state.is_final() {
            return Ok(job);
        }
        let now = tokio::time::Instant::now();
        if let Some(deadline) = deadline {
            if now >= deadline {
                return Err(WaitError::TimedOut {
                    id: id.to_owned(),
                    timeout: timeout.unwrap_or_default(),
                    state: job.state,
                });
            }
            pause = pause.min(deadline - now);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200)).max(Duration::from_millis(10));
    }
}
