//! The admin view's queue pages in real Chromium: a failed job found by its payload and retried,
//! pause and resume, the enqueue form, markup in payloads shown as text, and the read-only role
//! refused on every action.

use std::time::Duration;

use eventmill::queue::{EnqueueOptions, JobState};

use crate::{
    admin_stream::admin_env,
    browser::{READONLY_TOKEN, run_scenario},
    helpers::TestApp,
    jobs_support::AnalyticsQueues,
    jobs_support::{Behaviour, Scripted, start_worker, wait_for_state},
};

async fn enqueue_payload(app: &TestApp, queue: &str, kind: &str, payload: &str) -> String {
    let queue = app.env.resources.queues.named(queue).unwrap();
    queue.enqueue(kind, payload, EnqueueOptions { origin: "test".into(), ..Default::default() }).await.unwrap().id
}

#[tokio::test]
async fn a_failed_job_is_found_by_a_payload_word_retried_from_the_page_and_then_listed_completed() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let handler = Scripted::new(Behaviour::FailPermanent);
    let worker = start_worker(queues.rollup(), handler.clone(), 2);
    let mut ids = Vec::new();
    for note in ["zebra crossing audit", "plain one", "plain two"] {
        let payload = format!(r#"{{"job_type":"DAILY_ROLLUP","date":"2026-01-01","note":"{note}"}}"#);
        ids.push(enqueue_payload(&app, "analytics:rollup", "DAILY_ROLLUP", &payload).await);
    }
    for id in &ids {
        wait_for_state(&queues, id, JobState::Failed, Duration::from_secs(10)).await;
    }
    handler.set(Behaviour::Succeed);

    run_scenario(&app, "failed-job", &[("JOB_WORD", "zebra")]).await;

    let retried = queues.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(retried.state, JobState::Completed, "the zebra job was retried and completed");
    for id in &ids[1..] {
        assert_eq!(queues.job(id).await.unwrap().unwrap().state, JobState::Failed, "the others were left alone");
    }
    worker.shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_paused_queue_takes_no_job_and_resumes_from_the_page() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::Succeed), 2);

    run_scenario(&app, "pause", &[]).await;

    let counts = queues.rollup().counts().await.unwrap();
    assert!(!counts.paused, "the queue was resumed");
    assert_eq!((counts.completed, counts.waiting), (1, 0), "the job enqueued from the form ran once, after resume");
    worker.shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_payload_holding_a_script_is_shown_as_text_and_never_run() {
    let app = TestApp::api(admin_env().await).await;
    let payload = r#"{"note":"<script>window.__pwned=1</script>","img":"<img src=x onerror=\"window.__pwned=2\">"}"#;
    let id = enqueue_payload(&app, "analytics:reports", "GENERATE_REPORT", payload).await;
    run_scenario(&app, "xss", &[("JOB_ID", id.as_str())]).await;
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_sees_every_queue_page_and_every_action_is_refused() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let id =
        enqueue_payload(&app, "analytics:rollup", "DAILY_ROLLUP", r#"{"job_type":"DAILY_ROLLUP","date":"2026-01-01"}"#)
            .await;
    let pages = [
        "/admin".to_owned(),
        "/admin/queues/analytics:rollup?state=waiting".to_owned(),
        format!("/admin/jobs/{id}"),
        "/admin/enqueue".to_owned(),
        "/admin/stream".to_owned(),
    ]
    .join(",");
    let actions = [
        format!("/admin/api/jobs/{id}/retry"),
        format!("/admin/api/jobs/{id}/remove"),
        format!("/admin/api/jobs/{id}/promote"),
        "/admin/api/queues/analytics:rollup/retry-failed".to_owned(),
        "/admin/api/queues/analytics:rollup/pause".to_owned(),
        "/admin/api/queues/analytics:rollup/resume".to_owned(),
        "/admin/api/enqueue".to_owned(),
        "/admin/api/dead-letters/replay-all".to_owned(),
        "/admin/api/dead-letters/1-0/replay".to_owned(),
        "/admin/api/schedules/nightly-rollup/run".to_owned(),
        format!("/admin/api/jobs/{id}/data"),
        "/admin/api/queues/analytics:rollup/limits".to_owned(),
        "/admin/api/queues/analytics:rollup/clean".to_owned(),
        "/admin/api/queues/analytics:rollup/empty".to_owned(),
        "/admin/api/queues/analytics:rollup/promote-all".to_owned(),
        "/admin/api/queues/pause-all".to_owned(),
    ]
    .join(",");
    run_scenario(&app, "auth", &[("ADMIN_PAGES", pages.as_str()), ("ADMIN_ACTIONS", actions.as_str())]).await;

    let job = queues.job(&id).await.unwrap().expect("the job was not removed");
    assert_eq!(job.state, JobState::Waiting);
    let counts = queues.rollup().counts().await.unwrap();
    assert!(!counts.paused);
    assert_eq!(counts.waiting, 1, "nothing was enqueued");
    let status =
        app.client.get(app.url("/admin/api/queues")).bearer_auth(READONLY_TOKEN).send().await.unwrap().status();
    assert_eq!(status, 200, "the read-only token reads the API");
    app.stop().await;
}

#[tokio::test]
async fn run_now_on_the_schedules_page_enqueues_the_schedules_job() {
    let file = std::env::temp_dir().join(format!("em-admin-sched-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        "[[schedule]]\nname = \"nightly-rollup\"\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Berlin\"\n\
         job = { job_type = \"DAILY_ROLLUP\", date = \"yesterday\" }\n",
    )
    .unwrap();
    let env = crate::helpers::TestEnv::with(&[
        ("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN),
        ("EVENTMILL_SCHEDULER_FILE", file.to_str().unwrap()),
    ])
    .await;
    let app = TestApp::api(env).await;
    run_scenario(&app, "schedules", &[("SCHEDULE", "nightly-rollup")]).await;
    let queues = &app.env.resources.queues;
    let ids = queues.rollup().ids(JobState::Waiting, 10).await.unwrap();
    assert_eq!(ids.len(), 1, "one job was enqueued");
    let job = queues.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(job.kind, "DAILY_ROLLUP");
    assert_eq!(job.origin, "schedule:nightly-rollup@manual");
    // The schedule's last outcome is that job's state.
    let listed: serde_json::Value = app
        .client
        .get(app.url("/admin/api/schedules"))
        .bearer_auth(READONLY_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["last_job"], ids[0].as_str());
    assert_eq!(listed[0]["last_outcome"], "waiting");
    std::fs::remove_file(file).ok();
    app.stop().await;
}
