//! `/openapi.json`: the OpenAPI 3 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations and the types below, so it cannot drift from the code; what the
//! annotations cannot say (the event object in full, query parameter forms, security) is added by
//! `constraints`.

mod constraints;

use std::sync::LazyLock;

use axum::{Json, Router, routing::get};
use serde_json::Value;
use utoipa::OpenApi;

use super::{
    AppState,
    error::ErrorBody,
    ingest::schema::{BulkRequest, EventInput},
};

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
