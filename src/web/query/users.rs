//! Distinct users of a period and filter (the `active_users` KPI), from HyperLogLogs: inside the
//! live window the consumer's own (per minute, per hour, per hour and `type|source`), before it
//! per-day ones built once from the stored rows and cached for an hour. With an event type or
//! source filter the live part counts whole hours (the per-cell HyperLogLogs are hourly).

use std::collections::BTreeSet;

use redis::aio::ConnectionManager;

use super::series::{Filter, SeriesError, live_start};
use crate::{live::LiveKeys, web::AppState};

/// How long a day's user HyperLogLogs built from the rows are kept (late events into an old day
/// show after at most this long).
const DAY_CACHE_SECONDS: u64 = 3600;

/// Distinct users with events in `[from, to)` (unix seconds) that pass `filter`.
pub async fn active_users(state: &AppState, from: i64, to: i64, filter: &Filter) -> Result<u64, SeriesError> {
    let now = chrono::Utc::now().timestamp();
    let keys = &state.keys.live;
    let mut redis = state.redis.clone();
    let live_from = live_start(now).clamp(from, to.max(from));
    let mut names = Vec::new();
    if live_from < to {
        names.extend(live_names(&mut redis, keys, live_from, to, filter).await?);
    }
    let mut edge_users: Vec<String> = Vec::new();
    if from < live_from {
        let (first_day, last_day) = ((from + 86_399).div_euclid(86_400), live_from.div_euclid(86_400));
        if first_day < last_day {
            names.extend(day_names(state, &mut redis, first_day, last_day, filter).await?);
            edge_users.extend(rows_users(state, from, first_day * 86_400, filter).await?);
            edge_users.extend(rows_users(state, last_day * 86_400, live_from, filter).await?);
        } else {
            edge_users.extend(rows_users(state, from, live_from, filter).await?);
        }
    }
    Ok(count_union(&mut redis, keys, names, &edge_users).await?)
}

/// The live HyperLogLogs covering `[from, to)`.
async fn live_names(
    redis: &mut ConnectionManager,
    keys: &LiveKeys,
    from: i64,
    to: i64,
    filter: &Filter,
) -> redis::RedisResult<Vec<String>> {
    let (first_hour, last_hour) = (from.div_euclid(3600), (to - 1).div_euclid(3600));
    if filter.event_type.is_some() || filter.source.is_some() {
        let hours = crate::live::read::hour_cells(redis, keys, first_hour, last_hour).await?;
        return Ok(hours
            .into_iter()
            .flat_map(|(hour, cells)| {
                cells.into_iter().filter(|c| keeps(filter, c)).map(move |c| keys.cell_users(hour, &c))
            })
            .collect());
    }
    // Whole hours from the hourly HyperLogLogs, the minutes at either end from the minute ones.
    let (lo, hi) = ((from + 3599).div_euclid(3600), to.div_euclid(3600));
    if lo >= hi {
        return Ok((from.div_euclid(60)..=(to - 1).div_euclid(60)).map(|m| keys.users(m)).collect());
    }
    let mut names: Vec<String> = (lo..hi).map(|h| keys.hour_users(h)).collect();
    names.extend((from.div_euclid(60)..lo * 60).map(|m| keys.users(m)));
    names.extend((hi * 60..=(to - 1).div_euclid(60)).map(|m| keys.users(m)));
    Ok(names)
}

fn keeps(filter: &Filter, cell: &str) -> bool {
    let (event_type, source) = cell.split_once('|').unwrap_or((cell, ""));
    filter.keeps(event_type, source)
}

/// The per-day HyperLogLogs of days `first..last` (unix days), built from the rows when missing.
async fn day_names(
    state: &AppState,
    redis: &mut ConnectionManager,
    first: i64,
    last: i64,
    filter: &Filter,
) -> Result<Vec<String>, SeriesError> {
    let keys = &state.keys.live;
    let mut pipe = redis::pipe();
    for day in first..last {
        pipe.smembers(day_cells_key(keys, day));
    }
    let known: Vec<BTreeSet<String>> = pipe.query_async(redis).await?;
    let mut names = Vec::new();
    for (day, mut cells) in (first..last).zip(known) {
        if cells.is_empty() {
            cells = build_day(state, redis, day).await?;
        }
        let unfiltered = filter.event_type.is_none() && filter.source.is_none();
        if unfiltered {
            names.push(day_users_key(keys, day, "*"));
        } else {
            names.extend(cells.iter().filter(|c| keeps(filter, c)).map(|c| day_users_key(keys, day, c)));
        }
    }
    Ok(names)
}

/// Reads one day's users per `type|source` from the rows into HyperLogLogs; returns its cells.
async fn build_day(state: &AppState, redis: &mut ConnectionManager, day: i64) -> Result<BTreeSet<String>, SeriesError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_type, source, user_id FROM events \
         WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 86400) AND user_id IS NOT NULL GROUP BY 1, 2, 3",
    )
    .bind(day * 86_400)
    .fetch_all(&state.pool)
    .await?;
    let keys = &state.keys.live;
    // The empty cell marks the day as built even when it has no users.
    let mut cells = BTreeSet::from([String::new()]);
    let mut pipe = redis::pipe();
    for chunk in rows.chunks(1000) {
        let users: Vec<&str> = chunk.iter().map(|(_, _, u)| u.as_str()).collect();
        pipe.pfadd(day_users_key(keys, day, "*"), users).ignore();
    }
    let mut per_cell: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for (event_type, source, user) in &rows {
        per_cell.entry(format!("{event_type}|{source}")).or_default().push(user);
    }
    for (cell, users) in per_cell {
        for chunk in users.chunks(1000) {
            pipe.pfadd(day_users_key(keys, day, &cell), chunk).ignore();
        }
        cells.insert(cell);
    }
    for cell in &cells {
        pipe.expire(day_users_key(keys, day, cell), DAY_CACHE_SECONDS as i64).ignore();
    }
    pipe.expire(day_users_key(keys, day, "*"), DAY_CACHE_SECONDS as i64).ignore();
    pipe.sadd(day_cells_key(keys, day), &cells).ignore();
    pipe.expire(day_cells_key(keys, day), DAY_CACHE_SECONDS as i64).ignore();
    let _: () = pipe.query_async(redis).await?;
    Ok(cells)
}

/// The distinct users of the rows of `[from, to)` (the edges of a period outside the live window).
async fn rows_users(state: &AppState, from: i64, to: i64, filter: &Filter) -> Result<Vec<String>, SeriesError> {
    if from >= to {
        return Ok(Vec::new());
    }
    let (event_type, source) = filter.binds();
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT user_id FROM events WHERE ts >= to_timestamp($1) AND ts < to_timestamp($2) \
         AND user_id IS NOT NULL AND ($3::text IS NULL OR event_type = $3) AND ($4::text IS NULL OR source = $4)",
    )
    .bind(from)
    .bind(to)
    .bind(event_type)
    .bind(source)
    .fetch_all(&state.pool)
    .await?)
}

/// PFCOUNT of `names` and `extra` users (added to a scratch HyperLogLog, dropped in the same step).
async fn count_union(
    redis: &mut ConnectionManager,
    keys: &LiveKeys,
    mut names: Vec<String>,
    extra: &[String],
) -> redis::RedisResult<u64> {
    if extra.is_empty() {
        return crate::live::read::distinct(redis, &names).await;
    }
    let scratch = format!("{}:scratch:{}", keys.prefix, uuid::Uuid::new_v4());
    let mut pipe = redis::pipe();
    pipe.atomic();
    for chunk in extra.chunks(1000) {
        pipe.pfadd(&scratch, chunk).ignore();
    }
    names.push(scratch.clone());
    pipe.cmd("PFCOUNT").arg(&names).del(&scratch).ignore();
    let (count,): (u64,) = pipe.query_async(redis).await?;
    Ok(count)
}

fn day_users_key(keys: &LiveKeys, day: i64, cell: &str) -> String {
    format!("{}:ud:{day}:{cell}", keys.prefix)
}

fn day_cells_key(keys: &LiveKeys, day: i64) -> String {
    format!("{}:udc:{day}", keys.prefix)
}
