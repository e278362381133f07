//! Issue 22's "done when" for run-time schedules, with real OS processes: three scheduler
//! processes upsert the same run-time schedule at the same instant and each runs a scheduler; the
//! schedule exists once, each of its ticks enqueues exactly one job, and it stops after its limit.
//!
//! The test re-runs this test binary three times as the scheduler processes: the ignored test
//! `schedule_processes::child_scheduler_process` (a no-op unless `SCHEDULE_CHILD_PREFIX` is set)
//! waits for the agreed instant, upserts, records what its upsert did, and runs a scheduler for a
//! few seconds.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use eventmill_jobs::{
    JobState,
    scheduler::{self, ScheduleSpec, Scheduler},
    shutdown::Shutdown,
};
use redis::AsyncCommands;
use serde_json::json;

use crate::support::{AnalyticsQueues, TestEnv};

/// The key prefix of the parent's test (set: this process is one of its schedulers).
const CHILD_PREFIX: &str = "SCHEDULE_CHILD_PREFIX";
/// The instant (Unix ms) at which every child upserts.
const CHILD_GO_AT: &str = "SCHEDULE_CHILD_GO_AT";
/// How long each child runs its scheduler after the upsert.
const CHILD_RUNS_FOR: Duration = Duration::from_secs(8);
const NAME: &str = "three-process-pinger";
const LIMIT: u64 = 3;

fn spec() -> ScheduleSpec {
    ScheduleSpec::every(Duration::from_secs(1))
        .limit(LIMIT)
        .job(json!({ "job_type": "DAILY_ROLLUP", "date": "today", "options": { "priority": 3 } }))
}

/// Where each child writes what its upsert did (a list; one entry per process).
fn upserts_key(prefix: &str) -> String {
    format!("{}test-upserts", eventmill_jobs::queue::key_base(prefix))
}

/// One scheduler process of the test below; a no-op unless that test started it.
#[tokio::test]
#[ignore = "a scheduler process of a test below: runs only when that test starts it"]
async fn child_scheduler_process() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX) else { return };
    let go_at: i64 = std::env::var(CHILD_GO_AT).unwrap().parse().unwrap();
    let env = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &prefix)]).await;
    let mut redis = env.redis();
    let _: Option<String> = redis.get("warm-up").await.unwrap(); // connected before the instant
    let wait = go_at - Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let done = env.jobs.schedules().upsert(NAME, &spec()).await.unwrap();
    let done = serde_json::to_value(done).unwrap().as_str().unwrap().to_owned();
    let _: i64 = redis.rpush(upserts_key(&prefix), done).await.unwrap();
    let shutdown = Shutdown::new();
    let scheduler = Arc::new(Scheduler::new(Vec::new(), env.queues.clone(), env.redis(), &prefix));
    let run = tokio::spawn(scheduler::run(scheduler, shutdown.clone()));
    tokio::time::sleep(CHILD_RUNS_FOR).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap();
}

/// Kills the children on every way out of the test (a failed assertion included).
struct KillOnDrop(Vec<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn three_scheduler_processes_upserting_one_schedule_at_once_enqueue_one_job_per_tick_up_to_its_limit() {
    let env = TestEnv::new().await;
    let go_at = (Utc::now() + chrono::Duration::seconds(3)).timestamp_millis();
    let children = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["schedule_processes::child_scheduler_process", "--exact", "--ignored", "--test-threads=1"])
                .env(CHILD_PREFIX, &env.prefix)
                .env(CHILD_GO_AT, go_at.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the test binary starts again as a scheduler process")
        })
        .collect();
    let mut children = KillOnDrop(children);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for child in &mut children.0 {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "a scheduler process did not end in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "a scheduler process failed: {status}");
    }

    // Three upserts at one instant (`Upserted` by name): one created the schedule, two changed nothing.
    let mut redis = env.redis();
    let mut upserts: Vec<String> = redis.lrange(upserts_key(&env.prefix), 0, -1).await.unwrap();
    upserts.sort();
    assert_eq!(upserts, ["created", "unchanged", "unchanged"], "what each process's upsert did");
    assert_eq!(env.jobs.schedules().list().await.unwrap().len(), 1, "one schedule");

    // Three schedulers ran it for seconds: one job per tick, consecutive ticks, then its limit.
    let queues = &env.queues;
    let jobs = queues.list(queues.rollup(), JobState::Waiting, 100).await.unwrap();
    let mut ticks: Vec<String> = jobs.iter().map(|j| j.origin.clone()).collect();
    ticks.sort();
    assert_eq!(ticks.len(), LIMIT as usize, "one job per tick up to the limit, never more: {ticks:?}");
    let seconds: Vec<i64> =
        ticks.iter().map(|t| t.rsplit('@').next().unwrap().parse::<DateTime<Utc>>().unwrap().timestamp()).collect();
    assert!(seconds.windows(2).all(|w| w[1] - w[0] == 1), "consecutive ticks, no duplicate: {ticks:?}");
    assert!(jobs.iter().all(|j| j.priority == 3), "the template's options apply");
    assert_eq!(env.jobs.schedules().runs(NAME).await.unwrap(), LIMIT);
    let ledger = env.jobs.schedules().ledger(NAME).await.unwrap();
    assert_eq!(ledger.len(), LIMIT as usize, "one ledger entry per tick: {ledger:?}");
    assert!(ledger.iter().all(|e| e.enqueued && e.job.is_some()), "{ledger:?}");
}
