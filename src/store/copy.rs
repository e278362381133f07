//! PostgreSQL binary COPY encoding of `events` rows: no text escaping, no per-row statements.
//! Format: <https://www.postgresql.org/docs/current/sql-copy.html> ("Binary Format").

use super::EventRow;

/// The column list every COPY of events uses, in encoding order.
pub const COLUMNS: &str = "event_id, event_type, ts, user_id, session_id, source, properties, ingested_at";

/// Microseconds between the unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Encodes rows (in the given order) as one binary COPY payload.
pub fn encode<'a>(rows: impl IntoIterator<Item = &'a EventRow>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(SIGNATURE);
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for row in rows {
        encode_row(&mut buf, row);
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

fn encode_row(buf: &mut Vec<u8>, row: &EventRow) {
    buf.extend_from_slice(&8i16.to_be_bytes());
    field(buf, row.event_id.as_bytes());
    field(buf, row.event_type.as_bytes());
    field(buf, &(row.ts_micros - PG_EPOCH_OFFSET_MICROS).to_be_bytes());
    optional(buf, row.user_id.as_deref());
    optional(buf, row.session_id.as_deref());
    field(buf, row.source.as_bytes());
    let json = row.properties.get().as_bytes();
    buf.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    buf.push(1); // jsonb binary format version
    buf.extend_from_slice(json);
    field(buf, &(row.ingested_micros - PG_EPOCH_OFFSET_MICROS).to_be_bytes());
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn optional(buf: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => field(buf, text.as_bytes()),
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}
