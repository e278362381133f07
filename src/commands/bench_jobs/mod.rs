//! `eventmill bench-jobs` (hidden; run by `scripts/bench/jobs.sh` beside the same measurements of
//! Node BullMQ and of bullmq-official, the Rust port): no-op jobs through the real queue and
//! worker on a throw-away key prefix. Prints `RESULT <metric> <value> <unit>` lines (and `CPU` /
//! `CEILING` lines, see docs/benchmarks.md).
//!
//! - `throughput`: a backlog of `--jobs` no-op jobs, then a worker at `--concurrency`: jobs/s
//!   from the worker's start until the last job's completion is recorded in Redis (nothing left
//!   waiting or active); CPU per job of this process and of Redis (`BENCH_REDIS_PID`) meanwhile.
//! - `pickup`: an idle worker; `--samples` jobs enqueued one at a time at random gaps: time from
//!   the enqueue call to the handler's start (p50, p95).
//! - `idle`: an idle worker for `--seconds`: Redis commands/s (INFO commandstats delta).
//! - `retry`: `--samples` jobs failing once with a 200 ms backoff: how late the retry starts
//!   after its due time (p50, max).
//! - `bulk` and `delayed`: see `scenarios`.

mod scenarios;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use redis::AsyncCommands;
use tokio::sync::Notify;

use crate::{
    queue::{self, EnqueueOptions, JobError, JobHandler, Queue, RunningJob, WorkerOptions},
    settings::{RetryPolicy, Settings},
    shutdown::Shutdown,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchMode {
    Throughput,
    Pickup,
    Idle,
    Retry,
    Bulk,
    Delayed,
}

#[derive(Debug, Args)]
pub struct BenchJobsArgs {
    #[arg(value_enum)]
    pub mode: BenchMode,
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Jobs per `enqueue_bulk` call (`bulk`, `delayed`).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
}

/// Backoff of the retry measurement.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// The no-op handler: records when each attempt started; the first attempt of a retry-mode job fails.
#[derive(Default)]
struct Noop {
    fail_first: bool,
    /// Records every attempt's start (`started`), whatever `target`.
    record: bool,
    started: Mutex<Vec<(String, u32, Instant)>>,
    failed_at: Mutex<Vec<(String, Instant)>>,
    count: std::sync::atomic::AtomicUsize,
    target: usize,
    all_done: Notify,
    each: Notify,
}

impl JobHandler for Noop {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let now = Instant::now();
        let result = if self.fail_first && job.attempt == 1 {
            self.failed_at.lock().unwrap().push((job.id.clone(), Instant::now()));
            Err(JobError::retryable("first attempt fails"))
        } else {
            Ok(serde_json::Value::Null)
        };
        if self.target == 0 || self.fail_first || self.record {
            self.started.lock().unwrap().push((job.id, job.attempt, now));
        }
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.target {
            self.all_done.notify_one();
        }
        self.each.notify_one();
        async move { result }.boxed()
    }
}

pub async fn run(settings: Settings, args: BenchJobsArgs) -> anyhow::Result<()> {
    let prefix = format!("{}:bench:{:08x}", settings.redis.prefix, rand::random::<u32>());
    let target = settings.redis.target()?;
    let redis = target.connect(Duration::from_secs(30))?;
    let mut jobs = settings.jobs.clone();
    jobs.default_policy = RetryPolicy { attempts: 2, backoff: RETRY_BACKOFF, jitter: 0.0, ..jobs.default_policy };
    if let BenchMode::Bulk = args.mode {
        // Every completed job kept: the memory a retained completed job costs.
        (jobs.keep_completed, jobs.keep_completed_age) = (1 << 40, Duration::from_secs(86_400 * 30));
    }
    let queue = Queue::new(redis.clone(), target, &prefix, "bench", Arc::new(jobs), Arc::default());
    let result = match args.mode {
        BenchMode::Throughput => throughput(&queue, &args).await,
        BenchMode::Pickup => pickup(&queue, &args).await,
        BenchMode::Idle => idle(&queue, redis.clone(), &args).await,
        BenchMode::Retry => retry(&queue, &args).await,
        BenchMode::Bulk => scenarios::bulk(&queue, redis.clone(), &args).await,
        BenchMode::Delayed => scenarios::delayed(&queue, &args).await,
    };
    clean(redis, &prefix).await?;
    result
}

fn start(
    queue: &Queue,
    handler: Arc<Noop>,
    concurrency: usize,
) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let shutdown = Shutdown::new();
    let options = WorkerOptions { name: queue::worker::unique_worker_name("bench"), concurrency };
    (shutdown.clone(), tokio::spawn(queue::worker::run(queue.clone(), handler, options, shutdown)))
}

async fn stop(worker: (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)) -> anyhow::Result<()> {
    worker.0.cancel();
    worker.1.await?
}

async fn throughput(queue: &Queue, args: &BenchJobsArgs) -> anyhow::Result<()> {
    futures_util::stream::iter(0..args.jobs)
        .map(|i| async move { queue.enqueue("NOOP", &format!("{{\"i\":{i}}}"), EnqueueOptions::default()).await })
        .buffer_unordered(64)
        .for_each(|r| async move { r.map(drop).expect("enqueue") })
        .await;
    let handler = Arc::new(Noop { target: args.jobs, ..Noop::default() });
    let cpu = Cpu::now();
    let began = Instant::now();
    let worker = start(queue, handler.clone(), args.concurrency);
    handler.all_done.notified().await;
    drained(queue).await?;
    let rate = args.jobs as f64 / began.elapsed().as_secs_f64();
    let cpu = cpu.since();
    stop(worker).await?;
    let metric = format!("jobs.noop.c{}", args.concurrency);
    println!("RESULT {metric}.eventmill {rate:.0} jobs/s");
    cpu.print(&metric, "eventmill", args.jobs);
    Ok(())
}

/// Waits until the queue has nothing waiting or active: the last job's completion is recorded in
/// Redis (what a user waits for), not only started.
async fn drained(queue: &Queue) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = queue.counts().await?;
        if counts.waiting + counts.active + counts.delayed == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "jobs still waiting or active after 60 s: {counts:?}");
        tokio::task::yield_now().await;
    }
}

/// CPU time (clock ticks, /proc/<pid>/stat utime + stime) of this process (the worker) and of
/// Redis (`BENCH_REDIS_PID`, set by scripts/bench.sh) at one moment.
struct Cpu {
    worker: u64,
    redis: Option<u64>,
}

impl Cpu {
    fn now() -> Self {
        let redis = std::env::var("BENCH_REDIS_PID").ok().and_then(|pid| ticks(&pid));
        Self { worker: ticks("self").unwrap_or(0), redis }
    }

    /// The CPU used since `self` was taken.
    fn since(self) -> Self {
        let now = Self::now();
        Self { worker: now.worker - self.worker, redis: now.redis.zip(self.redis).map(|(a, b)| a - b) }
    }

    /// `CPU <metric>.<system> eventmill=<worker us/job> redis=<us/job> postgres=0`, and from
    /// Redis' share the jobs/s one Redis core allows (`<metric>.redis_core.<system>`, with a
    /// `CEILING` line: the report prints the rate as a fraction of it).
    fn print(&self, metric: &str, system: &str, jobs: usize) {
        let Some(redis) = self.redis else { return };
        let tick_us = 1e6 / std::env::var("BENCH_CLK_TCK").ok().and_then(|t| t.parse().ok()).unwrap_or(100.0);
        let per_job = |ticks: u64| ticks as f64 * tick_us / jobs as f64;
        let (worker, redis) = (per_job(self.worker), per_job(redis));
        println!("CPU {metric}.{system} eventmill={worker:.2} redis={redis:.2} postgres=0");
        if redis > 0.0 {
            println!("RESULT {metric}.redis_core.{system} {:.0} jobs/s", 1e6 / redis);
            println!("CEILING {metric}.{system} {metric}.redis_core.{system}");
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks.
fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

async fn pickup(queue: &Queue, args: &BenchJobsArgs) -> anyhow::Result<()> {
    let handler = Arc::new(Noop::default());
    let worker = start(queue, handler.clone(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pickups = Vec::new();
    for _ in 0..args.samples {
        tokio::time::sleep(Duration::from_millis(20 + rand::random::<u64>() % 100)).await;
        let asked = Instant::now();
        let id = queue.enqueue("NOOP", "{}", EnqueueOptions::default()).await?.id;
        let started = loop {
            if let Some(at) = handler.started.lock().unwrap().iter().find(|s| s.0 == id).map(|s| s.2) {
                break at;
            }
            tokio::time::timeout(Duration::from_secs(5), handler.each.notified()).await.context("job not picked up")?;
        };
        pickups.push(started - asked);
    }
    stop(worker).await?;
    pickups.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("RESULT jobs.pickup.p50.eventmill {:.2} ms", ms(pickups[pickups.len() / 2]));
    println!("RESULT jobs.pickup.p95.eventmill {:.2} ms", ms(pickups[(pickups.len() * 95).div_ceil(100) - 1]));
    Ok(())
}

async fn idle(queue: &Queue, mut redis: crate::redis_conn::RedisConn, args: &BenchJobsArgs) -> anyhow::Result<()> {
    let worker = start(queue, Arc::new(Noop::default()), 50);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = commands(&mut redis).await?;
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = commands(&mut redis).await?;
    stop(worker).await?;
    // The second INFO counts itself.
    let rate = after.saturating_sub(before + 1) as f64 / args.seconds as f64;
    println!("RESULT jobs.idle_commands.eventmill {rate:.2} commands/s");
    Ok(())
}

/// Commands Redis has run in total (INFO commandstats).
pub async fn commands(redis: &mut crate::redis_conn::RedisConn) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(redis).await?;
    Ok(info
        .lines()
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum())
}

async fn retry(queue: &Queue, args: &BenchJobsArgs) -> anyhow::Result<()> {
    let handler = Arc::new(Noop { fail_first: true, target: args.samples * 2, ..Noop::default() });
    let worker = start(queue, handler.clone(), 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..args.samples {
        queue.enqueue("NOOP", "{}", EnqueueOptions::default()).await?;
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    tokio::time::timeout(Duration::from_secs(60), handler.all_done.notified()).await.context("retries did not run")?;
    stop(worker).await?;
    let failed = handler.failed_at.lock().unwrap().clone();
    let started = handler.started.lock().unwrap().clone();
    let mut late: Vec<f64> = failed
        .iter()
        .filter_map(|(id, at)| {
            let second = started.iter().find(|s| &s.0 == id && s.1 == 2)?.2;
            Some((second - *at).as_secs_f64() * 1000.0 - RETRY_BACKOFF.as_secs_f64() * 1000.0)
        })
        .collect();
    late.sort_by(f64::total_cmp);
    println!("RESULT jobs.retry_late.p50.eventmill {:.1} ms", late[late.len() / 2]);
    println!("RESULT jobs.retry_late.max.eventmill {:.1} ms", late[late.len() - 1]);
    Ok(())
}

/// Deletes every key of the run.
async fn clean(mut redis: crate::redis_conn::RedisConn, prefix: &str) -> anyhow::Result<()> {
    let base = crate::queue::key_base(prefix);
    let keys = redis.keys_in_slot_of(&base, &format!("{base}*")).await?;
    for chunk in keys.chunks(500) {
        redis.del::<_, ()>(chunk).await?;
    }
    Ok(())
}
