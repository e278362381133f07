//! The stream entry format: field `e` holds the event as compact JSON (times as unix microseconds),
//! field `r` the request id that brought it, so logs can follow an event from HTTP to the row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{domain::Event, store::EventRow};

/// Entry field holding the event JSON.
pub const EVENT_FIELD: &str = "e";
/// Entry field holding the request id.
pub const REQUEST_FIELD: &str = "r";

#[derive(Serialize)]
struct Outgoing<'a> {
    id: &'a Uuid,
    t: &'a str,
    ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    u: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'a str>,
    src: &'a str,
    p: &'a RawValue,
    at: i64,
}

/// Serializes an accepted event for XADD.
pub fn encode(event: &Event, ingested_at: DateTime<Utc>) -> String {
    serde_json::to_string(&Outgoing {
        id: &event.event_id,
        t: event.event_type.as_str(),
        ts: event.ts.timestamp_micros(),
        u: event.user_id.as_deref(),
        s: event.session_id.as_deref(),
        src: event.source.as_str(),
        p: &event.properties,
        at: ingested_at.timestamp_micros(),
    })
    .expect("an event always serializes")
}

/// Reads an entry's event back; the error becomes the dead-letter reason if it persists.
pub fn decode(payload: &str) -> Result<EventRow, String> {
    serde_json::from_str(payload).map_err(|e| format!("stream entry is not a valid event: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_event;

    #[test]
    fn an_event_survives_the_round_trip() {
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"event_type":"purchase","user_id":"u","properties":{"amount":1.5}}"#).unwrap();
        let event = parse_event(&raw, 0, Utc::now()).unwrap();
        let row = decode(&encode(&event, Utc::now())).unwrap();
        assert_eq!(row.event_id, event.event_id);
        assert_eq!(row.ts_micros, event.ts.timestamp_micros());
        assert_eq!(row.user_id.as_deref(), Some("u"));
        assert_eq!(row.session_id, None);
        assert_eq!(row.properties.get(), r#"{"amount":1.5}"#);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(decode("not json").unwrap_err().contains("not a valid event"));
    }
}
