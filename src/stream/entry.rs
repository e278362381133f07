//! The stream entry format: field `e` holds a request's events as compact JSON (times as unix
//! microseconds), one object or, packed, an array of up to [`EVENTS_PER_ENTRY`]; field `r` holds
//! the request id that brought them, so logs can follow an event from HTTP to the row.
//!
//! Packing is what makes the stream cheap: Redis' cost (XADD, XREADGROUP, XACK, XTRIM) is per
//! entry, not per byte, so a 1,000-event request costs 10 entries instead of 1,000. Every event
//! of a packed entry keeps its own byte span, so one that PostgreSQL refuses is dead-lettered alone.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{domain::Event, store::EventRow};

/// Entry field holding the event JSON (one object, or an array of them).
pub const EVENT_FIELD: &str = "e";
/// Entry field holding the request id.
pub const REQUEST_FIELD: &str = "r";
/// The field holding the W3C `traceparent` of the request that appended the entry (only when
/// traces are exported and the request was traced): the consumer's span for the entry continues it.
pub const TRACE_FIELD: &str = "t";
/// Most events one entry carries: large enough that Redis' per-entry cost is spread over many
/// events, small enough that a redelivery or a poison event's isolation re-handles little.
pub const EVENTS_PER_ENTRY: usize = 100;

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

fn write_event(buf: &mut Vec<u8>, event: &Event, ingested_micros: i64) {
    let outgoing = Outgoing {
        id: &event.event_id,
        t: event.event_type.as_str(),
        ts: event.ts.timestamp_micros(),
        u: event.user_id.as_deref(),
        s: event.session_id.as_deref(),
        src: event.source.as_str(),
        p: &event.properties,
        at: ingested_micros,
    };
    serde_json::to_writer(buf, &outgoing).expect("an event always serializes");
}

/// Serializes one accepted event as a single-event entry payload.
pub fn encode(event: &Event, ingested_at: DateTime<Utc>) -> String {
    String::from_utf8(encode_packed(std::slice::from_ref(event), ingested_at)).expect("JSON is UTF-8")
}

/// Serializes up to [`EVENTS_PER_ENTRY`] events as one entry payload: a lone event as an object,
/// more as an array.
pub fn encode_packed(events: &[Event], ingested_at: DateTime<Utc>) -> Vec<u8> {
    let at = ingested_at.timestamp_micros();
    let mut buf = Vec::with_capacity(events.len() * 256);
    if let [event] = events {
        write_event(&mut buf, event, at);
        return buf;
    }
    buf.push(b'[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_event(&mut buf, event, at);
    }
    buf.push(b']');
    buf
}

/// One event of an entry: the row read from it, or why it could not be read (the dead-letter
/// reason if it persists). Where its JSON sits in the payload is found only when a dead letter
/// needs it ([`spans`]).
#[derive(Debug)]
pub struct Decoded {
    pub row: Result<EventRow, String>,
}

/// Reads an entry's events back. A packed entry is read in one pass; only when that fails (an
/// unreadable event, which is rare) is the list split and each event read alone, so one bad event
/// is isolated. An unreadable payload is one event spanning it all, with the error.
pub fn decode(payload: &str) -> Vec<Decoded> {
    if !payload.trim_start().starts_with('[') {
        return vec![Decoded { row: decode_one(payload) }];
    }
    if let Ok(rows) = serde_json::from_str::<Vec<EventRow>>(payload)
        && !rows.is_empty()
    {
        return rows.into_iter().map(|row| Decoded { row: Ok(row) }).collect();
    }
    match split(payload) {
        Ok(spans) => spans.into_iter().map(|span| Decoded { row: decode_one(&payload[span]) }).collect(),
        Err(reason) => vec![Decoded { row: Err(reason) }],
    }
}

/// The byte span of each event of a payload, in the order [`decode`] returns them.
pub fn spans(payload: &str) -> Vec<Range<usize>> {
    if !payload.trim_start().starts_with('[') {
        return std::iter::once(0..payload.len()).collect();
    }
    split(payload).unwrap_or_else(|_| std::iter::once(0..payload.len()).collect())
}

fn split(payload: &str) -> Result<Vec<Range<usize>>, String> {
    let items: Vec<&RawValue> =
        serde_json::from_str(payload).map_err(|e| format!("stream entry is not a valid event list: {e}"))?;
    if items.is_empty() {
        return Err("stream entry holds an empty event list".to_owned());
    }
    let base = payload.as_ptr() as usize;
    Ok(items
        .into_iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect())
}

/// Reads one event object.
pub fn decode_one(json: &str) -> Result<EventRow, String> {
    serde_json::from_str(json).map_err(|e| format!("stream entry is not a valid event: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_event;

    fn event(json: &str) -> Event {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        parse_event(&raw, 0, Utc::now()).unwrap()
    }

    #[test]
    fn an_event_survives_the_round_trip() {
        let event = event(r#"{"event_type":"purchase","user_id":"u","properties":{"amount":1.5}}"#);
        let decoded = decode(&encode(&event, Utc::now()));
        let row = decoded[0].row.as_ref().unwrap();
        assert_eq!(row.event_id, event.event_id);
        assert_eq!(row.ts_micros, event.ts.timestamp_micros());
        assert_eq!(row.user_id.as_deref(), Some("u"));
        assert_eq!(row.session_id, None);
        assert_eq!(row.properties.get(), r#"{"amount":1.5}"#);
    }

    #[test]
    fn a_packed_entry_keeps_each_events_span() {
        let events = [event(r#"{"event_type":"a","properties":{"x":[1, 2]}}"#), event(r#"{"event_type":"b"}"#)];
        let payload = String::from_utf8(encode_packed(&events, Utc::now())).unwrap();
        let decoded = decode(&payload);
        assert_eq!(decoded.len(), 2);
        for ((d, span), e) in decoded.iter().zip(spans(&payload)).zip(&events) {
            assert_eq!(d.row.as_ref().unwrap().event_id, e.event_id);
            assert_eq!(decode_one(&payload[span]).unwrap().event_id, e.event_id);
        }
    }

    #[test]
    fn a_bad_event_among_good_ones_is_isolated() {
        let good = event(r#"{"event_type":"a"}"#);
        let bad = format!(r#"[{},{{"id":"x"}}]"#, encode(&good, Utc::now()));
        let decoded = decode(&bad);
        assert_eq!(decoded.len(), 2);
        assert!(decoded[0].row.is_ok());
        assert!(decoded[1].row.is_err());
    }

    #[test]
    fn a_bad_event_in_a_list_is_isolated_and_garbage_is_a_clear_error() {
        let decoded = decode(r#"[{"nope":1}, 7]"#);
        assert_eq!(decoded.len(), 2);
        assert!(decoded.iter().all(|d| d.row.is_err()));
        assert_eq!(spans(r#"[{"nope":1}, 7]"#)[1], 13..14);
        let garbage = decode("not json");
        assert!(garbage[0].row.as_ref().unwrap_err().contains("not a valid event"));
        assert_eq!(spans("not json").first(), Some(&(0..8)));
    }
}
