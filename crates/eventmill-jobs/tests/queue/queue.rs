//! The job queue against real Redis: retries and backoff, permanent errors, the failed-job queue,
//! timeouts, leases, shutdown, retention, idempotency, and a regression test for each apalis-redis
//! defect our backend avoids (numbers as in shared/notes/apalis-1.0.md).

use std::time::{Duration, Instant};

use eventmill_jobs::{EnqueueOptions, JobState};
use redis::AsyncCommands;

use crate::support::{
    AnalyticsQueues, Behaviour, Scripted, TestEnv, enqueue, eventually, start_worker, wait_for_state,
};

const FAST_RETRIES: &[(&str, &str)] = &[("EVENTMILL_JOB_BACKOFF_MS", "100"), ("EVENTMILL_JOB_ATTEMPTS", "3")];

// Defect 2 (max_attempts ignored) and the failed-job queue.
#[tokio::test]
async fn a_failing_job_runs_exactly_three_times_at_the_configured_backoff_and_jobs_retry_brings_it_back() {
    let env = TestEnv::with(FAST_RETRIES).await;
    let queues = env.queues.clone();
    let handler = Scripted::new(Behaviour::FailRetryable);
    let worker = start_worker(queues.rollup(), handler.clone(), 2);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;

    let job = wait_for_state(&queues, &id, JobState::Failed, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 3);
    assert_eq!(job.errors.len(), 3, "every attempt's error is kept: {:?}", job.errors);
    assert_eq!(job.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(job.errors[2].error.contains("attempt 3"));
    let starts: Vec<Instant> = handler.attempts().iter().map(|a| a.2).collect();
    assert_eq!(starts.len(), 3, "no fourth attempt");
    let (first_wait, second_wait) = (starts[1] - starts[0], starts[2] - starts[1]);
    assert!(first_wait >= Duration::from_millis(100) && first_wait < Duration::from_millis(1100), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(200) && second_wait < Duration::from_millis(1200), "{second_wait:?}");
    assert_eq!(queues.list(queues.rollup(), JobState::Failed, 10).await.unwrap()[0].id, id);

    // `jobs retry ID`: a fresh set of attempts, and this time it works.
    handler.set(Behaviour::Succeed);
    assert_eq!(queues.rollup().retry_failed(Some(&id), 1).await.unwrap(), 1);
    let job = wait_for_state(&queues, &id, JobState::Completed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.errors.len(), 3, "the history of the failed run is kept");
    assert_eq!(queues.rollup().counts().await.unwrap().failed, 0);
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_permanent_error_fails_after_one_attempt() {
    let env = TestEnv::with(FAST_RETRIES).await;
    let queues = env.queues.clone();
    let handler = Scripted::new(Behaviour::FailPermanent);
    let worker = start_worker(queues.reports(), handler.clone(), 1);
    let id = enqueue(queues.reports(), "GENERATE_REPORT").await;
    let job = wait_for_state(&queues, &id, JobState::Failed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.last_error(), Some("unknown report type NOPE"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.attempts().len(), 1);
    worker.shutdown.cancel();
}

#[tokio::test]
async fn retry_all_failed_requeues_every_failed_job_and_remove_deletes_one() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queues = env.queues.clone();
    let handler = Scripted::new(Behaviour::FailRetryable);
    let worker = start_worker(queues.rollup(), handler.clone(), 4);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(enqueue(queues.rollup(), "HOURLY_ROLLUP").await);
    }
    assert!(eventually(Duration::from_secs(5), || async { queues.rollup().counts().await.unwrap().failed == 5 }).await);
    assert!(queues.rollup().remove(&ids[0]).await.unwrap());
    assert!(queues.job(&ids[0]).await.unwrap().is_none());
    handler.set(Behaviour::Succeed);
    assert_eq!(queues.rollup().retry_failed(None, 1000).await.unwrap(), 4);
    assert!(
        eventually(Duration::from_secs(5), || async { queues.rollup().counts().await.unwrap().completed == 4 }).await
    );
    worker.shutdown.cancel();
}

#[tokio::test]
async fn a_job_over_its_timeout_is_failed() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1"), ("EVENTMILL_JOB_TIMEOUT_MS", "200")]).await;
    let queues = env.queues.clone();
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::Sleep(Duration::from_secs(30))), 1);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    let job = wait_for_state(&queues, &id, JobState::Failed, Duration::from_secs(5)).await;
    assert!(job.last_error().unwrap().contains("timed out"), "{:?}", job.errors);
    worker.shutdown.cancel();
}

// Defect 10: a retry waiting out its backoff lives in Redis, not in the worker.
#[tokio::test]
async fn killing_a_worker_during_a_backoff_wait_does_not_lose_the_job() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_BACKOFF_MS", "500")]).await;
    let queues = env.queues.clone();
    let handler = Scripted::first_then(Behaviour::FailRetryable, Behaviour::Succeed);
    let doomed = start_worker(queues.rollup(), handler.clone(), 1);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    wait_for_state(&queues, &id, JobState::Delayed, Duration::from_secs(5)).await;
    doomed.handle.abort(); // as kill -9: nothing of the worker runs any more
    assert!(doomed.handle.await.unwrap_err().is_cancelled());

    let survivor = start_worker(queues.rollup(), handler.clone(), 1);
    let job = wait_for_state(&queues, &id, JobState::Completed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 2);
    assert_eq!(job.result, Some(serde_json::json!({ "attempt": 2 })));
    survivor.shutdown.cancel();
}

#[tokio::test]
async fn a_job_of_a_worker_killed_mid_run_is_retried_once_its_lease_expires() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "400"), ("EVENTMILL_JOB_BACKOFF_MS", "100")]).await;
    let queues = env.queues.clone();
    let handler = Scripted::first_then(Behaviour::Hang, Behaviour::Succeed);
    let doomed = start_worker(queues.rollup(), handler.clone(), 1);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    wait_for_state(&queues, &id, JobState::Active, Duration::from_secs(5)).await;
    doomed.handle.abort();

    let survivor = start_worker(queues.rollup(), handler.clone(), 1);
    let job = wait_for_state(&queues, &id, JobState::Completed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 2);
    assert!(job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
    survivor.shutdown.cancel();
}

#[tokio::test]
async fn on_shutdown_a_running_job_is_handed_back_to_the_queue_within_the_grace_period() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_SHUTDOWN_GRACE_MS", "300")]).await;
    let queues = env.queues.clone();
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::Hang), 1);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    wait_for_state(&queues, &id, JobState::Active, Duration::from_secs(5)).await;
    let stopping = Instant::now();
    worker.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker.handle).await.expect("stops within 10 s").unwrap().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let job = queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Waiting, 0), "handed back, attempt not counted");
}

// Defect 1: ~8,000 due jobs killed every apalis-redis worker.
#[tokio::test]
async fn ten_thousand_due_jobs_are_processed_without_any_worker_dying() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_KEEP_COMPLETED", "100")]).await;
    let queues = env.queues.clone();
    let delayed = EnqueueOptions { delay: Some(Duration::from_millis(1)), ..Default::default() };
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for _ in 0..10_000 {
        pending.push(queues.rollup().enqueue("HOURLY_ROLLUP", "{}", delayed.clone()));
        if pending.len() >= 64 {
            use futures_util::StreamExt;
            pending.next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = futures_util::StreamExt::next(&mut pending).await {
        done.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(queues.rollup().counts().await.unwrap().delayed, 10_000, "all due, none promoted yet");

    let handler = Scripted::new(Behaviour::Succeed);
    let workers: Vec<_> = (0..2).map(|_| start_worker(queues.rollup(), handler.clone(), 8)).collect();
    let all_done = eventually(Duration::from_secs(120), || async {
        handler.done.load(std::sync::atomic::Ordering::SeqCst) >= 10_000
    })
    .await;
    assert!(all_done, "processed {}", handler.done.load(std::sync::atomic::Ordering::SeqCst));
    for worker in &workers {
        assert!(!worker.handle.is_finished(), "a worker died");
    }
    let counts = queues.rollup().counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed, counts.failed), (0, 0, 0));
    assert_eq!(counts.completed, 100, "completed jobs are trimmed to the retention count");
    for worker in workers {
        worker.shutdown.cancel();
        worker.handle.await.unwrap().unwrap();
    }
}

// Defect 3: an idle apalis-redis worker saw new jobs only at its next heartbeat (~30 s).
#[tokio::test]
async fn a_new_job_on_an_idle_queue_starts_promptly() {
    let env = TestEnv::new().await;
    let queues = env.queues.clone();
    let handler = Scripted::new(Behaviour::Succeed);
    let worker = start_worker(queues.rollup(), handler.clone(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pickups = Vec::new();
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(20 + (i * 37) % 150)).await; // idle, at varying phases of the poll
        let enqueued = Instant::now();
        let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
        assert!(eventually(Duration::from_secs(5), || async { handler.attempts().iter().any(|a| a.0 == id) }).await);
        let started = handler.attempts().iter().find(|a| a.0 == id).unwrap().2;
        pickups.push(started - enqueued);
    }
    pickups.sort();
    let p95 = pickups[pickups.len() * 95 / 100 - 1];
    println!(
        "idle-queue pickup over {} jobs: p50 {:?}, p95 {:?}, max {:?}",
        pickups.len(),
        pickups[24],
        p95,
        pickups[49]
    );
    assert!(p95 < Duration::from_secs(2), "p95 pickup {p95:?}");
    worker.shutdown.cancel();
}

// Defect 5: idempotency keys did nothing without a TTL; ours always have one.
#[tokio::test]
async fn an_idempotency_key_enqueues_once_and_expires() {
    let env = TestEnv::new().await;
    let queue = &env.queues.rollup();
    let options = EnqueueOptions {
        idempotency_key: Some("schedule:x:2026-03-09T08:00".into()),
        idempotency_ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let first = queue.enqueue("DAILY_ROLLUP", "{}", options.clone()).await.unwrap();
    let second = queue.enqueue("DAILY_ROLLUP", "{}", options).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.id, second.id);
    assert_eq!(queue.counts().await.unwrap().waiting, 1);
    let ttl: i64 = env
        .redis()
        .pttl(format!("{}idempotency:schedule:x:2026-03-09T08:00", eventmill_jobs::queue::key_base(&env.prefix)))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
}

#[tokio::test]
async fn failed_jobs_are_trimmed_by_count_with_their_hashes() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_ATTEMPTS", "1"), ("EVENTMILL_JOB_KEEP_FAILED", "3")]).await;
    let queues = env.queues.clone();
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::FailPermanent), 2);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(enqueue(queues.rollup(), "DAILY_ROLLUP").await);
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            queues.rollup().counts().await.unwrap().active == 0 && queues.rollup().counts().await.unwrap().waiting == 0
        })
        .await
    );
    assert_eq!(queues.rollup().counts().await.unwrap().failed, 3);
    let mut kept = 0;
    for id in &ids {
        kept += usize::from(queues.job(id).await.unwrap().is_some());
    }
    assert_eq!(kept, 3, "trimmed jobs' hashes are deleted too");
    worker.shutdown.cancel();
}
