//! Flows: a parent job runs once all its children completed, exactly once; a child out of
//! attempts fails the parent with the child's error. (eventmill's weekly report as a flow: the
//! app's tests/it/flows.rs.)

use std::time::Duration;

use eventmill_jobs::{EnqueueOptions, Job, JobRecord, JobState, Queues, queue::Planned};

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, start_worker, wait_for_state};

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
    let queues = env.queues.clone();
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
    let queues = env.queues.clone();
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
