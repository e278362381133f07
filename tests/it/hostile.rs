//! Hostile input: what PostgreSQL would refuse is a 422 at the door (SPEC section 4), and job input
//! built to escape, inject or exhaust is refused with a clear error before anything is written.

use std::{path::Path, process::Output};

use eventmill::{
    domain::job::{ExportData, ExportDataType, ExportFilters, Format},
    processors::export_data,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestEnv},
    report_support,
};

async fn stream_len(app: &TestApp) -> u64 {
    let mut redis = app.env.redis();
    redis::cmd("XLEN").arg(&app.env.resources.keys.events).query_async(&mut redis).await.unwrap()
}

#[tokio::test]
async fn what_postgresql_would_refuse_is_a_422_naming_the_field_and_nothing_is_queued() {
    let app = TestApp::api(TestEnv::new().await).await;
    let cases = [
        (r#"{"event_type":"x","properties":{"a":"\ud800"}}"#, "properties", "surrogate"),
        (r#"{"event_type":"x","properties":{"a":["ok","\udc00"]}}"#, "properties", "surrogate"),
        (r#"{"event_type":"x","properties":{"\ud800":1}}"#, "properties", "surrogate"),
        (r#"{"event_type":"x","properties":{"k\u0000":1}}"#, "properties", "\\u0000"),
        (r#"{"event_type":"x","properties":{"a":{"b":"\u0000"}}}"#, "properties", "\\u0000"),
        (r#"{"event_type":"x","properties":{"n":1e400000}}"#, "properties", "numeric"),
        (r#"{"event_type":"x","user_id":"\ud800"}"#, "user_id", "surrogate"),
        (r#"{"event_type":"x","session_id":"a\u0000"}"#, "session_id", "\\u0000"),
        (r#"{"event_type":"x","\ud800":1}"#, "", "surrogate"),
    ];
    for (body, field, word) in cases {
        let response = app.post_json("/v1/events", body).await;
        assert_eq!(response.status(), 422, "{body}");
        let json: Value = response.json().await.unwrap();
        let detail = &json["details"][0];
        assert_eq!(detail["field"], field, "{body}: {json}");
        assert!(detail["reason"].as_str().unwrap().contains(word), "{body}: {json}");
    }
    // One bad event among good ones: the whole batch is refused, its index named.
    let bulk = r#"{"events":[{"event_type":"a"},{"event_type":"b","properties":{"x":"\ud800"}},{"event_type":"c"}]}"#;
    let response = app.post_json("/v1/events/bulk", bulk).await;
    assert_eq!(response.status(), 422);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["details"][0]["index"], 1, "{json}");
    // A full surrogate pair and an escaped backslash before `u0000` are fine.
    let fine = r#"{"event_type":"x","properties":{"emoji":"\ud83d\ude00","path":"C:\\u0000"}}"#;
    assert_eq!(app.post_json("/v1/events", fine).await.status(), 202);
    assert_eq!(stream_len(&app).await, 1, "only the valid event is queued");
    app.stop().await;
}

/// `eventmill enqueue --file <file>` against `env`, in a child process.
async fn enqueue_file(env: &TestEnv, file: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
        .args(["enqueue", "--file"])
        .arg(file)
        .env("EVENTMILL_REDIS_URL", env.settings.redis.url.expose_secret())
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_REPORTS_DIR", &env.settings.reports_dir)
        .env("EVENTMILL_ADMIN_TOKEN", "x")
        .env("EVENTMILL_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn report_job(extra: Value) -> Value {
    let mut job = json!({"job_type": "GENERATE_REPORT", "report_type": "REVENUE_SUMMARY", "format": "CSV",
        "start_date": "-7d", "end_date": "today"});
    job.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    job
}

#[tokio::test]
async fn hostile_job_files_are_refused_with_a_clear_error_and_nothing_is_queued_or_written() {
    let (env, reports) = report_support::env_with(&[]).await;
    let dir = reports.with_file_name(format!("jobfiles-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut deep = json!("x");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let big = format!(r#"{{"job_type":"DAILY_ROLLUP","date":"today","profile_ids":["{}"]}}"#, "p".repeat(10 << 20));
    let cases: Vec<(&str, String, &str)> = vec![
        ("big.json", big, "at most"),
        ("deep.json", json!({"job_type": "DAILY_ROLLUP", "date": "today", "profile_ids": deep}).to_string(), "deeper"),
        ("deeper.json", format!("{}{}", "[".repeat(5000), "]".repeat(5000)), "recursion limit"),
        (
            "crlf.json",
            report_job(json!({"recipient_email": "a@example.com\r\nBcc: spy@evil.test"})).to_string(),
            "not one address",
        ),
        (
            "several.json",
            report_job(json!({"recipient_email": "a@example.com, spy@evil.test"})).to_string(),
            "not one address",
        ),
        (
            "listed.json",
            report_job(json!({"recipient_email": ["a@example.com", "b@x.test;c@x.test"]})).to_string(),
            "not one address",
        ),
        (
            "escape.json",
            report_job(json!({"output_path": "../../etc/cron.d/x"})).to_string(),
            "leaves the reports folder",
        ),
        ("absolute.json", report_job(json!({"outputPath": "/etc/cron.d/x"})).to_string(), "leaves the reports folder"),
        (
            "sql.json",
            json!({"job_type": "EXPORT_DATA", "data_type": "ENGAGEMENT", "format": "CSV", "start_date": "-1d",
            "end_date": "today", "filters": {"event_type": "x' OR '1'='1"}})
            .to_string(),
            "may only contain",
        ),
        (
            "nul.toml",
            "job_type = \"DAILY_ROLLUP\"\ndate = \"today\"\nprofile_ids = [\"a\\u0000b\"]\n".to_owned(),
            "NUL",
        ),
    ];
    for (name, text, word) in cases {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let output = enqueue_file(&env, &file).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} was accepted");
        assert!(stderr.contains(word), "{name}: {stderr}");
    }
    let mut redis = env.redis();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}:*", env.prefix)).query_async(&mut redis).await.unwrap();
    assert!(keys.iter().all(|k| !k.contains("job")), "nothing enqueued: {keys:?}");
    let written: Vec<_> = std::fs::read_dir(&reports).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(written.is_empty(), "nothing written: {written:?}");
}

#[tokio::test]
async fn export_filter_values_with_quotes_and_sql_match_literally() {
    let (env, _) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let before = env.count_events().await;
    let (ctx, _) = report_support::context(&env, "export-sql", 1);
    let mut job = ExportData {
        data_type: ExportDataType::Engagement,
        format: Format::Json,
        start_date: "2026-03-07".parse().unwrap(),
        end_date: "2026-03-09".parse().unwrap(),
        filters: ExportFilters::default(),
        output_path: None,
    };
    let hostile = ["x' OR '1'='1", "'; DROP TABLE events; --", "\\\" OR 1=1 --", "%"];
    for value in hostile {
        job.filters = ExportFilters { user_id: Some(value.into()), ..ExportFilters::default() };
        let out = export_data(&ctx, &job).await.unwrap();
        assert_eq!(out.summary["rows"], 0, "user_id {value:?} matched rows");
        job.filters = ExportFilters::default();
        job.filters.properties.insert("profile_id".into(), json!(value));
        let out = export_data(&ctx, &job).await.unwrap();
        assert_eq!(out.summary["rows"], 0, "properties.profile_id {value:?} matched rows");
    }
    assert_eq!(env.count_events().await, before, "the table is intact");
}
