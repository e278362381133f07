//! rollups -> **freshness** -> report: how far each day's daily rollup is complete, and which days
//! of a report's period changed since (SPEC section 9, "reports are never stale").
//!
//! The DAILY_ROLLUP job calls [`record_rollup`] inside its transaction, before it reads the day's
//! events: it stores the day's stored-event count and the time of that count in `rollup_freshness`
//! (see the migration for why a count). A report calls [`check`] first: a day whose stored count
//! grew past what its rollup saw (or that has events and no record) is stale and is recomputed;
//! every day is then complete to the time of the check, which the report states.

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

/// Stale days of `[$1, $2]`: the period's stored events per day, one pass over the primary key,
/// against `rollup_freshness`. A day with fewer events than its rollup saw lost its raw rows to
/// retention: its rollup is kept, not wiped. The statement time comes first: every row committed
/// before it is seen by the count.
const CHECK: &str = "SELECT statement_timestamp(), \
       coalesce(array_agg(s.day ORDER BY s.day) FILTER (WHERE f.day IS NULL OR s.events > f.events_seen), '{}') \
     FROM (SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS events FROM events \
           WHERE ts >= $1::date AT TIME ZONE 'UTC' AND ts < $2::date AT TIME ZONE 'UTC' GROUP BY 1) s \
     LEFT JOIN rollup_freshness f ON f.day = s.day";

/// Counts `$1`'s events in `[$2, $3)` and records them as what its rollup covers.
const RECORD: &str = "INSERT INTO rollup_freshness (day, events_seen, complete_to) \
     SELECT $1, count(*), statement_timestamp() FROM events WHERE ts >= $2 AND ts < $3 \
     ON CONFLICT (day) DO UPDATE SET events_seen = excluded.events_seen, complete_to = excluded.complete_to";

/// What [`check`] found for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// Days whose rollup misses stored events (or that have none yet), oldest first.
    pub stale: Vec<NaiveDate>,
    /// Every event stored before this instant is in the rollups of the days that are not stale;
    /// once the stale ones are recomputed, the whole period's data is complete to it.
    pub complete_to: DateTime<Utc>,
}

/// Which days of `[from, to]` must be rolled up again before a report reads them.
#[tracing::instrument(skip_all, fields(%from, %to))]
pub async fn check(pool: &PgPool, from: NaiveDate, to: NaiveDate) -> Result<Freshness, sqlx::Error> {
    let after = to.checked_add_days(Days::new(1)).unwrap_or(to);
    let (complete_to, stale) = sqlx::query_as(CHECK).bind(from).bind(after).fetch_one(pool).await?;
    Ok(Freshness { stale, complete_to })
}

/// Records, inside a full daily rollup's transaction and before it reads the day's events, how
/// many events the day has now: the rollup that follows covers at least those.
pub async fn record_rollup(
    conn: &mut PgConnection,
    day: NaiveDate,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(), sqlx::Error> {
    sqlx::query(RECORD).bind(day).bind(start).bind(end).execute(conn).await?;
    Ok(())
}
