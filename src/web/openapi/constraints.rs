//! What the parsers enforce, written into `/openapi.json` where utoipa's annotations cannot say it:
//! the event object in full (timestamp forms, no `\u0000`, integer ranges, no unknown fields), the
//! query parameters' forms and ranges, and who may call what (security schemes).
//!
//! schemathesis (`tests/it/schemathesis.rs`) checks the document against the running API in every
//! test run: a constraint missing here shows up there as "schema-valid request rejected".

use serde_json::{Value, json};

use crate::domain::event::{MAX_ID_CHARS, MAX_PROPERTIES_BYTES};

/// Text without `\u0000` (PostgreSQL cannot store it); lone UTF-16 surrogates are refused too,
/// which a JSON Schema pattern cannot say.
const NO_NUL: &str = "^[^\\u0000]*$";
/// An event type or source (`domain::Name`).
const NAME: &str = "^[a-z0-9_.:-]{1,64}$";
/// RFC 3339 date-times of years 1970 to 9999, as chrono's parser reads them.
const RFC3339_FROM_1970: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]\
    ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
/// Last millisecond of year 9999, the latest event time accepted.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// The document with every constraint of this module applied.
pub fn apply(doc: &mut Value) {
    doc["components"]["schemas"]["EventInput"] = event_input();
    let bulk = &mut doc["components"]["schemas"]["BulkRequest"];
    bulk["additionalProperties"] = json!(false);
    bulk["properties"]["request_id"] = json!({ "type": ["string", "null"],
        "description": "Accepted for older clients; echoed as the answer's `request_id` (empty: the `X-Request-ID`)." });
    doc["components"]["securitySchemes"] = json!({
        "ingest_key": { "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "An ingest key (`EVENTMILL_INGEST_KEYS`); `Authorization: Bearer <key>` works too. \
                            With no key configured only loopback clients may send events." },
        "token": { "type": "http", "scheme": "bearer",
            "description": "The admin or read-only token (`EVENTMILL_ADMIN_TOKEN`, `EVENTMILL_READONLY_TOKEN`)." },
    });
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let method = if item.get("get").is_some() { "get" } else { "post" };
        let Some(operation) = item.get_mut(method) else { continue };
        if path.starts_with("/v1/events") {
            operation["security"] = json!([{ "ingest_key": [] }]);
        } else if path.starts_with("/v1/analytics") {
            operation["security"] = json!([{ "token": [] }]);
            constrain_parameters(path, operation);
        }
    }
}

/// The schema of each analytics query parameter, by name (`web::query::params`).
fn parameter_schema(path: &str, name: &str) -> Option<Value> {
    let day = json!({ "type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" });
    let time = json!({ "anyOf": [
        { "type": "string", "format": "date-time" },
        { "type": "string", "pattern": "^-?[0-9]{1,15}$", "description": "unix milliseconds" },
    ] });
    let daily = path.ends_with("/daily");
    Some(match name {
        "from" | "to" if daily => day,
        "after_day" => day,
        "from" | "to" => time,
        "event_type" | "source" => json!({ "type": "string", "pattern": NAME }),
        "interval" => json!({ "type": "string", "enum": ["second", "minute", "hour", "day"] }),
        "limit" => json!({ "type": "integer", "minimum": 1, "maximum": if daily { 366 } else { 5000 } }),
        _ => return None,
    })
}

fn constrain_parameters(path: &str, operation: &mut Value) {
    let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        match parameter_schema(path, &name) {
            Some(schema) => parameter["schema"] = schema,
            // A new parameter must get its constraints here (the unit test below fails otherwise).
            None => parameter["x-unconstrained"] = json!(true),
        }
    }
}

/// An event as `domain::parse_event` accepts it.
fn event_input() -> Value {
    let id_text = json!({ "type": "string", "maxLength": MAX_ID_CHARS, "pattern": NO_NUL });
    let integer = json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX });
    json!({
        "type": "object",
        "description": "An event (SPEC section 4). Older clients' aliases are accepted too but are not part of \
            this document: `type`, `actor_id` / `userId`, `sessionId`, `attributes` (never both a field and its alias). \
            `null` counts as absent for every optional field. No string anywhere may contain `\\u0000` or a lone \
            UTF-16 surrogate (PostgreSQL cannot store them).",
        "required": ["event_type"],
        "additionalProperties": false,
        "properties": {
            "event_id": { "type": ["string", "null"], "format": "uuid",
                "description": "Assigned (UUIDv7) when absent; a re-sent id is stored once." },
            "event_type": { "type": "string", "pattern": NAME, "minLength": 1, "maxLength": 64, "example": "purchase" },
            "timestamp": {
                "description": "RFC 3339 text (from 1970-01-01T00:00:00Z to the end of 9999, in UTC) or integer unix milliseconds; the arrival time when absent.",
                "anyOf": [
                    { "type": "string", "format": "date-time", "pattern": RFC3339_FROM_1970,
                      "example": "2026-03-07T12:00:00Z" },
                    { "type": "integer", "minimum": 0, "maximum": MAX_MILLIS },
                    { "type": "null" },
                ],
            },
            "user_id": { "description": "Empty means absent; an integer is accepted too (stored as its digits).",
                "anyOf": [id_text, integer, { "type": "null" }] },
            "session_id": { "description": "Empty means absent; an integer is accepted too (stored as its digits).",
                "anyOf": [id_text, integer, { "type": "null" }] },
            "source": { "type": ["string", "null"], "pattern": NAME, "minLength": 1, "maxLength": 64,
                "description": "`unknown` when absent." },
            "properties": {
                "type": ["object", "null"],
                "description": format!("A JSON object of at most {MAX_PROPERTIES_BYTES} bytes; numbers PostgreSQL's \
                    `numeric` holds. `amount` on purchases is revenue; `profile_id` links impressions, clicks and \
                    purchases to a profile; costs carry `category`, `feature`, `amount`."),
                "propertyNames": { "pattern": NO_NUL },
                "additionalProperties": { "$ref": "#/components/schemas/JsonValue" },
            },
        },
    })
}

/// Any JSON value PostgreSQL's jsonb stores: strings and keys without `\u0000`.
pub fn json_value() -> Value {
    json!({
        "description": "Any JSON value without `\\u0000` in its strings or keys.",
        "anyOf": [
            { "type": ["null", "boolean", "number"] },
            { "type": "string", "pattern": NO_NUL },
            { "type": "array", "items": { "$ref": "#/components/schemas/JsonValue" } },
            { "type": "object", "propertyNames": { "pattern": NO_NUL },
              "additionalProperties": { "$ref": "#/components/schemas/JsonValue" } },
        ],
    })
}
