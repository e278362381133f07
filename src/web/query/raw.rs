//! `GET /v1/analytics/events/raw`: the stored events of a window of at most one hour, at most
//! 5,000 at a time, oldest first.

use axum::{
    Json,
    extract::{RawQuery, State},
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::params::{self, parse_query};
use crate::web::{ApiError, AppState, auth::Principal};

/// Longest window of one request.
const MAX_WINDOW_HOURS: i64 = 1;
/// Most rows of one request.
const MAX_LIMIT: usize = 5000;

/// A stored event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RawEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub ts: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub source: String,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryParams {
    from: Option<String>,
    to: Option<String>,
    event_type: Option<String>,
    limit: Option<String>,
}

type Row = (Uuid, String, DateTime<Utc>, Option<String>, Option<String>, String, serde_json::Value);

/// Raw events of `[from, to)`.
#[utoipa::path(get, path = "/v1/analytics/events/raw", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or unix ms; default `to` minus 1 hour"),
        ("to" = Option<String>, Query, description = "RFC 3339 or unix ms; default now; at most 1 hour after `from`"),
        ("event_type" = Option<String>, Query, description = "Only this event type"),
        ("limit" = Option<String>, Query, description = "1 to 5,000; default 1,000"),
    ),
    responses((status = 200, body = Vec<RawEvent>), (status = 400, body = crate::web::error::ErrorBody),
        (status = 401, body = crate::web::error::ErrorBody)))]
pub async fn raw(
    _: Principal,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<RawEvent>>, ApiError> {
    let q: RawQueryParams = parse_query(query.as_deref())?;
    let max = Duration::hours(MAX_WINDOW_HOURS);
    let (from, to) = params::window(q.from.as_deref(), q.to.as_deref(), max, max)?;
    let event_type = params::name("event_type", q.event_type.as_deref())?;
    let limit = params::limit(q.limit.as_deref(), 1000, MAX_LIMIT)?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_id, event_type, ts, user_id, session_id, source, properties FROM events \
         WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR event_type = $3) ORDER BY ts, event_id LIMIT $4",
    )
    .bind(from)
    .bind(to)
    .bind(event_type.map(|n| n.to_string()))
    .bind(limit as i64)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let events = rows.into_iter().map(|(event_id, event_type, ts, user_id, session_id, source, properties)| RawEvent {
        event_id,
        event_type,
        ts: ts.to_rfc3339_opts(SecondsFormat::Micros, true),
        user_id,
        session_id,
        source,
        properties,
    });
    Ok(Json(events.collect()))
}
