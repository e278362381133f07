//! `/openapi.json`: the OpenAPI 3 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations and the types below, so it cannot drift from the code; what the
//! annotations cannot say (the event object in full, query parameter forms, security) is added by
//! `constraints`.

mod constraints;

use std::sync::LazyLock;

use axum::{Json, Router, routing::get};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::AppState;

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
    info(
        title = "eventmill",
        description = "Self-hosted product analytics: ingestion, analytics queries and operations API."
    ),
    paths(
        super::ingest::handlers::ingest_one,
        super::ingest::handlers::ingest_bulk,
        super::query::timeseries,
        super::query::summary,
        super::query::daily,
        super::query::event_types,
        super::query::raw::raw,
        super::health::live,
        super::health::detailed
    ),
    components(schemas(EventInput, BulkRequest, ErrorBody, super::ingest::handlers::Accepted))
)]
pub struct ApiDoc;

/// The document served: utoipa's, with `constraints` applied.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        doc["components"]["schemas"]["JsonValue"] = constraints::json_value();
        constraints::apply(&mut doc);
        doc
    });
    &DOCUMENT
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_limits_the_parser_enforces() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let event = &schemas["EventInput"]["properties"];
        for field in ["event_type", "source"] {
            assert_eq!(event[field]["minLength"], 1, "{field}: {}", event[field]);
            assert_eq!(event[field]["maxLength"], 64, "{field}");
            assert_eq!(event[field]["pattern"], "^[a-z0-9_.:-]{1,64}$", "{field}");
        }
        assert_eq!(event["user_id"]["anyOf"][0]["maxLength"], 256);
        let events = &schemas["BulkRequest"]["properties"]["events"];
        assert_eq!((&events["minItems"], &events["maxItems"]), (&1.into(), &5000.into()), "{events}");
        assert_eq!(schemas["EventInput"]["additionalProperties"], false);
    }

    #[test]
    fn every_query_parameter_has_its_constraints() {
        let text = document().to_string();
        assert!(!text.contains("x-unconstrained"), "a parameter lacks its schema in constraints.rs");
        let raw = &document()["paths"]["/v1/analytics/events/raw"]["get"];
        assert_eq!(raw["security"][0]["token"], serde_json::json!([]));
    }
}
