//! HOURLY_ROLLUP and DAILY_ROLLUP (SPEC section 7): partitioned `events` -> rollup tables, with
//! replace semantics. One transaction per window swaps the rows: take an advisory lock per hour /
//! day of the window (concurrent runs of overlapping windows queue up instead of double counting),
//! delete the window's rows, insert them recomputed from `events` (`sql/*.sql`), commit. The daily
//! job computes its four tables first, concurrently, and swaps them in afterwards (see [`daily`]).
//! A re-run therefore picks up late events and never counts twice.

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Utc};
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use super::JobContext;
use crate::{
    domain::job::{DailyRollup, HourlyRollup},
    queue::{JobError, ResultExt},
    report::freshness::{self, Freshness},
};

/// Advisory-lock class ids (first key of `pg_advisory_xact_lock(int, int)`): "roll" + table kind.
const HOURLY_LOCK: i32 = 0x726f_6c01;
const DAILY_LOCK: i32 = 0x726f_6c02;

/// Longest window one HOURLY_ROLLUP may cover (a backfill beyond it is split into several jobs).
pub const MAX_HOURLY_WINDOW_HOURS: i64 = 24 * 31;

/// Runs the daily rollup of every day in `[from, to]` whose rollup misses stored events (a day
/// never rolled up, today's traffic, late events: see `report::freshness`), so a report never reads
/// a stale day. `on_day(done, total, day)` is called before each day. Returns what the check found:
/// the recomputed days and the time the period's data is complete to.
pub async fn roll_up_stale_days(
    ctx: &JobContext,
    from: NaiveDate,
    to: NaiveDate,
    on_day: &(dyn Fn(usize, usize, NaiveDate) + Send + Sync),
) -> Result<Freshness, JobError> {
    let found = freshness::check(&ctx.state().pool, from, to).await.retryable()?;
    for (done, &date) in found.stale.iter().enumerate() {
        on_day(done, found.stale.len(), date);
        tracing::info!(%date, "rolling up a day the report needs (new events since its rollup)");
        daily(&DailyRollup { date, profile_ids: None }, ctx).await?;
    }
    Ok(found)
}

/// Recomputes `rollup_hourly` for every whole hour touching `[start_time, end_time)`.
#[tracing::instrument(skip_all, fields(start = %job.start_time, end = %job.end_time))]
pub async fn hourly(job: &HourlyRollup, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let (start, end) = hour_window(job.start_time, job.end_time)?;
    swap_hourly(ctx, start, end).await.retryable()
}

/// The hourly rows of `[start, end)` replaced in one transaction.
async fn swap_hourly(
    ctx: &JobContext,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<serde_json::Value, sqlx::Error> {
    ctx.report(5, "waiting for the window's lock").await;
    let mut tx = begin(ctx).await?;
    let first_hour = start.timestamp() / 3600;
    for hour in first_hour..end.timestamp() / 3600 {
        lock(&mut tx, HOURLY_LOCK, hour).await?;
    }
    ctx.report(20, "recomputing hourly rows").await;
    sqlx::query("DELETE FROM rollup_hourly WHERE bucket >= $1 AND bucket < $2")
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(include_str!("sql/hourly.sql")).bind(start).bind(end).execute(&mut *tx).await?;
    tx.commit().await?;
    ctx.report(100, "hourly rollup done").await;
    Ok(json!({ "start_time": start, "end_time": end, "rollup_hourly_rows": rows.rows_affected() }))
}

/// One table of the daily rollup: recomputed from one SELECT (`sql/*.sql`) over the day's events.
struct DailyTable {
    name: &'static str,
    /// The table's columns in the order the SELECT yields them.
    columns: &'static str,
    select: &'static str,
}

const DAILY_TABLES: [DailyTable; 4] = [
    DailyTable {
        name: "rollup_daily",
        columns: "day, event_type, source, events, unique_users, revenue, errors",
        select: include_str!("sql/daily.sql"),
    },
    DailyTable {
        name: "rollup_daily_summary",
        columns: "day, events, unique_users, sessions, errors, orders, revenue",
        select: include_str!("sql/daily_summary.sql"),
    },
    DailyTable {
        name: "rollup_profile_daily",
        columns: "day, profile_id, impressions, clicks, purchases, revenue",
        select: include_str!("sql/profile_daily.sql"),
    },
    DailyTable {
        name: "rollup_cost_daily",
        columns: "day, category, feature, amount, events",
        select: include_str!("sql/cost_daily.sql"),
    },
];

const PROFILE_TABLE: &DailyTable = &DAILY_TABLES[2];

/// Recomputes one UTC day's `rollup_daily`, `rollup_daily_summary`, `rollup_profile_daily` and
/// `rollup_cost_daily` rows; with `profile_ids`, only those profiles' profile rows.
///
/// The four SELECTs read the day's events at the same time on their own connections (PostgreSQL
/// never runs an `INSERT ... SELECT` in parallel, and one scan per core is what two cores can do);
/// their results are small (one row per type and source, per profile...) and are then swapped in
/// by one transaction, so a reader sees either the old day or the new one.
#[tracing::instrument(skip_all, fields(date = %job.date))]
pub async fn daily(job: &DailyRollup, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    swap_daily(job, ctx).await.retryable()
}

/// The day's rows (or its profiles' rows) replaced in one transaction.
async fn swap_daily(job: &DailyRollup, ctx: &JobContext) -> Result<serde_json::Value, sqlx::Error> {
    let start = day_start(job.date);
    let end = start + Duration::days(1);
    let day = job.date;
    if let Some(profiles) = &job.profile_ids {
        ctx.report(30, "recomputing profile rows").await;
        let rows = compute(ctx, PROFILE_TABLE, (start, end), Some(profiles)).await?;
        let mut tx = begin(ctx).await?;
        lock(&mut tx, DAILY_LOCK, start.timestamp() / 86_400).await?;
        sqlx::query("DELETE FROM rollup_profile_daily WHERE day = $1 AND profile_id = ANY ($2)")
            .bind(day)
            .bind(profiles)
            .execute(&mut *tx)
            .await?;
        let rows = insert_rows(&mut tx, PROFILE_TABLE, &rows).await?;
        tx.commit().await?;
        ctx.report(100, "profile rollup done").await;
        return Ok(json!({ "date": day, "profile_ids": profiles, "rollup_profile_daily_rows": rows }));
    }
    // Before any read of the day's events (see report::freshness): what this run will cover.
    let seen = freshness::count_day(&ctx.state().pool, (start, end)).await?;
    ctx.report(20, "recomputing the day's tables").await;
    let computed =
        futures_util::future::try_join_all(DAILY_TABLES.iter().map(|table| compute(ctx, table, (start, end), None)))
            .await?;
    ctx.report(85, "replacing the day's rows").await;
    let mut tx = begin(ctx).await?;
    lock(&mut tx, DAILY_LOCK, start.timestamp() / 86_400).await?;
    freshness::record_rollup(&mut tx, day, &seen).await?;
    let mut written = serde_json::Map::new();
    for (table, rows) in DAILY_TABLES.iter().zip(&computed) {
        // Table names come from the fixed list above, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {} WHERE day = $1", table.name)))
            .bind(day)
            .execute(&mut *tx)
            .await?;
        let count = insert_rows(&mut tx, table, rows).await?;
        written.insert(format!("{}_rows", table.name), count.into());
    }
    tx.commit().await?;
    ctx.report(100, "daily rollup done").await;
    written.insert("date".into(), json!(day));
    Ok(serde_json::Value::Object(written))
}

/// Runs one table's SELECT over `[start, end)` on its own connection; its rows as a JSON array.
async fn compute(
    ctx: &JobContext,
    table: &DailyTable,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    profiles: Option<&Vec<String>>,
) -> Result<String, sqlx::Error> {
    let mut tx = begin(ctx).await?;
    let sql = format!(
        "SELECT coalesce(json_agg(t), '[]')::text FROM ({}) AS t ({})",
        table.select.trim_end().trim_end_matches(';'),
        table.columns
    );
    let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(start).bind(end);
    let query = if table.select.contains("$3") { query.bind(profiles) } else { query };
    let rows: String = query.fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Inserts rows computed by [`compute`] into their table.
async fn insert_rows(conn: &mut PgConnection, table: &DailyTable, rows: &str) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "INSERT INTO {name} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{name}, $1::json)",
        name = table.name,
        columns = table.columns
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(rows).execute(conn).await?.rows_affected())
}

/// A transaction in UTC, with memory enough for hash aggregates of a big day.
async fn begin(ctx: &JobContext) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = ctx.state().pool.begin().await?;
    sqlx::query("SET LOCAL TIME ZONE 'UTC'").execute(&mut *tx).await?;
    sqlx::query("SET LOCAL work_mem = '128MB'").execute(&mut *tx).await?;
    Ok(tx)
}

async fn lock(conn: &mut PgConnection, class: i32, key: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)").bind(class).bind(key as i32).execute(conn).await?;
    Ok(())
}

/// Widens `[start, end)` to whole hours; an empty or huge window is a permanent error.
pub fn hour_window(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), JobError> {
    let hour = Duration::hours(1);
    let floor = start.duration_trunc(hour).map_err(JobError::permanent)?;
    let mut ceil = end.duration_trunc(hour).map_err(JobError::permanent)?;
    if ceil < end {
        ceil += hour;
    }
    if ceil <= floor {
        return Err(JobError::permanent(format!("empty window: end_time {end} is not after start_time {start}")));
    }
    if (ceil - floor).num_hours() > MAX_HOURLY_WINDOW_HOURS {
        return Err(JobError::permanent(format!(
            "window of {} hours is over the {MAX_HOURLY_WINDOW_HOURS}-hour limit of one job",
            (ceil - floor).num_hours()
        )));
    }
    Ok((floor, ceil))
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hourly_window_widens_to_whole_hours() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (a, b) = hour_window(t("2026-03-08T10:15:00Z"), t("2026-03-08T11:00:00Z")).unwrap();
        assert_eq!((a, b), (t("2026-03-08T10:00:00Z"), t("2026-03-08T11:00:00Z")));
        let (_, b) = hour_window(t("2026-03-08T10:00:00Z"), t("2026-03-08T11:00:01Z")).unwrap();
        assert_eq!(b, t("2026-03-08T12:00:00Z"));
    }

    #[test]
    fn an_empty_window_is_a_permanent_error() {
        let t = "2026-03-08T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(hour_window(t, t).is_err_and(|e| !e.is_retryable()));
    }
}
