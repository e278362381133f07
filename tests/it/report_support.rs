//! Shared fixtures of the report, export and e-mail tests: the golden events (see `golden`),
//! the rollup tables filled by the real DAILY_ROLLUP processor, a reports folder per test and a
//! processor context that records progress.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use eventmill::{
    domain::job::DailyRollup,
    processors::{Analytics, JobContext, Progress, rollup},
};
use serde_json::Value;

use crate::{golden, helpers::TestEnv};

/// The golden figures (`golden-expected.json`).
pub fn expected() -> Value {
    golden::EXPECTED.clone()
}

/// The golden events as JSON values.
pub fn golden_events() -> Vec<Value> {
    golden::events_ndjson().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A fresh database and reports folder, with extra settings.
pub async fn env_with(overrides: &[(&str, &str)]) -> (TestEnv, PathBuf) {
    let reports = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let reports_text = reports.display().to_string();
    let mut all = vec![("EVENTMILL_REPORTS_DIR", reports_text.as_str())];
    all.extend_from_slice(overrides);
    (TestEnv::with(&all).await, reports)
}

/// Loads the golden events into `events` with the real store writer.
pub async fn load_events(env: &TestEnv) {
    golden::load(env).await;
}

/// Fills the daily rollup tables of the three golden days with the real DAILY_ROLLUP processor.
pub async fn fill_rollups(env: &TestEnv) {
    let ctx = JobContext::new(Arc::new(Analytics::new(env.pool().clone(), &env.settings)), "fill".into(), 1, None);
    for day in ["2026-03-07", "2026-03-08", "2026-03-09"] {
        let job = DailyRollup { date: day.parse().unwrap(), profile_ids: None };
        rollup::daily(&job, &ctx).await.unwrap();
    }
}

/// Progress messages a context received.
pub type Recorded = Arc<Mutex<Vec<(u8, String)>>>;

/// A processor context for `job_id`'s `attempt`, recording progress.
pub fn context(env: &TestEnv, job_id: &str, attempt: u32) -> (JobContext, Recorded) {
    let recorded: Recorded = Arc::default();
    let sink = recorded.clone();
    let progress = Progress::observed(move |percent, message| sink.lock().unwrap().push((percent, message.to_owned())));
    let ctx = JobContext::new(
        Arc::new(Analytics::new(env.pool().clone(), &env.settings)),
        job_id.to_owned(),
        attempt,
        Some(progress),
    );
    (ctx, recorded)
}

/// A processor context whose database is `pool` (one that cannot connect, to show what happens
/// without the database).
pub fn context_with_pool(env: &TestEnv, pool: sqlx::PgPool, job_id: &str) -> JobContext {
    JobContext::new(Arc::new(Analytics::new(pool, &env.settings)), job_id.to_owned(), 1, None)
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
