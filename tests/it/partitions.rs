//! Day partitions: created ahead and on demand, the default partition for times outside retention,
//! expired partitions dropped.

use std::time::Duration;

use chrono::{Days, Utc};
use eventmill::{
    settings::StorageSettings,
    store::{Partitions, partitions::partition_name},
};
use serde_json::Value;

use crate::helpers::{TestApp, TestEnv, eventually};

async fn partition_of(env: &TestEnv, event_type: &str) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_creates_a_week_of_partitions_ahead() {
    let env = TestEnv::new().await;
    let names: Vec<String> = env.resources.partitions.existing().await.unwrap().into_iter().map(|(n, _)| n).collect();
    let today = Utc::now().date_naive();
    for ahead in 0..=7 {
        assert!(names.contains(&partition_name(today + Days::new(ahead))), "{names:?}");
    }
}

#[tokio::test]
async fn late_events_get_a_partition_and_far_past_ones_land_in_the_default_partition() {
    let app = TestApp::full(TestEnv::new().await).await;
    let late_day = Utc::now().date_naive() - Days::new(30);
    let body = format!(
        r#"{{"events":[{{"event_type":"late","timestamp":"{late_day}T12:00:00Z"}},{{"event_type":"ancient","timestamp":"2015-01-01T00:00:00Z"}},{{"event_type":"far_future","timestamp":"2100-01-01T00:00:00Z"}}]}}"#
    );
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == 3 }).await);
    assert_eq!(partition_of(&app.env, "late").await, partition_name(late_day));
    assert_eq!(partition_of(&app.env, "ancient").await, "events_default");
    assert_eq!(partition_of(&app.env, "far_future").await, "events_default");

    let health: Value = app.client.get(app.url("/healthz/detailed")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["storage"]["default_partition_rows"], 2);
    assert!(health["queues"]["analytics:rollup"]["waiting"].is_u64(), "queue sizes are reported: {health}");
    app.stop().await;
}

#[tokio::test]
async fn a_new_partition_takes_its_rows_out_of_the_default_partition() {
    let app = TestApp::full(TestEnv::new().await).await;
    let day = Utc::now().date_naive() + Days::new(20);
    let body = format!(r#"{{"event_type":"early","timestamp":"{day}T08:00:00Z"}}"#);
    assert_eq!(app.post_json("/v1/events", body).await.status(), 202);
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == 1 }).await);
    assert_eq!(partition_of(&app.env, "early").await, "events_default");

    // Later the day comes within the "ahead" window.
    let wider = StorageSettings { partitions_ahead_days: 25, ..app.env.settings.storage.clone() };
    Partitions::new(app.env.pool().clone(), &wider).maintain().await.unwrap();
    assert_eq!(partition_of(&app.env, "early").await, partition_name(day));
    assert_eq!(app.env.count_events().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn partitions_older_than_retention_are_dropped() {
    let env = TestEnv::new().await;
    let old_day = Utc::now().date_naive() - Days::new(20);
    let micros = old_day.and_hms_opt(1, 0, 0).unwrap().and_utc().timestamp_micros();
    env.resources.partitions.ensure_for(std::iter::once(micros)).await.unwrap();
    let short = StorageSettings { retention_days: 10, ..env.settings.storage.clone() };
    let done = Partitions::new(env.pool().clone(), &short).maintain().await.unwrap();
    assert_eq!(done.dropped, vec![partition_name(old_day)]);
    let names: Vec<String> = env.resources.partitions.existing().await.unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(!names.contains(&partition_name(old_day)));
}
