//! The dashboard in real headless Chromium (tests/browser/dashboard.mjs) against `eventmill run`,
//! with 30-hour-old events stored and rolled up so the hourly history has a rolled-up hour.

use chrono::{Duration, Timelike, Utc};
use eventmill::{
    domain::job::{HourlyRollup, Job},
    processors::{self, HourlyRollups, JobContext},
    store::{self, EventRow},
};

use crate::{admin_stream::admin_env, browser::run_scenario, helpers::TestApp};

#[tokio::test]
async fn the_dashboard_shows_live_counts_alerts_and_rolled_up_history_in_a_browser() {
    let env = admin_env().await;
    let hour =
        (Utc::now() - Duration::hours(30)).with_minute(0).unwrap().with_second(0).unwrap().with_nanosecond(0).unwrap();
    let rows: Vec<EventRow> = (0..25)
        .map(|i| EventRow {
            event_id: uuid::Uuid::new_v4(),
            event_type: "page_view".into(),
            ts_micros: (hour + Duration::minutes(i)).timestamp_micros(),
            user_id: Some(format!("old{i}")),
            session_id: None,
            source: "web".into(),
            properties: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
            ingested_micros: Utc::now().timestamp_micros(),
        })
        .collect();
    let refs: Vec<&EventRow> = rows.iter().collect();
    env.resources.partitions.ensure_for(refs.iter().map(|r| r.ts_micros)).await.unwrap();
    assert!(store::write_rows(env.pool(), &refs).await.unwrap().refused.is_empty());
    let ctx = JobContext::new(env.resources.analytics.clone(), "test".into(), 1, None);
    let window = HourlyRollup { start_time: hour, end_time: hour + Duration::hours(1) };
    processors::dispatch(Job::of::<HourlyRollups, _>(&window), &ctx).await.unwrap();

    let app = TestApp::full(env).await;
    run_scenario(&app, "dashboard", &[("HISTORY_EVENTS", "25")]).await;
    app.stop().await;
}
