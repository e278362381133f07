//! What BullMQ users expect (SPEC section 7), through the real binary and queue: delayed jobs
//! (`--delay`), deduplication by a job key inside its window (`--key`, `--key-window`), and
//! cancellation of waiting, delayed and running jobs (the running one sees it in its context and
//! ends `cancelled`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use eventmill::queue::{JobError, JobHandler, JobState, RunningJob};
use futures_util::{FutureExt, future::BoxFuture};

use crate::{
    cli::{cli, stdout},
    helpers::{TestApp, TestEnv, eventually},
    jobs_support::{AnalyticsQueues, enqueue, start_worker, wait_for_state},
};

const ROLLUP: [&str; 5] = ["enqueue", "rollup", "--daily", "--date", "2026-03-08"];

pub fn id_of(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    stdout(output).trim().to_owned()
}

#[tokio::test]
async fn a_delayed_job_waits_as_delayed_for_its_delay_and_then_runs() {
    let app = TestApp::full(TestEnv::new().await).await;
    let env = &app.env;
    let later = id_of(&cli(env, &[&ROLLUP[..], &["--delay", "10m"]].concat()).await);
    let job = env.resources.queues.job(&later).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Delayed);
    assert_eq!(job.run_at.unwrap() - job.created_at, 600_000, "run at enqueue time + 10 minutes");

    let soon = cli(env, &[&ROLLUP[..], &["--delay", "1s", "--wait"]].concat()).await;
    assert_eq!(soon.status.code(), Some(0), "{}", String::from_utf8_lossy(&soon.stderr));
    assert!(stdout(&soon).contains("completed"), "{}", stdout(&soon));
    assert_eq!(env.resources.queues.job(&later).await.unwrap().unwrap().state, JobState::Delayed);
    app.stop().await;
}

#[tokio::test]
async fn a_deduplication_key_enqueues_once_inside_its_window_and_again_after_it() {
    let env = TestEnv::new().await;
    let keyed = [&ROLLUP[..], &["--key", "rollup-2026-03-08", "--key-window", "2s"]].concat();
    let first = id_of(&cli(&env, &keyed).await);
    let again = cli(&env, &keyed).await;
    assert_eq!(id_of(&again), first, "the same job inside the window");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already enqueued with key"));
    let other_key = id_of(&cli(&env, &[&ROLLUP[..], &["--key", "another"]].concat()).await);
    assert_ne!(other_key, first);
    let counts = env.resources.queues.rollup().counts().await.unwrap();
    assert_eq!(counts.waiting, 2, "two jobs for two keys");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = id_of(&cli(&env, &keyed).await);
    assert_ne!(after, first, "a new job once the window has passed");
}

/// Runs until its context is cancelled, and records that it saw it.
struct UntilCancelled {
    saw_cancel: Arc<AtomicBool>,
}

impl JobHandler for UntilCancelled {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let saw_cancel = self.saw_cancel.clone();
        async move {
            job.cancel.cancelled().await;
            saw_cancel.store(true, Ordering::SeqCst);
            Err(JobError::permanent("stopped: the job was cancelled"))
        }
        .boxed()
    }
}

#[tokio::test]
async fn cancel_removes_a_waiting_or_delayed_job_and_stops_a_running_one_which_ends_cancelled() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "900")]).await;
    let queues = env.resources.queues.clone();
    let waiting = id_of(&cli(&env, &ROLLUP).await);
    let delayed = id_of(&cli(&env, &[&ROLLUP[..], &["--delay", "1h"]].concat()).await);
    for id in [&waiting, &delayed] {
        let cancelled = cli(&env, &["jobs", "cancel", id]).await;
        assert!(stdout(&cancelled).contains("removed before it ran"), "{}", stdout(&cancelled));
        assert!(queues.job(id).await.unwrap().is_none(), "job {id} is gone");
    }
    let counts = queues.rollup().counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (0, 0));

    let saw_cancel = Arc::new(AtomicBool::new(false));
    let worker = start_worker(queues.reports(), Arc::new(UntilCancelled { saw_cancel: saw_cancel.clone() }), 1);
    let running = enqueue(queues.reports(), "GENERATE_REPORT").await;
    wait_for_state(&queues, &running, JobState::Active, Duration::from_secs(10)).await;
    let cancelled = cli(&env, &["jobs", "cancel", &running]).await;
    assert!(stdout(&cancelled).contains("asked to stop"), "{}", stdout(&cancelled));
    assert!(
        eventually(Duration::from_secs(10), || async { saw_cancel.load(Ordering::SeqCst) }).await,
        "the processor saw the cancellation in its context"
    );
    assert!(
        eventually(Duration::from_secs(5), || async { queues.reports().counts().await.unwrap().active == 0 }).await
    );
    let job = queues.job(&running).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert_eq!(job.last_error(), Some("cancelled while running"));
    let shown = cli(&env, &["jobs", "show", &running]).await;
    assert!(stdout(&shown).contains("\"cancelled\""), "{}", stdout(&shown));
    let again = cli(&env, &["jobs", "cancel", &running]).await;
    assert_eq!(again.status.code(), Some(1), "nothing left to cancel");
    worker.shutdown.cancel();
    worker.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_processors_log_lines_are_shown_by_jobs_show_and_the_admin_job_page() {
    let (env, _) = crate::report_support::env_with(&[]).await;
    crate::report_support::load_events(&env).await;
    let app = TestApp::full(env).await;
    let env = &app.env;
    let args = ["enqueue", "report", "--type", "revenue_summary", "--format", "json", "--from", "2026-03-07"];
    let report = cli(env, &[&args[..], &["--to", "2026-03-09", "--wait"]].concat()).await;
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    let stderr = String::from_utf8_lossy(&report.stderr).into_owned();
    let id = stderr.split("enqueued job ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_owned();

    let shown: serde_json::Value = serde_json::from_str(&stdout(&cli(env, &["jobs", "show", &id]).await)).unwrap();
    let log: Vec<&str> = shown["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(log.contains(&"2026-03-08: stored events changed since its daily rollup; rolling it up again"), "{log:?}");
    assert!(log.last().unwrap().starts_with("Data complete to "), "{log:?}");

    let page =
        app.client.get(app.url(&format!("/admin/jobs/{id}"))).bearer_auth("test-admin-token").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"log\"") && html.contains("2026-03-07: stored events changed since"), "{html}");
    app.stop().await;
}
