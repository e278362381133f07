//! rollups -> **freshness** -> report: how far each day's daily rollup is complete, and which days
//! of a report's period changed since (SPEC section 9, "reports are never stale").
//!
//! The DAILY_ROLLUP job calls [`record_rollup`] inside its transaction, before it reads the day's
//! events: it stores the day's stored-event count and the time of that count in `rollup_freshness`
//! (see the migration for why a count). A report calls [`check`] first: a day whose stored count
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
    let (complete_to, stale) = sqlx::query_as(CHECK).bind(from).bind(to).fetch_one(pool).await?;
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
