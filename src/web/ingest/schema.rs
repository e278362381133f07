//! The ingestion bodies as the OpenAPI document names them (the parser is `domain::event`; these
//! types only describe it, so the document and the handlers share one source).

use utoipa::ToSchema;

/// An event as clients send it (SPEC section 4). Its schema in the document is written out in full
/// by `constraints::event_input`; these fields only name it for utoipa.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventInput {
    /// Assigned (UUIDv7) when absent; a re-sent id is stored once.
    event_id: Option<uuid::Uuid>,
    /// 1-64 characters of `[a-z0-9_.:-]`.
    #[schema(example = "purchase", min_length = 1, max_length = 64, pattern = "^[a-z0-9_.:-]{1,64}$")]
    event_type: String,
    /// RFC 3339 text or integer unix milliseconds; the arrival time when absent.
    #[schema(value_type = Option<String>, example = "2026-03-07T12:00:00Z")]
    timestamp: Option<serde_json::Value>,
    /// At most 256 characters, no `\u0000`; an integer is accepted too; empty means absent.
    #[schema(max_length = 256)]
    user_id: Option<String>,
    /// At most 256 characters, no `\u0000`; empty means absent.
    #[schema(max_length = 256)]
    session_id: Option<String>,
    /// 1-64 characters of `[a-z0-9_.:-]`; `unknown` when absent.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_.:-]{1,64}$")]
    source: Option<String>,
    /// A JSON object of at most 16 KiB; no `\u0000` or lone UTF-16 surrogate in keys or values, and
    /// numbers PostgreSQL's `numeric` holds (what jsonb cannot store is refused with 422). `amount` on purchases is revenue; `profile_id` links
    /// impressions, clicks and purchases to a profile; costs carry `category`, `feature`, `amount`.
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Value>,
}

/// The bulk body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BulkRequest {
    /// 1 to 5,000 events; all are accepted or none.
    #[schema(min_items = 1, max_items = 5000)]
    events: Vec<EventInput>,
    /// Accepted for older clients; echoed as the answer's `request_id`.
    request_id: Option<String>,
}
