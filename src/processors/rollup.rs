//! HOURLY_ROLLUP and DAILY_ROLLUP (SPEC section 7): partitioned `events` -> rollup tables, with
//! replace semantics. One transaction per window: take an advisory lock per hour / day of the
//! window (concurrent runs of overlapping windows queue up instead of double counting), delete the
//! window's rows, insert them recomputed from `events` (`sql/*.sql`), commit. A re-run therefore
//! picks up late events and never counts twice.

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Utc};
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use super::JobContext;
use crate::{
    domain::job::{DailyRollup, HourlyRollup},
    queue::JobError,
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
    let found = freshness::check(&ctx.pool, from, to).await?;
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

/// Recomputes one UTC day's `rollup_daily`, `rollup_daily_summary`, `rollup_profile_daily` and
/// `rollup_cost_daily` rows; with `profile_ids`, only those profiles' profile rows.
#[tracing::instrument(skip_all, fields(date = %job.date))]
pub async fn daily(job: &DailyRollup, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let start = day_start(job.date);
    let end = start + Duration::days(1);
    ctx.report(5, "waiting for the day's lock").await;
    let mut tx = begin(ctx).await?;
    lock(&mut tx, DAILY_LOCK, start.timestamp() / 86_400).await?;
    let day = job.date;
    if let Some(profiles) = &job.profile_ids {
        ctx.report(30, "recomputing profile rows").await;
        sqlx::query("DELETE FROM rollup_profile_daily WHERE day = $1 AND profile_id = ANY ($2)")
            .bind(day)
            .bind(profiles)
            .execute(&mut *tx)
            .await?;
        let rows = insert(&mut tx, include_str!("sql/profile_daily.sql"), start, end, Some(profiles)).await?;
        tx.commit().await?;
        ctx.report(100, "profile rollup done").await;
        return Ok(json!({ "date": day, "profile_ids": profiles, "rollup_profile_daily_rows": rows }));
    }
    // Before any read of the day's events (see report::freshness): what this run will cover.
    freshness::record_rollup(&mut tx, day, (start, end)).await?;
    for table in ["rollup_daily", "rollup_daily_summary", "rollup_profile_daily", "rollup_cost_daily"] {
        // Table names come from the fixed list above, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE day = $1")))
            .bind(day)
            .execute(&mut *tx)
            .await?;
    }
    ctx.report(20, "recomputing daily rows").await;
    let daily = insert(&mut tx, include_str!("sql/daily.sql"), start, end, None).await?;
    ctx.report(45, "recomputing the day's summary").await;
    let summary = insert(&mut tx, include_str!("sql/daily_summary.sql"), start, end, None).await?;
    ctx.report(65, "recomputing profile rows").await;
    let profiles = insert(&mut tx, include_str!("sql/profile_daily.sql"), start, end, None).await?;
    ctx.report(85, "recomputing cost rows").await;
    let costs = insert(&mut tx, include_str!("sql/cost_daily.sql"), start, end, None).await?;
    tx.commit().await?;
    ctx.report(100, "daily rollup done").await;
    Ok(json!({
        "date": day,
        "rollup_daily_rows": daily,
        "rollup_daily_summary_rows": summary,
        "rollup_profile_daily_rows": profiles,
        "rollup_cost_daily_rows": costs,
    }))
}

/// A transaction in UTC, with memory enough for hash aggregates of a big day.
async fn begin(ctx: &JobContext) -> Result<Transaction<'static, Postgres>, JobError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("SET LOCAL TIME ZONE 'UTC'").execute(&mut *tx).await?;
    sqlx::query("SET LOCAL work_mem = '64MB'").execute(&mut *tx).await?;
    Ok(tx)
}

async fn lock(conn: &mut PgConnection, class: i32, key: i64) -> Result<(), JobError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)").bind(class).bind(key as i32).execute(conn).await?;
    Ok(())
}

async fn insert(
    conn: &mut PgConnection,
    sql: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    profiles: Option<&Vec<String>>,
) -> Result<u64, JobError> {
    let query = sqlx::query(sql).bind(start).bind(end);
    let query = if sql.contains("$3") { query.bind(profiles) } else { query };
    Ok(query.execute(conn).await?.rows_affected())
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
        assert!(matches!(hour_window(t, t), Err(JobError::Permanent(_))));
    }
}
