//! Flows of eventmill's kinds (SPEC section 7; the framework's own flow tests are in
//! crates/eventmill-jobs/tests/queue/flows.rs): the weekly report as a flow after the daily
//! rollups of its days (`enqueue report --after-rollups`, and the shipped job
//! file in `domain::job_file`'s tests). A worker killed during a flow: `faults`.

use eventmill::queue::{JobRecord, JobState, Queues};

use crate::{
    cli::{cli, stdout},
    helpers::TestApp,
    jobs_support::AnalyticsQueues,
    report_support,
};

async fn record(queues: &Queues, id: &str) -> JobRecord {
    queues.job(id).await.unwrap().unwrap()
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
