//! The framework from the outside: the example job kind (`examples/custom_kind/kind.rs`, compiled
//! here as a module) runs through the real queue and worker with retries, the failed queue, `jobs
//! retry`, `enqueue --file` and a schedule; an unknown kind is a clear error in a job file, in
//! `scheduler.toml` and in the admin form.

#[path = "../../examples/custom_kind/kind.rs"]
mod kind;

use std::{path::Path, time::Duration};

use clap::Parser;
use eventmill::{
    app::{self, Resources},
    cli::Cli,
    commands,
    queue::{JobRecord, JobState},
    scheduler::config,
    shutdown::Shutdown,
};

use crate::{
    helpers::{TestApp, TestEnv, eventually},
    jobs_support::wait_for_state,
};

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn cli(resources: &Resources, args: &[&str]) -> std::process::ExitCode {
    let command = Cli::try_parse_from(std::iter::once("eventmill").chain(args.iter().copied())).unwrap().command;
    let settings = (*resources.settings).clone();
    commands::dispatch_with(command, settings, kind::registry()).await.unwrap()
}

async fn jobs_of(resources: &Resources, state: JobState) -> Vec<JobRecord> {
    let queues = &resources.queues;
    queues.list(queues.named(kind::COUNTS_QUEUE).unwrap(), state, 100).await.unwrap()
}

#[tokio::test]
async fn a_kind_defined_outside_the_crate_gets_retries_the_failed_queue_the_cli_and_schedules() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("custom-{}", uuid::Uuid::new_v4().simple()));
    let job_file = write(&dir, "count.toml", "job_type = \"COUNT_EVENTS\"\ndate = \"today\"\nmin_events = 1\n");
    let schedules = "[[schedule]]\nname = \"count-today\"\ncron = \"* * * * * *\"\n\
                     [schedule.job]\njob_type = \"COUNT_EVENTS\"\ndate = \"today\"\n";
    let scheduler_file = write(&dir, "scheduler.toml", schedules);
    let env = TestEnv::with(&[("EVENTMILL_SCHEDULER_FILE", &scheduler_file), ("EVENTMILL_CONSUMERS", "1")]).await;
    let resources = Resources::with_registry(env.settings.clone(), kind::registry()).unwrap();
    let shutdown = Shutdown::new();
    let worker = tokio::spawn({
        let (resources, shutdown) = (resources.clone(), shutdown.clone());
        async move { app::worker(&resources, shutdown).await }
    });

    // `enqueue --file`: no events yet, so both attempts (the kind's own policy) fail.
    assert_eq!(cli(&resources, &["enqueue", "--file", &job_file]).await, std::process::ExitCode::SUCCESS);
    let found = eventually(Duration::from_secs(10), || async {
        jobs_of(&resources, JobState::Failed).await.iter().any(|j| j.origin == "cli")
    })
    .await;
    assert!(found, "the CLI's job did not fail: {:?}", jobs_of(&resources, JobState::Failed).await);
    let failed = jobs_of(&resources, JobState::Failed).await.into_iter().find(|j| j.origin == "cli").unwrap();
    assert_eq!((failed.kind.as_str(), failed.attempts, failed.errors.len()), ("COUNT_EVENTS", 2, 2));
    assert!(failed.last_error().unwrap().contains("only 0 of at least 1"), "{:?}", failed.errors);
    assert_eq!(failed.payload["date"], chrono::Utc::now().date_naive().to_string(), "relative date resolved");

    // An event arrives; `jobs retry` brings the job to success, with its log line.
    sqlx::query("INSERT INTO events (event_id, event_type, ts, source) VALUES ($1, 'page_view', now(), 'web')")
        .bind(uuid::Uuid::new_v4())
        .execute(env.pool())
        .await
        .unwrap();
    assert_eq!(cli(&resources, &["jobs", "retry", &failed.id]).await, std::process::ExitCode::SUCCESS);
    let done = wait_for_state(&resources.queues, &failed.id, JobState::Completed, Duration::from_secs(10)).await;
    assert_eq!(done.result.unwrap()["events"], 1);
    let log = resources.queues.log(&failed.id).await.unwrap();
    assert!(log.last().is_some_and(|l| l.contains("1 event(s) stored")), "{log:?}");

    // The schedule enqueued a job per second on the example's queue, and they ran.
    let scheduled = eventually(Duration::from_secs(10), || async {
        jobs_of(&resources, JobState::Completed).await.iter().any(|j| j.origin.starts_with("schedule:count-today@"))
    })
    .await;
    assert!(scheduled, "{:?}", jobs_of(&resources, JobState::Completed).await);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn an_unknown_kind_is_a_clear_error_naming_it_in_a_job_file_scheduler_toml_and_the_admin_form() {
    let env = TestEnv::new().await;
    let registry = kind::registry();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unknown-{}", uuid::Uuid::new_v4().simple()));
    let file = write(&dir, "nope.toml", "job_type = \"COUNT_EVENT\"\ndate = \"today\"\n");

    let args = Cli::try_parse_from(["eventmill", "enqueue", "--file", &file]).unwrap();
    let eventmill::cli::Command::Enqueue(args) = args.command else { unreachable!() };
    let err = eventmill_jobs::cli::job_from_args(&args, &registry).unwrap_err().to_string();
    assert!(err.contains("unknown job kind \"COUNT_EVENT\"") && err.contains("COUNT_EVENTS"), "{err}");

    let toml = "[[schedule]]\nname = \"typo\"\ncron = \"0 2 * * *\"\n[schedule.job]\njob_type = \"DAILY_ROLUP\"\n";
    let err = config::parse(toml, Path::new("."), &registry).unwrap_err();
    assert!(err.contains("schedule \"typo\"") && err.contains("unknown job kind \"DAILY_ROLUP\""), "{err}");

    let app = TestApp::api(env).await;
    let response = app
        .client
        .post(app.url("/admin/api/enqueue"))
        .bearer_auth(crate::browser::ADMIN_TOKEN)
        .json(&serde_json::json!({ "job": "job_type = \"GENERATE_RAPORT\"" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "a bad job is refused as unprocessable");
    let body = response.text().await.unwrap();
    assert!(body.contains("unknown job kind") && body.contains("GENERATE_RAPORT"), "{body}");
    app.stop().await;
}
