//! `Enqueued::wait(timeout)`: the enqueuing code gets the job's result, its failure or a typed
//! timeout naming the job (BullMQ's `waitUntilFinished`).

use std::time::Duration;

use eventmill_jobs::{EnqueueOptions, JobState, WaitError};

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, start_worker};

const PAYLOAD: &str = r#"{"test":true}"#;

#[tokio::test]
async fn wait_returns_the_result_of_the_completed_job() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let worker = start_worker(queue, Scripted::new(Behaviour::Succeed), 1);
    let enqueued = queue.enqueue("DAILY_ROLLUP", PAYLOAD, EnqueueOptions::default()).await.unwrap();
    let result = enqueued.wait(Duration::from_secs(10)).await.unwrap();
    assert_eq!(result, serde_json::json!({"attempt": 1}));
    #[derive(serde::Deserialize)]
    struct Answer {
        attempt: u32,
    }
    let typed: Answer = enqueued.wait_as(Duration::from_secs(1)).await.unwrap();
    assert_eq!(typed.attempt, 1);
    // By id, from anywhere that has the queues.
    assert_eq!(env.queues.wait(&enqueued.id, Duration::from_secs(1)).await.unwrap(), result);
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn wait_returns_the_failure_of_a_failed_job() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queue = env.queues.rollup();
    let worker = start_worker(queue, Scripted::new(Behaviour::FailPermanent), 1);
    let enqueued = queue.enqueue("DAILY_ROLLUP", PAYLOAD, EnqueueOptions::default()).await.unwrap();
    match enqueued.wait(Duration::from_secs(10)).await {
        Err(WaitError::Failed { id, attempts, error }) => {
            assert_eq!(id, enqueued.id);
            assert_eq!(attempts, 1);
            assert!(error.contains("unknown report type NOPE"), "{error}");
        }
        other => panic!("expected the job's failure, got {other:?}"),
    }
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn wait_times_out_with_an_error_naming_the_job_and_the_timeout() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    // No worker: the job stays waiting.
    let enqueued = queue.enqueue("DAILY_ROLLUP", PAYLOAD, EnqueueOptions::default()).await.unwrap();
    let started = std::time::Instant::now();
    let error = enqueued.wait(Duration::from_millis(300)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
    match &error {
        WaitError::TimedOut { id, timeout, state } => {
            assert_eq!(id, &enqueued.id);
            assert_eq!(*timeout, Duration::from_millis(300));
            assert_eq!(*state, JobState::Waiting);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&format!("job {}", enqueued.id)) && message.contains("300ms"), "{message}");
    // The job goes on: a worker started later runs it, and a second wait sees its end.
    let worker = start_worker(queue, Scripted::new(Behaviour::Succeed), 1);
    assert_eq!(enqueued.wait(Duration::from_secs(10)).await.unwrap(), serde_json::json!({"attempt": 1}));
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn wait_on_a_removed_job_says_so() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let enqueued = queue.enqueue("DAILY_ROLLUP", PAYLOAD, EnqueueOptions::default()).await.unwrap();
    assert!(queue.remove(&enqueued.id).await.unwrap());
    let error = enqueued.wait(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, WaitError::Removed { .. }), "{error:?}");
}
