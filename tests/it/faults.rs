//! Fault injection (SPEC sections 5 and 13): processes killed with SIGKILL at random moments under
//! load, and SIGTERM under load; each test ends with the count check (every accepted event stored
//! exactly once, every job accounted for). Outages of PostgreSQL and Redis are in `outages`; the
//! long variants in `scripts/chaos.sh`.

use std::{path::Path, time::Duration};

use serde_json::Value;
use tokio::process::Command;

use crate::{
    email::{Sink, first_message},
    faults_support::{Load, Proc, assert_each_stored_once, random_pause},
    helpers::{TestApp, TestEnv, eventually},
    private::free_port,
    report_support,
};

const ROUNDS: usize = 4;

#[tokio::test]
async fn a_worker_killed_at_random_moments_under_load_loses_and_duplicates_nothing() {
    let app = TestApp::api(TestEnv::new().await).await;
    let load = Load::start(app.url("/v1/events/bulk"), 200);
    for _ in 0..ROUNDS {
        let worker = Proc::start(&app.env, &["worker"], &[]);
        random_pause(300, 1200).await;
        worker.kill9().await;
    }
    let accepted = load.stop().await;
    let last = Proc::start(&app.env, &["worker"], &[]);
    assert_each_stored_once(&app.env, &accepted).await;
    last.kill9().await;
    app.stop().await;
}

#[tokio::test]
async fn a_serve_process_killed_mid_request_with_clients_resending_the_same_ids_stores_each_event_once() {
    let env = TestEnv::new().await;
    let port = free_port();
    let worker = Proc::start(&env, &["worker"], &[]);
    let mut serve = Proc::serve(&env, port, &[]).await;
    let load = Load::start(format!("http://127.0.0.1:{port}/v1/events/bulk"), 500);
    for _ in 0..ROUNDS {
        random_pause(200, 800).await;
        serve.kill9().await;
        serve = Proc::serve(&env, port, &[]).await;
    }
    let accepted = load.stop().await;
    assert_each_stored_once(&env, &accepted).await;
    serve.kill9().await;
    worker.kill9().await;
}

/// `eventmill <args>` against `env`; standard output.
async fn cli(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventmill"));
    command
        .args(args)
        .env("EVENTMILL_REDIS_URL", secrecy::ExposeSecret::expose_secret(&env.settings.redis.url))
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_REPORTS_DIR", &env.settings.reports_dir)
        .env("EVENTMILL_ADMIN_TOKEN", "x")
        .env("EVENTMILL_LOG", "warn");
    for (k, v) in extra {
        command.env(k, v);
    }
    let output = command.output().await.unwrap();
    assert!(output.status.success(), "eventmill {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn job(env: &TestEnv, id: &str) -> Value {
    serde_json::from_str(&cli(env, &["jobs", "show", id], &[]).await).unwrap()
}

async fn wait_for_job(env: &TestEnv, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = job(env, id).await;
        if check(&job) {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {id} never {what}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An e-mailed revenue report of the golden days, enqueued through the CLI; its id.
async fn enqueue_emailed_report(env: &TestEnv) -> String {
    let args = ["enqueue", "report", "--type", "REVENUE_SUMMARY", "--format", "CSV", "--from", "2026-03-07"];
    let output = cli(env, &[&args[..], &["--to", "2026-03-09", "--email", "boss@example.com"]].concat(), &[]).await;
    output.trim().to_owned()
}

fn files_in(folder: &Path) -> usize {
    walk(folder).len()
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] })
        .filter(|p| !p.to_string_lossy().contains(".pending"))
        .collect()
}

/// An SMTP server that accepts connections and never answers: it holds a job in its e-mail step.
/// Its URL, and the task holding the connections open.
async fn hanging_smtp() -> (String, tokio::task::JoinHandle<()>) {
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://127.0.0.1:{}", hang.local_addr().unwrap().port());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            open.push(socket);
        }
    });
    (url, held)
}

/// A real SMTP sink on a free port beside `reports`: its URL, its mail folder and the sink.
async fn mail_sink(reports: &Path) -> (String, std::path::PathBuf, Sink) {
    let port = free_port();
    let mail = reports.with_file_name(format!("mail-{}", uuid::Uuid::new_v4().simple()));
    let sink = Sink::start(port, &mail).await;
    (format!("smtp://127.0.0.1:{port}"), mail, sink)
}

#[tokio::test]
async fn a_job_worker_killed_while_its_job_runs_leaves_the_job_done_once_by_the_next_worker() {
    let (env, reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let (hang_url, _held) = hanging_smtp().await;
    let settings = [("EVENTMILL_JOB_LEASE_MS", "1500"), ("EVENTMILL_JOB_BACKOFF_MS", "200")];
    let worker = Proc::start(&env, &["worker"], &[&settings[..], &[("EVENTMILL_SMTP_URL", &hang_url)]].concat());
    let id = enqueue_emailed_report(&env).await;
    wait_for_job(&env, &id, "reached its e-mail step", |j| {
        j["state"] == "active" && j["progress"].as_u64() >= Some(80)
    })
    .await;
    worker.kill9().await;

    let (smtp, mail, _sink) = mail_sink(&reports).await;
    let next = Proc::start(&env, &["worker"], &[&settings[..], &[("EVENTMILL_SMTP_URL", &smtp)]].concat());
    let done = wait_for_job(&env, &id, "completed", |j| j["state"] == "completed").await;
    first_message(&mail).await;
    assert!(!mail.join("2.json").exists(), "one e-mail, not two");
    assert_eq!(files_in(&reports), 1, "one report file");
    assert_eq!(done["attempts"], 2, "{done}");
    next.kill9().await;
}

/// A flow whose last child is an e-mailed report: three daily rollups and the e-mailed report,
/// then a CSV revenue report of the same days as the parent.
const FLOW: &str = r#"
job_type = "GENERATE_REPORT"
report_type = "REVENUE_SUMMARY"
format = "CSV"
start_date = "2026-03-07"
end_date = "2026-03-09"
[[children]]
job_type = "DAILY_ROLLUP"
date = "2026-03-07"
[[children]]
job_type = "DAILY_ROLLUP"
date = "2026-03-08"
[[children]]
job_type = "DAILY_ROLLUP"
date = "2026-03-09"
[[children]]
job_type = "GENERATE_REPORT"
report_type = "REVENUE_SUMMARY"
format = "JSON"
start_date = "2026-03-07"
end_date = "2026-03-09"
recipient_email = "boss@example.com"
"#;

#[tokio::test]
async fn a_job_worker_killed_during_a_flow_leaves_the_flow_done_once_and_each_child_once() {
    let (env, reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let (hang_url, _held) = hanging_smtp().await;
    let settings = [("EVENTMILL_JOB_LEASE_MS", "1500"), ("EVENTMILL_JOB_BACKOFF_MS", "200")];
    let worker = Proc::start(&env, &["worker"], &[&settings[..], &[("EVENTMILL_SMTP_URL", &hang_url)]].concat());
    let file = reports.with_file_name(format!("flow-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, FLOW).unwrap();
    let parent = cli(&env, &["enqueue", "--file", file.to_str().unwrap()], &[]).await.trim().to_owned();
    let children: Vec<String> = job(&env, &parent).await["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    // The worker dies while the e-mailed child is in its e-mail step, the rollups done.
    wait_for_job(&env, &children[3], "reached its e-mail step", |j| {
        j["state"] == "active" && j["progress"].as_u64() >= Some(80)
    })
    .await;
    worker.kill9().await;
    assert_eq!(job(&env, &parent).await["state"], "waiting-children");

    let (smtp, mail, _sink) = mail_sink(&reports).await;
    let next = Proc::start(&env, &["worker"], &[&settings[..], &[("EVENTMILL_SMTP_URL", &smtp)]].concat());
    let done = wait_for_job(&env, &parent, "completed", |j| j["state"] == "completed").await;
    assert_eq!((done["attempts"].as_u64(), done["errors"].as_array().map(Vec::len)), (Some(1), Some(0)), "{done}");
    for child in &children {
        let child = job(&env, child).await;
        assert_eq!(child["state"], "completed", "{child}");
        assert!(done["started_at"].as_i64() >= child["finished_at"].as_i64());
    }
    first_message(&mail).await;
    assert!(!mail.join("2.json").exists(), "one e-mail, not two");
    assert_eq!(files_in(&reports), 2, "one file for the child report, one for the parent");
    next.kill9().await;
}

#[tokio::test]
async fn a_job_worker_killed_during_a_backoff_wait_leaves_the_retry_to_the_next_worker() {
    let (env, reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let port = free_port(); // nothing listens yet: the first attempt fails and waits to retry
    let smtp = format!("smtp://127.0.0.1:{port}");
    let settings = [("EVENTMILL_SMTP_URL", smtp.as_str()), ("EVENTMILL_JOB_BACKOFF_MS", "1500")];
    let worker = Proc::start(&env, &["worker"], &settings);
    let id = enqueue_emailed_report(&env).await;
    wait_for_job(&env, &id, "waited for a retry", |j| j["state"] == "delayed").await;
    worker.kill9().await;

    let mail = reports.with_file_name(format!("mail-{}", uuid::Uuid::new_v4().simple()));
    let _sink = Sink::start(port, &mail).await;
    let next = Proc::start(&env, &["worker"], &settings);
    let done = wait_for_job(&env, &id, "completed", |j| j["state"] == "completed").await;
    first_message(&mail).await;
    assert!(!mail.join("2.json").exists(), "one e-mail, not two");
    assert_eq!(files_in(&reports), 1, "one report file");
    assert_eq!(done["attempts"], 2, "{done}");
    next.kill9().await;
}

#[tokio::test]
async fn sigterm_under_load_flushes_buffers_hands_back_jobs_and_exits_within_10_s() {
    let (env, _reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // A long flush interval and batch: events sit in the consumer's buffer when SIGTERM arrives.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("smtp://127.0.0.1:{}", hang.local_addr().unwrap().port());
    let extra = [
        ("EVENTMILL_HTTP_ADDR", addr.as_str()),
        ("EVENTMILL_FLUSH_INTERVAL_MS", "3000"),
        ("EVENTMILL_BATCH_SIZE", "100000"),
        ("EVENTMILL_SMTP_URL", hang_url.as_str()),
        ("EVENTMILL_JOB_SHUTDOWN_GRACE_MS", "3000"),
    ];
    let run = Proc::start(&env, &["run"], &extra);
    let url = format!("http://{addr}");
    assert!(
        eventually(Duration::from_secs(20), || async { reqwest::get(format!("{url}/healthz")).await.is_ok() }).await
    );
    let id = enqueue_emailed_report(&env).await;
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            open.push(socket);
        }
    });
    let load = Load::start(format!("{url}/v1/events/bulk"), 200);
    wait_for_job(&env, &id, "started", |j| j["state"] == "active").await;
    assert!(eventually(Duration::from_secs(10), || async { load.accepted() >= 1000 }).await);
    let (status, took) = run.terminate().await;
    assert!(status.success(), "exit status {status}");
    assert!(took <= Duration::from_secs(10), "took {took:?}");
    let mut redis = env.redis();
    let (pending, ..): (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(&env.resources.keys.events)
        .arg(&env.resources.keys.group)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(pending, 0, "every entry read was stored and acknowledged before exit");
    let golden = report_support::golden_events().len() as i64;
    assert!(env.count_events().await > golden, "the consumer's buffer was flushed on SIGTERM");
    let job = job(&env, &id).await;
    assert_eq!(job["state"], "waiting", "the running job was handed back: {job}");
    // Started again, eventmill takes the client's re-sent batch and stores the rest.
    let again = Proc::start(&env, &["run"], &extra);
    let accepted = load.stop().await;
    let golden: Vec<uuid::Uuid> =
        report_support::golden_events().iter().map(|e| e["event_id"].as_str().unwrap().parse().unwrap()).collect();
    assert_each_stored_once(&env, &[accepted, golden].concat()).await;
    again.kill9().await;
}
