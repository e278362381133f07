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
pub mod spec;
pub mod status;
pub mod store;
mod runtime;

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

pub use config::{DefinedIn, Misfire, ScheduleEntry};
pub use spec::ScheduleSpec;
pub use status::{ScheduleDetail, ScheduleStatus};
pub use store::{LedgerEntry, Schedules, TickReason, Upserted};

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
    store: Schedules,
}

impl Scheduler {
    /// Schedules that enqueue on `queues`; their bookkeeping lives under `<prefix>:schedule:`.
    pub fn new(schedules: Vec<ScheduleEntry>, queues: Queues, redis: RedisConn, prefix: &str) -> Self {
        let store = Schedules::new(redis.clone(), prefix, queues.catalog().clone());
        Self { schedules, queues, redis, prefix: format!("{prefix}:schedule:"), store }
    }

    /// The run-time schedules and every schedule's pause, run count and ledger.
    pub fn store(&self) -> &Schedules {
        &self.store
    }

    /// Every schedule: the file's, then the run-time ones (a run-time one named as a file one
    /// is left out: the file wins).
    pub async fn all(&self) -> Result<Vec<ScheduleEntry>, QueueError> {
        let mut all = self.schedules.clone();
        for entry in self.store.entries().await? {
            if !self.schedules.iter().any(|s| s.name == entry.name) {
                all.push(entry);
            }
        }
        Ok(all)
    }

    /// Any schedule called `name`, file or run-time (an error lists the known ones).
    pub async fn find(&self, name: &str) -> Result<ScheduleEntry, QueueError> {
        let all = self.all().await?;
        all.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            QueueError::Invalid(format!("no schedule named {name:?} (schedules: {})", names.join(", ")))
        })
    }

    /// Creates or replaces run-time schedule `name`; a name of `scheduler.toml` is refused.
    pub async fn upsert(&self, name: &str, spec: &ScheduleSpec) -> Result<Upserted, QueueError> {
        self.refuse_file(name, "change")?;
        self.store.upsert(name, spec).await
    }

    /// Removes run-time schedule `name`; a `scheduler.toml` one is refused (edit the file), an
    /// unknown one is an error.
    pub async fn remove(&self, name: &str) -> Result<(), QueueError> {
        self.refuse_file(name, "remove")?;
        if !self.store.remove(name).await? {
            self.find(name).await?;
        }
        Ok(())
    }

    /// Pauses or resumes any schedule (file ones too: the pause is kept in Redis).
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, QueueError> {
        self.find(name).await?;
        self.store.set_paused(name, paused).await
    }

    /// Schedule `name`'s ledger, newest due tick first, each job's outcome read from the job.
    pub async fn ledger(&self, name: &str) -> Result<Vec<LedgerEntry>, QueueError> {
        let mut entries = self.store.ledger(name).await?;
        for entry in &mut entries {
            if let Some(id) = &entry.job {
                entry.outcome = Some(match self.queues.job(id).await? {
                    None => "removed".to_owned(),
                    Some(job) => match (job.state.as_str(), job.last_error()) {
                        ("failed", Some(error)) => format!("failed: {error}"),
                        (state, _) => state.to_owned(),
                    },
                });
            }
        }
        Ok(entries)
    }

    fn refuse_file(&self, name: &str, what: &str) -> Result<(), QueueError> {
        if self.schedules.iter().any(|s| s.name == name) {
            return Err(QueueError::Invalid(format!(
                "schedule {name:?} is defined in scheduler.toml; edit the file to {what} it"
            )));
        }
        Ok(())
    }

    /// The file schedule called `name` (an error lists the known ones).
    pub fn get(&self, name: &str) -> Result<&ScheduleEntry, QueueError> {
        self.schedules.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.schedules.iter().map(|s| s.name.as_str()).collect();
            QueueError::Invalid(format!("no schedule named {name:?} (schedules: {})", names.join(", ")))
        })
    }

    /// Enqueues `schedule`'s job for `tick` (relative dates resolved at the tick, in the
    /// schedule's timezone), at most once per tick across every scheduler process.
    pub async fn fire(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>) -> Result<Enqueued, QueueError> {
        self.fire_late(schedule, tick, None).await
    }

    /// [`fire`](Self::fire), with why the tick comes late for the ledger.
    async fn fire_late(
        &self,
        schedule: &ScheduleEntry,
        tick: DateTime<Utc>,
        late: Option<TickReason>,
    ) -> Result<Enqueued, QueueError> {
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
            let now = Utc::now();
            let entry = LedgerEntry {
                due: tick,
                enqueued: true,
                reason: late,
                enqueued_at: Some(now),
                late_ms: Some((now - tick).num_milliseconds().max(0)),
                job: Some(enqueued.id.clone()),
                outcome: None,
            };
            if let Err(error) = self.store.record(schedule, &entry, true).await {
                tracing::warn!(schedule = %schedule.name, tick = %tick_text, %error, "could not ledger the enqueued tick");
            }
        }
        crate::metrics::scheduler_tick(&schedule.name, if enqueued.created { "enqueued" } else { "duplicate" });
        Ok(enqueued)
    }

    /// "Run now": enqueues the schedule's job resolved at this moment, outside the tick series.
    pub async fn run_now(&self, name: &str) -> Result<Enqueued, QueueError> {
        let schedule = self.find(name).await?;
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

    pub(crate) async fn catch_up_schedule(
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
        if self.held(schedule, missed).await? {
            return Ok(None);
        }
        match misfire {
            Misfire::RunOnce => {
                tracing::info!(schedule = %schedule.name, tick = %missed, "enqueuing a missed run");
                Ok(Some(self.fire_late(schedule, missed, Some(TickReason::Downtime)).await?))
            }
            Misfire::Skip => {
                self.skip(schedule, missed, TickReason::Downtime).await?;
                Ok(None)
            }
        }
    }

    /// Whether `tick` must not enqueue: the schedule is paused (the tick is skipped and ledgered
    /// as such) or has used up its limit of runs.
    async fn held(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>) -> Result<bool, QueueError> {
        if self.store.is_paused(&schedule.name).await? {
            self.skip(schedule, tick, TickReason::Paused).await?;
            return Ok(true);
        }
        if let Some(limit) = schedule.limit {
            return Ok(self.store.runs(&schedule.name).await? >= limit);
        }
        Ok(false)
    }

    /// Skips `tick` (counted as run, so no catch-up enqueues it) and ledgers why.
    async fn skip(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>, why: TickReason) -> Result<(), QueueError> {
        self.record_run(&schedule.name, tick).await?;
        let entry = LedgerEntry {
            due: tick,
            enqueued: false,
            reason: Some(why),
            enqueued_at: None,
            late_ms: None,
            job: None,
            outcome: None,
        };
        self.store.record(schedule, &entry, false).await
    }

    /// One due tick: the misfire policy applied to a tick missed earlier (`missed`), then this
    /// tick's job unless the schedule is paused or ended. Shared by file and run-time schedules.
    pub(crate) async fn tick(
        &self,
        schedule: &ScheduleEntry,
        at: DateTime<Utc>,
        missed: &AtomicI64,
    ) -> Result<(), QueueError> {
        let seen = missed.load(Ordering::Relaxed);
        if let Some(missed_tick) = (seen != NO_MISSED_TICK).then(|| Utc.timestamp_opt(seen, 0).single()).flatten() {
            match self.apply_misfire(schedule, missed_tick).await {
                // Unless a later tick failed meanwhile (it is then the one to catch up).
                Ok(()) => {
                    let _ = missed.compare_exchange(seen, NO_MISSED_TICK, Ordering::Relaxed, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(schedule = %schedule.name, %error, "could not catch up a missed run yet"),
            }
        }
        let fired = match self.held(schedule, at).await {
            Ok(true) => return Ok(()),
            Ok(false) => self.fire(schedule, at).await.map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = fired {
            missed.fetch_max(at.timestamp(), Ordering::Relaxed);
            tracing::error!(schedule = %schedule.name, %error, "could not enqueue a scheduled job");
            crate::metrics::scheduler_tick(&schedule.name, "error");
            return Err(error);
        }
        Ok(())
    }

    /// `misfire` applied to one tick that could not be enqueued when due: enqueued late (once: its
    /// key is the tick's) or skipped.
    async fn apply_misfire(&self, schedule: &ScheduleEntry, tick: DateTime<Utc>) -> Result<(), QueueError> {
        if self.held(schedule, tick).await? {
            return Ok(());
        }
        match schedule.misfire {
            Misfire::RunOnce => {
                tracing::info!(schedule = %schedule.name, %tick, "enqueuing a missed run");
                self.fire_late(schedule, tick, Some(TickReason::RedisUnreachable)).await.map(drop)
            }
            Misfire::Skip => self.skip(schedule, tick, TickReason::RedisUnreachable).await,
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
    workers.spawn(runtime::run(scheduler.clone(), shutdown.clone()));
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

pub(crate) const NO_MISSED_TICK: i64 = i64::MIN;

async fn on_tick(tick: Tick<Tz>, ctx: Data<TickContext>) -> Result<(), BoxDynError> {
    let schedule = &ctx.scheduler.schedules[ctx.index];
    let at = Utc.timestamp_opt(tick.get_timestamp() as i64, 0).single().ok_or("tick out of range")?;
    ctx.scheduler.tick(schedule, at, &ctx.missed).await?;
    Ok(())
}
