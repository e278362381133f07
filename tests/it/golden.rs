//! The golden fixture (shared/fixtures): 20,000 events over 2026-03-07..09 and the figures an
//! independent Python computation expects. Loaded straight into `events` with the real
//! `store::write_rows`; figures are compared exactly (money in cents, ratios at their 4 decimals).

use std::{path::PathBuf, sync::LazyLock};

use eventmill::store::{self, EventRow};
use serde_json::Value;

use crate::helpers::TestEnv;

/// The fixture folder: `EVENTMILL_FIXTURES`, else `shared/fixtures` beside the repository.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var("EVENTMILL_FIXTURES").unwrap_or_else(|_| "../shared/fixtures".into());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    if dir.exists() { dir } else { PathBuf::from("/work/shared/fixtures") }
}

/// `golden-expected.json`.
pub static EXPECTED: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(fixtures().join("golden-expected.json")).expect("golden-expected.json");
    serde_json::from_str(&text).unwrap()
});

/// The golden events as stream rows.
pub static ROWS: LazyLock<Vec<EventRow>> = LazyLock::new(|| {
    let text = std::fs::read_to_string(fixtures().join("golden-events.ndjson")).expect("golden-events.ndjson");
    text.lines().map(row).collect()
});

fn row(line: &str) -> EventRow {
    let event: Value = serde_json::from_str(line).unwrap();
    let text = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_owned);
    let ts = chrono::DateTime::parse_from_rfc3339(&text("timestamp").unwrap()).unwrap();
    EventRow {
        event_id: text("event_id").unwrap().parse().unwrap(),
        event_type: text("event_type").unwrap(),
        ts_micros: ts.timestamp_micros(),
        user_id: text("user_id"),
        session_id: text("session_id"),
        source: text("source").unwrap(),
        properties: serde_json::value::to_raw_value(&event["properties"]).unwrap(),
        ingested_micros: chrono::Utc::now().timestamp_micros(),
    }
}

/// Stores the 20,000 golden events in `env`'s database.
pub async fn load(env: &TestEnv) {
    let rows: Vec<&EventRow> = ROWS.iter().collect();
    env.resources.partitions.ensure_for(rows.iter().map(|r| r.ts_micros)).await.unwrap();
    for chunk in rows.chunks(5000) {
        assert!(store::write_rows(env.pool(), chunk).await.unwrap().refused.is_empty());
    }
    assert_eq!(env.count_events().await, 20_000);
}

/// An amount in cents, as the fixture rounds money (2 decimals after summing exact cents).
pub fn cents(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 100.0).round() as i64
}

/// A ratio in units of 1/10,000 (the fixture's 4 decimals).
pub fn ten_thousandths(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 10_000.0).round() as i64
}

/// The expected rows of `section` as tuples built by `f`, in the fixture's (sorted) order.
pub fn expected<T>(section: &str, f: impl Fn(&Value) -> T) -> Vec<T> {
    EXPECTED[section].as_array().unwrap().iter().map(f).collect()
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

pub fn n(v: &Value) -> i64 {
    v.as_i64().unwrap()
}
