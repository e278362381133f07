//! Where each part of a window's figures comes from (`plan`): the live hour, minute and second
//! counters for the last 23 hours, the rollup tables (whole days, whole hours) before that, raw
//! rows for seconds and minutes older than the live data. Every source yields cells (bucket, event type, events, revenue, errors), filtered
//! by event type and source, summed per bucket by the caller.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgPool, SqlSafeStr};

use super::params::Interval;
use crate::{domain::Name, live, web::AppState};

/// Live seconds older than this are left to the rows (their keys expire after two hours).
const LIVE_SECONDS: i64 = 7000;
/// Live minutes cover the last 23 whole hours (their keys live 24 hours).
const LIVE_HOURS: i64 = 23;

/// Which events count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub event_type: Option<Name>,
    pub source: Option<Name>,
}

impl Filter {
    pub fn keeps(&self, event_type: &str, source: &str) -> bool {
        self.event_type.as_ref().is_none_or(|t| t.as_str() == event_type)
            && self.source.as_ref().is_none_or(|s| s.as_str() == source)
    }

    pub fn binds(&self) -> (Option<String>, Option<String>) {
        (self.event_type.as_ref().map(|n| n.to_string()), self.source.as_ref().map(|n| n.to_string()))
    }
}

/// Figures of one bucket and event type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub events: i64,
    pub revenue_micros: i64,
    pub errors: i64,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.events += other.events;
        self.revenue_micros += other.revenue_micros;
        self.errors += other.errors;
    }
}

/// (bucket start in unix seconds, event type) -> figures.
pub type Cells = BTreeMap<(i64, String), Figures>;

/// Failure to read a source.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
}

impl From<SeriesError> for crate::web::ApiError {
    fn from(error: SeriesError) -> Self {
        match error {
            SeriesError::Redis(e) => Self::Redis(e),
            SeriesError::Postgres(e) => Self::Internal(e.into()),
        }
    }
}

/// Output bucket size that puts a whole window in one bucket (the summary's totals).
pub const WHOLE: i64 = 1 << 40;

/// Where one piece of a window is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Hourly,
    Daily,
    Live(live::read::Unit),
}

/// `[from, to)` (unix seconds) read from `source`; aligned to its unit, except raw pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub source: Source,
    pub from: i64,
    pub to: i64,
}

/// The first unix second of the live minutes and hours.
pub fn live_start(now: i64) -> i64 {
    (now.div_euclid(3600) - LIVE_HOURS) * 3600
}

/// Splits `[from, to)` into the coarsest pieces buckets of `size` seconds allow: whole days from
/// `rollup_daily`, whole hours from `rollup_hourly` before the live window, live hours and
/// minutes inside it, raw rows for the minute edges before it. A `to` at or after `now` takes the
/// live hour and minute it falls in whole (the unfinished buckets).
pub fn plan(from: i64, to: i64, size: i64, now: i64) -> Vec<Piece> {
    use live::read::Unit;
    let live_from = live_start(now).clamp(from, to.max(from));
    let mut old: Vec<(i64, Source)> = vec![(60, Source::Raw)];
    let mut recent: Vec<(i64, Source)> = vec![(60, Source::Live(Unit::Minute))];
    if size >= 3600 {
        old.insert(0, (3600, Source::Hourly));
        recent.insert(0, (3600, Source::Live(Unit::Hour)));
    }
    if size >= 86_400 {
        old.insert(0, (86_400, Source::Daily));
    }
    let mut out = Vec::new();
    split(from, live_from, &old, &mut out);
    let live_to = if to >= now && size >= 3600 { to.div_euclid(3600) * 3600 + 3600 } else { to };
    split(live_from, live_to, &recent, &mut out);
    out
}

fn split(a: i64, b: i64, units: &[(i64, Source)], out: &mut Vec<Piece>) {
    if a >= b {
        return;
    }
    let (unit, source) = units[0];
    if units.len() == 1 {
        return out.push(Piece { source, from: a, to: b });
    }
    let (lo, hi) = ((a + unit - 1).div_euclid(unit) * unit, b.div_euclid(unit) * unit);
    if lo >= hi {
        return split(a, b, &units[1..], out);
    }
    split(a, lo, &units[1..], out);
    out.push(Piece { source, from: lo, to: hi });
    split(hi, b, &units[1..], out);
}

/// The cells of `[from, to)` in buckets of `interval` (`from` rounded down to its bucket).
pub async fn cells(
    state: &AppState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    filter: &Filter,
) -> Result<Cells, SeriesError> {
    let size = interval.seconds();
    let (from, to) = (from.timestamp().div_euclid(size) * size, to.timestamp());
    let now = Utc::now().timestamp();
    let mut out = Cells::new();
    if interval == Interval::Second {
        let live_from = ((now - LIVE_SECONDS) / 60 * 60).clamp(from, to.max(from));
        raw(&state.pool, from, live_from, size, filter, &mut out).await?;
        live_buckets(state, live::read::Unit::Second, live_from, to, size, filter, &mut out).await?;
        return Ok(out);
    }
    read_pieces(state, &plan(from, to, size, now), size, filter, &mut out).await?;
    Ok(out)
}

/// The figures of `[from, to)` per event type, in one bucket; `from` and `to` as `totals_window`
/// rounds them.
pub async fn totals(state: &AppState, from: i64, to: i64, filter: &Filter) -> Result<Cells, SeriesError> {
    let mut out = Cells::new();
    read_pieces(state, &plan(from, to, WHOLE, Utc::now().timestamp()), WHOLE, filter, &mut out).await?;
    Ok(out)
}

/// The window the totals cover: to the minute inside the live window, to the hour before it (so
/// no raw rows are read: an hour of them costs more than the whole rest of a month's summary).
pub fn totals_window(from: i64, to: i64, now: i64) -> (i64, i64) {
    let live = live_start(now);
    let unit = |t: i64| if t < live { 3600 } else { 60 };
    (from.div_euclid(unit(from)) * unit(from), (to + unit(to) - 1).div_euclid(unit(to)) * unit(to))
}

async fn read_pieces(
    state: &AppState,
    pieces: &[Piece],
    size: i64,
    filter: &Filter,
    out: &mut Cells,
) -> Result<(), SeriesError> {
    for piece in pieces {
        let (a, b) = (piece.from, piece.to);
        match piece.source {
            Source::Raw => raw(&state.pool, a, b, size, filter, out).await?,
            Source::Hourly => rollup(&state.pool, HOURLY, a, b, size, filter, out).await?,
            Source::Daily => rollup(&state.pool, DAILY, a, b, size, filter, out).await?,
            Source::Live(unit) => live_buckets(state, unit, a, b, size, filter, out).await?,
        }
    }
    Ok(())
}

/// Sums cells over event types: bucket -> figures.
pub fn per_bucket(cells: &Cells) -> BTreeMap<i64, Figures> {
    let mut out: BTreeMap<i64, Figures> = BTreeMap::new();
    for ((t, _), figures) in cells {
        out.entry(*t).or_default().add(figures);
    }
    out
}

/// Sums cells over buckets: event type -> figures.
pub fn per_type(cells: &Cells) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for ((_, event_type), figures) in cells {
        out.entry(event_type.clone()).or_default().add(figures);
    }
    out
}

fn put(out: &mut Cells, t: i64, event_type: &str, figures: Figures) {
    out.entry((t, event_type.to_owned())).or_default().add(&figures);
}

#[allow(clippy::too_many_arguments)]
async fn live_buckets(
    state: &AppState,
    unit: live::read::Unit,
    from: i64,
    to: i64,
    size: i64,
    filter: &Filter,
    out: &mut Cells,
) -> Result<(), SeriesError> {
    if from >= to {
        return Ok(());
    }
    let secs = unit.seconds();
    let mut redis = state.redis.clone();
    let (first, last) = (from.div_euclid(secs), (to - 1).div_euclid(secs));
    let buckets = live::read::buckets(&mut redis, &state.keys.live, unit, first, last).await?;
    for (t, bucket) in buckets {
        for ((event_type, source), cell) in bucket {
            if filter.keeps(&event_type, &source) {
                let errors = if event_type == "error" { cell.events } else { 0 };
                let figures = Figures { events: cell.events, revenue_micros: cell.revenue_micros, errors };
                put(out, (t * secs).div_euclid(size) * size, &event_type, figures);
            }
        }
    }
    Ok(())
}

type Row = (i64, String, i64, i64, i64);

/// A rollup table: its name, its bucket column, that column's unix epoch, its bucket size in
/// seconds, its bucket range condition on `$1..$2`.
struct Rollup(&'static str, &'static str, &'static str, i64, &'static str);

const HOURLY: Rollup = Rollup(
    "rollup_hourly",
    "bucket",
    "extract(epoch FROM bucket)",
    3600,
    "bucket >= to_timestamp($1) AND bucket < to_timestamp($2)",
);
const DAILY: Rollup = Rollup(
    "rollup_daily",
    "day",
    "extract(epoch FROM day::timestamp)",
    86_400,
    "day >= (to_timestamp($1) AT TIME ZONE 'UTC')::date AND day < (to_timestamp($2) AT TIME ZONE 'UTC')::date",
);

#[allow(clippy::too_many_arguments)]
async fn rollup(
    pool: &PgPool,
    Rollup(table, column, epoch, native, range): Rollup,
    from: i64,
    to: i64,
    size: i64,
    filter: &Filter,
    out: &mut Cells,
) -> Result<(), SeriesError> {
    if from >= to {
        return Ok(());
    }
    // Grouping on the table's own bucket (or on nothing, for totals) spares the numeric arithmetic
    // of re-bucketing every row: a third of the time of an hourly week at 10M events.
    let (bucket, group) = match size {
        s if s == native => (format!("{epoch}::bigint + 0 * $3::bigint"), format!("{column}, event_type")),
        WHOLE => ("0 * $3::bigint".to_owned(), "event_type".to_owned()),
        _ => (format!("(floor({epoch} / $3) * $3)::bigint"), "1, 2".to_owned()),
    };
    // Table and column expressions are ours (never user input); values are bound.
    let sql = format!(
        "SELECT {bucket}, event_type, sum(events)::bigint, \
                round(sum(revenue) * 1000000)::bigint, sum(errors)::bigint \
         FROM {table} WHERE {range} \
           AND ($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR source = $5) GROUP BY {group}"
    );
    fetch_buckets(pool, AssertSqlSafe(sql), from, to, size, filter, out).await
}

async fn raw(
    pool: &PgPool,
    from: i64,
    to: i64,
    size: i64,
    filter: &Filter,
    out: &mut Cells,
) -> Result<(), SeriesError> {
    if from >= to {
        return Ok(());
    }
    fetch_buckets(pool, include_str!("sql/raw_buckets.sql"), from, to, size, filter, out).await
}

/// Runs a bucket query (binds: from, to, bucket size, event type, source; rows as `Row`) and adds
/// its rows to `out`.
async fn fetch_buckets(
    pool: &PgPool,
    sql: impl SqlSafeStr,
    from: i64,
    to: i64,
    size: i64,
    filter: &Filter,
    out: &mut Cells,
) -> Result<(), SeriesError> {
    let (event_type, source) = filter.binds();
    let rows: Vec<Row> =
        sqlx::query_as(sql).bind(from).bind(to).bind(size).bind(event_type).bind(source).fetch_all(pool).await?;
    for (t, event_type, events, revenue_micros, errors) in rows {
        put(out, t, &event_type, Figures { events, revenue_micros, errors });
    }
    Ok(())
}
