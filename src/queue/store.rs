//! `Queue`: one queue's keys and its operations (each a script from `scripts`); `Queues`: both
//! queues behind one handle, routing jobs by kind and finding any job by id.

use std::{collections::HashMap, sync::Arc, time::Duration};

use redis::{AsyncCommands, aio::ConnectionManager};

use super::{JobError, JobRecord, JobState, QUEUES, QueueError, now_ms, queue_for_kind, scripts};
use crate::{domain::job::JobSpec, settings::JobSettings};

/// How many due jobs one promotion call moves (a large backlog is drained over several calls).
pub const PROMOTE_CHUNK: usize = 500;

/// Options of one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Run no earlier than this long from now.
    pub delay: Option<Duration>,
    /// At most one job per key while the key lives (the scheduler's "one job per tick").
    pub idempotency_key: Option<String>,
    /// How long the idempotency key lives (default 24 h).
    pub idempotency_ttl: Option<Duration>,
    /// Overrides the kind's configured attempts.
    pub max_attempts: Option<u32>,
    /// What enqueued the job, shown in listings.
    pub origin: String,
}

/// The answer of an enqueue: the job's id, and whether it is new (false: an idempotent duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    pub created: bool,
}

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

/// Jobs per state.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueCounts {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
    pub paused: bool,
}

/// One queue: `{prefix}:queue:{name}:{waiting|delayed|active|completed|failed|paused}`; job hashes
/// are shared by both queues under `{prefix}:queue:job:{id}` (ids come from one counter).
#[derive(Clone)]
pub struct Queue {
    pub name: &'static str,
    pub(super) redis: ConnectionManager,
    pub(super) settings: Arc<JobSettings>,
    pub(super) job_prefix: String,
    pub(super) seq: String,
    pub(super) idempotency_prefix: String,
    pub(super) waiting: String,
    pub(super) delayed: String,
    pub(super) active: String,
    pub(super) completed: String,
    pub(super) failed: String,
    pub(super) paused: String,
}

impl Queue {
    pub fn new(redis: ConnectionManager, prefix: &str, name: &'static str, settings: Arc<JobSettings>) -> Self {
        let base = format!("{prefix}:queue:{name}");
        Self {
            name,
            redis,
            settings,
            job_prefix: format!("{prefix}:queue:job:"),
            seq: format!("{prefix}:queue:seq"),
            idempotency_prefix: format!("{prefix}:queue:idempotency:"),
            waiting: format!("{base}:waiting"),
            delayed: format!("{base}:delayed"),
            active: format!("{base}:active"),
            completed: format!("{base}:completed"),
            failed: format!("{base}:failed"),
            paused: format!("{base}:paused"),
        }
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// Adds a job of `kind` with a JSON payload.
    pub async fn enqueue(&self, kind: &str, payload: &str, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        let now = now_ms();
        let run_at = now + options.delay.map_or(0, |d| d.as_millis() as i64);
        let max_attempts = options.max_attempts.unwrap_or(self.settings.policy(kind).attempts).max(1);
        let idempotency =
            options.idempotency_key.as_ref().map_or(String::new(), |k| format!("{}{k}", self.idempotency_prefix));
        let ttl = options.idempotency_ttl.unwrap_or(Duration::from_secs(86_400)).as_millis() as u64;
        let (created, id): (i64, String) = scripts::ENQUEUE
            .key(&self.seq)
            .key(&self.waiting)
            .key(&self.delayed)
            .key(idempotency)
            .arg(&self.job_prefix)
            .arg(self.name)
            .arg(kind)
            .arg(payload)
            .arg(max_attempts)
            .arg(self.settings.policy(kind).timeout.as_millis() as u64)
            .arg(now)
            .arg(run_at)
            .arg(ttl.max(1))
            .arg(&options.origin)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(Enqueued { id, created: created == 1 })
    }

    /// Promotes due delayed jobs (in chunks until none is due) and reclaims expired leases.
    pub async fn promote(&self) -> Result<usize, QueueError> {
        let mut total = 0;
        loop {
            let (promoted, reclaimed): (usize, usize) = scripts::PROMOTE
                .key(&self.waiting)
                .key(&self.delayed)
                .key(&self.active)
                .key(&self.failed)
                .arg(&self.job_prefix)
                .arg(now_ms())
                .arg(PROMOTE_CHUNK)
                .arg(self.settings.keep_failed)
                .arg(self.settings.keep_failed_age.as_millis() as u64)
                .invoke_async(&mut self.redis.clone())
                .await?;
            total += promoted + reclaimed;
            if promoted < PROMOTE_CHUNK && reclaimed < PROMOTE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Claims the next waiting job for `worker`, or `None` (empty or paused).
    pub async fn fetch(&self, worker: &str) -> Result<Option<Fetched>, QueueError> {
        let reply: Option<(String, String, String, u32, u32, u64)> = scripts::FETCH
            .key(&self.waiting)
            .key(&self.active)
            .key(&self.paused)
            .arg(&self.job_prefix)
            .arg(now_ms())
            .arg(self.settings.lease.as_millis() as u64)
            .arg(worker)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(reply.map(|(id, kind, payload, attempt, max_attempts, timeout_ms)| Fetched {
            id,
            kind,
            payload,
            attempt,
            max_attempts,
            timeout: Duration::from_millis(timeout_ms),
        }))
    }

    /// Marks a claimed job completed with its result; false if the claim was lost meanwhile.
    pub async fn complete(&self, id: &str, result: &serde_json::Value) -> Result<bool, QueueError> {
        let done: i64 = scripts::COMPLETE
            .key(&self.active)
            .key(&self.completed)
            .arg(&self.job_prefix)
            .arg(id)
            .arg(now_ms())
            .arg(result.to_string())
            .arg(self.settings.keep_completed)
            .arg(self.settings.keep_completed_age.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(done == 1)
    }

    /// Records a failed attempt: `"retry"` (back in `delayed` until `retry_in` passes), `"failed"`
    /// or `"lost"` (the claim was lost meanwhile).
    pub async fn fail(
        &self,
        id: &str,
        error: &JobError,
        retry_in: Duration,
        worker: &str,
    ) -> Result<String, QueueError> {
        let now = now_ms();
        Ok(scripts::FAIL
            .key(&self.active)
            .key(&self.delayed)
            .key(&self.failed)
            .arg(&self.job_prefix)
            .arg(id)
            .arg(now)
            .arg(error.to_string())
            .arg(if error.is_retryable() { "1" } else { "0" })
            .arg(now + retry_in.as_millis() as i64)
            .arg(worker)
            .arg(self.settings.keep_failed)
            .arg(self.settings.keep_failed_age.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?)
    }

    /// Hands a claimed job back to the front of `waiting` without counting the attempt (shutdown).
    pub async fn release(&self, id: &str) -> Result<bool, QueueError> {
        let done: i64 = scripts::RELEASE
            .key(&self.active)
            .key(&self.waiting)
            .arg(&self.job_prefix)
            .arg(id)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(done == 1)
    }

    /// Extends a running job's lease, storing its progress when given; false once it is not active.
    pub async fn heartbeat(&self, id: &str, progress: Option<(u8, &str)>) -> Result<bool, QueueError> {
        let (percent, message) = progress.map_or((String::new(), ""), |(p, m)| (p.min(100).to_string(), m));
        let alive: i64 = scripts::HEARTBEAT
            .key(&self.active)
            .arg(&self.job_prefix)
            .arg(id)
            .arg(now_ms() + self.settings.lease.as_millis() as i64)
            .arg(percent)
            .arg(message)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(alive == 1)
    }

    /// Re-queues one failed job (`Some(id)`) or up to `limit` of the oldest failed jobs.
    pub async fn retry_failed(&self, id: Option<&str>, limit: usize) -> Result<usize, QueueError> {
        Ok(scripts::RETRY_FAILED
            .key(&self.failed)
            .key(&self.waiting)
            .arg(&self.job_prefix)
            .arg(now_ms())
            .arg(id.unwrap_or(""))
            .arg(limit.max(1))
            .invoke_async(&mut self.redis.clone())
            .await?)
    }

    /// Deletes a job of this queue whatever its state; false when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, QueueError> {
        let done: i64 = scripts::REMOVE
            .key(&self.waiting)
            .key(&self.delayed)
            .key(&self.active)
            .key(&self.completed)
            .key(&self.failed)
            .arg(&self.job_prefix)
            .arg(id)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(done == 1)
    }

    /// Stops (or resumes) fetching on this queue; running jobs finish.
    pub async fn set_paused(&self, paused: bool) -> Result<(), QueueError> {
        let mut redis = self.redis.clone();
        if paused {
            redis.set::<_, _, ()>(&self.paused, 1).await?
        } else {
            redis.del::<_, ()>(&self.paused).await?
        }
        Ok(())
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let (waiting, delayed, active, completed, failed, paused): (u64, u64, u64, u64, u64, bool) = redis::pipe()
            .llen(&self.waiting)
            .zcard(&self.delayed)
            .zcard(&self.active)
            .zcard(&self.completed)
            .zcard(&self.failed)
            .exists(&self.paused)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(QueueCounts { waiting, delayed, active, completed, failed, paused })
    }

    /// Ids in one state: newest first for finished jobs, next-to-run first otherwise.
    pub async fn ids(&self, state: JobState, limit: usize) -> Result<Vec<String>, QueueError> {
        let mut redis = self.redis.clone();
        let end = limit.max(1) as isize - 1;
        Ok(match state {
            JobState::Waiting => {
                let mut ids: Vec<String> = redis.lrange(&self.waiting, -(limit.max(1) as isize), -1).await?;
                ids.reverse();
                ids
            }
            JobState::Delayed => redis.zrange(&self.delayed, 0, end).await?,
            JobState::Active => redis.zrange(&self.active, 0, end).await?,
            JobState::Completed => redis.zrevrange(&self.completed, 0, end).await?,
            JobState::Failed => redis.zrevrange(&self.failed, 0, end).await?,
        })
    }
}

/// Both queues and the shared job hashes.
#[derive(Clone)]
pub struct Queues {
    pub rollup: Queue,
    pub reports: Queue,
    redis: ConnectionManager,
    job_prefix: String,
}

impl Queues {
    pub fn new(redis: ConnectionManager, prefix: &str, settings: Arc<JobSettings>) -> Self {
        let [rollup, reports] = QUEUES.map(|name| Queue::new(redis.clone(), prefix, name, settings.clone()));
        Self { rollup, reports, redis, job_prefix: format!("{prefix}:queue:job:") }
    }

    pub fn all(&self) -> [&Queue; 2] {
        [&self.rollup, &self.reports]
    }

    /// The queue called `name` (`analytics:rollup` or `analytics:reports`).
    pub fn named(&self, name: &str) -> Result<&Queue, QueueError> {
        self.all().into_iter().find(|q| q.name == name).ok_or_else(|| {
            QueueError::Invalid(format!("unknown queue {name:?}: expected one of {}", QUEUES.join(", ")))
        })
    }

    /// Enqueues a job on the queue of its kind.
    pub async fn enqueue(&self, spec: &JobSpec, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        let payload = serde_json::to_value(spec).map_err(|e| QueueError::Invalid(e.to_string()))?;
        let kind = payload["job_type"].as_str().unwrap_or_default().to_owned();
        self.named(queue_for_kind(&kind))?.enqueue(&kind, &payload.to_string(), options).await
    }

    /// A job by id, in any queue and state.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let hash: HashMap<String, String> = self.redis.clone().hgetall(format!("{}{id}", self.job_prefix)).await?;
        Ok(JobRecord::from_hash(hash))
    }

    /// The jobs of one queue and state (see `Queue::ids` for the order).
    pub async fn list(&self, queue: &Queue, state: JobState, limit: usize) -> Result<Vec<JobRecord>, QueueError> {
        let mut jobs = Vec::new();
        for id in queue.ids(state, limit).await? {
            if let Some(job) = self.job(&id).await? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// The queue holding job `id`.
    pub async fn queue_of(&self, id: &str) -> Result<&Queue, QueueError> {
        let name: Option<String> = self.redis.clone().hget(format!("{}{id}", self.job_prefix), "queue").await?;
        self.named(&name.ok_or_else(|| QueueError::NotFound(id.to_owned()))?)
    }
}
