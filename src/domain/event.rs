//! `Event`: one analytics event as the ingestion API accepts it (SPEC section 4), validated.
//!
//! Parsing collects every problem of an event instead of stopping at the first, so a 422 can list
//! them all. Field values are read from borrowed `RawValue`s: `properties` is never parsed into a
//! map, only checked and carried as text to PostgreSQL's `jsonb`.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Name, check_storable};

/// Largest serialized `properties` object accepted.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// Longest `user_id` / `session_id` accepted.
pub const MAX_ID_CHARS: usize = 256;

/// A validated event, ready for the stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: Uuid,
    pub event_type: Name,
    pub ts: DateTime<Utc>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub source: Name,
    /// A JSON object, at most [`MAX_PROPERTIES_BYTES`] long.
    pub properties: Box<RawValue>,
    /// The client chose the id: a re-send of it must be stored once.
    pub event_id_given: bool,
    /// The client gave no timestamp: `ts` is the arrival time.
    pub timestamp_defaulted: bool,
}

/// One problem with one event of a request, as listed in a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventError {
    pub index: usize,
    pub field: String,
    pub reason: String,
}

/// The canonical fields; aliases map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    EventId,
    EventType,
    Timestamp,
    UserId,
    SessionId,
    Source,
    Properties,
}

impl Field {
    const COUNT: usize = 7;

    /// The canonical field for a key, accepting the names older clients send.
    fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "event_id" => Self::EventId,
            "event_type" | "type" => Self::EventType,
            "timestamp" => Self::Timestamp,
            "user_id" | "actor_id" | "userId" => Self::UserId,
            "session_id" | "sessionId" => Self::SessionId,
            "source" => Self::Source,
            "properties" | "attributes" => Self::Properties,
            _ => return None,
        })
    }
}

/// An event object's keys and raw values, in order, before validation.
struct RawFields<'a>(Vec<(Key<'a>, &'a RawValue)>);

/// An object key, borrowed from the body unless it holds escapes: no allocation per key.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RawFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(8);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Validates the event at `index` of a request; `now` is the arrival time used when no timestamp is given.
pub fn parse_event(raw: &RawValue, index: usize, now: DateTime<Utc>) -> Result<Event, Vec<EventError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, reason: String| {
        errors.push(EventError { index, field: field.to_owned(), reason });
    };
    let fields = match serde_json::from_str::<RawFields>(raw.get()) {
        Ok(fields) => fields.0,
        Err(_) => {
            // A key serde could not decode (a lone surrogate) gets its real reason.
            let reason = check_storable(raw.get()).err().unwrap_or_else(|| "an event must be a JSON object".to_owned());
            fail("", reason);
            return Err(errors);
        }
    };

    let mut slots: [Option<(&str, &RawValue)>; Field::COUNT] = [None; Field::COUNT];
    for (key, value) in &fields {
        let key = key.0.as_ref();
        let Some(field) = Field::from_key(key) else {
            fail(key, "unknown field".to_owned());
            continue;
        };
        match slots[field as usize] {
            Some((first, _)) if first == key => fail(key, "given twice".to_owned()),
            Some((first, _)) => fail(key, format!("both `{first}` and its alias `{key}` given; send only one")),
            None => slots[field as usize] = Some((key, *value)),
        }
    }
    // `null` counts as absent for every field.
    let slot = |field: Field| slots[field as usize].filter(|(_, v)| v.get() != "null");

    let event_id = slot(Field::EventId).and_then(|(key, v)| {
        string(v).and_then(|s| Uuid::parse_str(&s).ok()).or_else(|| {
            fail(key, "must be a UUID string".to_owned());
            None
        })
    });
    let event_type = match slot(Field::EventType) {
        None => {
            fail("event_type", "is required".to_owned());
            None
        }
        Some((key, v)) => name(v).map_err(|reason| fail(key, reason)).ok(),
    };
    let source = match slot(Field::Source) {
        None => Name::parse("unknown").ok(),
        Some((key, v)) => name(v).map_err(|reason| fail(key, reason)).ok(),
    };
    let ts = slot(Field::Timestamp).map(|(key, v)| timestamp(v).map_err(|reason| fail(key, reason)).ok());
    let user_id = slot(Field::UserId).and_then(|(key, v)| identifier(v).map_err(|r| fail(key, r)).ok()?);
    let session_id = slot(Field::SessionId).and_then(|(key, v)| identifier(v).map_err(|r| fail(key, r)).ok()?);
    let properties = match slot(Field::Properties) {
        None => Some(RawValue::from_string("{}".to_owned()).expect("valid JSON")),
        Some((key, v)) => properties(v).map_err(|reason| fail(key, reason)).ok(),
    };

    match (event_type, source, ts, properties) {
        (Some(event_type), Some(source), Some(Some(ts)), Some(properties)) if errors.is_empty() => {
            Ok(build(event_id, event_type, ts, false, user_id, session_id, source, properties))
        }
        (Some(event_type), Some(source), None, Some(properties)) if errors.is_empty() => {
            Ok(build(event_id, event_type, now, true, user_id, session_id, source, properties))
        }
        _ => Err(errors),
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    event_id: Option<Uuid>,
    event_type: Name,
    ts: DateTime<Utc>,
    timestamp_defaulted: bool,
    user_id: Option<String>,
    session_id: Option<String>,
    source: Name,
    properties: Box<RawValue>,
) -> Event {
    Event {
        event_id: event_id.unwrap_or_else(Uuid::now_v7),
        event_id_given: event_id.is_some(),
        event_type,
        ts,
        timestamp_defaulted,
        user_id,
        session_id,
        source,
        properties,
    }
}

/// A JSON string's value, borrowed from the body when it holds no escapes.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Key>(raw.get()).ok().map(|key| key.0)
}

fn name(raw: &RawValue) -> Result<Name, String> {
    let value = string(raw).ok_or_else(|| "must be a string".to_owned())?;
    Name::parse(value.into_owned())
}

/// A user or session id: a string (or a number, which older clients send), empty meaning absent.
fn identifier(raw: &RawValue) -> Result<Option<String>, String> {
    let text = raw.get();
    check_storable(text)?;
    let value = if text.starts_with('"') {
        string(raw).ok_or_else(|| "must be a string".to_owned())?.into_owned()
    } else if let Some(number) = integer(text) {
        number.to_string()
    } else {
        return Err("must be a string".to_owned());
    };
    if value.chars().count() > MAX_ID_CHARS {
        return Err(format!("must be at most {MAX_ID_CHARS} characters"));
    }
    Ok((!value.is_empty()).then_some(value))
}

/// RFC 3339 text or integer unix milliseconds, between 1970 and 9999.
fn timestamp(raw: &RawValue) -> Result<DateTime<Utc>, String> {
    let text = raw.get();
    let parsed = if text.starts_with('"') {
        string(raw)
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| "must be an RFC 3339 date-time such as 2026-03-07T12:00:00Z".to_owned())?
    } else {
        integer(text)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| "must be an RFC 3339 string or integer unix milliseconds".to_owned())?
    };
    let year = chrono::Datelike::year(&parsed);
    if !(1970..=9999).contains(&year) {
        return Err(format!("year {year} is outside 1970..9999"));
    }
    Ok(parsed)
}

/// A JSON number whose value is a whole number that fits `i64`, however it is written (`282`,
/// `282.0`, `2.82e2`): JSON Schema's `integer`, which generated clients may send either way.
fn integer(text: &str) -> Option<i64> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The digits with the decimal point moved `exponent` places right; every digit past it must be 0.
    let digits = format!("{whole}{fraction}");
    let point = whole.len() as i64 + i64::from(exponent);
    if !(0..=40).contains(&point) {
        return digits.bytes().all(|b| b == b'0').then_some(0);
    }
    let point = point as usize;
    let (int_part, rest) = if point <= digits.len() {
        (digits[..point].to_owned(), &digits[point..])
    } else {
        (format!("{digits}{}", "0".repeat(point - digits.len())), "")
    };
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    let int_part = if int_part.is_empty() { "0" } else { &int_part };
    format!("{sign}{int_part}").parse().ok()
}

fn properties(raw: &RawValue) -> Result<Box<RawValue>, String> {
    let text = raw.get();
    if !text.starts_with('{') {
        return Err("must be a JSON object".to_owned());
    }
    if text.len() > MAX_PROPERTIES_BYTES {
        return Err(format!("is {} bytes; at most {MAX_PROPERTIES_BYTES} are accepted", text.len()));
    }
    check_storable(text)?;
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Event, Vec<EventError>> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        parse_event(&raw, 3, Utc::now())
    }

    fn fields(json: &str) -> Vec<String> {
        parse(json).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn whole_numbers_count_as_integers_however_they_are_written() {
        for (text, value) in [("282", 282), ("282.0", 282), ("2.82e2", 282), ("-3364.0", -3364), ("1E3", 1000)] {
            assert_eq!(integer(text), Some(value), "{text}");
        }
        assert_eq!(integer("2012317736758272.0"), Some(2_012_317_736_758_272));
        assert_eq!(integer("0.0e-5"), Some(0));
        for text in ["282.5", "2.825e2", "1e40", "9223372036854775808", "1e-3", "-", ".5", "\"1\""] {
            assert_eq!(integer(text), None, "{text}");
        }
        let e = parse(r#"{"event_type":"a","user_id":-3364.0,"timestamp":1772841600000.0}"#).unwrap();
        assert_eq!(e.user_id.as_deref(), Some("-3364"));
        assert_eq!(e.ts.timestamp_millis(), 1_772_841_600_000);
    }

    #[test]
    fn a_minimal_event_gets_defaults() {
        let e = parse(r#"{"event_type":"page_view"}"#).unwrap();
        assert_eq!(e.source.as_str(), "unknown");
        assert!(e.timestamp_defaulted && !e.event_id_given);
        assert_eq!(e.properties.get(), "{}");
    }

    #[test]
    fn aliases_of_older_clients_are_accepted() {
        let e = parse(
            r#"{"type":"purchase","userId":"u1","sessionId":"s1","attributes":{"amount":3},"timestamp":1772841600000}"#,
        )
        .unwrap();
        assert_eq!(e.event_type.as_str(), "purchase");
        assert_eq!(e.user_id.as_deref(), Some("u1"));
        assert_eq!(e.session_id.as_deref(), Some("s1"));
        assert_eq!(e.ts.to_rfc3339(), "2026-03-07T00:00:00+00:00");
    }

    #[test]
    fn a_name_and_its_alias_together_is_an_error() {
        assert_eq!(fields(r#"{"event_type":"a","type":"b"}"#), ["type"]);
    }

    #[test]
    fn every_problem_is_listed() {
        let got =
            fields(r#"{"event_type":"Bad Type","timestamp":"yesterday","event_id":"x","extra":1,"properties":[]}"#);
        assert_eq!(got, ["extra", "event_id", "event_type", "timestamp", "properties"]);
    }

    #[test]
    fn oversized_properties_and_nul_are_rejected() {
        let big = format!(r#"{{"event_type":"a","properties":{{"k":"{}"}}}}"#, "x".repeat(MAX_PROPERTIES_BYTES));
        assert_eq!(fields(&big), ["properties"]);
        assert_eq!(fields(r#"{"event_type":"a","properties":{"k":"\u0000"}}"#), ["properties"]);
    }

    #[test]
    fn missing_event_type_is_required() {
        let errors = parse(r#"{"source":"web"}"#).unwrap_err();
        assert_eq!(errors[0].reason, "is required");
        assert_eq!(errors[0].index, 3);
    }
}
