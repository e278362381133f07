//! Processor-driven pauses and queue-wide limits: `JobError::rate_limited` (the queue takes no job
//! for a while, the attempt is not spent), `JobError::delay_until` (a step job comes back later,
//! the attempt is not spent) and `QueueSpec::global_concurrency` (at most N jobs running at once
//! across every worker).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use eventmill_jobs::{
    JobError, JobState, Queue,
    queue::{JobHandler, RunningJob},
};
use futures_util::{FutureExt, future::BoxFuture};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, TestEnv, enqueue, eventually, start_worker, wait_for_state};

/// Answers `first` on the very first run of all, succeeds afterwards; records each run's start.
struct Once {
    first: Mutex<Option<JobError>>,
    starts: Mutex<Vec<(String, u32, Instant)>>,
}

impl Once {
    fn new(first: JobError) -> Arc<Self> {
        Arc::new(Self { first: Mutex::new(Some(first)), starts: Mutex::default() })
    }
}

impl JobHandler for Once {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        self.starts.lock().unwrap().push((job.id.clone(), job.attempt, Instant::now()));
        let answer = self.first.lock().unwrap().take();
        async move { answer.map_or_else(|| Ok(serde_json::json!({"attempt": job.attempt})), Err) }.boxed()
    }
}

#[tokio::test]
async fn a_rate_limited_processor_pauses_its_queue_without_spending_an_attempt() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queues = env.queues.clone();
    let handler = Once::new(JobError::rate_limited(Duration::from_millis(800)));
    let first = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    let second = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    // One slot: the first round claims only the job that will be rate limited.
    let worker = start_worker(queues.rollup(), handler.clone(), 1);

    // One attempt only, yet the rate-limited job completes: its attempt was given back.
    let job = wait_for_state(&queues, &first, JobState::Completed, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 1, "{job:?}");
    assert!(job.errors.is_empty(), "a rate limit is not a failure: {:?}", job.errors);
    wait_for_state(&queues, &second, JobState::Completed, Duration::from_secs(10)).await;
    let starts = handler.starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3, "the limited job ran again, then the other one: {starts:?}");
    let limited_at = starts[0].2;
    for (id, _, at) in &starts[1..] {
        let after = *at - limited_at;
        assert!(after >= Duration::from_millis(750), "job {id} started {after:?} after the rate limit of 800 ms");
    }
    assert_eq!(starts[1].0, first, "the rate-limited job is first in line afterwards");
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn delay_until_moves_the_job_to_delayed_without_spending_an_attempt() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queues = env.queues.clone();
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(700);
    let handler = Once::new(JobError::delay_until(until));
    let worker = start_worker(queues.rollup(), handler.clone(), 2);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    let job = wait_for_state(&queues, &id, JobState::Delayed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 0, "the postponed run is not counted: {job:?}");
    assert_eq!(job.run_at, Some(until.timestamp_millis()));
    let job = wait_for_state(&queues, &id, JobState::Completed, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 1);
    assert!(chrono::Utc::now() >= until);
    assert!(job.started_at.unwrap() >= until.timestamp_millis(), "{job:?}");
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

/// Counts jobs running at once in Redis (INCR at start, DECR at the end), as any number of
/// processes would, and keeps the highest count seen.
struct Overlap {
    redis: eventmill_jobs::redis_conn::RedisConn,
    key: String,
    done: Arc<AtomicUsize>,
}

impl JobHandler for Overlap {
    fn handle(&self, _: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let (mut redis, key, done) = (self.redis.clone(), self.key.clone(), self.done.clone());
        async move {
            let now: i64 = redis.incr(format!("{key}:running"), 1).await?;
            let _: () = redis.rpush(format!("{key}:seen"), now).await?;
            tokio::time::sleep(Duration::from_millis(60)).await;
            let _: i64 = redis.decr(format!("{key}:running"), 1).await?;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(serde_json::Value::Null)
        }
        .boxed()
    }
}

async fn max_overlap(env: &TestEnv, key: &str) -> i64 {
    let seen: Vec<i64> = env.redis().lrange(format!("{key}:seen"), 0, -1).await.unwrap();
    seen.into_iter().max().unwrap_or(0)
}

/// Runs 24 jobs with two workers of concurrency 4 each (each with its own connections, as two
/// processes have) on a queue of global concurrency `global`; answers the most running at once.
async fn run_two_workers(global: Option<u32>) -> i64 {
    let env = TestEnv::new().await;
    let other = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &env.prefix)]).await;
    let key = format!("{{{}:queue}}:test-overlap", env.prefix);
    let done = Arc::new(AtomicUsize::new(0));
    let queues: Vec<Queue> =
        [&env, &other].into_iter().map(|e| e.queues.rollup().clone().with_global_concurrency(global)).collect();
    let mut workers = Vec::new();
    for (queue, e) in queues.iter().zip([&env, &other]) {
        queue.declare(false, 4).await.unwrap();
        let handler = Arc::new(Overlap { redis: e.redis(), key: key.clone(), done: done.clone() });
        workers.push(start_worker(queue, handler, 4));
    }
    for _ in 0..24 {
        enqueue(&queues[0], "DAILY_ROLLUP").await;
    }
    assert!(eventually(Duration::from_secs(30), || async { done.load(Ordering::SeqCst) == 24 }).await);
    for worker in workers {
        worker.shutdown.cancel();
        worker.handle.await.unwrap().unwrap();
    }
    max_overlap(&env, &key).await
}

#[tokio::test]
async fn global_concurrency_two_never_has_a_third_job_running_across_two_workers() {
    assert_eq!(run_two_workers(Some(2)).await, 2, "at most 2 at once, and the limit is used");
    // Without it the same run has more at once (the test would fail without the limit).
    assert!(run_two_workers(None).await > 2);
}

/// The environment variables that make the ignored child test below run its worker: the key
/// prefix, and the global concurrency it declares (`none`: none).
const CHILD_PREFIX: &str = "GLOBAL_CHILD_PREFIX";
const CHILD_LIMIT: &str = "GLOBAL_CHILD_LIMIT";

/// Counts jobs running at once in Redis, as `Overlap`, and which process ran each job.
struct ProcessOverlap {
    redis: eventmill_jobs::redis_conn::RedisConn,
    key: String,
}

impl JobHandler for ProcessOverlap {
    fn handle(&self, _: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let (mut redis, key) = (self.redis.clone(), self.key.clone());
        async move {
            let now: i64 = redis.incr(format!("{key}:running"), 1).await?;
            let _: () = redis.rpush(format!("{key}:seen"), now).await?;
            let _: i64 = redis.hincr(format!("{key}:pids"), std::process::id(), 1).await?;
            tokio::time::sleep(Duration::from_millis(400)).await;
            let _: i64 = redis.decr(format!("{key}:running"), 1).await?;
            Ok(serde_json::Value::Null)
        }
        .boxed()
    }
}

/// The worker process of `global_concurrency_two_never_has_a_third_job_running_across_two_worker_processes`;
/// a no-op unless that test started it. Concurrency 4, the global concurrency from the
/// environment variable, as a deployment sets it.
#[tokio::test]
#[ignore = "the worker process of a test below: runs only when that test starts it"]
async fn child_worker_under_a_global_concurrency() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX) else { return };
    let limit = std::env::var(CHILD_LIMIT).unwrap_or_else(|_| "none".into());
    let variable = eventmill_jobs::settings::global_concurrency_variable("EVENTMILL", crate::support::ROLLUP_QUEUE);
    let env = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &prefix), (&variable, &limit)]).await;
    let queue = env.queues.rollup();
    assert_eq!(queue.global_concurrency(), limit.parse().ok(), "{variable}={limit}");
    queue.declare(false, 4).await.unwrap();
    let key = format!("{{{prefix}:queue}}:test-overlap");
    let worker = start_worker(queue, Arc::new(ProcessOverlap { redis: env.redis(), key }), 4);
    let _ = worker.handle.await; // until the parent kills it
}

/// Kills a child process on every way out of the test (a failed assertion included).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs 24 jobs of 400 ms with two worker processes (this test binary run again, concurrency 4
/// each) on a queue of global concurrency `limit` (`none`: none); answers the most running at
/// once and the jobs each process ran.
async fn run_two_worker_processes(limit: &str) -> (i64, Vec<u32>) {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let mut children: Vec<KillOnDrop> = (0..2)
        .map(|_| {
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["limits::child_worker_under_a_global_concurrency", "--exact", "--ignored", "--test-threads=1"])
                .env(CHILD_PREFIX, &env.prefix)
                .env(CHILD_LIMIT, limit)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("the test binary starts again as a worker process");
            KillOnDrop(child)
        })
        .collect();
    // Both processes poll the queue before the jobs come, so both can take some.
    let both_up = eventually(Duration::from_secs(30), || async {
        queue.workers(Duration::from_secs(60)).await.unwrap().len() == 2
    })
    .await;
    assert!(both_up, "the two worker processes did not start: {:?}", queue.workers(Duration::from_secs(60)).await);
    // Jobs arrive every 20 ms, each runs 400 ms: without a limit up to 8 run at once, so both
    // processes take jobs (one holds at most 4).
    for _ in 0..24 {
        enqueue(queue, "DAILY_ROLLUP").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_done =
        eventually(Duration::from_secs(60), || async { queue.counts().await.unwrap().completed == 24 }).await;
    assert!(all_done, "not every job completed: {:?}", queue.counts().await.unwrap());
    for child in &mut children {
        assert!(child.0.try_wait().unwrap().is_none(), "a worker process exited during the run");
    }
    let key = format!("{{{}:queue}}:test-overlap", env.prefix);
    let per_process: std::collections::HashMap<String, u32> = env.redis().hgetall(format!("{key}:pids")).await.unwrap();
    (max_overlap(&env, &key).await, per_process.into_values().collect())
}

#[tokio::test]
async fn global_concurrency_two_never_has_a_third_job_running_across_two_worker_processes() {
    // Without a limit the same two processes (4 slots each) both take jobs and run more than 2 at
    // once: either one alone, free to, would claim a third job while two run.
    let (most, per_process) = run_two_worker_processes("none").await;
    assert_eq!(per_process.len(), 2, "without a global concurrency both processes run jobs: {per_process:?}");
    assert!(most > 2, "without a global concurrency: {most} at most");
    // With it, at most 2 at once across the two processes while 6 slots are free and a backlog
    // waits. Which process holds the 2 slots is not part of the contract (docs/jobs.md, "Global
    // concurrency": a process that finishes a job claims the next in the same round trip, so the
    // slots stay with the processes that hold them while a backlog lasts); both processes are up
    // the whole run (`run_two_worker_processes` checks it), so the one that ran fewer jobs, or
    // none, was held back by the other's count.
    let (most, per_process) = run_two_worker_processes("2").await;
    assert_eq!(per_process.iter().sum::<u32>(), 24, "each job ran once: {per_process:?}");
    assert_eq!(most, 2, "at most 2 at once across the two processes, and the limit is used: {per_process:?}");
}
