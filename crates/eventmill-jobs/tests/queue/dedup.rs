//! Deduplication modes, by BullMQ's names: simple (no second job while the first is not finished),
//! throttle (a window from the first enqueue: today's `--key-window`, pinned in `queue.rs`) and
//! debounce (a new enqueue replaces the pending delayed job's payload and restarts its delay).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use eventmill_jobs::{
    DedupMode, EnqueueOptions, JobError, JobState, QueueError,
    queue::{JobHandler, RunningJob},
};
use futures_util::{FutureExt, future::BoxFuture};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, start_worker, wait_for_state};

fn keyed(key: &str, dedup: DedupMode) -> EnqueueOptions {
    EnqueueOptions { idempotency_key: Some(key.into()), dedup, ..EnqueueOptions::default() }
}

#[tokio::test]
async fn simple_refuses_a_second_job_while_the_first_waits_or_runs_and_accepts_one_after_it_finished() {
    let env = TestEnv::new().await;
    let (queues, queue) = (env.queues.clone(), env.queues.rollup());
    let simple = || keyed("upload-7", DedupMode::Simple);
    let first = queue.enqueue("DAILY_ROLLUP", r#"{"n":1}"#, simple()).await.unwrap();
    assert!(first.created);
    // Waiting: a duplicate, answered the first job's id.
    let again = queue.enqueue("DAILY_ROLLUP", r#"{"n":2}"#, simple()).await.unwrap();
    assert_eq!((again.id.as_str(), again.created), (first.id.as_str(), false));

    // Running: still a duplicate.
    let worker = start_worker(queue, Scripted::new(Behaviour::Sleep(Duration::from_millis(700))), 1);
    wait_for_state(&queues, &first.id, JobState::Active, Duration::from_secs(5)).await;
    let again = queue.enqueue("DAILY_ROLLUP", r#"{"n":3}"#, simple()).await.unwrap();
    assert_eq!((again.id.as_str(), again.created), (first.id.as_str(), false));

    // Finished: the key was let go, the next enqueue is a new job.
    wait_for_state(&queues, &first.id, JobState::Completed, Duration::from_secs(5)).await;
    let key = format!("{}idempotency:upload-7", eventmill_jobs::queue::key_base(&env.prefix));
    let held: bool = env.redis().exists(&key).await.unwrap();
    assert!(!held, "a finished simple job lets go of its key");
    let next = queue.enqueue("DAILY_ROLLUP", r#"{"n":4}"#, simple()).await.unwrap();
    assert!(next.created && next.id != first.id, "{next:?}");
    wait_for_state(&queues, &next.id, JobState::Completed, Duration::from_secs(5)).await;
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();

    // Throttle, the same sequence: the window holds after the job finished.
    let throttled = queue.enqueue("DAILY_ROLLUP", "{}", keyed("t", DedupMode::Throttle)).await.unwrap();
    let worker = start_worker(queue, Scripted::new(Behaviour::Succeed), 1);
    wait_for_state(&queues, &throttled.id, JobState::Completed, Duration::from_secs(5)).await;
    let again = queue.enqueue("DAILY_ROLLUP", "{}", keyed("t", DedupMode::Throttle)).await.unwrap();
    assert_eq!((again.id.as_str(), again.created), (throttled.id.as_str(), false));
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn simple_accepts_a_new_job_once_the_first_failed_or_was_removed() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let (queues, queue) = (env.queues.clone(), env.queues.rollup());
    let simple = || keyed("k", DedupMode::Simple);
    let removed = queue.enqueue("DAILY_ROLLUP", "{}", simple()).await.unwrap();
    assert!(queue.remove(&removed.id).await.unwrap());
    let failing = queue.enqueue("DAILY_ROLLUP", "{}", simple()).await.unwrap();
    assert!(failing.created && failing.id != removed.id, "a removed job holds no key: {failing:?}");
    let worker = start_worker(queue, Scripted::new(Behaviour::FailPermanent), 1);
    wait_for_state(&queues, &failing.id, JobState::Failed, Duration::from_secs(5)).await;
    let next = queue.enqueue("DAILY_ROLLUP", "{}", simple()).await.unwrap();
    assert!(next.created && next.id != failing.id, "a failed job holds no key: {next:?}");
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

/// Answers each job's payload; records every run.
#[derive(Default)]
struct Payloads {
    runs: Mutex<Vec<(String, String, Instant)>>,
}

impl JobHandler for Payloads {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        self.runs.lock().unwrap().push((job.id.clone(), job.payload.clone(), Instant::now()));
        async move { serde_json::from_str(&job.payload).map_err(JobError::permanent) }.boxed()
    }
}

#[tokio::test]
async fn debounce_keeps_only_the_last_payload_and_restarts_the_delay() {
    let env = TestEnv::new().await;
    let (queues, queue) = (env.queues.clone(), env.queues.rollup());
    let handler = Arc::new(Payloads::default());
    let worker = start_worker(queue, handler.clone(), 2);
    let debounce =
        || EnqueueOptions { delay: Some(Duration::from_millis(600)), ..keyed("reindex:7", DedupMode::Debounce) };
    let mut answers = Vec::new();
    for n in 0..5 {
        answers.push(queue.enqueue("DAILY_ROLLUP", &format!(r#"{{"n":{n}}}"#), debounce()).await.unwrap());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let last_enqueue = Instant::now() - Duration::from_millis(150);
    let id = answers[0].id.clone();
    assert!(answers[0].created && !answers[0].replaced);
    for later in &answers[1..] {
        assert_eq!((later.id.as_str(), later.created, later.replaced), (id.as_str(), false, true), "{later:?}");
    }
    let result = answers[4].wait(Duration::from_secs(10)).await.unwrap();
    assert_eq!(result, serde_json::json!({"n": 4}), "the job ran with the last payload");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = handler.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "one job ran for the five enqueues: {runs:?}");
    let waited = runs[0].2 - last_enqueue;
    assert!(waited >= Duration::from_millis(550), "the delay restarted at the last enqueue: ran {waited:?} after it");
    assert_eq!(queues.job(&id).await.unwrap().unwrap().state, JobState::Completed);

    // Once the job ran, the key enqueues a new one.
    let next = queue.enqueue("DAILY_ROLLUP", r#"{"n":5}"#, debounce()).await.unwrap();
    assert!(next.created && next.id != id, "{next:?}");
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn contradictory_dedup_options_are_refused_with_the_fix() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let no_delay = keyed("k", DedupMode::Debounce);
    let Err(QueueError::Invalid(message)) = queue.enqueue("DAILY_ROLLUP", "{}", no_delay).await else {
        panic!("debounce without a delay must be refused")
    };
    assert!(message.contains("debounce needs a delay"), "{message}");
    let windowed = EnqueueOptions { idempotency_ttl: Some(Duration::from_secs(60)), ..keyed("k", DedupMode::Simple) };
    let Err(QueueError::Invalid(message)) = queue.enqueue("DAILY_ROLLUP", "{}", windowed).await else {
        panic!("simple with a window must be refused")
    };
    assert!(message.contains("drop the window, or use dedup throttle"), "{message}");
}
