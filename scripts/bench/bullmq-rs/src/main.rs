//! bullmq-official (BullMQ's Rust port, lib `bullmq`) side of scripts/bench/jobs.sh: the same
//! measurements as `eventmill bench-jobs` and `bullmq/bench.mjs`, on the same Redis, printing the
//! same lines with `.bullmq_rs` in place of `.eventmill`. Not part of eventmill: its own Cargo
//! project (excluded from the workspace), built by jobs.sh.
//!
//!   bench-bullmq-rs throughput|pickup|idle|retry|bulk|delayed [--jobs N] [--concurrency N]
//!                   [--samples N] [--seconds N] [--batch N]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bullmq::options::RedisConnectionOptions;
use bullmq::types::{BackoffStrategy, RemoveOnFinish};
use bullmq::{BulkJob, Job, JobOptions, Queue, QueueOptions, Worker, WorkerOptions};
use tokio::sync::Notify;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SYSTEM: &str = "bullmq_rs";
const RETRY_BACKOFF_MS: u64 = 200;
const CONCURRENCY: usize = 50;
const DELAYED_LEAD_MS: u64 = 3000;

struct Args {
    mode: String,
    jobs: usize,
    concurrency: usize,
    samples: usize,
    seconds: u64,
    batch: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: usize| {
        argv.iter()
            .position(|a| a == &format!("--{name}"))
            .and_then(|i| argv.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    Args {
        mode: argv.first().cloned().unwrap_or_default(),
        jobs: opt("jobs", 10_000),
        concurrency: opt("concurrency", 50),
        samples: opt("samples", 50),
        seconds: opt("seconds", 5) as u64,
        batch: opt("batch", 1000),
    }
}

/// Where Redis is and the throw-away queue of this run.
struct Bench {
    url: String,
    name: String,
    queue: Queue,
    redis: redis::aio::MultiplexedConnection,
}

impl Bench {
    fn connection(&self) -> RedisConnectionOptions {
        RedisConnectionOptions { url: self.url.clone(), ..RedisConnectionOptions::default() }
    }

    async fn worker<F, Fut>(&self, concurrency: usize, processor: F) -> Result<Worker>
    where
        F: Fn(Job, bullmq::worker::CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<serde_json::Value, bullmq::Error>> + Send + 'static,
    {
        let opts = WorkerOptions { connection: self.connection(), concurrency, ..WorkerOptions::default() };
        Ok(Worker::with_options(&self.name, processor, opts).await?)
    }

    /// Adds `jobs` no-op jobs, `batch` at a time (addBulk), with `opts` each.
    async fn add(&self, jobs: usize, batch: usize, opts: impl Fn() -> JobOptions) -> Result<()> {
        for first in (0..jobs).step_by(batch.max(1)) {
            let bulk = (first..(first + batch).min(jobs))
                .map(|i| BulkJob::with_options("noop", serde_json::json!({ "i": i }), opts()))
                .collect();
            self.queue.add_bulk(bulk).await?;
        }
        Ok(())
    }

    /// Waits until nothing is waiting or active: the last job's completion is recorded in Redis.
    async fn drained(&mut self) -> Result<()> {
        let key = |k: &str| format!("bull:{}:{k}", self.name);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (wait, active, prioritized, delayed): (u64, u64, u64, u64) = redis::pipe()
                .llen(key("wait"))
                .llen(key("active"))
                .zcard(key("prioritized"))
                .zcard(key("delayed"))
                .query_async(&mut self.redis)
                .await?;
            if wait + active + prioritized + delayed == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("jobs still waiting or active after 60 s".into());
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Counts handler starts; wakes the waiter at `target`.
#[derive(Default)]
struct Counter {
    count: AtomicUsize,
    target: usize,
    done: Notify,
}

impl Counter {
    fn hit(&self) {
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
            self.done.notify_one();
        }
    }
}

async fn throughput(b: &mut Bench, a: &Args) -> Result<()> {
    let keep = || JobOptions { remove_on_complete: Some(RemoveOnFinish::Count(1000)), ..JobOptions::default() };
    b.add(a.jobs, 1000, keep).await?;
    let counter = Arc::new(Counter { target: a.jobs, ..Counter::default() });
    let cpu = Cpu::now();
    let began = Instant::now();
    let c = counter.clone();
    let worker = b
        .worker(a.concurrency, move |_, _| {
            c.hit();
            async { Ok(serde_json::Value::Null) }
        })
        .await?;
    counter.done.notified().await;
    b.drained().await?;
    let rate = a.jobs as f64 / began.elapsed().as_secs_f64();
    let cpu = cpu.since();
    worker.close(5000).await?;
    let metric = format!("jobs.noop.c{}", a.concurrency);
    println!("RESULT {metric}.{SYSTEM} {rate:.0} jobs/s");
    cpu.print(&metric, a.jobs);
    Ok(())
}

async fn pickup(b: &mut Bench, a: &Args) -> Result<()> {
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let each = Arc::new(Notify::new());
    let (s, e) = (started.clone(), each.clone());
    let worker = b
        .worker(1, move |job, _| {
            s.lock().unwrap().insert(job.id().to_owned(), Instant::now());
            e.notify_one();
            async { Ok(serde_json::Value::Null) }
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pickups = Vec::new();
    for _ in 0..a.samples {
        tokio::time::sleep(Duration::from_millis(20 + rand_below(100))).await;
        let asked = Instant::now();
        let job = b.queue.add("noop", serde_json::json!({})).remove_on_complete(RemoveOnFinish::Count(1000)).await?;
        let at = loop {
            if let Some(at) = started.lock().unwrap().get(job.id()) {
                break *at;
            }
            tokio::time::timeout(Duration::from_secs(5), each.notified()).await?;
        };
        pickups.push((at - asked).as_secs_f64() * 1000.0);
    }
    worker.close(5000).await?;
    pickups.sort_by(f64::total_cmp);
    println!("RESULT jobs.pickup.p50.{SYSTEM} {:.2} ms", pickups[pickups.len() / 2]);
    println!("RESULT jobs.pickup.p95.{SYSTEM} {:.2} ms", pickups[(pickups.len() * 95).div_ceil(100) - 1]);
    Ok(())
}

async fn commands(redis: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(redis).await?;
    Ok(info.lines().filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok()).sum())
}

async fn idle(b: &mut Bench, a: &Args) -> Result<()> {
    let worker = b.worker(50, |_, _| async { Ok(serde_json::Value::Null) }).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = commands(&mut b.redis).await?;
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let after = commands(&mut b.redis).await?;
    worker.close(5000).await?;
    let rate = after.saturating_sub(before + 1) as f64 / a.seconds as f64;
    println!("RESULT jobs.idle_commands.{SYSTEM} {rate:.2} commands/s");
    Ok(())
}

async fn retry(b: &mut Bench, a: &Args) -> Result<()> {
    let failed_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let late: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = Arc::new(Notify::new());
    let (f, l, d, samples) = (failed_at.clone(), late.clone(), done.clone(), a.samples);
    let worker = b
        .worker(4, move |job, _| {
            let now = Instant::now();
            let result = if job.attempts_made() == 0 {
                f.lock().unwrap().insert(job.id().to_owned(), now);
                Err(bullmq::Error::InvalidConfig("first attempt fails".into()))
            } else {
                let first = f.lock().unwrap()[job.id()];
                let mut late = l.lock().unwrap();
                late.push((now - first).as_secs_f64() * 1000.0 - RETRY_BACKOFF_MS as f64);
                if late.len() == samples {
                    d.notify_one();
                }
                Ok(serde_json::Value::Null)
            };
            async move { result }
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..a.samples {
        b.queue
            .add("noop", serde_json::json!({}))
            .attempts(2)
            .backoff(BackoffStrategy::Fixed(RETRY_BACKOFF_MS))
            .remove_on_complete(RemoveOnFinish::Count(1000))
            .await?;
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    tokio::time::timeout(Duration::from_secs(60), done.notified()).await?;
    worker.close(5000).await?;
    let mut late = late.lock().unwrap().clone();
    late.sort_by(f64::total_cmp);
    println!("RESULT jobs.retry_late.p50.{SYSTEM} {:.1} ms", late[late.len() / 2]);
    println!("RESULT jobs.retry_late.max.{SYSTEM} {:.1} ms", late[late.len() - 1]);
    Ok(())
}

async fn used_memory(redis: &mut redis::aio::MultiplexedConnection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no used_memory")?)
}

async fn bulk(b: &mut Bench, a: &Args) -> Result<()> {
    let empty = used_memory(&mut b.redis).await?;
    let began = Instant::now();
    // Every completed job kept (the default: no removeOnComplete).
    b.add(a.jobs, a.batch, JobOptions::default).await?;
    let rate = a.jobs as f64 / began.elapsed().as_secs_f64();
    let waiting = used_memory(&mut b.redis).await? - empty;
    println!("RESULT jobs.bulk_enqueue.{SYSTEM} {rate:.0} jobs/s");
    println!("RESULT jobs.memory.waiting.{SYSTEM} {:.0} bytes", waiting as f64 / a.jobs as f64);
    let counter = Arc::new(Counter { target: a.jobs, ..Counter::default() });
    let c = counter.clone();
    let cpu = Cpu::now();
    let began = Instant::now();
    let worker = b
        .worker(CONCURRENCY, move |_, _| {
            c.hit();
            async { Ok(serde_json::Value::Null) }
        })
        .await?;
    counter.done.notified().await;
    b.drained().await?;
    let rate = a.jobs as f64 / began.elapsed().as_secs_f64();
    let cpu = cpu.since();
    worker.close(5000).await?;
    println!("RESULT jobs.backlog.c{CONCURRENCY}.{SYSTEM} {rate:.0} jobs/s");
    cpu.print(&format!("jobs.backlog.c{CONCURRENCY}"), a.jobs);
    let completed = used_memory(&mut b.redis).await? - empty;
    println!("RESULT jobs.memory.completed.{SYSTEM} {:.0} bytes", completed as f64 / a.jobs as f64);
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn delayed(b: &mut Bench, a: &Args) -> Result<()> {
    let counter = Arc::new(Counter { target: a.jobs, ..Counter::default() });
    let started: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (c, s) = (counter.clone(), started.clone());
    let worker = b
        .worker(CONCURRENCY, move |_, _| {
            s.lock().unwrap().push(Instant::now());
            c.hit();
            async { Ok(serde_json::Value::Null) }
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let due_ms = now_ms() + DELAYED_LEAD_MS;
    let due = Instant::now() + Duration::from_millis(DELAYED_LEAD_MS);
    for first in (0..a.jobs).step_by(a.batch.max(1)) {
        let delay = due_ms.saturating_sub(now_ms());
        let bulk = (first..(first + a.batch).min(a.jobs))
            .map(|i| {
                let opts = JobOptions { delay: Some(delay), ..JobOptions::default() };
                BulkJob::with_options("noop", serde_json::json!({ "i": i }), opts)
            })
            .collect();
        b.queue.add_bulk(bulk).await?;
    }
    if Instant::now() >= due {
        return Err(format!("enqueueing {} delayed jobs took longer than {DELAYED_LEAD_MS} ms", a.jobs).into());
    }
    tokio::time::timeout(Duration::from_secs(63), counter.done.notified()).await?;
    worker.close(5000).await?;
    let mut late: Vec<f64> =
        started.lock().unwrap().iter().map(|at| at.saturating_duration_since(due).as_secs_f64() * 1000.0).collect();
    late.sort_by(f64::total_cmp);
    println!("RESULT jobs.delayed_late.p50.{SYSTEM} {:.1} ms", late[late.len() / 2]);
    println!("RESULT jobs.delayed_late.max.{SYSTEM} {:.1} ms", late[late.len() - 1]);
    Ok(())
}

/// A small pseudo-random number below `n` (the pickup gaps; no rand dependency).
fn rand_below(n: u64) -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64 % n
}

/// CPU ticks (/proc/<pid>/stat utime + stime) of this process and of Redis (`BENCH_REDIS_PID`).
struct Cpu {
    worker: u64,
    redis: Option<u64>,
}

impl Cpu {
    fn now() -> Self {
        let redis = std::env::var("BENCH_REDIS_PID").ok().and_then(|pid| ticks(&pid));
        Self { worker: ticks("self").unwrap_or(0), redis }
    }

    fn since(self) -> Self {
        let now = Self::now();
        Self { worker: now.worker - self.worker, redis: now.redis.zip(self.redis).map(|(a, b)| a - b) }
    }

    /// The same CPU / CEILING lines as `eventmill bench-jobs`.
    fn print(&self, metric: &str, jobs: usize) {
        let Some(redis) = self.redis else { return };
        let tick_us = 1e6 / std::env::var("BENCH_CLK_TCK").ok().and_then(|t| t.parse().ok()).unwrap_or(100.0);
        let per_job = |ticks: u64| ticks as f64 * tick_us / jobs as f64;
        let (worker, redis) = (per_job(self.worker), per_job(redis));
        println!("CPU {metric}.{SYSTEM} eventmill={worker:.2} redis={redis:.2} postgres=0");
        if redis > 0.0 {
            println!("RESULT {metric}.redis_core.{SYSTEM} {:.0} jobs/s", 1e6 / redis);
            println!("CEILING {metric}.{SYSTEM} {metric}.redis_core.{SYSTEM}");
        }
    }
}

fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args();
    let url = std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let name = format!("bench-rs-{:08x}", rand_below(u32::MAX as u64));
    let connection = RedisConnectionOptions { url: url.clone(), ..RedisConnectionOptions::default() };
    let queue = Queue::with_options(&name, QueueOptions { connection, ..QueueOptions::default() }).await?;
    let redis = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
    let mut b = Bench { url, name, queue, redis };
    let result = match a.mode.as_str() {
        "throughput" => throughput(&mut b, &a).await,
        "pickup" => pickup(&mut b, &a).await,
        "idle" => idle(&mut b, &a).await,
        "retry" => retry(&mut b, &a).await,
        "bulk" => bulk(&mut b, &a).await,
        "delayed" => delayed(&mut b, &a).await,
        other => Err(format!("unknown mode {other:?}: throughput|pickup|idle|retry|bulk|delayed").into()),
    };
    b.queue.obliterate(true, 10_000).await?;
    b.queue.close().await;
    result
}
