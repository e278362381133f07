//! Composition of the long-running parts: `serve` = HTTP API, `worker` = stream consumers,
//! partition maintenance, job workers and the scheduler, `run` = both under one shutdown signal. Each takes the resources it needs
//! and the shutdown token, so tests start exactly the part they exercise.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use eventmill_jobs::Jobs;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};

use crate::{
    live,
    processors::{self, Analytics},
    queue::{Dispatch, Queues, Registry},
    redis_conn::{RedisConn, RedisTarget},
    redis_limits::RedisWatch,
    scheduler::{self, Scheduler},
    settings::Settings,
    shutdown::Shutdown,
    store::{self, Partitions},
    stream::{self, Consumer, Producer, StreamKeys},
    web::{self, AppState},
};

/// How often partitions are created ahead and expired ones dropped.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// Dashboards one process feeds at once (each SSE client holds a connection).
const MAX_SSE_CLIENTS: usize = 200;

/// Connections and settings shared by every part of one process.
#[derive(Clone)]
pub struct Resources {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub redis: RedisConn,
    /// Where new connections go (one node or a cluster).
    pub redis_target: RedisTarget,
    /// The first stream shard's keys (and the live counters').
    pub keys: StreamKeys,
    /// Every stream shard's keys (`EVENTMILL_STREAM_SHARDS`), the first included.
    pub shards: Arc<Vec<StreamKeys>>,
    pub partitions: Arc<Partitions>,
    /// The job framework: registry, queues (own connection, with a long response timeout:
    /// apalis-redis defect 8), workers and schedules.
    pub jobs: Jobs<Analytics>,
    /// The job queues (`jobs.queues()`).
    pub queues: Queues,
    /// What eventmill's job kinds run with (database, reports folder, mailer), built once.
    pub analytics: Arc<Analytics>,
    /// The admin token in force (configured, or generated at start).
    pub admin_token: SecretString,
    /// The live counters' shared once-a-second read (SSE).
    pub feed: live::Feed,
    /// Whether `admin_token` was generated because EVENTMILL_ADMIN_TOKEN is unset.
    pub admin_token_generated: bool,
    /// Redis' memory and eviction policy, read in the background (`redis_limits`).
    pub redis_watch: RedisWatch,
}

impl Resources {
    /// Connects to Redis and PostgreSQL (lazily: a part that starts while one is down reports it
    /// and recovers when it returns) and resolves the admin token; eventmill's job kinds.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        Self::with_registry(settings, processors::registry())
    }

    /// As `new`, with the queues and job kinds of `registry` (eventmill's plus one's own).
    pub fn with_registry(settings: Settings, registry: Registry<Analytics>) -> anyhow::Result<Self> {
        let pool = store::connect_lazy(settings.database_url.expose_secret(), settings.storage.max_connections)
            .context("EVENTMILL_DATABASE_URL is not a valid PostgreSQL URL")?;
        let invalid_url = "EVENTMILL_REDIS_URL is not a valid Redis URL (or list of cluster node URLs)";
        let target = settings.redis.target().context(invalid_url)?;
        let redis = target.connect(settings.ingest.redis_timeout)?;
        let shards = Arc::new(StreamKeys::shards(&settings.redis.prefix, settings.stream_shards));
        let keys = shards[0].clone();
        let partitions = Arc::new(Partitions::new(pool.clone(), &settings.storage));
        let jobs = Jobs::connect(settings.framework(), registry)
            .context(invalid_url)?
            .with_version(concat!("eventmill ", env!("CARGO_PKG_VERSION")));
        let queues = jobs.queues().clone();
        let analytics = Arc::new(Analytics::new(pool.clone(), &settings));
        let admin_token_generated = settings.admin_token.is_none();
        let admin_token = settings
            .admin_token
            .clone()
            .unwrap_or_else(|| SecretString::from(format!("{:032x}", rand::random::<u128>())));
        let feed = live::Feed::new(redis.clone(), keys.live.clone(), MAX_SSE_CLIENTS, settings.live_tick);
        let redis_watch = RedisWatch::new(settings.redis_limits);
        let settings = Arc::new(settings);
        Ok(Self {
            settings,
            pool,
            redis,
            redis_target: target,
            keys,
            shards,
            partitions,
            jobs,
            queues,
            analytics,
            admin_token,
            admin_token_generated,
            feed,
            redis_watch,
        })
    }

    /// Tells the operator the generated admin token; only the HTTP servers (`run`, `serve`) need it.
    pub fn announce_admin_token(&self) {
        if self.admin_token_generated {
            let token = self.admin_token.expose_secret();
            eprintln!("EVENTMILL_ADMIN_TOKEN is unset; generated admin token for this run: {token}");
        }
    }

    /// The HTTP handlers' state.
    pub fn app_state(&self) -> AppState {
        AppState {
            settings: self.settings.clone(),
            producer: Producer::new(self.redis.clone(), self.shards.clone(), self.settings.ingest.clone())
                .with_watch(self.redis_watch.clone()),
            redis_watch: self.redis_watch.clone(),
            redis: self.redis.clone(),
            pool: self.pool.clone(),
            keys: self.keys.clone(),
            shards: self.shards.clone(),
            queues: self.queues.clone(),
            admin_token: self.admin_token.clone(),
            login_failures: Arc::default(),
            feed: self.feed.clone(),
            board: crate::web::admin::board_state(&self.jobs, &self.settings),
        }
    }

    /// The scheduler of `EVENTMILL_SCHEDULER_FILE` (checked: a bad entry is an error naming it).
    pub fn scheduler(&self) -> anyhow::Result<Scheduler> {
        let file = &self.settings.scheduler_file;
        let schedules = self.jobs.load_schedules(file).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(self.jobs.scheduler(schedules))
    }

    /// The worker's handler: every registered kind, with this process's analytics state.
    pub fn dispatch(&self) -> Arc<Dispatch<Analytics>> {
        self.jobs.dispatch(self.analytics.clone())
    }

    /// Applies migrations and creates the coming days' partitions.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        store::migrate(&self.pool).await.context(
            "could not migrate the database: is PostgreSQL running and EVENTMILL_DATABASE_URL right? \
             (scripts/services.sh up starts a local one)",
        )?;
        self.partitions.maintain().await.context("could not create partitions")?;
        let mut redis = self.redis.clone();
        let adopt = crate::queue::upgrade::adopt_legacy_keys(&mut redis, &self.settings.redis.prefix);
        match tokio::time::timeout(Duration::from_secs(5), adopt).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not look for queue keys of an older eventmill; the next start will")
            }
            Err(_) => tracing::warn!(
                "Redis did not answer; queue keys of an older eventmill are looked for at the next start"
            ),
        }
        Ok(())
    }
}

/// `eventmill serve`: the HTTP API until shutdown (with the Redis memory watch ingestion's
/// backpressure reads).
pub async fn serve(resources: &Resources, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let watch = tokio::spawn(watch_redis(resources, shutdown.clone()));
    let served = web::serve(listener, resources.app_state(), shutdown).await;
    watch.abort();
    served
}

/// Reads Redis' memory in the background until shutdown (one task per process; see
/// `RedisWatch::run`).
fn watch_redis(resources: &Resources, shutdown: Shutdown) -> impl std::future::Future<Output = ()> + use<> {
    resources.redis_watch.clone().run(resources.redis.clone(), shutdown)
}

/// `/metrics` without a token on `EVENTMILL_METRICS_ADDR`, when set, until shutdown (every
/// process kind calls this once).
pub async fn serve_metrics(resources: &Resources, shutdown: Shutdown) -> anyhow::Result<()> {
    let Some(addr) = resources.settings.metrics_addr else { return Ok(()) };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr} (EVENTMILL_METRICS_ADDR): is another process on it?"))?;
    web::metrics::serve_open(listener, resources.app_state(), shutdown).await
}

/// `eventmill worker`: the stream consumers, partition maintenance, job workers and scheduler
/// until shutdown (the database migrated already).
pub async fn worker(resources: &Resources, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut parts = JoinSet::new();
    spawn_storage(resources, &mut parts, shutdown.clone()).await?;
    spawn_watch(resources, &mut parts, shutdown.clone());
    spawn_jobs(resources, &mut parts, shutdown)?;
    join_all(parts).await
}

/// `eventmill worker` and `run` as commands start it: the database is migrated first, and while
/// PostgreSQL is unreachable the worker waits for it (retrying with backoff) instead of exiting;
/// the job workers and the scheduler run meanwhile, and storage starts once it is migrated.
pub async fn worker_waiting_for_postgres(resources: &Resources, shutdown: Shutdown) -> anyhow::Result<()> {
    // PostgreSQL up (the usual case): migrated before anything runs, as always.
    if resources.migrate().await.is_ok() {
        return worker(resources, shutdown).await;
    }
    let mut parts = JoinSet::new();
    spawn_watch(resources, &mut parts, shutdown.clone());
    spawn_jobs(resources, &mut parts, shutdown.clone())?;
    let storage = resources.clone();
    parts.spawn(async move {
        if !store::wait::migrated(|| storage.migrate(), &shutdown).await {
            return Ok(());
        }
        let mut parts = JoinSet::new();
        spawn_storage(&storage, &mut parts, shutdown).await?;
        join_all(parts).await
    });
    join_all(parts).await
}

/// The stream consumers (every shard has at least one), partition maintenance and the live
/// counters' reconciler.
async fn spawn_storage(
    resources: &Resources,
    parts: &mut JoinSet<anyhow::Result<()>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Every shard has at least one consumer in every worker process (XREADGROUP reads one shard:
    // a cluster refuses a read over several slots).
    let shards = &resources.shards;
    for index in 0..resources.settings.consumer.consumers.max(shards.len()) {
        let consumer = Consumer::new(
            resources.redis_target.connect(resources.settings.consumer.flush_interval + Duration::from_secs(5))?,
            resources.pool.clone(),
            resources.partitions.clone(),
            shards[index % shards.len()].clone(),
            stream::unique_consumer_name(index),
            resources.settings.consumer.clone(),
        )
        .await
        .context("could not join the stream's consumer group: is Redis running at EVENTMILL_REDIS_URL?")?;
        parts.spawn(consumer.run(shutdown.clone()));
    }
    parts.spawn(maintain_partitions(resources.partitions.clone(), shutdown.clone()));
    parts.spawn(live::reconcile::run(
        resources.pool.clone(),
        resources.redis.clone(),
        resources.keys.live.clone(),
        shutdown,
    ));
    Ok(())
}

/// The worker's part of the Redis watch: the eviction policy, once Redis answers, if the start
/// could not check it (no memory polling: that is the API's).
fn spawn_watch(resources: &Resources, parts: &mut JoinSet<anyhow::Result<()>>, shutdown: Shutdown) {
    let watch = resources.redis_watch.clone().judge_policy(resources.redis.clone(), shutdown);
    parts.spawn(async move {
        watch.await;
        Ok(())
    });
}

/// The job workers (one per declared queue, with its concurrency, `EVENTMILL_JOB_CONCURRENCY`
/// unless it declares its own) and the scheduler.
pub fn spawn_jobs(
    resources: &Resources,
    parts: &mut JoinSet<anyhow::Result<()>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    resources.jobs.spawn_workers(resources.dispatch(), parts, &shutdown)?;
    let scheduler = Arc::new(resources.scheduler()?);
    parts.spawn(scheduler::run(scheduler, shutdown));
    Ok(())
}

/// `eventmill run`: API and worker in one process.
pub async fn run(resources: &Resources, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let api = serve(resources, listener, shutdown.clone());
    both(api, worker(resources, shutdown.clone()), shutdown).await
}

/// `eventmill run` as the command starts it: the worker part waits for PostgreSQL
/// (`worker_waiting_for_postgres`).
pub async fn run_waiting_for_postgres(
    resources: &Resources,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // PostgreSQL up: migrated before the API listens, as always.
    if resources.migrate().await.is_ok() {
        return run(resources, listener, shutdown).await;
    }
    let api = serve(resources, listener, shutdown.clone());
    both(api, worker_waiting_for_postgres(resources, shutdown.clone()), shutdown).await
}

/// Runs the API and the worker; whichever ends first (an error, or shutdown) stops the other.
async fn both(
    api: impl std::future::Future<Output = anyhow::Result<()>>,
    worker: impl std::future::Future<Output = anyhow::Result<()>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tokio::pin!(api, worker);
    tokio::select! {
        result = &mut api => {
            shutdown.cancel();
            result.and(worker.await)
        }
        result = &mut worker => {
            shutdown.cancel();
            result.and(api.await)
        }
    }
}

async fn maintain_partitions(partitions: Arc<Partitions>, shutdown: Shutdown) -> anyhow::Result<()> {
    loop {
        if let Err(error) = partitions.maintain().await {
            tracing::warn!(%error, "partition maintenance failed; retrying in a minute");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(60)) => continue,
                () = shutdown.cancelled() => return Ok(()),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(MAINTENANCE_INTERVAL) => {},
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

async fn join_all(mut parts: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(done) = parts.join_next().await {
        let result = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(error) = result {
            tracing::error!(?error, "a worker part failed");
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}
