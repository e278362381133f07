//! The board's actions in real Chromium, through eventmill's `/admin`: bulk clean removes only the
//! finished jobs older than the chosen age, after the confirmation page; a failed job's data is
//! edited from its page (logged, not retried by the edit); a queue's limits are set from its page.

use std::time::Duration;

use eventmill::queue::{JobState, key_base, now_ms};

use crate::{
    admin_stream::admin_env,
    browser::run_scenario,
    helpers::TestApp,
    jobs_support::{Behaviour, Scripted, enqueue, start_worker, wait_for_state},
};

const QUEUE: &str = "analytics:rollup";

/// Moves job `id`'s finish `ago` into the past (its place in `set` and its `finished_at`), as if
/// it had finished then.
async fn finished_ago(app: &TestApp, id: &str, set: &str, ago: Duration) {
    let at = now_ms() - ago.as_millis() as i64;
    let base = key_base(&app.env.prefix);
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg(format!("{base}{QUEUE}:{set}"))
        .arg("XX")
        .arg(at)
        .arg(id)
        .ignore()
        .hset(format!("{base}job:{id}"), "finished_at", at)
        .ignore()
        .query_async(&mut app.env.redis())
        .await
        .unwrap();
}

#[tokio::test]
async fn bulk_clean_from_the_queue_page_removes_only_the_jobs_older_than_the_chosen_age() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let rollup = queues.named(QUEUE).unwrap().clone();
    let handler = Scripted::new(Behaviour::FailPermanent);
    let worker = start_worker(&rollup, handler.clone(), 2);
    let failed = enqueue(&rollup, "DAILY_ROLLUP").await;
    wait_for_state(&queues, &failed, JobState::Failed, Duration::from_secs(10)).await;
    handler.set(Behaviour::Succeed);
    let mut done = Vec::new();
    for _ in 0..5 {
        done.push(enqueue(&rollup, "DAILY_ROLLUP").await);
    }
    for id in &done {
        wait_for_state(&queues, id, JobState::Completed, Duration::from_secs(10)).await;
    }
    worker.shutdown.cancel();
    // Three completed jobs finished 2 h, 5 h and 3 days ago, the failed one 4 h ago; two just now.
    let hour = Duration::from_secs(3600);
    for (id, ago) in done[..3].iter().zip([2 * hour, 5 * hour, 72 * hour]) {
        finished_ago(&app, id, "completed", ago).await;
    }
    finished_ago(&app, &failed, "failed", 4 * hour).await;

    let (old, new) = (done[..3].join(","), done[3..].join(","));
    run_scenario(&app, "clean", &[("QUEUE", QUEUE), ("OLD_IDS", old.as_str()), ("NEW_IDS", new.as_str())]).await;

    for id in &done[..3] {
        assert!(queues.job(id).await.unwrap().is_none(), "job {id}, finished over an hour ago, is gone");
    }
    for id in &done[3..] {
        assert_eq!(queues.job(id).await.unwrap().unwrap().state, JobState::Completed, "job {id} is kept");
    }
    let kept = queues.job(&failed).await.unwrap().expect("the old failed job is kept: only completed were cleaned");
    assert_eq!(kept.state, JobState::Failed);
    let counts = rollup.counts().await.unwrap();
    assert_eq!((counts.completed, counts.failed), (2, 1));
    app.stop().await;
}

#[tokio::test]
async fn a_failed_jobs_data_is_edited_on_its_page_and_the_queues_limits_are_set_from_the_page() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let rollup = queues.named(QUEUE).unwrap().clone();
    let handler = Scripted::new(Behaviour::FailPermanent);
    let worker = start_worker(&rollup, handler.clone(), 2);
    let payload = r#"{"job_type":"DAILY_ROLLUP","date":"2026-01-01"}"#;
    let options = eventmill::queue::EnqueueOptions { origin: "test".into(), ..Default::default() };
    let id = rollup.enqueue("DAILY_ROLLUP", payload, options).await.unwrap().id;
    wait_for_state(&queues, &id, JobState::Failed, Duration::from_secs(10)).await;
    worker.shutdown.cancel();

    run_scenario(&app, "board-edit", &[("JOB_ID", id.as_str()), ("QUEUE", QUEUE)]).await;

    let job = queues.job(&id).await.unwrap().unwrap();
    assert_eq!(job.payload["date"], "2026-02-03", "the edit is stored");
    assert_eq!(job.state, JobState::Failed, "an edit does not retry");
    let limits = rollup.limits().await.unwrap();
    assert_eq!(limits.global_concurrency, Some(3));
    assert_eq!(limits.rate_limit.map(|l| l.to_string()).as_deref(), Some("20/1m"));
    app.stop().await;
}
