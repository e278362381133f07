//! Flows of eventmill's kinds (SPEC section 7; the framework's own flow tests are in
//! crates/eventmill-jobs/tests/queue/flows.rs): the weekly report as a flow after the daily
//! rollups of its days (`enqueue report --after-rollups`, and the shipped job
//! file in `domain::job_file`'s tests). A worker killed during a flow: `faults`.

use std::time::Duration;

use eventmill::queue::{EnqueueOptions, FailurePolicy, Job, JobRecord, JobState, Planned, Queues};

use crate::{
    admin_stream::admin_env,
    browser::run_scenario,
    cli::{cli, stdout},
    helpers::TestApp,
    jobs_support::{AnalyticsQueues, Behaviour, Scripted, start_worker, wait_for_state},
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

#[tokio::test]
async fn a_flows_parent_page_draws_its_children_with_their_states_and_jobs_show_prints_the_flow() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let parent = Job { kind: "GENERATE_REPORT", payload: serde_json::json!({ "test": "flow tree" }) };
    let children: Vec<Job> = (1..=3)
        .map(|d| Job { kind: "DAILY_ROLLUP", payload: serde_json::json!({ "date": format!("2026-03-0{d}") }) })
        .collect();
    let options = [
        EnqueueOptions::default(),
        EnqueueOptions { on_failure: FailurePolicy::IgnoreDependency, ..EnqueueOptions::default() },
        EnqueueOptions { delay: Some(Duration::from_secs(3600)), ..EnqueueOptions::default() },
    ];
    let planned: Vec<Planned<'_>> =
        children.iter().zip(options).map(|(job, options)| Planned { job, options }).collect();
    let flow =
        queues.enqueue_flow(Planned { job: &parent, options: EnqueueOptions::default() }, &planned).await.unwrap();
    // The first two children run (no report worker: the parent keeps waiting for the delayed third).
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::Succeed), 2);
    for child in &flow.children[..2] {
        wait_for_state(&queues, child, JobState::Completed, Duration::from_secs(10)).await;
    }

    let ids = flow.children.join(",");
    let scenario = [
        ("PARENT_ID", flow.id.as_str()),
        ("CHILD_IDS", ids.as_str()),
        ("STATES", "completed,completed,delayed"),
        ("POLICY_CHILD", flow.children[1].as_str()),
    ];
    run_scenario(&app, "flow", &scenario).await;

    // `jobs show` of any job of the flow prints the tree from the parent down.
    let shown = cli(&app.env, &["jobs", "show", &flow.children[2]]).await;
    assert_eq!(shown.status.code(), Some(0), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    let tree = &shown["flow"];
    assert_eq!(
        (tree["id"].as_str(), tree["state"].as_str()),
        (Some(flow.id.as_str()), Some("waiting-children")),
        "{shown}"
    );
    let listed: Vec<(&str, &str, &str)> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["state"].as_str().unwrap(), c["on_failure"].as_str().unwrap()))
        .collect();
    let expected: Vec<(&str, &str, &str)> = vec![
        (&flow.children[0], "completed", "fail_parent"),
        (&flow.children[1], "completed", "ignore_dependency"),
        (&flow.children[2], "delayed", "fail_parent"),
    ];
    assert_eq!(listed, expected);
    worker.shutdown.cancel();
    app.stop().await;
}
