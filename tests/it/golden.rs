//! The golden fixture (`tests/fixtures`): 20,000 events over 2026-03-07..09 and the figures an
//! independent Python computation (`tests/fixtures/make_golden.py`) expects. Loaded straight into `events` with the real
//! `store::write_rows`; figures are compared exactly (money in cents, ratios at their 4 decimals).

use std::{io::Read, path::PathBuf, sync::LazyLock};

use eventmill::store::{self, EventRow};
use serde_json::Value;

use crate::helpers::TestEnv;

/// The fixture folder, inside the repository (README there says how it was computed).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The golden events, one JSON object a line (stored gzip-compressed).
pub fn events_ndjson() -> String {
    let file = std::fs::File::open(fixtures().join("golden-events.ndjson.gz")).expect("golden-events.ndjson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).expect("golden-events.ndjson.gz is gzip text");
    text
}

/// `golden-expected.json`.
pub static EXPECTED: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(fixtures().join("golden-expected.json")).expect("golden-expected.json");
    serde_json::from_str(&text).unwrap()
});

/// The golden events as stream rows.
pub static ROWS: LazyLock<Vec<EventRow>> = LazyLock::new(|| events_ndjson().lines().map(row).collect());

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

/// The stored figures are exactly what `make_golden.py` computes: re-run it and compare bytes.
#[test]
fn the_fixture_is_what_make_golden_py_computes() {
    let dir = std::env::temp_dir().join(format!("eventmill-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("python3")
        .arg(fixtures().join("make_golden.py"))
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs make_golden.py");
    assert!(status.success());
    let generated = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let stored = std::fs::read_to_string(fixtures().join("golden-expected.json")).unwrap();
    assert!(generated("golden-events.ndjson") == events_ndjson(), "golden-events.ndjson.gz is stale");
    assert!(generated("golden-expected.json") == stored, "golden-expected.json is stale");
    std::fs::remove_dir_all(&dir).unwrap();
}
