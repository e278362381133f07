//! Flows: a parent job runs once all its children completed, exactly once; a child out of
//! attempts fails the parent with the child's error. (eventmill's weekly report as a flow: the
//! app's tests/it/flows.rs.)

use std::time::Duration;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use eventmill_jobs::{
    Dispatch, EnqueueOptions, FailurePolicy, Job, JobContext, JobError, JobRecord, JobState, Processor, QueueSpec,
    Queues, Registry,
    queue::{JobHandler, Planned, RunningJob},
};
use futures_util::{FutureExt, future::BoxFuture};

use crate::support::{AnalyticsQueues, Behaviour, REPORTS_QUEUE, Scripted, TestEnv, start_worker, wait_for_state};

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

/// A report flow whose children are one job per given behaviour, the first with `policy`.
async fn flow_with_policy(queues: &Queues, policy: FailurePolicy) -> (String, Vec<String>) {
    let parent = job("GENERATE_REPORT", serde_json::json!({ "test": "parent" }));
    let children: Vec<Job> = (1..=2).map(|d| job("DAILY_ROLLUP", serde_json::json!({ "day": d }))).collect();
    let planned: Vec<Planned<'_>> = children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let on_failure = if i == 0 { policy } else { FailurePolicy::FailParent };
            Planned { job: c, options: EnqueueOptions { on_failure, ..EnqueueOptions::default() } }
        })
        .collect();
    let flow =
        queues.enqueue_flow(Planned { job: &parent, options: EnqueueOptions::default() }, &planned).await.unwrap();
    (flow.id, flow.children)
}

/// What the parent saw of its children: `ctx.children()`, as JSON.
#[derive(Clone, Default)]
struct SeenChildren(Arc<Mutex<Option<serde_json::Value>>>);

struct ReadsChildren;

impl Processor<SeenChildren> for ReadsChildren {
    type Payload = serde_json::Map<String, serde_json::Value>;
    const NAME: &'static str = "GENERATE_REPORT";
    const QUEUE: &'static str = REPORTS_QUEUE;

    async fn process(&self, ctx: &JobContext<SeenChildren>, _: Self::Payload) -> Result<serde_json::Value, JobError> {
        let children = ctx.children().await?;
        let typed: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = ctx.children_results_as().await?;
        let ignored = ctx.ignored_failures().await?;
        let seen = serde_json::json!({ "children": children, "typed": typed.len(), "ignored": ignored });
        *ctx.state().0.lock().unwrap() = Some(seen.clone());
        Ok(seen)
    }
}

/// Runs the flow's children (the first fails permanently, the second succeeds after `delay`) and
/// its parent (a processor that reads its children), until the parent is `until`.
async fn run_flow(
    policy: FailurePolicy,
    second_delay: Duration,
    until: JobState,
) -> (JobRecord, Vec<String>, SeenChildren) {
    let env = TestEnv::new().await;
    let queues = env.queues.clone();
    let (parent, children) = flow_with_policy(&queues, policy).await;
    let seen = SeenChildren::default();
    let registry = Arc::new(Registry::new().queue(QueueSpec::new(REPORTS_QUEUE)).register(ReadsChildren));
    let dispatch = Arc::new(Dispatch { registry, state: Arc::new(seen.clone()) });
    let reports = start_worker(queues.reports(), dispatch, 1);
    let first = children[0].clone();
    let behaviour = Arc::new(ByJob { fail: first, delay: second_delay });
    let rollups = start_worker(queues.rollup(), behaviour, 2);
    let done = wait_for_state(&queues, &parent, until, Duration::from_secs(10)).await;
    for worker in [reports, rollups] {
        worker.shutdown.cancel();
        worker.handle.await.unwrap().unwrap();
    }
    (done, children, seen)
}

/// Fails job `fail` for good; every other job succeeds after `delay` with `{"day_done": true}`.
struct ByJob {
    fail: String,
    delay: Duration,
}

impl JobHandler for ByJob {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let (fail, delay) = (job.id == self.fail, self.delay);
        async move {
            if fail {
                return Err(JobError::permanent("upstream said 404"));
            }
            tokio::time::sleep(delay).await;
            Ok(serde_json::json!({ "day_done": true }))
        }
        .boxed()
    }
}

fn seen(seen: &SeenChildren) -> serde_json::Value {
    seen.0.lock().unwrap().clone().expect("the parent ran")
}

#[tokio::test]
async fn fail_parent_is_the_default_policy_and_fails_the_parent_without_running_it() {
    let (parent, _, ran) = run_flow(FailurePolicy::FailParent, Duration::ZERO, JobState::Failed).await;
    assert!(parent.last_error().unwrap().contains("upstream said 404"), "{parent:?}");
    assert!(ran.0.lock().unwrap().is_none(), "the parent never ran");
}

#[tokio::test]
async fn ignore_dependency_runs_the_parent_which_sees_the_ignored_failure_and_the_results() {
    let (parent, children, ran) = run_flow(FailurePolicy::IgnoreDependency, Duration::ZERO, JobState::Completed).await;
    let seen = seen(&ran);
    assert_eq!(seen["ignored"][&children[0]], "upstream said 404", "{seen}");
    let listed = seen["children"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{seen}");
    assert_eq!(listed[0]["state"], "failed");
    assert_eq!(listed[1]["result"], serde_json::json!({ "day_done": true }));
    assert_eq!(seen["typed"], 1, "the completed child's result, typed");
    assert_eq!(parent.pending_children, 0);
}

#[tokio::test]
async fn remove_dependency_drops_the_failed_child_and_runs_the_parent() {
    let (parent, children, ran) = run_flow(FailurePolicy::RemoveDependency, Duration::ZERO, JobState::Completed).await;
    let seen = seen(&ran);
    let listed = seen["children"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "only the completed child is a dependency: {seen}");
    assert_eq!(listed[0]["id"], children[1].as_str());
    assert_eq!(seen["ignored"], serde_json::json!({}));
    assert_eq!(parent.children, vec![children[1].clone()]);
}

#[tokio::test]
async fn continue_parent_runs_the_parent_as_soon_as_the_child_failed() {
    // The other child takes 3 s: the parent runs (and completes) long before it.
    let (parent, children, ran) =
        run_flow(FailurePolicy::ContinueParent, Duration::from_secs(3), JobState::Completed).await;
    let seen = seen(&ran);
    assert_eq!(seen["ignored"][&children[0]], "upstream said 404", "{seen}");
    assert_eq!(seen["children"][1]["state"], "active", "the other child still runs: {seen}");
    assert_eq!(seen["children"][1]["result"], serde_json::Value::Null);
    assert!(parent.finished_at.is_some());
}

#[tokio::test]
async fn a_job_file_child_reads_its_failure_policy_and_a_bad_one_is_refused_with_the_choices() {
    let options =
        eventmill_jobs::JobOptions::from_value(serde_json::json!({ "on_failure": "continue_parent" })).unwrap();
    assert_eq!(options.enqueue_options("test").on_failure, FailurePolicy::ContinueParent);
    let error = eventmill_jobs::JobOptions::from_value(serde_json::json!({ "on_failure": "skip" })).unwrap_err();
    assert!(error.contains("remove_dependency"), "{error}");
}

#[tokio::test]
async fn the_flow_tree_is_found_from_the_parent_or_any_child_with_states_and_policies() {
    let env = TestEnv::new().await;
    let queues = env.queues.clone();
    let (parent, children) = flow_with_policy(&queues, FailurePolicy::IgnoreDependency).await;
    let tree = queues.flow(&children[1]).await.unwrap().expect("a child belongs to its flow");
    assert_eq!(tree, queues.flow(&parent).await.unwrap().unwrap(), "the same tree from the parent");
    assert_eq!((tree.id.as_str(), tree.state, tree.more), (parent.as_str(), Some(JobState::WaitingChildren), 0));
    let listed: Vec<(&str, Option<JobState>, Option<FailurePolicy>)> =
        tree.children.iter().map(|c| (c.id.as_str(), c.state, c.on_failure)).collect();
    assert_eq!(
        listed,
        [
            (children[0].as_str(), Some(JobState::Waiting), Some(FailurePolicy::IgnoreDependency)),
            (children[1].as_str(), Some(JobState::Waiting), Some(FailurePolicy::FailParent)),
        ]
    );
    let rollup = job("DAILY_ROLLUP", serde_json::json!({ "day": 1 }));
    let plain = queues.enqueue(&rollup, EnqueueOptions::default()).await.unwrap();
    assert_eq!(queues.flow(&plain.id).await.unwrap(), None, "a plain job is in no flow");
}
