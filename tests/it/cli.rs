//! The `eventmill` binary as an operator uses it (SPEC section 12): `enqueue ... --wait` with its
//! exit codes and the output path alone on the last line, `jobs list|show|retry`.

use std::{path::Path, process::Output, time::Duration};

use secrecy::ExposeSecret;

use crate::{
    helpers::{TestApp, TestEnv, eventually},
    report_support,
};

/// Runs the binary against `env`'s database, Redis prefix and reports folder (asynchronously: the
/// app under test runs on the same runtime).
async fn cli(env: &TestEnv, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
        .args(args)
        .env("EVENTMILL_REDIS_URL", env.settings.redis_url.expose_secret())
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_REPORTS_DIR", &env.settings.reports_dir)
        .env("EVENTMILL_ADMIN_TOKEN", "x")
        .env("EVENTMILL_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
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
