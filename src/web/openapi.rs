//! `/openapi.json`: the OpenAPI 3 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations and the types below, so it cannot drift from the code.

use axum::{Json, Router, routing::get};
use utoipa::{OpenApi, ToSchema};

use super::AppState;

/// An event as clients send it (SPEC section 4). Aliases of older clients are accepted too:
/// `type`, `actor_id` / `userId`, `sessionId`, `attributes`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventInput {
    /// Assigned (UUIDv7) when absent; a re-sent id is stored once.
    event_id: Option<uuid::Uuid>,
    /// 1-64 characters of `[a-z0-9_.:-]`.
    #[schema(example = "purchase")]
    event_type: String,
    /// RFC 3339 text or integer unix milliseconds; the arrival time when absent.
    #[schema(value_type = Option<String>, example = "2026-03-07T12:00:00Z")]
    timestamp: Option<serde_json::Value>,
    user_id: Option<String>,
    session_id: Option<String>,
    /// 1-64 characters of `[a-z0-9_.:-]`; `unknown` when absent.
    source: Option<String>,
    /// A JSON object of at most 16 KiB. `amount` on purchases is revenue; `profile_id` links
    /// impressions, clicks and purchases to a profile; costs carry `category`, `feature`, `amount`.
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Value>,
}

/// The bulk body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BulkRequest {
    /// At most 5,000 events; all are accepted or none.
    events: Vec<EventInput>,
    /// Accepted for older clients; echoed as the answer's `request_id`.
    request_id: Option<String>,
}

/// Every error answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_events`.
    error: String,
    message: String,
    /// For 422: `{index, field, reason}` per problem; for 400: `{line, column}`.
    #[schema(value_type = Vec<Object>)]
    details: Vec<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "eventmill", description = "Self-hosted product analytics: ingestion and operations API."),
    paths(
        super::ingest::handlers::ingest_one,
        super::ingest::handlers::ingest_bulk,
        super::health::live,
        super::health::detailed
    ),
    components(schemas(EventInput, BulkRequest, ErrorBody, super::ingest::handlers::Accepted))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
