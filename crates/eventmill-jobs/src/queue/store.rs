//! `Queue`: one declared queue's keys and its operations (each a script from `scripts`; the
//! worker's own round trips are in `claim`).

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;
use tracing::Instrument;

use crate::redis_conn::RedisConn;

use super::{
    EventKind, Events, JobState, QueueError, RateLimit, keys::QueueKeys, now_ms, scripts, scripts::CancelReply,
};
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
    /// A flow's child: what its failure does to its parent (default: fails it). Ignored for a
    /// job that is not a flow's child.
    pub on_failure: super::FailurePolicy,
    /// How `idempotency_key` deduplicates (BullMQ's modes; default: throttle).
    pub dedup: DedupMode,
}

/// How a deduplication key (`EnqueueOptions::idempotency_key`, `--key`, a job file's `key`)
/// deduplicates, by BullMQ's names. An enqueue refused as a duplicate answers the existing job's id
/// with `created == false`.
///
/// ```no_run
/// # async fn demo(queue: eventmill_jobs::Queue) -> Result<(), eventmill_jobs::QueueError> {
/// use std::time::Duration;
/// use eventmill_jobs::{EnqueueOptions, queue::DedupMode};
/// // Re-index a document 10 s after its last edit: each edit replaces the pending job's payload.
/// let options = EnqueueOptions {
///     idempotency_key: Some("reindex:doc-7".into()),
///     dedup: DedupMode::Debounce,
///     delay: Some(Duration::from_secs(10)),
///     ..EnqueueOptions::default()
/// };
/// queue.enqueue("REINDEX", r#"{"doc":7,"rev":12}"#, options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupMode {
    /// No second job within a window from the first enqueue (`idempotency_ttl`, default 24 h),
    /// whatever becomes of the job (the key expires with the window).
    #[default]
    Throttle,
    /// No second job while the one with the key is not finished (waiting, delayed, running,
    /// retrying); once it completed, failed for good, was cancelled or removed, the key enqueues
    /// anew. No window.
    Simple,
    /// A new job with the key replaces the payload of the pending delayed one and restarts its
    /// delay (needs a delay); once that job started, a new one is enqueued. Only the last payload
    /// of a burst runs.
    Debounce,
}

impl DedupMode {
    /// Every mode, in the docs' order.
    pub const ALL: [DedupMode; 3] = [Self::Simple, Self::Throttle, Self::Debounce];

    /// Its name in job files, flags and the job hash (`simple`, `throttle`, `debounce`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Simple => "simple",
            Self::Debounce => "debounce",
        }
    }

    /// The letter `enqueue.lua` reads.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Self::Throttle => "t",
            Self::Simple => "s",
            Self::Debounce => "d",
        }
    }
}

impl std::fmt::Display for DedupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DedupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == wanted)
            .ok_or_else(|| format!("unknown dedup mode {s:?}: expected simple, throttle (the default) or debounce"))
    }
}

impl EnqueueOptions {
    /// Refuses options that contradict each other: a dedup mode other than throttle without a
    /// key, a window with simple or debounce (they last while the job is pending), debounce
    /// without a delay.
    pub fn check(&self) -> Result<(), QueueError> {
        check_dedup(self.dedup, self.idempotency_key.is_some(), self.idempotency_ttl.is_some(), self.delay.is_some())
            .map_err(QueueError::Invalid)
    }
}

/// The dedup checks of [`EnqueueOptions::check`] and `JobOptions::check`.
pub(crate) fn check_dedup(mode: DedupMode, key: bool, window: bool, delay: bool) -> Result<(), String> {
    match mode {
        DedupMode::Throttle => Ok(()),
        _ if !key => Err(format!("dedup mode {mode} needs a key (--key, options.key)")),
        DedupMode::Simple | DedupMode::Debounce if window => Err(format!(
            "a key window is the throttle mode's; {mode} lasts while the job is pending: drop the window, \
             or use dedup throttle"
        )),
        DedupMode::Debounce if !delay => {
            Err("dedup debounce needs a delay (--delay, options.delay): the quiet time after the last enqueue \
             before the job runs"
                .into())
        }
        _ => Ok(()),
    }
}

/// The lowest priority (BullMQ's too: 2^21), so that priority and place in line share one exact
/// sorted-set score.
pub const MAX_PRIORITY: u32 = 1 << 21;

/// The answer of an enqueue: the job's id, and whether it is new (false: an idempotent duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the first job's, for a duplicate).
    pub id: String,
    /// False: an idempotent duplicate (no job was added).
    pub created: bool,
    /// A debounce duplicate: the pending job now has this enqueue's payload and delay.
    pub replaced: bool,
    /// Where [`Enqueued::wait`] reads the job (`None`: not made by an enqueue).
    pub(crate) watch: Option<super::wait::JobWatch>,
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
    /// Ready to run.
    pub waiting: u64,
    /// Waiting for their run-at time (retries included).
    pub delayed: u64,
    /// Running (claimed, under a lease).
    pub active: u64,
    /// Completed and still kept.
    pub completed: u64,
    /// Failed (or cancelled) and still kept.
    pub failed: u64,
    /// Flow parents waiting for their children.
    pub waiting_children: u64,
    /// Workers claim nothing from the queue.
    pub paused: bool,
}

/// One queue: `{<prefix>:queue}:<name>:{waiting|delayed|active|completed|failed|paused|marker|meta|...}`
/// (every name in `keys::QueueKeys`);
/// job hashes are shared by every queue under `{<prefix>:queue}:job:<id>` (ids come from one counter).
///
/// Every queue key carries the one hash tag `{<prefix>:queue}`, so on Redis Cluster all of them
/// live in one slot: a flow's child on one queue completes its parent on another in the same
/// script, atomically (BullMQ asks the same of a cluster: one hash-tagged prefix for the queues
/// of a flow). Jobs are a few per hour to a few thousand per second; the events stream is what a
/// cluster spreads (`EVENTMILL_STREAM_SHARDS`).
#[derive(Clone)]
pub struct Queue {
    /// The queue's name (`analytics:rollup`...).
    pub name: &'static str,
    pub(super) redis: RedisConn,
    /// Where the worker opens its own blocking connection (a blocked command would stall the
    /// shared one for everyone).
    pub(super) client: crate::redis_conn::RedisTarget,
    pub(super) settings: Arc<JobSettings>,
    /// The policy of each registered kind (kinds not listed follow `settings`).
    pub(super) policies: Arc<Vec<(&'static str, RetryPolicy)>>,
    /// Its keys in Redis (and those it shares with every queue).
    pub(super) keys: QueueKeys,
    /// `None`: no rate limit.
    pub(super) rate_limit: Option<RateLimit>,
    /// `None`: no global concurrency (see `QueueSpec::global_concurrency`).
    pub(super) global_concurrency: Option<u32>,
    /// Where this process's lifecycle events go (shared by every queue of `Queues`).
    pub(super) events: Events,
}

impl Queue {
    /// Queue `name` under the key prefix `prefix`, on `redis`; `client` opens the worker's
    /// blocking connection. Kinds follow `policies`, others `settings`.
    pub fn new(
        redis: RedisConn,
        client: crate::redis_conn::RedisTarget,
        prefix: &str,
        name: &'static str,
        settings: Arc<JobSettings>,
        policies: Arc<Vec<(&'static str, RetryPolicy)>>,
    ) -> Self {
        Self {
            name,
            redis,
            client,
            settings,
            policies,
            keys: QueueKeys::new(prefix, name),
            rate_limit: None,
            global_concurrency: None,
            events: Events::default(),
        }
    }

    /// The queue with a rate limit (see `QueueSpec::rate_limit`).
    pub fn with_rate_limit(self, rate_limit: Option<RateLimit>) -> Self {
        Self { rate_limit, ..self }
    }

    /// The queue with a global concurrency: at most `n` of its jobs run at once across every
    /// worker process (declared in Redis when a worker starts; see `QueueSpec::global_concurrency`).
    pub fn with_global_concurrency(self, global_concurrency: Option<u32>) -> Self {
        Self { global_concurrency: global_concurrency.filter(|n| *n > 0), ..self }
    }

    /// The global concurrency this process declares (`None`: none).
    pub fn global_concurrency(&self) -> Option<u32> {
        self.global_concurrency
    }

    /// The rate limit in force (`None`: none).
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

    /// The job settings its workers follow (lease, retention, shutdown grace...).
    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// The policy in force for `kind` (registered kinds: see `Registry::policy`).
    pub fn policy(&self, kind: &str) -> RetryPolicy {
        self.policies.iter().find(|(k, _)| *k == kind).map_or_else(|| self.settings.policy(kind), |(_, p)| *p)
    }

    /// Adds a job of `kind` with a JSON payload. Under a trace (see `queue::trace`), the enqueue is
    /// a span of its own (`enqueue`), whose context the job keeps for its attempts.
    pub async fn enqueue(&self, kind: &str, payload: &str, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        if super::trace::current().is_none() {
            return self.add(kind, payload, options, None).await;
        }
        let span = tracing::info_span!("enqueue", queue = self.name, kind, job.id = tracing::field::Empty);
        let trace = super::trace::of(&span);
        let enqueued = self.add(kind, payload, options, trace.as_deref()).instrument(span.clone()).await?;
        span.record("job.id", enqueued.id.as_str());
        Ok(enqueued)
    }

    /// `enqueue`'s script call, the job keeping `trace` when given.
    async fn add(
        &self,
        kind: &str,
        payload: &str,
        options: EnqueueOptions,
        trace: Option<&str>,
    ) -> Result<Enqueued, QueueError> {
        options.check()?;
        let priority = options.priority.unwrap_or(0);
        if priority > MAX_PRIORITY {
            return Err(QueueError::Invalid(format!(
                "priority {priority} is too large: use 1 (first) to {MAX_PRIORITY}"
            )));
        }
        let now = now_ms();
        let policy = self.policy(kind);
        let job = scripts::NewJob {
            queue: self.name,
            kind,
            payload,
            max_attempts: options.max_attempts.unwrap_or(policy.attempts).max(1),
            timeout: policy.timeout,
            now,
            run_at: now + options.delay.map_or(0, |d| d.as_millis() as i64),
            key_ttl: options.idempotency_ttl.unwrap_or(Duration::from_secs(86_400)),
            origin: &options.origin,
            priority,
            key: options.idempotency_key.as_deref().unwrap_or(""),
            dedup: options.dedup,
            trace,
        };
        let mut redis = self.redis.clone();
        let enqueued =
            scripts::enqueue(&mut redis, &self.keys, &job).await?.watched(&self.redis, &self.keys.job_prefix);
        // Accepted only once on the replicas too (`EVENTMILL_REDIS_WAIT_REPLICAS`); a re-send
        // after the error finds the job by its idempotency key.
        redis.replicated(|| redis::cmd("EXISTS").arg(self.keys.job(&enqueued.id)).clone()).await?;
        Ok(enqueued)
    }

    /// Re-queues one failed job (`Some(id)`) or up to `limit` of the oldest failed jobs.
    pub async fn retry_failed(&self, id: Option<&str>, limit: usize) -> Result<usize, QueueError> {
        Ok(scripts::retry_failed(&mut self.redis.clone(), &self.keys, now_ms(), id, limit).await?)
    }

    /// Deletes a job of this queue whatever its state; false when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, QueueError> {
        Ok(scripts::remove(&mut self.redis.clone(), &self.keys, id, now_ms()).await?)
    }

    /// Cancels a job: a waiting or delayed one is removed; a running one ends `cancelled` at once
    /// and its worker, told its claim is gone at its next report (at most a third of the lease),
    /// cancels the job's context, which the processor sees. Finished jobs are left as they are.
    pub async fn cancel(&self, id: &str) -> Result<Cancelled, QueueError> {
        let kind: Option<String> = self.redis.clone().hget(self.keys.job(id), "kind").await?;
        let answer = scripts::cancel(&mut self.redis.clone(), &self.keys, id, now_ms()).await?;
        let cancelled = |message| {
            let kind = kind.as_deref().unwrap_or("?");
            self.events.emit(EventKind::Cancelled, self.name, kind, id, 0, None, message);
        };
        Ok(match answer {
            CancelReply::Removed => {
                cancelled("removed before it ran");
                Cancelled::Removed
            }
            CancelReply::Stopping => {
                cancelled("cancelled while running");
                Cancelled::Running
            }
            CancelReply::Missing => return Err(QueueError::NotFound(id.to_owned())),
            CancelReply::Ended(state) => Cancelled::AlreadyFinished(state),
        })
    }

    /// Stops (or resumes) fetching on this queue; running jobs finish.
    pub async fn set_paused(&self, paused: bool) -> Result<(), QueueError> {
        let mut redis = self.redis.clone();
        if paused {
            redis.set::<_, _, ()>(&self.keys.paused, 1).await?
        } else {
            // Resumed: wake the idle workers.
            redis::pipe().del(&self.keys.paused).zadd(&self.keys.marker, "0", 0).query_async::<()>(&mut redis).await?
        }
        Ok(())
    }

    /// How many jobs each state holds, and whether the queue is paused.
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let (line, ranked, delayed, active, completed, failed, waiting_children, paused): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            bool,
        ) = redis::pipe()
            .llen(&self.keys.waiting_line)
            .zcard(&self.keys.waiting)
            .zcard(&self.keys.delayed)
            .zcard(&self.keys.active)
            .zcard(&self.keys.completed)
            .zcard(&self.keys.failed)
            .zcard(&self.keys.waiting_children)
            .exists(&self.keys.paused)
            .query_async(&mut self.redis.clone())
            .await?;
        let waiting = line + ranked;
        Ok(QueueCounts { waiting, delayed, active, completed, failed, waiting_children, paused })
    }

    /// Ids in one state: newest first for finished jobs, next-to-run first otherwise.
    pub async fn ids(&self, state: JobState, limit: usize) -> Result<Vec<String>, QueueError> {
        let mut redis = self.redis.clone();
        let end = limit.max(1) as isize - 1;
        let key = self.keys.state(state);
        Ok(match state {
            JobState::Waiting => self.waiting_page(0, limit.max(1)).await?.0,
            JobState::Delayed | JobState::Active | JobState::WaitingChildren => redis.zrange(key, 0, end).await?,
            JobState::Completed | JobState::Failed | JobState::Cancelled => redis.zrevrange(key, 0, end).await?,
        })
    }

    /// Ids of the waiting line from position `offset` (0-based, claim order: the unprioritised
    /// LIST, then the prioritised sorted set), at most `limit`, and how many wait in all.
    pub(crate) async fn waiting_page(&self, offset: usize, limit: usize) -> Result<(Vec<String>, u64), QueueError> {
        let mut redis = self.redis.clone();
        let (start, stop) = (offset as isize, (offset + limit) as isize - 1);
        let (mut ids, line, ranked): (Vec<String>, u64, u64) = redis::pipe()
            .lrange(&self.keys.waiting_line, start, stop)
            .llen(&self.keys.waiting_line)
            .zcard(&self.keys.waiting)
            .query_async(&mut redis)
            .await?;
        if ids.len() < limit && ranked > 0 {
            let from = offset.saturating_sub(line as usize) as isize;
            let more: Vec<String> =
                redis.zrange(&self.keys.waiting, from, from + (limit - ids.len()) as isize - 1).await?;
            ids.extend(more);
        }
        Ok((ids, line + ranked))
    }
}
