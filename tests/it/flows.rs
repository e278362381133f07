//! Flows (SPEC section 7): a parent job runs once all its children completed, exactly once; a
//! child out of attempts fails the parent with the child's error; the weekly report as a flow
//! after the daily rollups of its days (`enqueue report --after-rollups`, and the shipped job
//! file in `domain::job_file`'s tests). A worker killed during a flow: `faults`.

use std::time::Duration;

use eventmill::{
    domain::job::Job,
    queue::{EnqueueOptions, JobRecord, JobState, Planned, Queues},
};

use crate::{
    cli::{cli, stdout},
    helpers::{TestApp, TestEnv},
    jobs_support::{AnalyticsQueues, Behaviour, Scripted, start_worker, wait_for_state},
    report_support,
};

fn job(kind: &'static str, payload: serde_json::Value) -> Job {
    Job { kind, payload }
}

/// A report flow: a parent GENERATE_REPORT after three DAILY_ROLLUP children (on another queue).
async fn enqueue_flow(queues: &Queues) -> (String, Vec<String>) {
    let parent = job("GENERATE_REPORT", serde_json::json!({ "test": "parent" }));
    let children: Vec<Job> = (7..=9).map(|d| job("DAILY_ROLLUP", serde_json::json!({ "day": d }))).collect();
    let planned: Vec<Planned<'_>> =
        children.iter().map(|c| Planned { job: c, options: EnqueueOptions::default() }).collect();
    let flow =
        queues.enqueue_flow(Planned { job: &parent, options: EnqueueOptions::default() }, &planned).await.unwrap();
    (flow.id, flow.children)
}

async fn record(queues: &Queues, id: &str) -> JobRecord {
    queues.job(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_flow_runs_its_parent_once_after_all_its_children_completed() {
    let env = TestEnv::new().await;
    let queues = env.resources.queues.clone();
    let (parent, children) = enqueue_flow(&queues).await;
    let waiting = record(&queues, &parent).await;
    assert_eq!((waiting.state, waiting.pending_children, waiting.children.len()), (JobState::WaitingChildren, 3, 3));
    assert_eq!(queues.reports().counts().await.unwrap().waiting_children, 1);
    assert_eq!(record(&queues, &children[0]).await.parent.as_deref(), Some(parent.as_str()));

    let reports = Scripted::new(Behaviour::Succeed);
    let report_worker = start_worker(queues.reports(), reports.clone(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reports.attempts().is_empty(), "the parent does not run before its children");
    let rollups = start_worker(queues.rollup(), Scripted::new(Behaviour::Sleep(Duration::from_millis(50))), 2);
    let done = wait_for_state(&queues, &parent, JobState::Completed, Duration::from_secs(10)).await;
    assert_eq!(reports.attempts().len(), 1, "the parent ran once");
    for child in &children {
        let child = record(&queues, child).await;
        assert_eq!(child.state, JobState::Completed);
        assert!(done.started_at.unwrap() >= child.finished_at.unwrap(), "the parent started after child {}", child.id);
    }
    assert_eq!(queues.reports().counts().await.unwrap().waiting_children, 0);
    for worker in [report_worker, rollups] {
        worker.shutdown.cancel();
        worker.handle.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_child_out_of_attempts_fails_its_parent_with_the_childs_error() {
    let env = TestEnv::new().await;
    let queues = env.resources.queues.clone();
    let (parent, children) = enqueue_flow(&queues).await;
    let reports = Scripted::new(Behaviour::Succeed);
    let report_worker = start_worker(queues.reports(), reports.clone(), 1);
    let rollups = start_worker(queues.rollup(), Scripted::new(Behaviour::FailPermanent), 1);
    let failed = wait_for_state(&queues, &parent, JobState::Failed, Duration::from_secs(10)).await;
    let error = failed.last_error().unwrap();
    assert!(error.contains("unknown report type NOPE") && error.contains("child job"), "{error}");
    assert!(children.iter().any(|c| error.contains(c.as_str())), "names the child: {error}");
    assert_eq!((failed.attempts, reports.attempts().len()), (0, 0), "the parent never ran");
    for worker in [report_worker, rollups] {
        worker.shutdown.cancel();
        worker.handle.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn the_weekly_report_runs_as_a_flow_after_the_daily_rollups_of_its_days() {
    let (env, _reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let app = TestApp::full(env).await;
    let env = &app.env;
    let args = ["enqueue", "report", "--type", "profile_performance", "--format", "csv", "--from", "2026-03-03"];
    let output = cli(env, &[&args[..], &["--to", "2026-03-09", "--after-rollups", "--wait"]].concat()).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("after its 7 child job(s)"));
    let queues = &env.resources.queues;
    let parent = queues.list(queues.reports(), JobState::Completed, 1).await.unwrap().remove(0);
    assert!(stdout(&output).contains(&format!("job {} completed", parent.id)), "{}", stdout(&output));
    let mut days = Vec::new();
    for id in &parent.children {
        let child = record(queues, id).await;
        assert_eq!((child.kind.as_str(), child.state), ("DAILY_ROLLUP", JobState::Completed));
        assert!(parent.started_at.unwrap() >= child.finished_at.unwrap());
        days.push(child.payload["date"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (3..=9).map(|d| format!("2026-03-{d:02}")).collect();
    assert_eq!(days, expected);
    let rolled: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT day) FROM rollup_profile_daily").fetch_one(env.pool()).await.unwrap();
    assert!(rolled >= 1, "the children rolled the golden days up");

    // The admin job pages link parent and children both ways.
    let page = |id: String| {
        let request = app.client.get(app.url(&format!("/admin/jobs/{id}"))).bearer_auth("test-admin-token");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let html = page(parent.id.clone()).await;
    assert!(html.contains("id=\"flow-children\""), "{html}");
    for child in &parent.children {
        assert!(html.contains(&format!("href=\"/admin/jobs/{child}\"")), "links child {child}");
    }
    let html = page(parent.children[0].clone()).await;
    assert!(html.contains(&format!("id=\"flow-parent\" href=\"/admin/jobs/{}\"", parent.id)), "{html}");
    app.stop().await;
}
