//! rollups -> **freshness** -> report: how far each day's daily rollup is complete, and which days
//! of a report's period changed since (SPEC section 9, "reports are never stale").
//!
//! The DAILY_ROLLUP job counts the day's stored events ([`count_day`]) before it reads them, and
//! stores that count and its time in `rollup_freshness` ([`record_rollup`]) in the transaction that
//! swaps in the recomputed rows (see the migration for why a count). A report calls [`check`] first: a day whose stored count
//! grew past what its rollup saw (or that has events and no record) is stale and is recomputed;
//! every day is then complete to the time of the check, which the report states.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

/// Stale days of `[$1, $2]`: each day's stored events (a count over the primary key's ts range:
/// an index-only scan) against `rollup_freshness`. A day with fewer events than its rollup saw
/// lost its raw rows to retention: its rollup is kept, not wiped. The statement time comes first:
/// every row committed before it is seen by the counts. Days are UTC whatever the session's zone.
const CHECK: &str = "SELECT statement_timestamp(), \
       coalesce(array_agg(d.day ORDER BY d.day) FILTER (WHERE d.events > coalesce(f.events_seen, 0)), '{}') \
     FROM (SELECT g::date AS day, (SELECT count(*) FROM events \
                 WHERE ts >= g AT TIME ZONE 'UTC' AND ts < (g + interval '1 day') AT TIME ZONE 'UTC') AS events \
           FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS g) d \
     LEFT JOIN rollup_freshness f ON f.day = d.day";

/// Stored events in `[$1, $2)`, and the time of the count.
const COUNT: &str = "SELECT count(*), statement_timestamp() FROM events WHERE ts >= $1 AND ts < $2";

/// Records what a daily rollup covers.
const RECORD: &str = "INSERT INTO rollup_freshness (day, events_seen, complete_to) VALUES ($1, $2, $3) \
     ON CONFLICT (day) DO UPDATE SET events_seen = excluded.events_seen, complete_to = excluded.complete_to";

/// A day's stored events at one instant: taken before a rollup reads them, so the rollup covers
/// at least these (rows are only ever added to a day).
#[derive(Debug, Clone, Copy)]
pub struct DayCount {
    events: i64,
    at: DateTime<Utc>,
}

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
    let (complete_to, stale) = sqlx::query_as(CHECK).bind(from).bind(to).fetch_one(pool).await?;
    Ok(Freshness { stale, complete_to })
}

/// Counts a day's stored events; a full daily rollup calls it before it reads them.
pub async fn count_day(pool: &PgPool, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> Result<DayCount, sqlx::Error> {
    let (events, at) = sqlx::query_as(COUNT).bind(start).bind(end).fetch_one(pool).await?;
    Ok(DayCount { events, at })
}

/// Records, inside the transaction that replaces a day's rollup rows, the count taken before they
/// were computed: every event it counted is in them.
pub async fn record_rollup(conn: &mut PgConnection, day: NaiveDate, seen: &DayCount) -> Result<(), sqlx::Error> {
    sqlx::query(RECORD).bind(day).bind(seen.events).bind(seen.at).execute(conn).await?;
    Ok(())
}
