//! The two ingestion handlers: check, validate every event, append to the stream, answer 202.

use std::net::SocketAddr;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{ApiError, auth};
use crate::{
    domain::{Event, parse_event},
    stream::PublishError,
    web::{AppState, RequestId},
};

/// The 202 answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub accepted: usize,
    /// Same as `accepted`: the name clients of the replaced systems read.
    pub queued: usize,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
}

/// The bulk body: `{"events": [...], "request_id"?: "..."}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    #[serde(default)]
    request_id: Option<String>,
}

/// `POST /v1/events`: one event.
#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    request_body = super::schema::EventInput,
    responses(
        (status = 202, description = "In the stream", body = Accepted),
        (status = 400, description = "Malformed JSON", body = crate::web::error::ErrorBody),
        (status = 401, description = "Missing or bad ingest key", body = crate::web::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::web::error::ErrorBody),
        (status = 415, description = "Not application/json", body = crate::web::error::ErrorBody),
        (status = 422, description = "Invalid event", body = crate::web::error::ErrorBody),
        (status = 429, description = "Stream full, or Redis memory above its high-water mark (the message names it); see Retry-After", body = crate::web::error::ErrorBody),
        (status = 503, description = "Redis unreachable, or refusing writes (read-only replica, MISCONF: the message names it); see Retry-After", body = crate::web::error::ErrorBody),
    ))]
pub async fn ingest_one(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = checked_body(&state, &headers, peer, body)?;
    let raw: &RawValue = serde_json::from_slice(&body)?;
    let mut events = vec![parse_event(raw, 0, Utc::now()).map_err(ApiError::InvalidEvents)?];
    publish(&state, &mut events, &request_id).await?;
    Ok(accepted(1, request_id, Some(events[0].event_id)))
}

/// `POST /v1/events/bulk`: up to `max_batch_events` events, all accepted or none.
#[utoipa::path(post, path = "/v1/events/bulk", tag = "ingest",
    request_body = super::schema::BulkRequest,
    responses(
        (status = 202, description = "All events in the stream", body = Accepted),
        (status = 400, description = "Malformed JSON", body = crate::web::error::ErrorBody),
        (status = 401, description = "Missing or bad ingest key", body = crate::web::error::ErrorBody),
        (status = 413, description = "Over 5,000 events or the body limit", body = crate::web::error::ErrorBody),
        (status = 415, description = "Not application/json", body = crate::web::error::ErrorBody),
        (status = 422, description = "Every invalid event's index, field and reason", body = crate::web::error::ErrorBody),
        (status = 429, description = "Stream full, or Redis memory above its high-water mark (the message names it); see Retry-After", body = crate::web::error::ErrorBody),
        (status = 503, description = "Redis unreachable, or refusing writes (read-only replica, MISCONF: the message names it); see Retry-After", body = crate::web::error::ErrorBody),
    ))]
pub async fn ingest_bulk(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RequestId(header_request_id): RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = checked_body(&state, &headers, peer, body)?;
    let bulk: BulkBody = serde_json::from_slice(&body)?;
    let max = state.settings.ingest.max_batch_events;
    if bulk.events.len() > max {
        return Err(ApiError::TooManyEvents { count: bulk.events.len(), max });
    }
    if bulk.events.is_empty() {
        return Err(ApiError::InvalidBody { message: "`events` is empty; send at least one event".to_owned() });
    }
    let request_id = bulk.request_id.filter(|id| !id.is_empty()).unwrap_or(header_request_id);
    let now = Utc::now();
    let mut events = Vec::with_capacity(bulk.events.len());
    let mut errors = Vec::new();
    for (index, raw) in bulk.events.iter().enumerate() {
        match parse_event(raw, index, now) {
            Ok(event) => events.push(event),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if !errors.is_empty() {
        crate::metrics::ingest_events("invalid", bulk.events.len());
        return Err(ApiError::InvalidEvents(errors));
    }
    publish(&state, &mut events, &request_id).await?;
    Ok(accepted(events.len(), request_id, None))
}

/// Key, content type and size, in that order, before the body is looked at.
fn checked_body(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    auth::check_ingest_key(&state.settings, headers, peer)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { limit: state.settings.ingest.body_limit_bytes },
        _ => ApiError::BadRequest(format!("could not read the request body: {rejection}")),
    })
}

async fn publish(state: &AppState, events: &mut [Event], request_id: &str) -> Result<(), ApiError> {
    let published = state.producer.publish(events, request_id).await;
    crate::metrics::ingest_events(if published.is_ok() { "accepted" } else { "refused" }, events.len());
    published.map_err(|error| match error {
        PublishError::Backpressure { .. } => ApiError::Backpressure { retry_after: 1 },
        PublishError::Unavailable(cause) => {
            tracing::warn!(%cause, request_id, "Redis unavailable; events refused");
            ApiError::Unavailable { retry_after: 1 }
        }
        PublishError::MemoryFull(message) => ApiError::RedisFull { message, retry_after: 1 },
        PublishError::Refused(message) => ApiError::RedisRefusing { message, retry_after: 1 },
    })
}

fn accepted(count: usize, request_id: String, event_id: Option<Uuid>) -> (StatusCode, Json<Accepted>) {
    (StatusCode::ACCEPTED, Json(Accepted { accepted: count, queued: count, request_id, event_id }))
}
