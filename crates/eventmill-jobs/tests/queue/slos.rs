//! SLOs per kind through real Redis: a kind made slow breaches its run p95 target, the breach is
//! recorded once (a second process sees the same start and records nothing), and it ends when
//! fast jobs bring the p95 back under the target; the environment sets the targets.

use std::time::Duration;

use eventmill_jobs::queue::{Objective, Transition};

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, enqueue, eventually, start_worker};

#[tokio::test]
async fn a_slow_kind_breaches_its_run_p95_once_and_recovers_when_fast_jobs_dilute_it() {
    let vars = [
        ("EVENTMILL_JOB_SLO_RUN_P95_GENERATE_REPORT", "100ms/5m"),
        ("EVENTMILL_JOB_SLO_FAILURE_RATE_GENERATE_REPORT", "50%/1h"),
    ];
    let env = TestEnv::with(&vars).await;
    let mut others = vars.to_vec();
    others.push(("EVENTMILL_REDIS_PREFIX", &env.prefix));
    let other = TestEnv::with(&others).await;
    let slos = env.queues.slos();
    assert_eq!(slos.len(), 2, "{slos:?}");
    assert_eq!(
        (slos[0].objective, slos[0].target, slos[0].window_minutes, slos[0].source),
        (Objective::RunP95, 100.0, 5, "env")
    );
    assert_eq!((slos[1].objective, slos[1].target, slos[1].window_minutes), (Objective::FailureRate, 50.0, 60));

    // No job yet: no data is not a breach.
    let statuses = env.queues.evaluate_slos().await.unwrap();
    assert!(statuses.iter().all(|s| !s.breached && s.measured.is_none()), "{statuses:?}");

    let queue = env.queues.reports();
    let handler = Scripted::new(Behaviour::Sleep(Duration::from_millis(300)));
    let worker = start_worker(queue, handler.clone(), 4);
    for _ in 0..4 {
        enqueue(queue, "GENERATE_REPORT").await;
    }
    let done = eventually(Duration::from_secs(10), || async { queue.counts().await.unwrap().completed == 4 }).await;
    assert!(done);
    let statuses = env.queues.evaluate_slos().await.unwrap();
    let run = &statuses[0];
    assert!(run.breached, "{run:?}");
    assert!(run.measured.unwrap() >= 300.0 && run.count == 4, "{run:?}");
    assert_eq!(run.transition, Some(Transition::Started), "this evaluation saw it start (and logged it)");
    let since = run.breached_since.expect("breached since");
    assert!(!statuses[1].breached, "no failure: {:?}", statuses[1]);
    // Another process agrees: same start, no second "started".
    let seen = other.queues.evaluate_slos().await.unwrap();
    assert_eq!((seen[0].breached, seen[0].breached_since, seen[0].transition), (true, Some(since), None));
    let again = env.queues.evaluate_slos().await.unwrap();
    assert_eq!((again[0].breached_since, again[0].transition), (Some(since), None), "logged once");

    // Fast again: 96 fast attempts put the 4 slow ones beyond the 95th percentile.
    handler.set(Behaviour::Succeed);
    for _ in 0..96 {
        enqueue(queue, "GENERATE_REPORT").await;
    }
    let done = eventually(Duration::from_secs(20), || async { queue.counts().await.unwrap().completed == 100 }).await;
    assert!(done);
    worker.shutdown.cancel();
    let _ = worker.handle.await;
    let statuses = other.queues.evaluate_slos().await.unwrap();
    let run = &statuses[0];
    assert!(!run.breached && run.measured.unwrap() < 100.0 && run.count == 100, "{run:?}");
    assert_eq!((run.breached_since, run.transition), (None, Some(Transition::Ended)), "ended once");
    let again = env.queues.evaluate_slos().await.unwrap();
    assert_eq!(again[0].transition, None);
}
