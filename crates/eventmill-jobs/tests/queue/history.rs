//! The queue's history (throughput and latency per minute and hour, counted by the finish script):
//! two processes' figures add up exactly in the same hashes, nothing is kept longer than its
//! retention (1 day for minutes, 14 days for hours), and its memory stays bounded.

use std::{sync::atomic::Ordering, time::Duration};

use eventmill_jobs::{JobState, queue::history::Window};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, enqueue, eventually, start_worker};

#[tokio::test]
async fn two_processes_minutes_add_up_exactly_and_latency_is_counted_per_attempt() {
    let env = TestEnv::new().await;
    // A second process: its own connection and queues on the same prefix.
    let other = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &env.prefix)]).await;
    let (a, b) = (Scripted::new(Behaviour::Succeed), Scripted::new(Behaviour::Succeed));
    let queue = env.queues.reports();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(enqueue(queue, "GENERATE_REPORT").await);
    }
    let worker_a = start_worker(queue, a.clone(), 2);
    let worker_b = start_worker(other.queues.reports(), b.clone(), 2);
    let all_done =
        eventually(Duration::from_secs(20), || async { queue.counts().await.unwrap().completed == 40 }).await;
    assert!(all_done, "40 jobs did not complete: {:?}", queue.counts().await.unwrap());
    // One permanent failure and one retried attempt, counted apart.
    a.set(Behaviour::FailPermanent);
    b.set(Behaviour::FailPermanent);
    let failed = enqueue(queue, "GENERATE_REPORT").await;
    crate::support::wait_for_state(&env.queues, &failed, JobState::Failed, Duration::from_secs(10)).await;
    worker_a.shutdown.cancel();
    worker_b.shutdown.cancel();
    let _ = worker_a.handle.await;
    let _ = worker_b.handle.await;

    let ran = a.done.load(Ordering::SeqCst) + b.done.load(Ordering::SeqCst);
    assert_eq!(ran, 41, "both processes' attempts");
    // Read from either process: the same figures.
    for queues in [&env.queues, &other.queues] {
        let history = queues.reports().history(Window::Hour).await.unwrap();
        assert_eq!(history.points.len(), 60);
        assert_eq!(history.step_seconds, 60);
        assert_eq!((history.total.completed, history.total.failed, history.total.retried), (40, 1, 0));
        let summed: u64 = history.points.iter().map(|p| p.total.completed).sum();
        assert_eq!(summed, 40, "the points add up to the total");
        let kind = history.kinds.iter().find(|k| k.kind == "GENERATE_REPORT").expect("the kind's row");
        assert_eq!(kind.wait.count, 41, "one wait per attempt");
        assert_eq!(kind.run.count, 41, "one run time per attempt");
        assert_eq!(kind.end_to_end.count, 41, "one end-to-end time per finished job");
        assert!(kind.wait.p50_ms.unwrap() <= kind.wait.p99_ms.unwrap());
        let rate = kind.failure_rate.unwrap();
        assert!((rate - 100.0 / 41.0).abs() < 1e-9, "{rate}");
        // The hours hold the same counts as the minutes.
        let two_weeks = queues.reports().history(Window::TwoWeeks).await.unwrap();
        assert_eq!(two_weeks.points.len(), 336);
        assert_eq!((two_weeks.total.completed, two_weeks.total.failed), (40, 1));
        assert_eq!(two_weeks.wait.count, 41);
    }
    // The other queue saw nothing.
    assert_eq!(env.queues.rollup().history(Window::Day).await.unwrap().total.completed, 0);
}

#[tokio::test]
async fn history_hashes_expire_within_their_retention_and_stay_small() {
    let env = TestEnv::new().await;
    let handler = Scripted::first_then(Behaviour::FailRetryable, Behaviour::Succeed);
    let queue = env.queues.reports();
    for _ in 0..200 {
        enqueue(queue, "GENERATE_REPORT").await;
    }
    let worker = start_worker(queue, handler.clone(), 8);
    let done = eventually(Duration::from_secs(60), || async { queue.counts().await.unwrap().completed == 200 }).await;
    worker.shutdown.cancel();
    let _ = worker.handle.await;
    assert!(done, "{:?}", queue.counts().await.unwrap());
    let history = queue.history(Window::Hour).await.unwrap();
    assert_eq!((history.total.completed, history.total.retried), (200, 200));

    let mut redis = env.redis();
    let pattern = format!("{{{}:queue}}:{}:stats:*", env.prefix, queue.name);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await.unwrap();
    assert!(!keys.is_empty(), "no history hash under {pattern}");
    let mut bytes = 0u64;
    for key in &keys {
        let ttl: i64 = redis.ttl(key).await.unwrap();
        let limit = if key.contains(":stats:m:") { 86_400 + 600 } else { 14 * 86_400 };
        assert!(ttl > 0 && ttl <= limit, "{key} lives {ttl} s: more than its retention ({limit} s)");
        let used: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(&mut redis).await.unwrap();
        bytes += used.unwrap_or(0);
    }
    // One minute and one hour hash (two if the run crossed a minute): a few hundred bytes each.
    assert!(keys.len() <= 4, "{keys:?}");
    assert!(bytes < 4 * 1024, "history of one busy minute takes {bytes} bytes");
    println!("history: {} hash(es), {bytes} bytes (MEMORY USAGE) for 400 attempts of one kind", keys.len());
}

// A worker killed mid-run (as kill -9: its task aborted, its lease no longer renewed): the claim
// that takes the job back counts the attempt as `lease_expired` in the minute and the hour; on its
// last attempt it also counts as failed for good.
#[tokio::test]
async fn an_attempt_whose_lease_expired_is_counted_in_the_history() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "400"), ("EVENTMILL_JOB_BACKOFF_MS", "100")]).await;
    let queue = env.queues.rollup();
    let handler = Scripted::first_then(Behaviour::Hang, Behaviour::Succeed);
    let doomed = start_worker(queue, handler.clone(), 1);
    let id = enqueue(queue, "DAILY_ROLLUP").await;
    crate::support::wait_for_state(&env.queues, &id, JobState::Active, Duration::from_secs(5)).await;
    doomed.handle.abort();
    assert!(doomed.handle.await.unwrap_err().is_cancelled());
    let survivor = start_worker(queue, handler.clone(), 1);
    let job = crate::support::wait_for_state(&env.queues, &id, JobState::Completed, Duration::from_secs(5)).await;
    survivor.shutdown.cancel();
    let _ = survivor.handle.await;
    assert!(job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
    for window in [Window::Hour, Window::TwoWeeks] {
        let history = queue.history(window).await.unwrap();
        let t = history.total;
        assert_eq!((t.completed, t.retried, t.failed, t.lease_expired), (1, 0, 0, 1), "{window:?}");
        let kind = history.kinds.iter().find(|k| k.kind == "DAILY_ROLLUP").unwrap();
        assert_eq!(kind.total.lease_expired, 1);
        // The expired attempt has no run time: only the completed one is timed.
        assert_eq!((kind.run.count, kind.end_to_end.count), (1, 1), "{window:?}");
        assert_eq!(history.points.iter().map(|p| p.total.lease_expired).sum::<u64>(), 1);
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(json["lease_expired"], 1, "the JSON API carries it");
    }

    // On its last attempt: lease expired and failed for good, with its end-to-end time.
    let last = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "400"), ("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queue = last.queues.rollup();
    let doomed = start_worker(queue, Scripted::new(Behaviour::Hang), 1);
    let id = enqueue(queue, "DAILY_ROLLUP").await;
    crate::support::wait_for_state(&last.queues, &id, JobState::Active, Duration::from_secs(5)).await;
    doomed.handle.abort();
    let survivor = start_worker(queue, Scripted::new(Behaviour::Succeed), 1);
    crate::support::wait_for_state(&last.queues, &id, JobState::Failed, Duration::from_secs(5)).await;
    survivor.shutdown.cancel();
    let _ = survivor.handle.await;
    let history = queue.history(Window::Hour).await.unwrap();
    let t = history.total;
    assert_eq!((t.completed, t.retried, t.failed, t.lease_expired), (0, 0, 1, 1));
    let kind = history.kinds.iter().find(|k| k.kind == "DAILY_ROLLUP").unwrap();
    assert_eq!(kind.failure_rate, Some(100.0));
    assert_eq!((kind.wait.count, kind.run.count, kind.end_to_end.count), (0, 0, 1));
}
