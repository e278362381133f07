//! Reading stream entries out of Redis replies into the consumer's `Entry`.

use redis::streams::StreamId;

use super::entry::{self, Decoded, EVENT_FIELD, REQUEST_FIELD, TRACE_FIELD};

/// One stream entry in the consumer's hands.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    /// How many times the group delivered it (this delivery included).
    pub deliveries: u64,
    pub request_id: String,
    /// The W3C `traceparent` of the request that appended it (traced requests only).
    pub trace: Option<String>,
    pub payload: String,
    /// Its events (one, or up to `EVENTS_PER_ENTRY` when packed); never empty.
    pub events: Vec<Decoded>,
    /// Each event's byte span in `payload`, found the first time a dead letter needs one.
    spans: std::sync::OnceLock<Vec<std::ops::Range<usize>>>,
}

impl Entry {
    fn new(id: String, deliveries: u64, request_id: String, payload: Option<String>) -> Self {
        let (payload, events) = match payload {
            Some(payload) => {
                let events = entry::decode(&payload);
                (payload, events)
            }
            None => {
                let reason = format!("stream entry has no UTF-8 `{EVENT_FIELD}` field");
                (String::new(), vec![Decoded { row: Err(reason) }])
            }
        };
        Self { id, deliveries, request_id, trace: None, payload, events, spans: Default::default() }
    }

    /// The JSON of its event `index`, as a dead letter keeps it.
    pub fn event_json(&self, index: usize) -> &str {
        let spans = self.spans.get_or_init(|| entry::spans(&self.payload));
        spans.get(index).map_or(self.payload.as_str(), |span| &self.payload[span.clone()])
    }
}

pub(super) fn entry_of(mut stream_id: StreamId, deliveries: u64) -> Entry {
    let mut text = |field: &str| stream_id.map.remove(field).and_then(|v| redis::from_redis_value::<String>(v).ok());
    let payload = text(EVENT_FIELD);
    let request_id = text(REQUEST_FIELD).unwrap_or_default();
    let trace = text(TRACE_FIELD);
    Entry { trace, ..Entry::new(stream_id.id, deliveries, request_id, payload) }
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
            let (mut payload, mut request_id, mut trace) = (None, String::new(), None);
            let mut fields = fields.into_iter();
            while let (Some(Value::BulkString(name)), Some(Value::BulkString(value))) = (fields.next(), fields.next()) {
                if name == EVENT_FIELD.as_bytes() {
                    payload = String::from_utf8(value).ok();
                } else if name == REQUEST_FIELD.as_bytes() {
                    request_id = String::from_utf8(value).unwrap_or_default();
                } else if name == TRACE_FIELD.as_bytes() {
                    trace = String::from_utf8(value).ok();
                }
            }
            let id = String::from_utf8(id).unwrap_or_default();
            into.push(Entry { trace, ..Entry::new(id, 1, request_id, payload) });
        }
    }
}
