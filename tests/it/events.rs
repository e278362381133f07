//! Job lifecycle events (SPEC section 7): a subscriber sees each transition once, in order
//! (started, progress, retried, completed; cancelled), and `/metrics` counts them.

use std::time::Duration;

use eventmill::queue::{EventKind, JobError, JobEvent, JobHandler, RunningJob};
use futures_util::{FutureExt, future::BoxFuture};
use tokio::sync::broadcast;

use crate::{
    helpers::TestEnv,
    jobs_support::{AnalyticsQueues, enqueue, start_worker},
};

/// Fails its first attempt; the second reports progress, waits for it to be written, succeeds.
struct FlakyWithProgress;

impl JobHandler for FlakyWithProgress {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        async move {
            if job.attempt == 1 {
                return Err(JobError::retryable("first attempt fails"));
            }
            job.progress.report(50, "half way");
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(serde_json::json!({ "done": true }))
        }
        .boxed()
    }
}

/// Events of job `id` until (and with) one of kind `last`.
async fn events_until(events: &mut broadcast::Receiver<JobEvent>, id: &str, last: EventKind) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e: &JobEvent| e.event != last) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("an event").unwrap();
        if event.job_id == id {
            seen.push(event);
        }
    }
    seen
}

/// The value of one `eventmill_job_events_total` series in `/metrics`.
fn counted(event: &str) -> u64 {
    let series =
        format!(r#"eventmill_job_events_total{{event="{event}",kind="DAILY_ROLLUP",queue="analytics:rollup"}}"#);
    eventmill::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(&series).map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_subscriber_sees_each_transition_once_and_metrics_count_them() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_BACKOFF_MS", "50"), ("EVENTMILL_JOB_PROGRESS_FLUSH_MS", "20")]).await;
    let queues = env.resources.queues.clone();
    let mut events = queues.events().subscribe();
    let (completed_before, retried_before) = (counted("completed"), counted("retried"));

    let worker = start_worker(queues.rollup(), std::sync::Arc::new(FlakyWithProgress), 1);
    let id = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    let seen = events_until(&mut events, &id, EventKind::Completed).await;
    let kinds: Vec<(EventKind, u32)> = seen.iter().map(|e| (e.event, e.attempt)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Started, 1),
            (EventKind::Retried, 1),
            (EventKind::Started, 2),
            (EventKind::Progress, 2),
            (EventKind::Completed, 2)
        ]
    );
    assert_eq!(seen[1].message, "first attempt fails");
    assert_eq!((seen[3].percent, seen[3].message.as_str()), (Some(50), "half way"));
    assert!(seen.iter().all(|e| e.kind == "DAILY_ROLLUP" && e.queue == "analytics:rollup"));
    assert!(counted("completed") > completed_before && counted("retried") > retried_before);

    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
    let waiting = enqueue(queues.rollup(), "DAILY_ROLLUP").await;
    queues.rollup().cancel(&waiting).await.unwrap();
    let seen = events_until(&mut events, &waiting, EventKind::Cancelled).await;
    assert_eq!(seen.len(), 1, "a job cancelled before it ran has one event: {seen:?}");
}
