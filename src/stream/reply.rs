//! Reading stream entries out of Redis replies into the consumer's `Entry`.

use redis::streams::StreamId;

use super::entry::{self, EVENT_FIELD, REQUEST_FIELD};
use crate::store::EventRow;

/// One stream entry in the consumer's hands.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    /// How many times the group delivered it (this delivery included).
    pub deliveries: u64,
    pub request_id: String,
    pub payload: String,
    pub row: Result<EventRow, String>,
}

pub(super) fn entry_of(mut stream_id: StreamId, deliveries: u64) -> Entry {
    let mut text = |field: &str| stream_id.map.remove(field).and_then(|v| redis::from_redis_value::<String>(v).ok());
    let payload = text(EVENT_FIELD);
    let request_id = text(REQUEST_FIELD).unwrap_or_default();
    let row = match &payload {
        Some(payload) => entry::decode(payload),
        None => Err(format!("stream entry has no `{EVENT_FIELD}` field")),
    };
    Entry { id: stream_id.id, deliveries, request_id, payload: payload.unwrap_or_default(), row }
}

/// Appends the entries of an XREADGROUP reply (`[[stream, [[id, [field, value, ..]], ..]]]`, or nil
/// on timeout) without copying the payloads.
pub(super) fn read_entries(reply: redis::Value, into: &mut Vec<Entry>) {
    use redis::Value;
    let Value::Array(streams) = reply else { return };
    for stream in streams {
        let Value::Array(mut key_and_entries) = stream else { continue };
        let Some(Value::Array(entries)) = key_and_entries.pop() else { continue };
        for entry in entries {
            let Value::Array(mut id_and_fields) = entry else { continue };
            let fields = match id_and_fields.pop() {
                Some(Value::Array(fields)) => fields,
                _ => Vec::new(),
            };
            let Some(Value::BulkString(id)) = id_and_fields.pop() else { continue };
            let (mut payload, mut request_id) = (None, String::new());
            let mut fields = fields.into_iter();
            while let (Some(Value::BulkString(name)), Some(Value::BulkString(value))) = (fields.next(), fields.next()) {
                if name == EVENT_FIELD.as_bytes() {
                    payload = String::from_utf8(value).ok();
                } else if name == REQUEST_FIELD.as_bytes() {
                    request_id = String::from_utf8(value).unwrap_or_default();
                }
            }
            let row = match &payload {
                Some(payload) => entry::decode(payload),
                None => Err(format!("stream entry has no UTF-8 `{EVENT_FIELD}` field")),
            };
            let id = String::from_utf8(id).unwrap_or_default();
            into.push(Entry { id, deliveries: 1, request_id, payload: payload.unwrap_or_default(), row });
        }
    }
}
