//! The `eventmill` binary as an operator uses it (SPEC section 12): `enqueue ... --wait` with its
//! exit codes and the output path alone on the last line, `jobs list|show|retry`.

use std::{path::Path, process::Output, time::Duration};

use secrecy::ExposeSecret;
use tokio::io::AsyncBufReadExt;

use crate::{
    helpers::{TestApp, TestEnv, eventually},
    report_support,
};

/// Runs the binary against `env`'s database, Redis prefix and reports folder (asynchronously: the
/// app under test runs on the same runtime).
pub async fn cli(env: &TestEnv, args: &[&str]) -> Output {
    command(env, args).env("EVENTMILL_ADMIN_TOKEN", "x").output().await.unwrap()
}

/// The binary with `args`, set up for `env`, without an admin token.
fn command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"));
    command
        .args(args)
        .env("EVENTMILL_REDIS_URL", env.settings.redis.url.expose_secret())
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_REPORTS_DIR", &env.settings.reports_dir)
        .env_remove("EVENTMILL_ADMIN_TOKEN")
        .env("EVENTMILL_LOG", "warn");
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn enqueue_with_wait_runs_rollups_reports_and_exports_and_prints_the_file_last() {
    let (env, reports) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let app = TestApp::full(env).await;
    let env = &app.env;

    let rollup = cli(env, &["enqueue", "rollup", "--daily", "--date", "2026-03-08", "--wait"]).await;
    assert_eq!(rollup.status.code(), Some(0), "{}", String::from_utf8_lossy(&rollup.stderr));
    assert!(stdout(&rollup).contains("completed"), "{}", stdout(&rollup));
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM rollup_daily_summary WHERE day = '2026-03-08'")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(days, 1);

    let report = cli(
        env,
        &[
            "enqueue",
            "report",
            "--type",
            "ENGAGEMENT_METRICS",
            "--format",
            "CSV",
            "--from",
            "2026-03-08",
            "--to",
            "2026-03-08",
            "--wait",
        ],
    )
    .await;
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    let path = last_line(&report);
    assert!(Path::new(&path).starts_with(&reports) && Path::new(&path).is_file(), "last line: {path}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("2026-03-08"));

    let export = cli(
        env,
        &[
            "enqueue",
            "export",
            "--data",
            "TRANSACTIONS",
            "--format",
            "JSON",
            "--from",
            "2026-03-07",
            "--to",
            "2026-03-09",
            "--wait",
        ],
    )
    .await;
    assert_eq!(export.status.code(), Some(0), "{}", String::from_utf8_lossy(&export.stderr));
    let path = last_line(&export);
    let rows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1487, "every purchase of the golden days");

    let escaping = cli(
        env,
        &[
            "enqueue",
            "export",
            "--data",
            "COSTS",
            "--format",
            "CSV",
            "--from",
            "2026-03-07",
            "--to",
            "2026-03-07",
            "--output",
            "../x.csv",
            "--wait",
        ],
    )
    .await;
    assert_ne!(escaping.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&escaping.stderr).contains("leaves the reports folder"));
    app.stop().await;
}

#[tokio::test]
async fn a_failed_job_is_listed_by_the_cli_and_jobs_retry_brings_it_to_success() {
    let (env, _) = report_support::env_with(&[("EVENTMILL_JOB_BACKOFF_MS", "50")]).await;
    report_support::load_events(&env).await;
    sqlx::query("ALTER TABLE rollup_cost_daily RENAME TO rollup_cost_daily_away").execute(env.pool()).await.unwrap();
    let app = TestApp::full(env).await;
    let env = &app.env;

    let failed = cli(env, &["enqueue", "rollup", "--daily", "--date", "2026-03-07", "--wait"]).await;
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(stderr.contains("failed after 3 attempt(s)") && stderr.contains("rollup_cost_daily"), "{stderr}");
    let id = stderr.split("job ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().to_owned();

    let listed = cli(env, &["jobs", "list", "--state", "failed"]).await;
    assert!(
        stdout(&listed).lines().any(|line| line.starts_with(&id) && line.contains("DAILY_ROLLUP")),
        "{}",
        stdout(&listed)
    );

    sqlx::query("ALTER TABLE rollup_cost_daily_away RENAME TO rollup_cost_daily").execute(env.pool()).await.unwrap();
    let retried = cli(env, &["jobs", "retry", &id]).await;
    assert_eq!(retried.status.code(), Some(0), "{}", String::from_utf8_lossy(&retried.stderr));
    let completed = eventually(Duration::from_secs(10), || async {
        let shown = cli(env, &["jobs", "show", &id]).await;
        stdout(&shown).contains("\"completed\"")
    })
    .await;
    assert!(completed, "{}", stdout(&cli(env, &["jobs", "show", &id]).await));
    app.stop().await;
}

#[tokio::test]
async fn relative_days_starting_with_a_dash_and_choices_in_any_case_are_accepted() {
    let (env, _) = report_support::env_with(&[]).await;
    let app = TestApp::full(env).await;
    let env = &app.env;
    let args = ["enqueue", "report", "--type", "revenue_summary", "--format", "json", "--from", "-7d", "--to", "today"];
    let report = cli(env, &[&args[..], &["--wait"]].concat()).await;
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(last_line(&report)).unwrap()).unwrap();
    let today = chrono::Utc::now().date_naive();
    assert_eq!(json["report_type"], "REVENUE_SUMMARY");
    assert_eq!(json["period"]["start_date"], (today - chrono::Days::new(7)).to_string());
    assert_eq!(json["period"]["end_date"], today.to_string());

    let export =
        cli(env, &["enqueue", "export", "--data", "Transactions", "--format", "Csv", "--from", "-1d", "--to", "-1d"])
            .await;
    assert_eq!(export.status.code(), Some(0), "{}", String::from_utf8_lossy(&export.stderr));
    let rollup = cli(env, &["enqueue", "rollup", "--hourly", "--start", "-2h", "--end", "-1h"]).await;
    assert_eq!(rollup.status.code(), Some(0), "{}", String::from_utf8_lossy(&rollup.stderr));

    let bad =
        cli(env, &["enqueue", "report", "--type", "revenue", "--format", "pdf", "--from", "-7d", "--to", "today"])
            .await;
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("'revenue'") && stderr.contains("REVENUE_SUMMARY, ENGAGEMENT_METRICS"), "{stderr}");
    app.stop().await;
}

#[tokio::test]
async fn only_the_http_servers_mention_a_generated_admin_token() {
    let (env, _) = report_support::env_with(&[]).await;
    for args in [
        &["config"][..],
        &["migrate"],
        &["jobs", "list"],
        &["enqueue", "rollup", "--daily", "--date", "yesterday"],
        &["dead-letters", "list"],
    ] {
        let output = command(&env, args).output().await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        let all = format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
        assert!(!all.contains("generated admin token"), "{args:?} printed: {all}");
    }

    let mut serve = command(&env, &["serve"])
        .env("EVENTMILL_HTTP_ADDR", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let announced = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("EVENTMILL_ADMIN_TOKEN is unset; generated admin token for this run: ") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(announced, Ok(true), "serve announces its generated token");
    serve.kill().await.unwrap();
}
