//! Distinct users of a period and filter (the `active_users` KPI), from HyperLogLogs: inside the
//! live window the consumer's own (per minute, per hour, per hour and `type|source`), before it
//! per-day ones built from the stored rows on first use and cached for six hours. With an event
//! type or source filter the live part counts whole hours (the per-cell HyperLogLogs are hourly);
//! before the live window the period counts whole UTC days.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt};

use crate::redis_conn::RedisConn;

use super::series::{Filter, SeriesError, live_start};
use crate::{live::LiveKeys, web::AppState};

/// How long a day's user HyperLogLogs built from the rows are kept (late events into a day before
/// the live window show in active users after at most this long).
const DAY_CACHE_SECONDS: u64 = 6 * 3600;

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
    if from < live_from {
        // Before the live window, whole UTC days (the period rounded out to them).
        let (first_day, last_day) = (from.div_euclid(86_400), (live_from - 1).div_euclid(86_400) + 1);
        names.extend(day_names(state, &mut redis, first_day, last_day, filter).await?);
    }
    Ok(crate::live::read::distinct(&mut redis, &names).await?)
}

/// The live HyperLogLogs covering `[from, to)`.
async fn live_names(
    redis: &mut RedisConn,
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

/// The per-day HyperLogLogs of days `first..last` (unix days), built from the rows when missing
/// (a few at a time; each day is cached as soon as it is built).
async fn day_names(
    state: &AppState,
    redis: &mut RedisConn,
    first: i64,
    last: i64,
    filter: &Filter,
) -> Result<Vec<String>, SeriesError> {
    let keys = &state.keys.live;
    let per_cell = filter.event_type.is_some() || filter.source.is_some();
    let mut pipe = redis::pipe();
    for day in first..last {
        pipe.smembers(day_cells_key(keys, day, per_cell));
    }
    let known: Vec<BTreeSet<String>> = pipe.query_async(redis).await?;
    let missing: Vec<i64> = (first..last).zip(&known).filter(|(_, c)| c.is_empty()).map(|(d, _)| d).collect();
    let built: Vec<(i64, BTreeSet<String>)> = futures_util::stream::iter(missing)
        .map(|day| async move { build_day(state, day, per_cell).await.map(|cells| (day, cells)) })
        .buffer_unordered(3)
        .try_collect()
        .await?;
    let built: std::collections::HashMap<i64, BTreeSet<String>> = built.into_iter().collect();
    let mut names = Vec::new();
    for (day, cells) in (first..last).zip(known) {
        let cells = built.get(&day).unwrap_or(&cells);
        if per_cell {
            names.extend(cells.iter().filter(|c| keeps(filter, c)).map(|c| day_users_key(keys, day, c)));
        } else {
            names.push(day_users_key(keys, day, "*"));
        }
    }
    Ok(names)
}

/// Reads one day's users (`per_cell`: per `type|source`) from the rows into HyperLogLogs; returns
/// the cells built (the empty cell marks the day as built even without users).
async fn build_day(state: &AppState, day: i64, per_cell: bool) -> Result<BTreeSet<String>, SeriesError> {
    let sql = if per_cell {
        "SELECT event_type || '|' || source, user_id FROM events \
         WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 86400) AND user_id IS NOT NULL GROUP BY 1, 2"
    } else {
        "SELECT '*', user_id FROM events \
         WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 86400) AND user_id IS NOT NULL GROUP BY 2"
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(day * 86_400).fetch_all(&state.pool).await?;
    let keys = &state.keys.live;
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (cell, user) in &rows {
        users.entry(cell).or_default().push(user);
    }
    let mut cells = BTreeSet::from([String::new()]);
    let mut pipe = redis::pipe();
    for (cell, list) in users {
        for chunk in list.chunks(1000) {
            pipe.pfadd(day_users_key(keys, day, cell), chunk).ignore();
        }
        pipe.expire(day_users_key(keys, day, cell), DAY_CACHE_SECONDS as i64).ignore();
        cells.insert(cell.to_owned());
    }
    let marker = day_cells_key(keys, day, per_cell);
    pipe.sadd(&marker, &cells).ignore().expire(&marker, DAY_CACHE_SECONDS as i64).ignore();
    let _: () = pipe.query_async(&mut state.redis.clone()).await?;
    Ok(cells)
}

fn day_users_key(keys: &LiveKeys, day: i64, cell: &str) -> String {
    format!("{}:ud:{day}:{cell}", keys.prefix)
}

fn day_cells_key(keys: &LiveKeys, day: i64, per_cell: bool) -> String {
    format!("{}:udc:{day}:{}", keys.prefix, if per_cell { "cells" } else { "*" })
}
