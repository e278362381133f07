//! The query API (SPEC section 10) under `/v1/analytics`: admin or read-only token. History comes
//! from the rollup tables, the last hours (and the unfinished bucket) from the live counters, so a
//! "last hour" chart is complete up to the current second. Every bad parameter is a 400 naming it.

pub mod params;
pub mod raw;
pub mod series;
pub mod users;

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    routing::get,
};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use self::{
    params::{Interval, parse_query},
    series::{Figures, Filter},
};
use crate::{
    live,
    web::{ApiError, AppState, auth::Principal},
};

/// The query routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/timeseries", get(timeseries))
        .route("/v1/analytics/summary", get(summary))
        .route("/v1/analytics/events/daily", get(daily))
        .route("/v1/analytics/event-types", get(event_types))
        .route("/v1/analytics/events/raw", get(raw::raw))
}

/// One bucket of a timeseries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// Start of the bucket (RFC 3339, UTC).
    pub t: String,
    pub events: i64,
    /// Sum of `properties.amount` of purchases.
    pub revenue: f64,
    /// Events of type `error`.
    pub errors: i64,
}

impl Point {
    fn new(t: i64, f: &Figures) -> Self {
        Self { t: rfc3339(t), events: f.events, revenue: live::read::revenue(f.revenue_micros), errors: f.errors }
    }
}

/// `timeseries` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Timeseries {
    pub interval: String,
    pub from: String,
    pub to: String,
    /// Every bucket of the window, empty ones included, oldest first.
    pub points: Vec<Point>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeseriesQuery {
    event_type: Option<String>,
    source: Option<String>,
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
}

/// `GET /v1/analytics/timeseries`: events, revenue and errors per bucket.
#[utoipa::path(get, path = "/v1/analytics/timeseries", tag = "analytics",
    params(
        ("event_type" = Option<String>, Query, description = "Only this event type"),
        ("source" = Option<String>, Query, description = "Only this source"),
        ("from" = Option<String>, Query, description = "RFC 3339 or unix ms; default `to` minus 1 hour; rounded down to its bucket"),
        ("to" = Option<String>, Query, description = "RFC 3339 or unix ms; default now"),
        ("interval" = Option<String>, Query, description = "second (window <= 1 h), minute (<= 7 days), hour (<= 400 days), day; default minute"),
    ),
    responses((status = 200, body = Timeseries), (status = 400, body = crate::web::error::ErrorBody),
        (status = 401, body = crate::web::error::ErrorBody)))]
pub async fn timeseries(
    _: Principal,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Timeseries>, ApiError> {
    let q: TimeseriesQuery = parse_query(query.as_deref())?;
    let interval = Interval::parse(q.interval.as_deref())?;
    let (from, to) = params::window(q.from.as_deref(), q.to.as_deref(), Duration::hours(1), interval.max_window())?;
    let filter = Filter {
        event_type: params::name("event_type", q.event_type.as_deref())?,
        source: params::name("source", q.source.as_deref())?,
    };
    let cells = series::cells(&state, from, to, interval, &filter).await?;
    let buckets = series::per_bucket(&cells);
    let size = interval.seconds();
    let first = from.timestamp().div_euclid(size) * size;
    let zero = Figures::default();
    let points = (first..to.timestamp())
        .step_by(size as usize)
        .map(|t| Point::new(t, buckets.get(&t).unwrap_or(&zero)))
        .collect();
    let interval = q.interval.unwrap_or_else(|| "minute".to_owned());
    Ok(Json(Timeseries { interval, from: rfc3339(first), to: rfc3339(to.timestamp()), points }))
}

/// `summary` answer: the KPIs of a period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub events: i64,
    pub page_views: i64,
    pub purchases: i64,
    pub revenue: f64,
    pub errors: i64,
    /// errors / events (0 without events).
    pub error_rate: f64,
    /// Distinct users with events in the period that pass the filters (HyperLogLog estimate,
    /// about 1 % error; with a filter, the last 23 hours count whole hours).
    pub active_users: u64,
    /// Events per type.
    pub by_type: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    from: Option<String>,
    to: Option<String>,
    source: Option<String>,
    event_type: Option<String>,
}

/// `GET /v1/analytics/summary`: KPIs of `[from, to)`, to the minute inside the last 23 hours (live
/// counters), to the hour before (whole days and hours from the rollups).
#[utoipa::path(get, path = "/v1/analytics/summary", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or unix ms; default `to` minus 24 hours; rounded down to the minute (last 23 hours) or hour"),
        ("to" = Option<String>, Query, description = "RFC 3339 or unix ms; default now; rounded up to the minute (last 23 hours) or hour"),
        ("source" = Option<String>, Query, description = "Only this source"),
        ("event_type" = Option<String>, Query, description = "Only this event type"),
    ),
    responses((status = 200, body = Summary), (status = 400, body = crate::web::error::ErrorBody),
        (status = 401, body = crate::web::error::ErrorBody)))]
pub async fn summary(
    _: Principal,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Summary>, ApiError> {
    let q: SummaryQuery = parse_query(query.as_deref())?;
    let (from, to) =
        params::window(q.from.as_deref(), q.to.as_deref(), Duration::hours(24), Interval::Hour.max_window())?;
    let filter = Filter {
        event_type: params::name("event_type", q.event_type.as_deref())?,
        source: params::name("source", q.source.as_deref())?,
    };
    let (from, to) = series::totals_window(from.timestamp(), to.timestamp(), Utc::now().timestamp());
    let (cells, active_users) =
        tokio::try_join!(series::totals(&state, from, to, &filter), users::active_users(&state, from, to, &filter),)?;
    let per_type = series::per_type(&cells);
    let count = |t: &str| per_type.get(t).map_or(0, |f| f.events);
    let (events, revenue_micros, errors) =
        per_type.values().fold((0, 0, 0), |(e, r, x), f| (e + f.events, r + f.revenue_micros, x + f.errors));
    Ok(Json(Summary {
        from: rfc3339(from),
        to: rfc3339(to),
        events,
        page_views: count("page_view"),
        purchases: count("purchase"),
        revenue: live::read::revenue(revenue_micros),
        errors,
        error_rate: if events == 0 { 0.0 } else { errors as f64 / events as f64 },
        active_users,
        by_type: per_type.iter().map(|(t, f)| (t.clone(), f.events)).collect(),
    }))
}

/// One day of `events/daily`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Day {
    pub day: String,
    pub events: i64,
    pub revenue: f64,
    pub errors: i64,
}

/// `events/daily` answer: a page of days, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyPage {
    pub items: Vec<Day>,
    /// Pass as `after_day` for the next page; absent on the last page.
    pub next_after_day: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DailyQuery {
    from: Option<String>,
    to: Option<String>,
    event_type: Option<String>,
    source: Option<String>,
    after_day: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/analytics/events/daily`: figures per day of `[from, to]` (days), with cursor pagination.
#[utoipa::path(get, path = "/v1/analytics/events/daily", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "First day YYYY-MM-DD; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "Last day YYYY-MM-DD (included); default today"),
        ("event_type" = Option<String>, Query, description = "Only this event type"),
        ("source" = Option<String>, Query, description = "Only this source"),
        ("after_day" = Option<String>, Query, description = "Cursor: the `next_after_day` of the previous page"),
        ("limit" = Option<String>, Query, description = "Days per page, 1 to 366; default 31"),
    ),
    responses((status = 200, body = DailyPage), (status = 400, body = crate::web::error::ErrorBody),
        (status = 401, body = crate::web::error::ErrorBody)))]
pub async fn daily(
    _: Principal,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<DailyPage>, ApiError> {
    let q: DailyQuery = parse_query(query.as_deref())?;
    let today = Utc::now().date_naive();
    let to = params::day("to", q.to.as_deref())?.unwrap_or(today);
    let from = params::day("from", q.from.as_deref())?.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(params::bad("from", "must not be after `to`"));
    }
    if to - from > Interval::Day.max_window() {
        return Err(params::bad("to", "the period may be at most 3660 days"));
    }
    let after = params::day("after_day", q.after_day.as_deref())?;
    let limit = params::limit(q.limit.as_deref(), 31, 366)?;
    let filter = Filter {
        event_type: params::name("event_type", q.event_type.as_deref())?,
        source: params::name("source", q.source.as_deref())?,
    };
    let first = after.map_or(from, |a| (a + Duration::days(1)).max(from));
    let mut items = Vec::new();
    if first <= to {
        let last = (first + Duration::days(limit as i64 - 1)).min(to);
        let cells =
            series::cells(&state, midnight(first), midnight(last + Duration::days(1)), Interval::Day, &filter).await?;
        let buckets = series::per_bucket(&cells);
        let zero = Figures::default();
        for day in first.iter_days().take_while(|d| *d <= last) {
            let f = buckets.get(&midnight(day).timestamp()).unwrap_or(&zero);
            items.push(Day {
                day: day.to_string(),
                events: f.events,
                revenue: live::read::revenue(f.revenue_micros),
                errors: f.errors,
            });
        }
    }
    let next_after_day = items.last().filter(|d| d.day < to.to_string() && items.len() == limit).map(|d| d.day.clone());
    Ok(Json(DailyPage { items, next_after_day }))
}

/// One event type and its count.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypeCount {
    pub event_type: String,
    pub events: i64,
}

/// `GET /v1/analytics/event-types`: every event type seen in the last 400 days, with its count.
#[utoipa::path(get, path = "/v1/analytics/event-types", tag = "analytics",
    responses((status = 200, body = Vec<EventTypeCount>), (status = 400, body = crate::web::error::ErrorBody),
        (status = 401, body = crate::web::error::ErrorBody)))]
pub async fn event_types(
    _: Principal,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<EventTypeCount>>, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoQuery {}
    let _: NoQuery = parse_query(query.as_deref())?;
    let now = Utc::now();
    let cells = series::cells(&state, now - Duration::days(400), now, Interval::Day, &Filter::default()).await?;
    let types =
        series::per_type(&cells).into_iter().map(|(event_type, f)| EventTypeCount { event_type, events: f.events });
    Ok(Json(types.collect()))
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}
