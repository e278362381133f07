//! Priorities and per-queue rate limits (SPEC section 7): jobs run by priority (BullMQ's: none
//! first, then 1, 2...) and in order among equals; a queue's rate limit holds across worker
//! processes (two real `eventmill worker` binaries).

use std::time::Duration;

use eventmill::queue::{EnqueueOptions, JobState};

use crate::{
    bullmq::id_of,
    cli::cli,
    faults_support::Proc,
    helpers::{TestEnv, eventually},
    jobs_support::{AnalyticsQueues, Behaviour, Scripted, start_worker, wait_for_state},
};

#[tokio::test]
async fn jobs_run_by_priority_none_first_then_one_two_and_in_order_among_equals() {
    let env = TestEnv::new().await;
    let queues = env.resources.queues.clone();
    let mut ids = Vec::new();
    for priority in [None, Some(5), Some(1), Some(3), Some(1), None] {
        let options = EnqueueOptions { priority, ..Default::default() };
        ids.push(queues.rollup().enqueue("DAILY_ROLLUP", r#"{"test":true}"#, options).await.unwrap().id);
    }
    // Through the CLI too, the flag before or after the subcommand.
    let before = id_of(&cli(&env, &["enqueue", "--priority", "2", "rollup", "--daily", "--date", "2026-03-08"]).await);
    let after = id_of(&cli(&env, &["enqueue", "rollup", "--daily", "--date", "2026-03-08", "--priority", "4"]).await);
    assert_eq!(queues.job(&before).await.unwrap().unwrap().priority, 2);
    let page: Vec<String> = queues.rollup().ids(JobState::Waiting, 10).await.unwrap();
    let expected = [&ids[0], &ids[5], &ids[2], &ids[4], &before, &ids[3], &after, &ids[1]];
    assert_eq!(page.iter().collect::<Vec<_>>(), expected, "the waiting list shows the order jobs will run in");

    let handler = Scripted::new(Behaviour::Succeed);
    let worker = start_worker(queues.rollup(), handler.clone(), 1);
    wait_for_state(&queues, &ids[1], JobState::Completed, Duration::from_secs(10)).await;
    let ran: Vec<String> = handler.attempts().into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ran.iter().collect::<Vec<_>>(), expected);
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_admin_pages_show_a_jobs_priority_and_key_and_the_queues_rate_limit() {
    let env = TestEnv::with(&[("EVENTMILL_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS", "50/1m")]).await;
    let app = crate::helpers::TestApp::api(env).await;
    let args = ["enqueue", "rollup", "--daily", "--date", "2026-03-08", "--priority", "7", "--key", "k-7"];
    let id = id_of(&cli(&app.env, &args).await);
    let get = |path: String| {
        let request = app.client.get(app.url(&path)).bearer_auth("test-admin-token");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let html = get(format!("/admin/jobs/{id}")).await;
    assert!(html.contains("<dd id=\"job-priority\">7</dd>") && html.contains("<dd id=\"job-key\">k-7</dd>"), "{html}");
    let html = get("/admin/queues/analytics:reports".into()).await;
    assert!(html.contains("rate limit 50/1m"), "{html}");
    let html = get("/admin/queues/analytics:rollup".into()).await;
    assert!(html.contains("no rate limit"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn enqueue_options_come_from_flags_before_or_after_the_subcommand_or_from_the_job_files_options() {
    let env = TestEnv::new().await;
    let queues = &env.resources.queues;
    let before = ["enqueue", "--delay", "10m", "--key", "before", "--priority", "3", "rollup", "--daily"];
    let id = id_of(&cli(&env, &[&before[..], &["--date", "2026-03-08"]].concat()).await);
    let job = queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.priority, job.key.as_deref()), (JobState::Delayed, 3, Some("before")));
    assert_eq!(job.run_at.unwrap() - job.created_at, 600_000);

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("opts-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("job.toml");
    let text = "job_type = \"DAILY_ROLLUP\"\ndate = \"yesterday\"\noptions = { priority = 9, delay = \"90s\", key = \"from-file\" }\n";
    std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();
    let id = id_of(&cli(&env, &["enqueue", "--file", path]).await);
    let job = queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.priority, job.key.as_deref()), (JobState::Delayed, 9, Some("from-file")));
    assert_eq!(job.run_at.unwrap() - job.created_at, 90_000);
    // A flag wins over the file.
    let id = id_of(&cli(&env, &["enqueue", "--file", path, "--priority", "1", "--key", "flag"]).await);
    assert_eq!(queues.job(&id).await.unwrap().unwrap().priority, 1);
    let bad = cli(&env, &["enqueue", "--priority", "0", "rollup", "--daily", "--date", "2026-03-08"]).await;
    assert_eq!(bad.status.code(), Some(2), "priority 0 is refused by the parser");
}

#[tokio::test]
async fn a_queue_rate_limit_holds_across_two_worker_processes() {
    const MAX: usize = 3;
    const PER_MS: i64 = 600;
    let env = TestEnv::new().await;
    let queues = env.resources.queues.clone();
    let limit = [("EVENTMILL_QUEUE_RATE_LIMIT_ANALYTICS_ROLLUP", "3/600ms"), ("EVENTMILL_JOB_CONCURRENCY", "2")];
    let workers = [Proc::start(&env, &["worker"], &limit), Proc::start(&env, &["worker"], &limit)];
    let both_up = eventually(Duration::from_secs(20), || async {
        queues.rollup().workers(Duration::from_secs(30)).await.unwrap().len() == 2
    })
    .await;
    assert!(both_up, "both worker processes poll the queue");
    let mut ids = Vec::new();
    for day in 1..=12 {
        let job = format!(r#"{{"job_type":"DAILY_ROLLUP","date":"2026-02-{day:02}"}}"#);
        ids.push(queues.rollup().enqueue("DAILY_ROLLUP", &job, EnqueueOptions::default()).await.unwrap().id);
    }
    let done = eventually(Duration::from_secs(40), || async {
        queues.rollup().counts().await.unwrap().completed == ids.len() as u64
    })
    .await;
    assert!(done, "every job completes: {:?}", queues.rollup().counts().await.unwrap());
    let mut starts = Vec::new();
    let mut names = std::collections::HashSet::new();
    for id in &ids {
        let job = queues.job(id).await.unwrap().unwrap();
        starts.push(job.started_at.unwrap());
        names.insert(job.worker.unwrap());
    }
    starts.sort_unstable();
    assert_eq!(names.len(), 2, "both worker processes took jobs: {names:?}");
    // Fixed windows of 600 ms with at most 3 starts each: 12 jobs need 4 windows, and no 600 ms
    // span (less clock slack between a claim's time and its execution) holds 2 x 3 + 1 starts.
    let slack = 50;
    assert!(starts[11] - starts[0] >= 3 * PER_MS - slack, "12 jobs at 3 per 600 ms: {starts:?}");
    for window in starts.windows(2 * MAX + 1) {
        assert!(window[2 * MAX] - window[0] >= PER_MS - slack, "more than 2 x 3 starts within 600 ms: {starts:?}");
    }
    for worker in workers {
        worker.kill9().await;
    }
}
