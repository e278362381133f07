//! The scheduler (SPEC section 8): `scheduler.toml` entries -> apalis-cron workers whose ticks
//! enqueue each schedule's job on the queues.
//!
//! Several scheduler processes may run: each tick is enqueued with the idempotency key
//! `schedule:{name}:{tick UTC}`, so exactly one job exists per tick. The last enqueued tick of each
//! schedule is kept in Redis; at start, runs missed while no scheduler ran are enqueued once
//! (`misfire = "run_once"`) or skipped; the same policy applies to the latest tick that could not be
//! enqueued while Redis was unreachable, at the next tick (and every tick after until that works). Ticks follow the schedule's
//! timezone (`cron_expr`).

pub mod config;
pub mod cron_expr;

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use redis::{AsyncCommands, Script};

use crate::redis_conn::RedisConn;

pub use config::{Misfire, ScheduleEntry};

use crate::{
    queue::{EnqueueOptions, Enqueued, QueueError, Queues},
    shutdown::Shutdown,
};

/// How long a tick's idempotency key lives (longer than any scheduler's clock skew or restart).
const TICK_KEY_TTL: Duration = Duration::from_secs(48 * 3600);

/// Stores `ARGV[1]` in `KEYS[1]` unless the key already holds a larger number.
static SET_MAX: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(include_str!("set_max.lua")));

/// The schedules and where they enqueue.
pub struct Scheduler {
    /// The checked schedules.
    pub schedules: Vec<ScheduleEntry>,
    queues: Queues,
    redis: RedisConn,
    prefix: String,
}

impl Scheduler {
    /// Schedules that enqueue on `queues`; their bookkeeping lives under `<prefix>:schedule:`.
    pub fn new(schedules: Vec<ScheduleEntry>, queues: Queues, redis: RedisConn, prefix: &str) -> Self {
        Self { schedules, queues, redis, prefix: format!("{prefix}:schedule:") }
    }

    /// The schedule called `name` (an error lists the known ones).
    pub fn get(&self, name: &str) -> Result<&ScheduleEntry, QueueError> {
        self.schedules.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.schedules.iter().map(|s| s.name.as_str()).collect();
            QueueError::Invalid(format!("no schedule named {name:?} (schedules: {})", names.join(", ")))
        })
    }

    /// Enqueues `schedule`'s job for `tick` (relative dates resolved at the tick, in the
    /// schedule's timezone), at most once per tick across every scheduler process.
    pub async fn fire(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>) -> Result<Enqueued, QueueError> {
        let tick_text = tick.to_rfc3339_opts(SecondsFormat::Secs, true);
        let plan = schedule.job.plan(tick.with_timezone(&schedule.cron.timezone)).map_err(QueueError::Invalid)?;
        // The file's priority and delay apply; its key gives way to the tick's (one job per tick).
        let options = EnqueueOptions {
            idempotency_key: Some(format!("schedule:{}:{tick_text}", schedule.name)),
            idempotency_ttl: Some(TICK_KEY_TTL),
            ..schedule.job.options().enqueue_options(&format!("schedule:{}@{tick_text}", schedule.name))
        };
        let enqueued = self.queues.enqueue_planned(&plan, options).await?;
        // Bookkeeping (the start's catch-up, the schedule's last job): the tick's job exists, so
        // a failure here (Redis gone right after the enqueue) must not count the tick as missed,
        // or the tick actually missed before it would be caught up in its place. At worst a later
        // catch-up enqueues this tick again, which its key makes a no-op.
        let recorded = match self.record_run(&schedule.name, tick).await {
            Ok(()) => self.record_job(&schedule.name, &enqueued.id).await,
            failed => failed,
        };
        if let Err(error) = recorded {
            tracing::warn!(schedule = %schedule.name, tick = %tick_text, %error, "could not record the enqueued tick");
        }
        if enqueued.created {
            tracing::info!(schedule = %schedule.name, tick = %tick_text, job = %enqueued.id, "scheduled job enqueued");
        }
        crate::metrics::scheduler_tick(&schedule.name, if enqueued.created { "enqueued" } else { "duplicate" });
        Ok(enqueued)
    }

    /// "Run now": enqueues the schedule's job resolved at this moment, outside the tick series.
    pub async fn run_now(&self, name: &str) -> Result<Enqueued, QueueError> {
        let schedule = self.get(name)?;
        let plan = schedule.job.plan(Utc::now().with_timezone(&schedule.cron.timezone)).map_err(QueueError::Invalid)?;
        let origin = format!("schedule:{name}@manual");
        let enqueued = self.queues.enqueue_planned(&plan, plan.options.enqueue_options(&origin)).await?;
        self.record_job(name, &enqueued.id).await?;
        Ok(enqueued)
    }

    /// Misfire handling at start: for each schedule, the latest tick missed since its last run is
    /// enqueued once (`run_once`) or skipped. A schedule never run before starts from `now`.
    pub async fn catch_up(&self, now: DateTime<Utc>) -> Result<Vec<(String, Enqueued)>, QueueError> {
        let mut enqueued = Vec::new();
        for schedule in &self.schedules {
            if let Some(job) = self.catch_up_schedule(schedule, now, schedule.misfire).await? {
                enqueued.push((schedule.name.clone(), job));
            }
        }
        Ok(enqueued)
    }

    async fn catch_up_schedule(
        &self,
        schedule: &ScheduleEntry,
        now: DateTime<Utc>,
        misfire: Misfire,
    ) -> Result<Option<Enqueued>, QueueError> {
        let since_key = format!("{}{}:since", self.prefix, schedule.name);
        let last = match self.last_run(&schedule.name).await? {
            Some(last) => last,
            None => {
                // Never run: ticks count from the first start of any scheduler.
                let since: Option<i64> = self.redis.clone().get(&since_key).await?;
                match since.and_then(|ms| Utc.timestamp_millis_opt(ms).single()) {
                    Some(since) => since,
                    None => {
                        let _: bool = self.redis.clone().set_nx(&since_key, now.timestamp_millis()).await?;
                        return Ok(None);
                    }
                }
            }
        };
        let Some(missed) = schedule.cron.last_between(last, now) else { return Ok(None) };
        match misfire {
            Misfire::RunOnce => {
                tracing::info!(schedule = %schedule.name, tick = %missed, "enqueuing a missed run");
                Ok(Some(self.fire(schedule, missed).await?))
            }
            Misfire::Skip => {
                self.record_run(&schedule.name, missed).await?;
                Ok(None)
            }
        }
    }

    /// `misfire` applied to one tick that could not be enqueued when due: enqueued late (once: its
    /// key is the tick's) or skipped.
    async fn apply_misfire(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>) -> Result<(), QueueError> {
        match schedule.misfire {
            Misfire::RunOnce => {
                tracing::info!(schedule = %schedule.name, %tick, "enqueuing a missed run");
                self.fire(schedule, tick).await.map(drop)
            }
            Misfire::Skip => self.record_run(&schedule.name, tick).await,
        }
    }

    /// The last tick enqueued (or skipped) of a schedule.
    pub async fn last_run(&self, name: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        let ms: Option<i64> = self.redis.clone().get(format!("{}{name}:last", self.prefix)).await?;
        Ok(ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    /// The id of the job a schedule enqueued last (by tick or "run now"): its state is the
    /// schedule's last outcome.
    pub async fn last_job(&self, name: &str) -> Result<Option<String>, QueueError> {
        Ok(self.redis.clone().get(format!("{}{name}:last_job", self.prefix)).await?)
    }

    /// The queues its jobs go to (to follow a job it enqueued).
    pub fn queues(&self) -> &Queues {
        &self.queues
    }

    async fn record_job(&self, name: &str, id: &str) -> Result<(), QueueError> {
        let _: () = self.redis.clone().set(format!("{}{name}:last_job", self.prefix), id).await?;
        Ok(())
    }

    async fn record_run(&self, name: &str, tick: DateTime<Utc>) -> Result<(), QueueError> {
        let _: i64 = SET_MAX
            .key(format!("{}{name}:last", self.prefix))
            .arg(tick.timestamp_millis())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }
}

/// Runs the scheduler until shutdown: misfire catch-up, then one apalis-cron worker per schedule.
pub async fn run(scheduler: Arc<Scheduler>, shutdown: Shutdown) -> anyhow::Result<()> {
    scheduler.catch_up(Utc::now()).await.context("scheduler: could not catch up on missed runs")?;
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..scheduler.schedules.len() {
        workers.spawn(run_schedule(scheduler.clone(), index, shutdown.clone()));
    }
    tracing::info!(schedules = scheduler.schedules.len(), "scheduler started");
    while let Some(done) = workers.join_next().await {
        done?;
    }
    Ok(())
}

/// One schedule's apalis-cron worker, restarted if it stops: apalis-cron 1.0 ends its worker with
/// "Tick out of range" when a tick is already past as its timer is set (a busy runtime can take
/// those few milliseconds). The restart enqueues that tick (idempotently), so none is lost.
async fn run_schedule(scheduler: Arc<Scheduler>, index: usize, shutdown: Shutdown) {
    let schedule = &scheduler.schedules[index];
    // Outlives a restarted cron worker: a tick it could not enqueue is still caught up.
    let missed = Arc::new(AtomicI64::new(NO_MISSED_TICK));
    loop {
        let backend = CronScheduler::new(schedule.cron.clone()).with_timezone(schedule.cron.timezone);
        let name = crate::queue::worker::unique_worker_name(&format!("schedule-{}", schedule.name));
        let worker = WorkerBuilder::new(name.as_str())
            .backend(backend)
            .data(TickContext { scheduler: scheduler.clone(), index, missed: missed.clone() })
            .build(on_tick);
        let stop = shutdown.clone();
        let result = worker
            .run_with_ctx(move |ctx| {
                let stop = stop.clone();
                async move {
                    stop.cancelled().await;
                    ctx.stop()
                }
            })
            .await;
        if shutdown.is_cancelled() {
            return;
        }
        tracing::warn!(schedule = %schedule.name, ?result, "cron worker stopped; restarting it");
        if let Err(error) = scheduler.catch_up_schedule(schedule, Utc::now(), Misfire::RunOnce).await {
            tracing::error!(schedule = %schedule.name, %error, "could not enqueue a missed run");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[derive(Clone)]
struct TickContext {
    scheduler: Arc<Scheduler>,
    index: usize,
    /// The latest tick (unix seconds) that could not be enqueued (Redis unreachable), or
    /// `NO_MISSED_TICK`: the next tick first applies the schedule's misfire policy to it, as a start
    /// after downtime does, and tries again at every tick until that works. It is the tick itself,
    /// not "whatever came after the last enqueued one": this tick's own enqueue may succeed where
    /// the catch-up failed (a reconnecting connection fails its first command), and it would then
    /// hide the missed tick from a search by the last enqueued one.
    missed: Arc<AtomicI64>,
}

const NO_MISSED_TICK: i64 = i64::MIN;

async fn on_tick(tick: Tick<Tz>, ctx: Data<TickContext>) -> Result<(), BoxDynError> {
    let schedule = &ctx.scheduler.schedules[ctx.index];
    let at = Utc.timestamp_opt(tick.get_timestamp() as i64, 0).single().ok_or("tick out of range")?;
    let missed = ctx.missed.load(Ordering::Relaxed);
    if let Some(missed_tick) = (missed != NO_MISSED_TICK).then(|| Utc.timestamp_opt(missed, 0).single()).flatten() {
        match ctx.scheduler.apply_misfire(schedule, missed_tick).await {
            // Unless a later tick failed meanwhile (it is then the one to catch up).
            Ok(()) => {
                let _ = ctx.missed.compare_exchange(missed, NO_MISSED_TICK, Ordering::Relaxed, Ordering::Relaxed);
            }
            Err(error) => tracing::warn!(schedule = %schedule.name, %error, "could not catch up a missed run yet"),
        }
    }
    if let Err(error) = ctx.scheduler.fire(schedule, at).await {
        ctx.missed.fetch_max(at.timestamp(), Ordering::Relaxed);
        tracing::error!(schedule = %schedule.name, %error, "could not enqueue a scheduled job");
        crate::metrics::scheduler_tick(&schedule.name, "error");
        return Err(error.into());
    }
    Ok(())
}
