//! Shared fixtures of the report, export and e-mail tests: the golden events loaded into `events`,
//! the rollup tables filled by obvious SQL (the real rollup jobs are another branch's), a reports
//! folder per test and a processor context that records progress.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use eventmill::{processors::ProcessorContext, store::EventRow};
use serde_json::Value;

use crate::helpers::TestEnv;

const EVENTS: &str = "golden-events.ndjson";
const EXPECTED: &str = "golden-expected.json";

/// A golden fixture file: in `EVENTMILL_FIXTURES_DIR`, else in `shared/fixtures` beside the repository.
fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var("EVENTMILL_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    dir.join(name)
}

/// The golden figures (`golden-expected.json`).
pub fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(EXPECTED)).unwrap()).unwrap()
}

/// The golden events as JSON values.
pub fn golden_events() -> Vec<Value> {
    std::fs::read_to_string(fixture(EVENTS)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A fresh database and reports folder, with extra settings.
pub async fn env_with(overrides: &[(&str, &str)]) -> (TestEnv, PathBuf) {
    let reports = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let reports_text = reports.display().to_string();
    let mut all = vec![("EVENTMILL_REPORTS_DIR", reports_text.as_str())];
    all.extend_from_slice(overrides);
    (TestEnv::with(&all).await, reports)
}

/// Loads the golden events into `events` (partitions first, then the real store writer).
pub async fn load_events(env: &TestEnv) {
    let now = chrono::Utc::now().timestamp_micros();
    let mut rows: Vec<EventRow> = golden_events()
        .into_iter()
        .map(|e| {
            let ts = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
            EventRow {
                event_id: e["event_id"].as_str().unwrap().parse().unwrap(),
                event_type: e["event_type"].as_str().unwrap().to_owned(),
                ts_micros: ts.timestamp_micros(),
                user_id: e["user_id"].as_str().map(str::to_owned),
                session_id: e["session_id"].as_str().map(str::to_owned),
                source: e["source"].as_str().unwrap().to_owned(),
                properties: serde_json::value::to_raw_value(&e["properties"]).unwrap(),
                ingested_micros: now,
            }
        })
        .collect();
    rows.sort_by_key(|r| r.ts_micros);
    env.resources.partitions.ensure_for(rows.iter().map(|r| r.ts_micros)).await.unwrap();
    for chunk in rows.chunks(5000) {
        let refs: Vec<&EventRow> = chunk.iter().collect();
        assert!(eventmill::store::write_rows(env.pool(), &refs).await.unwrap().is_empty());
    }
}

/// Fills the daily rollup tables straight from `events`, one plain INSERT .. SELECT per table.
pub async fn fill_rollups(env: &TestEnv) {
    const AMOUNT: &str = "(properties->>'amount')::numeric";
    let statements = [
        format!(
            "INSERT INTO rollup_daily (day, event_type, source, events, unique_users, revenue, errors) \
             SELECT (ts AT TIME ZONE 'UTC')::date, event_type, source, count(*), count(DISTINCT user_id), \
               coalesce(sum({AMOUNT}) FILTER (WHERE event_type = 'purchase'), 0), \
               count(*) FILTER (WHERE event_type = 'error') FROM events GROUP BY 1, 2, 3"
        ),
        format!(
            "INSERT INTO rollup_daily_summary (day, events, unique_users, sessions, errors, orders, revenue) \
             SELECT (ts AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT user_id), count(DISTINCT session_id), \
               count(*) FILTER (WHERE event_type = 'error'), count(*) FILTER (WHERE event_type = 'purchase'), \
               coalesce(sum({AMOUNT}) FILTER (WHERE event_type = 'purchase'), 0) FROM events GROUP BY 1"
        ),
        format!(
            "INSERT INTO rollup_profile_daily (day, profile_id, impressions, clicks, purchases, revenue) \
             SELECT (ts AT TIME ZONE 'UTC')::date, properties->>'profile_id', \
               count(*) FILTER (WHERE event_type = 'impression'), count(*) FILTER (WHERE event_type = 'click'), \
               count(*) FILTER (WHERE event_type = 'purchase'), \
               coalesce(sum({AMOUNT}) FILTER (WHERE event_type = 'purchase'), 0) \
             FROM events WHERE properties ? 'profile_id' GROUP BY 1, 2"
        ),
        format!(
            "INSERT INTO rollup_cost_daily (day, category, feature, amount, events) \
             SELECT (ts AT TIME ZONE 'UTC')::date, properties->>'category', properties->>'feature', sum({AMOUNT}), \
               count(*) FROM events WHERE event_type = 'cost' GROUP BY 1, 2, 3"
        ),
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(env.pool()).await.unwrap();
    }
}

/// Progress messages a context received.
pub type Recorded = Arc<Mutex<Vec<(u8, String)>>>;

/// A processor context for `job_id`'s `attempt`, recording progress.
pub fn context(env: &TestEnv, job_id: &str, attempt: u32) -> (ProcessorContext, Recorded) {
    let recorded: Recorded = Arc::default();
    let sink = recorded.clone();
    let ctx = ProcessorContext {
        pool: env.pool().clone(),
        settings: Arc::new(env.settings.clone()),
        job_id: job_id.to_owned(),
        attempt,
        progress: Arc::new(move |percent, message| sink.lock().unwrap().push((percent, message))),
    };
    (ctx, recorded)
}

/// `pdftotext -layout` of a PDF (poppler-utils).
pub fn pdf_text(path: &std::path::Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext installed (apt-get install poppler-utils)");
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Whether some line of `text` holds `cells` in order, next to each other.
pub fn has_row(text: &str, cells: &[String]) -> bool {
    let wanted: Vec<&str> = cells.iter().flat_map(|c| c.split_whitespace()).collect();
    text.lines().any(|line| {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        tokens.windows(wanted.len()).any(|w| w == wanted.as_slice())
    })
}

/// `365720.19` -> `365,720.19` (2 decimals), written here independently of the crate.
pub fn money(x: f64) -> String {
    let plain = format!("{x:.2}");
    let (int, frac) = plain.split_once('.').unwrap();
    format!("{}.{frac}", thousands(int.parse().unwrap()))
}

/// `20000` -> `20,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
