//! Worker prefetch (`EVENTMILL_JOB_PREFETCH`, docs/jobs.md "Prefetch") against real Redis: a
//! worker really holds jobs ahead (and holds none with prefetch 0), a held job whose lease expires
//! goes back without spending an attempt, and a worker process SIGKILLed while holding prefetched
//! jobs loses none of them: another worker runs every job, each held one exactly once.
//!
//! The SIGKILL test re-runs this test binary as the worker process: the ignored test
//! `prefetch::child_worker_holding_prefetched_jobs` (it does nothing unless `PREFETCH_CHILD_PREFIX`
//! is set) runs a worker on the parent's key prefix until the parent kills it.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use eventmill_jobs::{
    JobError, JobState,
    queue::{JobHandler, RunningJob},
    redis_conn::RedisConn,
};
use futures_util::{FutureExt, future::BoxFuture};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, enqueue, eventually, start_worker};

/// The environment variable that makes the ignored child test run its worker (the key prefix).
const CHILD_PREFIX: &str = "PREFETCH_CHILD_PREFIX";
/// Jobs the child runs before the next one hangs (its average job time stays near zero, so it
/// prefetches, and keeps what it holds while the hung job blocks its one slot).
const CHILD_RUNS_BEFORE_HANG: usize = 5;
/// The child's lease: short, so the survivor takes its jobs over quickly.
const CHILD_LEASE_MS: &str = "2000";

/// The Redis hash counting each job's handler starts, in every process (field: job id).
fn runs_key(prefix: &str) -> String {
    format!("{}test-runs", eventmill_jobs::queue::key_base(prefix))
}

/// Counts each start in Redis (`runs_key`), then returns at once; with `hang_after`, the start
/// after that many hangs forever.
struct Counting {
    redis: RedisConn,
    runs: String,
    hang_after: Option<usize>,
    started: AtomicUsize,
}

impl JobHandler for Counting {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let hang = self.hang_after.is_some_and(|after| n >= after);
        let (mut redis, runs) = (self.redis.clone(), self.runs.clone());
        async move {
            let _: i64 = redis.hincr(&runs, &job.id, 1).await.map_err(|e| JobError::retryable(e.to_string()))?;
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(serde_json::json!({ "attempt": job.attempt }))
        }
        .boxed()
    }
}

/// Job hash fields of `id`.
async fn fields(redis: &mut RedisConn, prefix: &str, id: &str) -> HashMap<String, String> {
    let key = format!("{}job:{id}", eventmill_jobs::queue::key_base(prefix));
    redis.hgetall(key).await.unwrap()
}

/// The ids of `ids` marked `prefetched` (held by a worker, not started).
async fn prefetched(redis: &mut RedisConn, prefix: &str, ids: &[String]) -> Vec<String> {
    let mut held = Vec::new();
    for id in ids {
        if fields(redis, prefix, id).await.get("prefetched").is_some_and(|v| v == "1") {
            held.push(id.clone());
        }
    }
    held
}

/// The worker process of `a_worker_process_sigkilled_while_holding_prefetched_jobs_...`; a no-op
/// unless that test started it.
#[tokio::test]
#[ignore = "the worker process of a test below: runs only when that test starts it"]
async fn child_worker_holding_prefetched_jobs() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX) else { return };
    let env = TestEnv::with(&[
        ("EVENTMILL_REDIS_PREFIX", &prefix),
        ("EVENTMILL_JOB_PREFETCH", "4"),
        ("EVENTMILL_JOB_LEASE_MS", CHILD_LEASE_MS),
    ])
    .await;
    let handler = Arc::new(Counting {
        redis: env.redis(),
        runs: runs_key(&prefix),
        hang_after: Some(CHILD_RUNS_BEFORE_HANG),
        started: AtomicUsize::new(0),
    });
    let worker = start_worker(env.queues.rollup(), handler, 1);
    let _ = worker.handle.await; // until SIGKILL
}

/// Kills the child on every way out of the test (a failed assertion included).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_worker_process_sigkilled_while_holding_prefetched_jobs_loses_none_and_each_runs_once() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_PREFETCH", "4"), ("EVENTMILL_JOB_ATTEMPTS", "3")]).await;
    let queue = env.queues.rollup();
    let mut redis = env.redis();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(enqueue(queue, "DAILY_ROLLUP").await);
    }

    let child = Command::new(std::env::current_exe().unwrap())
        .args(["prefetch::child_worker_holding_prefetched_jobs", "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_PREFIX, &env.prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary starts again as the worker process");
    let mut child = KillOnDrop(child);

    // The child ran its first jobs, its next one hangs, and it holds prefetched jobs meanwhile.
    let runs = runs_key(&env.prefix);
    let mut held = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let holding = loop {
        let started: usize = redis.hlen(&runs).await.unwrap();
        if started > CHILD_RUNS_BEFORE_HANG {
            held = prefetched(&mut redis, &env.prefix, &ids).await;
            if !held.is_empty() {
                break true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(holding, "the worker process never held a prefetched job (held: {held:?})");
    let hung: Vec<String> = {
        let counts: HashMap<String, u32> = redis.hgetall(&runs).await.unwrap();
        let mut hung = Vec::new();
        for (id, _) in counts {
            if env.queues.job(&id).await.unwrap().is_some_and(|j| j.state == JobState::Active) {
                hung.push(id);
            }
        }
        hung
    };
    assert_eq!(hung.len(), 1, "one job runs (hangs) in the worker process: {hung:?}");
    for id in &held {
        let job = fields(&mut redis, &env.prefix, id).await;
        assert_eq!(job.get("state").map(String::as_str), Some("active"), "held job {id}: {job:?}");
        let attempts = job.get("attempts").map_or("0", String::as_str); // missing: 0
        assert_eq!(attempts, "0", "held, not started: {job:?}");
    }

    child.0.kill().unwrap(); // SIGKILL: nothing handed back, the leases just run out
    child.0.wait().unwrap();
    // Still held in Redis after the kill: only the lease can bring them back.
    assert_eq!(prefetched(&mut redis, &env.prefix, &ids).await, held, "the kill changed nothing in Redis");

    let survivor_handler =
        Arc::new(Counting { redis: env.redis(), runs: runs.clone(), hang_after: None, started: AtomicUsize::new(0) });
    let survivor = start_worker(queue, survivor_handler, 4);
    let all_done = eventually(Duration::from_secs(30), || async {
        let counts = queue.counts().await.unwrap();
        counts.completed == ids.len() as u64
    })
    .await;
    let counts = queue.counts().await.unwrap();
    assert!(all_done, "not every job completed after the takeover: {counts:?}");
    assert_eq!((counts.waiting, counts.active, counts.delayed, counts.failed), (0, 0, 0, 0));

    let run_counts: HashMap<String, u32> = redis.hgetall(&runs).await.unwrap();
    for id in &ids {
        let job = env.queues.job(id).await.unwrap().unwrap();
        let ran = run_counts.get(id).copied().unwrap_or(0);
        if hung.contains(id) {
            // The one attempt running at the kill is lost with the process: the lease hands the job
            // to the survivor, and that attempt counts (at least once, as without prefetch).
            assert_eq!((ran, job.attempts), (2, 2), "the job running at the kill: {job:?}");
            assert!(job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
        } else {
            assert_eq!(ran, 1, "job {id} ran {ran} times (held at the kill: {})", held.contains(id));
            assert_eq!(job.attempts, 1, "job {id}: no attempt spent by the kill: {job:?}");
            assert!(job.errors.is_empty(), "job {id}: {:?}", job.errors);
        }
    }
    survivor.shutdown.cancel();
}

/// A worker at concurrency 1 whose `hang_at`-th job hangs, on `env`'s rollup queue with `jobs`
/// jobs enqueued: the ids, the handler and the worker.
async fn one_hung_slot(env: &TestEnv, jobs: usize) -> (Vec<String>, Arc<Scripted>, crate::support::RunningWorker) {
    let queue = env.queues.rollup();
    let handler = Scripted::new(Behaviour::Succeed);
    let worker = start_worker(queue, handler.clone(), 1);
    // A few short jobs first: the worker holds jobs ahead only once it knows they are short.
    for _ in 0..3 {
        let id = enqueue(queue, "DAILY_ROLLUP").await;
        crate::support::wait_for_state(&env.queues, &id, JobState::Completed, Duration::from_secs(10)).await;
    }
    handler.set(Behaviour::Hang);
    let mut ids = Vec::new();
    for _ in 0..jobs {
        ids.push(enqueue(queue, "DAILY_ROLLUP").await);
    }
    assert!(
        eventually(Duration::from_secs(10), || async { handler.hung.load(Ordering::SeqCst) }).await,
        "a job started and hangs"
    );
    (ids, handler, worker)
}

#[tokio::test]
async fn a_worker_holds_jobs_ahead_with_prefetch_and_none_with_prefetch_0() {
    for (prefetch, expect_held) in [("2", 2), ("0", 0)] {
        let env = TestEnv::with(&[("EVENTMILL_JOB_PREFETCH", prefetch)]).await;
        let queue = env.queues.rollup();
        let (ids, handler, worker) = one_hung_slot(&env, 6).await;
        let mut redis = env.redis();
        // Whatever the worker claims, it claims within a few round trips of the hang.
        let settled = eventually(Duration::from_secs(5), || async {
            prefetched(&mut env.redis(), &env.prefix, &ids).await.len() == expect_held
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let held = prefetched(&mut redis, &env.prefix, &ids).await;
        assert!(settled && held.len() == expect_held, "prefetch {prefetch}: held {held:?}");
        let counts = queue.counts().await.unwrap();
        assert_eq!(counts.active, 1 + expect_held as u64, "prefetch {prefetch}: the hung job and the held ones");
        assert_eq!(counts.waiting, (ids.len() - 1 - expect_held) as u64, "prefetch {prefetch}: {counts:?}");
        assert_eq!(handler.attempts().len(), 3 + 1, "held jobs did not start");
        worker.handle.abort();
    }
}

#[tokio::test]
async fn a_held_job_whose_lease_expires_goes_back_without_spending_an_attempt() {
    // One attempt each: a held job whose expiry spent one would fail instead of running.
    let env = TestEnv::with(&[
        ("EVENTMILL_JOB_PREFETCH", "2"),
        ("EVENTMILL_JOB_LEASE_MS", "600"),
        ("EVENTMILL_JOB_ATTEMPTS", "1"),
    ])
    .await;
    let queue = env.queues.rollup();
    let (ids, handler, doomed) = one_hung_slot(&env, 4).await;
    let mut redis = env.redis();
    let settled = eventually(Duration::from_secs(5), || async {
        prefetched(&mut env.redis(), &env.prefix, &ids).await.len() == 2
    })
    .await;
    let held = prefetched(&mut redis, &env.prefix, &ids).await;
    assert!(settled, "held {held:?}");
    let hung = handler.attempts().last().unwrap().0.clone();
    doomed.handle.abort(); // as kill -9: its leases are no longer renewed
    assert!(doomed.handle.await.unwrap_err().is_cancelled());

    handler.set(Behaviour::Succeed);
    let survivor = start_worker(queue, handler.clone(), 1);
    for id in &held {
        let job = crate::support::wait_for_state(&env.queues, id, JobState::Completed, Duration::from_secs(10)).await;
        assert_eq!(job.attempts, 1, "held job {id}: its expired lease spent no attempt: {job:?}");
        assert!(job.errors.is_empty(), "held job {id}: {:?}", job.errors);
        assert!(!fields(&mut redis, &env.prefix, id).await.contains_key("prefetched"), "cleared once it started");
        let seen: Vec<u32> = handler.attempts().iter().filter(|a| &a.0 == id).map(|a| a.1).collect();
        assert_eq!(seen, vec![1], "held job {id} ran once, as attempt 1");
    }
    // The job that had started spent its only attempt: its expired lease fails it.
    let job = crate::support::wait_for_state(&env.queues, &hung, JobState::Failed, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 1);
    assert!(job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
    survivor.shutdown.cancel();
}
