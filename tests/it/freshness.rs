//! Reports are never stale (SPEC section 9): a day that got events after its daily rollup (late
//! events, today's traffic) is recomputed before a report reads it, and every report says to when
//! its data is complete.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use eventmill::{
    domain::job::{Format, GenerateReport, ReportType},
    processors::{JobOutput, generate_report},
    store::{self, EventRow},
};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestEnv, eventually},
    report_support::{self, expected, pdf_text},
};

fn golden_period(format: Format) -> GenerateReport {
    GenerateReport {
        report_type: ReportType::RevenueSummary,
        format,
        start_date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
        profile_ids: None,
        recipient_email: Vec::new(),
        output_path: None,
    }
}

async fn report(env: &TestEnv, job: &GenerateReport) -> JobOutput {
    let (ctx, _) = report_support::context(env, &format!("fresh-{}", uuid::Uuid::new_v4().simple()), 1);
    generate_report(&ctx, job).await.unwrap()
}

fn file_json(out: &JobOutput) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.path.as_ref().unwrap()).unwrap()).unwrap()
}

/// `n` purchases of 10.00 at `ts`, stored with the real writer (as the consumer does).
async fn store_purchases(env: &TestEnv, n: usize, ts: &str) {
    let micros = ts.parse::<DateTime<Utc>>().unwrap().timestamp_micros();
    let rows: Vec<EventRow> = (0..n)
        .map(|i| EventRow {
            event_id: uuid::Uuid::new_v4(),
            event_type: "purchase".into(),
            ts_micros: micros + i as i64,
            user_id: Some(format!("late-{i}")),
            session_id: None,
            source: "web".into(),
            properties: serde_json::value::to_raw_value(&json!({ "amount": 10.0 })).unwrap(),
            ingested_micros: Utc::now().timestamp_micros(),
        })
        .collect();
    let refs: Vec<&EventRow> = rows.iter().collect();
    env.resources.partitions.ensure_for(refs.iter().map(|r| r.ts_micros)).await.unwrap();
    assert!(store::write_rows(env.pool(), &refs).await.unwrap().refused.is_empty());
}

fn complete_to(json: &Value) -> DateTime<Utc> {
    json["data_complete_to"].as_str().unwrap_or_else(|| panic!("no data_complete_to in {json}")).parse().unwrap()
}

#[tokio::test]
async fn a_day_that_got_late_events_after_its_rollup_is_recomputed_and_the_report_says_when_it_is_complete() {
    let (env, _) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    report_support::fill_rollups(&env).await;
    let totals = &expected()["totals"];
    let orders = totals["orders"].as_i64().unwrap();

    let before = Utc::now() - chrono::Duration::seconds(1);
    let first = report(&env, &golden_period(Format::Json)).await;
    assert_eq!(first.summary["days_rolled_up_first"], json!([]), "every day was rolled up by fill_rollups");
    let first_json = file_json(&first);
    assert_eq!(first_json["kpis"]["orders"], json!(orders));
    assert!(complete_to(&first_json) >= before, "{}", first_json["data_complete_to"]);

    // 25 late purchases of 2026-03-08 arrive after that day's rollup.
    store_purchases(&env, 25, "2026-03-08T12:00:00Z").await;
    let stored = Utc::now();
    let second = report(&env, &golden_period(Format::Json)).await;
    assert_eq!(second.summary["days_rolled_up_first"], json!(["2026-03-08"]), "only the changed day");
    let second_json = file_json(&second);
    assert_eq!(second_json["kpis"]["orders"], json!(orders + 25), "the figures follow the stored rows");
    let revenue = second_json["kpis"]["revenue"].as_f64().unwrap();
    assert!((revenue - totals["revenue"].as_f64().unwrap() - 250.0).abs() < 1e-6, "revenue {revenue}");
    assert!(complete_to(&second_json) >= stored, "complete to a time after the late rows were stored");

    // Every format says it; a third report finds nothing new.
    let csv_out = report(&env, &golden_period(Format::Csv)).await;
    assert_eq!(csv_out.summary["days_rolled_up_first"], json!([]));
    let mut reader = csv::Reader::from_path(csv_out.path.as_ref().unwrap()).unwrap();
    let column = reader.headers().unwrap().iter().position(|h| h == "data_complete_to").expect("CSV column");
    let day_08 = reader.records().map(Result::unwrap).find(|r| &r[0] == "2026-03-08").unwrap();
    assert!(day_08[column].parse::<DateTime<Utc>>().unwrap() >= stored, "{day_08:?}");
    let pdf = report(&env, &golden_period(Format::Pdf)).await;
    let text = pdf_text(pdf.path.as_ref().unwrap());
    assert!(text.contains("Data complete to"), "{text}");
}

#[tokio::test]
async fn with_traffic_flowing_a_report_for_today_counts_every_purchase_stored_so_far() {
    let (env, _) = report_support::env_with(&[]).await;
    let app = TestApp::full(env).await;
    let send = |n: usize| {
        let now = Utc::now().to_rfc3339();
        let events: Vec<Value> = (0..n)
            .map(|i| json!({ "event_type": "purchase", "timestamp": now, "user_id": format!("u{i}"), "properties": { "amount": 2.5 } }))
            .collect();
        app.post_json("/v1/events/bulk", json!({ "events": events }).to_string())
    };
    let today = GenerateReport {
        start_date: Utc::now().date_naive(),
        end_date: Utc::now().date_naive(),
        ..golden_period(Format::Json)
    };
    let stored = |n: i64| {
        let env = &app.env;
        async move { eventually(Duration::from_secs(10), || async { env.count_events().await == n }).await }
    };

    assert_eq!(send(166).await.status(), 202);
    assert!(stored(166).await, "166 events stored");
    let first = file_json(&report(&app.env, &today).await);
    assert_eq!(first["kpis"]["orders"], json!(166));

    assert_eq!(send(65).await.status(), 202);
    assert!(stored(231).await, "231 events stored");
    let second = file_json(&report(&app.env, &today).await);
    assert_eq!(second["kpis"]["orders"], json!(231), "today is recomputed: its rollup is older than its rows");
    assert!(complete_to(&second) > complete_to(&first));
    app.stop().await;
}
