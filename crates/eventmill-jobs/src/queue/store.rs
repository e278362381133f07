//! `Queue`: one declared queue's keys and its operations (each a script from `scripts`; the
//! worker's own round trips are in `claim`).

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;

use crate::redis_conn::RedisConn;

use super::{EventKind, Events, JobState, QueueError, RateLimit, now_ms, scripts};
use crate::settings::{JobSettings, RetryPolicy};

/// Options of one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Run no earlier than this long from now.
    pub delay: Option<Duration>,
    /// At most one job per key while the key lives (the scheduler's "one job per tick").
    pub idempotency_key: Option<String>,
    /// How long the idempotency key lives (default 24 h).
    pub idempotency_ttl: Option<Duration>,
    /// BullMQ's priority: 1 runs before 2, and so on; `None` (or 0) runs before any prioritised
    /// job. Jobs of equal priority run in the order they became ready. At most `MAX_PRIORITY`.
    pub priority: Option<u32>,
    /// Overrides the kind's configured attempts.
    pub max_attempts: Option<u32>,
    /// What enqueued the job, shown in listings.
    pub origin: String,
}

/// The lowest priority (BullMQ's too: 2^21), so that priority and place in line share one exact
/// sorted-set score.
pub const MAX_PRIORITY: u32 = 1 << 21;

/// The answer of an enqueue: the job's id, and whether it is new (false: an idempotent duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    pub created: bool,
}

/// What `Queue::cancel` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting or delayed: removed.
    Removed,
    /// It was running: now `cancelled`, its processor is asked to stop.
    Running,
    /// It had already ended (in this state).
    AlreadyFinished(String),
}

/// Jobs per state.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueCounts {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
    /// Flow parents waiting for their children.
    pub waiting_children: u64,
    pub paused: bool,
}

/// One queue: `{<prefix>:queue}:<name>:{waiting|delayed|active|completed|failed|paused|marker|meta}`;
/// job hashes are shared by every queue under `{<prefix>:queue}:job:<id>` (ids come from one counter).
///
/// Every queue key carries the one hash tag `{<prefix>:queue}`, so on Redis Cluster all of them
/// live in one slot: a flow's child on one queue completes its parent on another in the same
/// script, atomically (BullMQ asks the same of a cluster: one hash-tagged prefix for the queues
/// of a flow). Jobs are a few per hour to a few thousand per second; the events stream is what a
/// cluster spreads (`EVENTMILL_STREAM_SHARDS`).
#[derive(Clone)]
pub struct Queue {
    pub name: &'static str,
    pub(super) redis: RedisConn,
    /// Where the worker opens its own blocking connection (a blocked command would stall the
    /// shared one for everyone).
    pub(super) client: crate::redis_conn::RedisTarget,
    pub(super) settings: Arc<JobSettings>,
    /// The policy of each registered kind (kinds not listed follow `settings`).
    pub(super) policies: Arc<Vec<(&'static str, RetryPolicy)>>,
    pub(super) job_prefix: String,
    pub(super) seq: String,
    pub(super) idempotency_prefix: String,
    pub(super) waiting: String,
    pub(super) delayed: String,
    pub(super) active: String,
    pub(super) completed: String,
    pub(super) failed: String,
    /// Flow parents waiting for their children, by enqueue time.
    pub(super) waiting_children: String,
    pub(super) paused: String,
    /// The waiting line's counter (the low bits of a waiting job's score).
    pub(super) order: String,
    /// The rate limit's window counter (shared by every process's workers).
    pub(super) limiter: String,
    /// `None`: no rate limit.
    pub(super) rate_limit: Option<RateLimit>,
    /// Where this process's lifecycle events go (shared by every queue of `Queues`).
    pub(super) events: Events,
    /// A sorted set a blocked worker waits on (BZPOPMIN): every script that makes a job runnable
    /// adds to it.
    pub(super) marker: String,
    pub(super) meta: String,
}

/// The start of every queue key: `{<prefix>:queue}:` (one hash tag, see `Queue`).
pub fn key_base(prefix: &str) -> String {
    format!("{{{prefix}:queue}}:")
}

impl Queue {
    pub fn new(
        redis: RedisConn,
        client: crate::redis_conn::RedisTarget,
        prefix: &str,
        name: &'static str,
        settings: Arc<JobSettings>,
        policies: Arc<Vec<(&'static str, RetryPolicy)>>,
    ) -> Self {
        let tag = key_base(prefix);
        let base = format!("{tag}{name}");
        Self {
            name,
            redis,
            client,
            settings,
            policies,
            job_prefix: format!("{tag}job:"),
            seq: format!("{tag}seq"),
            idempotency_prefix: format!("{tag}idempotency:"),
            waiting: format!("{base}:waiting"),
            delayed: format!("{base}:delayed"),
            active: format!("{base}:active"),
            completed: format!("{base}:completed"),
            failed: format!("{base}:failed"),
            waiting_children: format!("{base}:waiting-children"),
            paused: format!("{base}:paused"),
            order: format!("{base}:order"),
            limiter: format!("{base}:limiter"),
            rate_limit: None,
            events: Events::default(),
            marker: format!("{base}:marker"),
            meta: format!("{base}:meta"),
        }
    }

    /// The queue with a rate limit (see `QueueSpec::rate_limit`).
    pub fn with_rate_limit(self, rate_limit: Option<RateLimit>) -> Self {
        Self { rate_limit, ..self }
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The queue reporting its lifecycle events to `events`.
    pub fn with_events(self, events: Events) -> Self {
        Self { events, ..self }
    }

    /// This process's lifecycle events (see `queue::events`).
    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// The policy in force for `kind` (registered kinds: see `Registry::policy`).
    pub fn policy(&self, kind: &str) -> RetryPolicy {
        self.policies.iter().find(|(k, _)| *k == kind).map_or_else(|| self.settings.policy(kind), |(_, p)| *p)
    }

    /// Adds a job of `kind` with a JSON payload.
    pub async fn enqueue(&self, kind: &str, payload: &str, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        let priority = options.priority.unwrap_or(0);
        if priority > MAX_PRIORITY {
            return Err(QueueError::Invalid(format!(
                "priority {priority} is too large: use 1 (first) to {MAX_PRIORITY}"
            )));
        }
        let now = now_ms();
        let run_at = now + options.delay.map_or(0, |d| d.as_millis() as i64);
        let policy = self.policy(kind);
        let max_attempts = options.max_attempts.unwrap_or(policy.attempts).max(1);
        // Without a key, the bare prefix stands in (never written): every key of a script must be
        // a real key of the queue's hash tag on Redis Cluster, even an unused one.
        let idempotency = format!("{}{}", self.idempotency_prefix, options.idempotency_key.as_deref().unwrap_or(""));
        let ttl = options.idempotency_ttl.unwrap_or(Duration::from_secs(86_400)).as_millis() as u64;
        let mut redis = self.redis.clone();
        let (created, id): (i64, String) = scripts::ENQUEUE
            .key(&self.seq)
            .key(&self.waiting)
            .key(&self.delayed)
            .key(idempotency)
            .key(&self.marker)
            .key(&self.order)
            .arg(&self.job_prefix)
            .arg(self.name)
            .arg(kind)
            .arg(payload)
            .arg(max_attempts)
            .arg(policy.timeout.as_millis() as u64)
            .arg(now)
            .arg(run_at)
            .arg(ttl.max(1))
            .arg(&options.origin)
            .arg(priority)
            .arg(options.idempotency_key.as_deref().unwrap_or(""))
            .invoke_async(&mut redis)
            .await?;
        // Accepted only once on the replicas too (`EVENTMILL_REDIS_WAIT_REPLICAS`); a re-send
        // after the error finds the job by its idempotency key.
        redis.replicated(|| redis::cmd("EXISTS").arg(format!("{}{id}", self.job_prefix)).clone()).await?;
        Ok(Enqueued { id, created: created == 1 })
    }

    /// Re-queues one failed job (`Some(id)`) or up to `limit` of the oldest failed jobs.
    pub async fn retry_failed(&self, id: Option<&str>, limit: usize) -> Result<usize, QueueError> {
        Ok(scripts::RETRY_FAILED
            .key(&self.failed)
            .key(&self.waiting)
            .key(&self.marker)
            .key(&self.order)
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
            .key(&self.waiting_children)
            .arg(&self.job_prefix)
            .arg(id)
            .arg(now_ms())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(done == 1)
    }

    /// Cancels a job: a waiting or delayed one is removed; a running one ends `cancelled` at once
    /// and its worker, told its claim is gone at its next report (at most a third of the lease),
    /// cancels the job's context, which the processor sees. Finished jobs are left as they are.
    pub async fn cancel(&self, id: &str) -> Result<Cancelled, QueueError> {
        let kind: Option<String> = self.redis.clone().hget(format!("{}{id}", self.job_prefix), "kind").await?;
        let answer: String = scripts::CANCEL
            .key(&self.waiting)
            .key(&self.delayed)
            .key(&self.active)
            .key(&self.failed)
            .key(&self.waiting_children)
            .arg(&self.job_prefix)
            .arg(id)
            .arg(now_ms())
            .invoke_async(&mut self.redis.clone())
            .await?;
        let cancelled = |message| {
            let kind = kind.as_deref().unwrap_or("?");
            self.events.emit(EventKind::Cancelled, self.name, kind, id, 0, None, message);
        };
        Ok(match answer.as_str() {
            "removed" => {
                cancelled("removed before it ran");
                Cancelled::Removed
            }
            "stopping" => {
                cancelled("cancelled while running");
                Cancelled::Running
            }
            "missing" => return Err(QueueError::NotFound(id.to_owned())),
            ended => Cancelled::AlreadyFinished(ended.trim_start_matches("ended:").to_owned()),
        })
    }

    /// Stops (or resumes) fetching on this queue; running jobs finish.
    pub async fn set_paused(&self, paused: bool) -> Result<(), QueueError> {
        let mut redis = self.redis.clone();
        if paused {
            redis.set::<_, _, ()>(&self.paused, 1).await?
        } else {
            // Resumed: wake the idle workers.
            redis::pipe().del(&self.paused).zadd(&self.marker, "0", 0).query_async::<()>(&mut redis).await?
        }
        Ok(())
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let (waiting, delayed, active, completed, failed, waiting_children, paused): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            bool,
        ) = redis::pipe()
            .zcard(&self.waiting)
            .zcard(&self.delayed)
            .zcard(&self.active)
            .zcard(&self.completed)
            .zcard(&self.failed)
            .zcard(&self.waiting_children)
            .exists(&self.paused)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(QueueCounts { waiting, delayed, active, completed, failed, waiting_children, paused })
    }

    /// Ids in one state: newest first for finished jobs, next-to-run first otherwise.
    pub async fn ids(&self, state: JobState, limit: usize) -> Result<Vec<String>, QueueError> {
        let mut redis = self.redis.clone();
        let end = limit.max(1) as isize - 1;
        Ok(match state {
            JobState::Waiting => redis.zrange(&self.waiting, 0, end).await?,
            JobState::Delayed => redis.zrange(&self.delayed, 0, end).await?,
            JobState::Active => redis.zrange(&self.active, 0, end).await?,
            JobState::WaitingChildren => redis.zrange(&self.waiting_children, 0, end).await?,
            JobState::Completed => redis.zrevrange(&self.completed, 0, end).await?,
            JobState::Failed | JobState::Cancelled => redis.zrevrange(&self.failed, 0, end).await?,
        })
    }
}
