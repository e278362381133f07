//! Many processes on one Redis and PostgreSQL (SPEC section 15), with the real binary: two `serve`
//! and two `worker` share the load (each consumer and each job worker takes part, visible in their
//! `/metrics`), every event is stored exactly once, each schedule tick runs once, and a worker
//! killed with SIGKILL has its stream entries and its running job taken over by the other.

use std::{collections::HashMap, time::Duration};

use eventmill::{
    domain::job::{DailyRollup, Job},
    processors::DailyRollups,
    queue::{EnqueueOptions, JobState},
};
use sqlx::{Connection, PgConnection};

use crate::{
    fleet::{self, Process, TOKEN, metric},
    helpers::{TestEnv, bulk_events, eventually},
};

/// A scheduler file with one schedule ticking every second (a rollup of the previous hour).
fn every_second_schedule() -> std::path::PathBuf {
    let jobs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/hourly-rollup.toml");
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("every-second-{}.toml", uuid::Uuid::new_v4().simple()));
    let text = format!("[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\njob_file = {:?}\n", jobs);
    std::fs::write(&path, text).unwrap();
    path
}

/// No schedule at all.
fn no_schedules() -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("no-schedules-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, "# nothing scheduled\n").unwrap();
    path
}

async fn post_bulk(client: &reqwest::Client, process: &Process, body: String) {
    let response = client
        .post(process.url("/v1/events/bulk"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn distinct_events(env: &TestEnv) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events").fetch_one(env.pool()).await.unwrap()
}

/// The process id inside a consumer or worker name (`host-pid-...`).
fn pid_of(name: &str) -> Option<u32> {
    name.split('-').rev().nth(2).and_then(|pid| pid.parse().ok())
}

fn daily(date: &str) -> Job {
    Job::of::<DailyRollups, _>(&DailyRollup { date: date.parse().unwrap(), profile_ids: None })
}

#[tokio::test]
async fn two_serve_and_two_worker_processes_share_the_load_store_once_and_run_each_tick_once() {
    let env = TestEnv::new().await;
    let schedule = every_second_schedule();
    let schedule = schedule.to_str().unwrap();
    let apis = [fleet::start(&env, "serve", &[]).await, fleet::start(&env, "serve", &[]).await];
    let worker_settings =
        [("EVENTMILL_SCHEDULER_FILE", schedule), ("EVENTMILL_JOB_CONCURRENCY", "1"), ("EVENTMILL_BATCH_SIZE", "200")];
    let workers =
        [fleet::start(&env, "worker", &worker_settings).await, fleet::start(&env, "worker", &worker_settings).await];

    // /metrics on the API wants a token; EVENTMILL_METRICS_ADDR does not.
    let client = reqwest::Client::new();
    assert_eq!(client.get(apis[0].url("/metrics")).send().await.unwrap().status(), 401);
    let protected = client.get(apis[0].url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(protected.status(), 200);
    let text = protected.text().await.unwrap();
    assert!(text.contains("eventmill_stream_length"));
    // eventmill's kinds declare SLOs: their targets are exported (seconds), their state too.
    let hourly = [r#"kind="HOURLY_ROLLUP""#, r#"slo="wait_p95""#];
    assert_eq!(metric(&text, "eventmill_job_slo_target", &hourly), 10.0, "{text}");
    assert_eq!(metric(&text, "eventmill_job_slo_breached", &hourly), 0.0);

    for round in 0..40 {
        let (body, _) = bulk_events(250, "2026-11-23T10:00:00Z");
        post_bulk(&client, &apis[round % 2], body).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = eventually(Duration::from_secs(30), || async { env.count_events().await == 10_000 }).await;
    assert!(stored, "{} of 10,000 events stored", env.count_events().await);
    assert_eq!(distinct_events(&env).await, (10_000, 10_000));

    for api in &apis {
        let text = api.scrape().await;
        assert_eq!(metric(&text, "eventmill_ingest_events_total", &[r#"outcome="accepted""#]), 5000.0);
        assert_eq!(
            metric(&text, "eventmill_ingest_requests_total", &[r#"endpoint="bulk""#, r#"outcome="accepted""#]),
            20.0
        );
        let route = r#"route="/v1/events/bulk""#;
        assert_eq!(metric(&text, "eventmill_http_request_duration_seconds_count", &[route]), 20.0);
    }
    let mut rows = Vec::new();
    for worker in &workers {
        rows.push(metric(&worker.scrape().await, "eventmill_rows_stored_total", &[]));
    }
    assert!(rows.iter().all(|&r| r > 0.0), "each worker's consumer stores a share: {rows:?}");
    assert_eq!(rows.iter().sum::<f64>(), 10_000.0);

    // Forty jobs: each job worker runs some, none runs twice.
    let mut ids = Vec::new();
    for day in 1..=40 {
        let spec = daily(&format!("2026-10-{:02}", (day % 28) + 1));
        let options = EnqueueOptions { origin: format!("test-{day}"), ..Default::default() };
        ids.push(env.resources.queues.enqueue(&spec, options).await.unwrap().id);
    }
    let queues = &env.resources.queues;
    let done = eventually(Duration::from_secs(30), || async {
        let mut all = true;
        for id in &ids {
            all &= queues.job(id).await.unwrap().is_some_and(|j| j.state == JobState::Completed);
        }
        all
    })
    .await;
    assert!(done, "the forty jobs did not all complete");
    let mut by_process: HashMap<u32, usize> = HashMap::new();
    for id in &ids {
        let job = queues.job(id).await.unwrap().unwrap();
        assert_eq!(job.attempts, 1, "{job:?}");
        *by_process.entry(pid_of(job.worker.as_deref().unwrap()).unwrap()).or_default() += 1;
    }
    assert_eq!(by_process.len(), 2, "both job workers take part: {by_process:?}");
    for worker in &workers {
        let text = worker.scrape().await;
        let completed = metric(&text, "eventmill_jobs_total", &[r#"kind="DAILY_ROLLUP""#, r#"outcome="completed""#]);
        assert_eq!(completed as usize, by_process[&worker.pid()], "{text}");
    }

    // Both schedulers saw every tick; each tick has exactly one job.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rollup = queues.named("analytics:rollup").unwrap();
    let rollup_jobs = queues.list(rollup, JobState::Completed, 1000).await.unwrap();
    let mut ticks: HashMap<String, usize> = HashMap::new();
    for job in rollup_jobs.iter().filter(|j| j.origin.starts_with("schedule:every-second@")) {
        *ticks.entry(job.origin.clone()).or_default() += 1;
    }
    assert!(ticks.len() >= 2, "{ticks:?}");
    assert!(ticks.values().all(|&n| n == 1), "a tick ran twice: {ticks:?}");
    let mut enqueued = 0.0;
    for worker in &workers {
        let text = worker.scrape().await;
        enqueued += metric(&text, "eventmill_scheduler_ticks_total", &[r#"outcome="enqueued""#]);
    }
    assert!(enqueued >= ticks.len() as f64, "enqueued {enqueued}, ticks {ticks:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_batch_and_mid_job_has_its_entries_and_job_taken_over() {
    let env = TestEnv::new().await;
    let schedule = no_schedules();
    let settings = [
        ("EVENTMILL_SCHEDULER_FILE", schedule.to_str().unwrap()),
        ("EVENTMILL_JOB_CONCURRENCY", "1"),
        ("EVENTMILL_BATCH_SIZE", "100"),
        ("EVENTMILL_RECLAIM_IDLE_MS", "1000"),
        ("EVENTMILL_RECLAIM_INTERVAL_MS", "200"),
        ("EVENTMILL_JOB_LEASE_MS", "1500"),
    ];
    let api = fleet::start(&env, "serve", &[]).await;
    let mut doomed = fleet::start(&env, "worker", &settings).await;
    let survivor = fleet::start(&env, "worker", &settings).await;

    // Nothing can be written or read while the test holds the events table: both consumers end up
    // holding read-but-unstored entries, both job workers a running rollup.
    let mut lock = PgConnection::connect(&env.db_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE").execute(&mut lock).await.unwrap();
    let client = reqwest::Client::new();
    for _ in 0..10 {
        post_bulk(&client, &api, bulk_events(100, "2026-11-23T10:00:00Z").0).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let queues = &env.resources.queues;
    let mut ids = Vec::new();
    for date in ["2026-11-23", "2026-11-24"] {
        ids.push(queues.enqueue(&daily(date), EnqueueOptions::default()).await.unwrap().id);
    }
    let doomed_pid = doomed.pid();
    let mut redis = env.redis();
    let keys = &env.resources.keys;
    let held = &ids;
    let holds = eventually(Duration::from_secs(10), || {
        let mut redis = redis.clone();
        async move {
            let members: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&keys.events)
                .arg(&keys.group)
                .query_async(&mut redis)
                .await
                .unwrap();
            let pending = members.consumers.iter().any(|c| pid_of(&c.name) == Some(doomed_pid) && c.pending > 0);
            let mut running = false;
            for id in held {
                let job = queues.job(id).await.unwrap().unwrap();
                running |= job.state == JobState::Active && job.worker.as_deref().and_then(pid_of) == Some(doomed_pid);
            }
            pending && running
        }
    })
    .await;
    assert!(holds, "the doomed worker never held both entries and a job");

    doomed.kill().await;
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();

    let stored = eventually(Duration::from_secs(30), || async { env.count_events().await == 1000 }).await;
    assert!(stored, "{} of 1,000 events stored", env.count_events().await);
    assert_eq!(distinct_events(&env).await, (1000, 1000));
    let text = survivor.scrape().await;
    assert_eq!(metric(&text, "eventmill_rows_stored_total", &[]), 1000.0, "the survivor stored everything");
    let pending: redis::streams::StreamPendingReply =
        redis::cmd("XPENDING").arg(&keys.events).arg(&keys.group).query_async(&mut redis).await.unwrap();
    assert_eq!(pending.count(), 0);

    for id in &ids {
        let finished = eventually(Duration::from_secs(30), || async {
            queues.job(id).await.unwrap().is_some_and(|j| j.state == JobState::Completed)
        })
        .await;
        let job = queues.job(id).await.unwrap().unwrap();
        assert!(finished, "{job:?}");
        assert_eq!(job.worker.as_deref().and_then(pid_of), Some(survivor.pid()), "{job:?}");
    }
    let text = survivor.scrape().await;
    assert_eq!(metric(&text, "eventmill_jobs_total", &[r#"kind="DAILY_ROLLUP""#, r#"outcome="completed""#]), 2.0);
}
