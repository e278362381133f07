//! [`Jobs`]: the registry tied to Redis, and what an application does with it: enqueue typed
//! jobs, run the workers of every declared queue, run the schedules.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use tokio::task::JoinSet;

use crate::{
    EnqueueOptions, Enqueued, Job, JobsSettings, Processor, QueueError, Queues, Registry,
    queue::{self, Dispatch, JobHandler, WorkerOptions},
    redis_conn::{RedisConn, RedisTarget},
    scheduler::{self, ScheduleEntry, Scheduler},
    shutdown::Shutdown,
};

/// Redis response timeout of queue operations: a slow reply (a big promotion, a busy server) must
/// not be fatal to a worker (apalis-redis defect 8 was redis-rs's 500 ms default).
const QUEUE_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The framework, connected: the registry of state `S`, its queues in Redis and the settings.
/// Cheap to clone (everything inside is shared).
pub struct Jobs<S> {
    settings: Arc<JobsSettings>,
    registry: Arc<Registry<S>>,
    target: RedisTarget,
    redis: RedisConn,
    queues: Queues,
    /// What worker processes report as their version on the board's workers page.
    version: Arc<str>,
}

impl<S> Clone for Jobs<S> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            registry: self.registry.clone(),
            target: self.target.clone(),
            redis: self.redis.clone(),
            queues: self.queues.clone(),
            version: self.version.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> Jobs<S> {
    /// Ties `registry` to the Redis of `settings`. Lazy: nothing is sent until the first command
    /// (an application may start while Redis is down; its calls fail until Redis is up).
    pub fn connect(settings: JobsSettings, registry: Registry<S>) -> Result<Self, redis::RedisError> {
        let target = settings.redis.target()?;
        let redis = target.connect(QUEUE_RESPONSE_TIMEOUT)?;
        let registry = Arc::new(registry);
        let catalog = Arc::new(registry.catalog().clone());
        let jobs = Arc::new(settings.jobs.clone());
        let queues = Queues::new(redis.clone(), target.clone(), &settings.redis.prefix, jobs, catalog);
        let version = concat!("eventmill-jobs ", env!("CARGO_PKG_VERSION")).into();
        Ok(Self { settings: Arc::new(settings), registry, target, redis, queues, version })
    }

    /// The version this application's worker processes show on the board's workers page
    /// (default: the framework's, `eventmill-jobs 0.1.0`).
    ///
    /// ```no_run
    /// # fn demo(jobs: eventmill_jobs::Jobs<()>) {
    /// let jobs = jobs.with_version(concat!("myapp ", env!("CARGO_PKG_VERSION")));
    /// # }
    /// ```
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    /// Every declared queue (list, inspect, retry, pause...).
    pub fn queues(&self) -> &Queues {
        &self.queues
    }

    /// The kinds and their processors.
    pub fn registry(&self) -> &Arc<Registry<S>> {
        &self.registry
    }

    /// The settings it was connected with.
    pub fn settings(&self) -> &JobsSettings {
        &self.settings
    }

    /// The queue connection (30 s response timeout).
    pub fn redis(&self) -> &RedisConn {
        &self.redis
    }

    /// Where new connections go (one node or a cluster).
    pub fn redis_target(&self) -> &RedisTarget {
        &self.target
    }

    /// Enqueues a job of processor `P` on its queue, to run as soon as a worker is free.
    pub async fn enqueue<P: Processor<S>>(&self, payload: &P::Payload) -> Result<Enqueued, QueueError> {
        self.enqueue_with::<P>(payload, EnqueueOptions::default()).await
    }

    /// Enqueues a job of processor `P` with `options` (delay, priority, deduplication key...).
    pub async fn enqueue_with<P: Processor<S>>(
        &self,
        payload: &P::Payload,
        options: EnqueueOptions,
    ) -> Result<Enqueued, QueueError> {
        let job = Job::of::<P, S>(payload);
        // The same checks as a job file's or the CLI's: a payload the kind refuses is not queued.
        let Job { payload, .. } = job;
        let serde_json::Value::Object(fields) = payload else {
            return Err(QueueError::Invalid(format!("a {} payload must serialize to an object", P::NAME)));
        };
        let job = self.registry.job(fields).map_err(QueueError::Invalid)?;
        self.queues.enqueue(&job, options).await
    }

    /// Enqueues one job of processor `P` per payload, in one round trip: all of them or none
    /// (BullMQ's `addBulk`). Every payload gets the checks of [`Jobs::enqueue`] first: one that
    /// the kind refuses enqueues nothing. Send batches of about 1,000 (see
    /// [`Queue::enqueue_bulk`](crate::Queue::enqueue_bulk); per-job options:
    /// [`Queues::enqueue_bulk`](crate::Queues::enqueue_bulk)).
    ///
    /// ```no_run
    /// # use eventmill_jobs::{JobContext, JobError, Jobs, Processor};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Welcome { user_id: String }
    /// # struct SendWelcome;
    /// # impl Processor<()> for SendWelcome {
    /// #     type Payload = Welcome;
    /// #     const NAME: &'static str = "SEND_WELCOME";
    /// #     const QUEUE: &'static str = "emails";
    /// #     async fn process(&self, _: &JobContext<()>, _: Welcome) -> Result<serde_json::Value, JobError> { Ok(().into()) }
    /// # }
    /// # async fn demo(jobs: Jobs<()>) -> Result<(), eventmill_jobs::QueueError> {
    /// let users: Vec<Welcome> = (0..1000).map(|i| Welcome { user_id: format!("u{i}") }).collect();
    /// let enqueued = jobs.enqueue_bulk::<SendWelcome>(&users).await?;
    /// assert_eq!(enqueued.len(), users.len());
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_bulk<P: Processor<S>>(&self, payloads: &[P::Payload]) -> Result<Vec<Enqueued>, QueueError> {
        let mut jobs = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let serde_json::Value::Object(fields) = Job::of::<P, S>(payload).payload else {
                return Err(QueueError::Invalid(format!("a {} payload must serialize to an object", P::NAME)));
            };
            jobs.push((self.registry.job(fields).map_err(QueueError::Invalid)?, EnqueueOptions::default()));
        }
        self.queues.enqueue_bulk(&jobs).await
    }

    /// The handler workers run jobs with: every registered kind, with `state` in its context.
    pub fn dispatch(&self, state: Arc<S>) -> Arc<Dispatch<S>> {
        Arc::new(Dispatch { registry: self.registry.clone(), state })
    }

    /// Spawns one worker per declared queue into `parts` (its concurrency, or the settings'
    /// `JOB_CONCURRENCY`), each running until `shutdown`, and this process's beat on the board's
    /// workers page (see [`queue::processes`]).
    pub fn spawn_workers(
        &self,
        handler: Arc<dyn JobHandler>,
        parts: &mut JoinSet<anyhow::Result<()>>,
        shutdown: &Shutdown,
    ) -> Result<(), QueueError> {
        let process = queue::WorkerProcess::new(self.queues.processes().clone(), &self.version);
        for spec in self.registry.queues() {
            let queue = self.queues.named(spec.name)?.clone();
            let concurrency = spec.concurrency.unwrap_or(self.settings.jobs.concurrency);
            let options = WorkerOptions { name: queue::worker::unique_worker_name(queue.name), concurrency };
            let attachment = process.attach(queue.name, concurrency);
            let (handler, shutdown, paused) = (handler.clone(), shutdown.clone(), spec.paused);
            let variable = format!("{}_REDIS_URL", self.settings.env_prefix);
            parts.spawn(async move {
                queue
                    .declare(paused, concurrency)
                    .await
                    .with_context(|| format!("could not declare the job queues: is Redis running at {variable}?"))?;
                queue::worker::run_in(queue, handler, options, shutdown, Some(attachment)).await
            });
        }
        let linger = self.settings.jobs.shutdown_grace + Duration::from_secs(2);
        parts.spawn(process.run(shutdown.clone(), linger));
        parts.spawn(queue::slo::run(self.queues.clone(), self.settings.jobs.slo_check, shutdown.clone()));
        Ok(())
    }

    /// Runs the workers of every declared queue until `shutdown`, with `state` in every job's
    /// context; returns once running jobs are finished or handed back.
    pub async fn run_workers(&self, state: Arc<S>, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut parts = JoinSet::new();
        self.spawn_workers(self.dispatch(state), &mut parts, &shutdown)?;
        join_all(parts).await
    }

    /// The schedules of a `scheduler.toml`-style file (checked: a bad entry is an error naming it).
    pub fn load_schedules(&self, path: &Path) -> Result<Vec<ScheduleEntry>, String> {
        scheduler::config::load(path, self.registry.catalog())
    }

    /// A scheduler of `schedules` on these queues.
    pub fn scheduler(&self, schedules: Vec<ScheduleEntry>) -> Scheduler {
        Scheduler::new(schedules, self.queues.clone(), self.redis.clone(), &self.settings.redis.prefix)
    }

    /// The run-time schedules in Redis: upsert, remove, list, pause, resume, ledgers. A running
    /// [`scheduler::run`] picks changes up within ~2 s.
    ///
    /// ```no_run
    /// # async fn demo(jobs: eventmill_jobs::Jobs<()>) -> Result<(), eventmill_jobs::QueueError> {
    /// use eventmill_jobs::scheduler::ScheduleSpec;
    /// let spec = ScheduleSpec::cron("0 2 * * *")
    ///     .timezone("Europe/Berlin")
    ///     .job(serde_json::json!({ "job_type": "DAILY_ROLLUP", "date": "yesterday" }));
    /// jobs.schedules().upsert("nightly-rollup", &spec).await?;
    /// # Ok(()) }
    /// ```
    pub fn schedules(&self) -> scheduler::Schedules {
        scheduler::Schedules::new(self.redis.clone(), &self.settings.redis.prefix, self.queues.catalog().clone())
    }

    /// The schedules of the file at `path`, read afresh on every call (what the board's
    /// schedules page shows, so an edited file shows at once; a bad file is an error naming it).
    pub fn schedule_file(
        &self,
        path: impl Into<PathBuf>,
    ) -> impl Fn() -> Result<Scheduler, String> + Send + Sync + 'static {
        let (path, jobs) = (path.into(), self.clone());
        move || {
            let schedules = jobs.load_schedules(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(jobs.scheduler(schedules))
        }
    }

    /// The board of these queues, to be mounted at `base_path` (`"/jobs"`): add its schedules,
    /// title and links, then `board::router(state)` behind your auth layer.
    #[cfg(feature = "board")]
    pub fn board(&self, base_path: &str) -> crate::board::BoardState {
        crate::board::BoardState::new(self.queues.clone(), base_path)
    }
}

/// Waits for every part; the first error (after all ended) is the result.
pub(crate) async fn join_all(mut parts: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(done) = parts.join_next().await {
        let result = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(error) = result {
            tracing::error!(?error, "a job part failed");
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}
