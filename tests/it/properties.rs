//! Property tests of the two parsers that take outside input (SPEC section 4 events, section 7 job
//! files): random input never panics, and whatever they accept PostgreSQL stores and gives back.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use eventmill::{
    domain::{Event, parse_event},
    processors::registry,
    queue::JobTemplate,
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json, value::RawValue};
use uuid::Uuid;

use crate::helpers::{TestApp, TestEnv, eventually};

/// Pieces of JSON string bodies, the escapes PostgreSQL is picky about among them.
fn string_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _-]{0,6}",
        Just(r"\u0000".to_owned()),
        Just(r"\ud800".to_owned()),
        Just(r"\udfff".to_owned()),
        Just(r"\ud83d\ude00".to_owned()),
        Just(r"\uD800\u0041".to_owned()),
        Just(r"\\ud800".to_owned()),
        Just(r#"\\\""#.to_owned()),
        Just(r"\n\t\/".to_owned()),
        Just(r"\u00e9".to_owned()),
        Just("é😀'; DROP TABLE events; --".to_owned()),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        Just("1e131071".to_owned()),
        Just("1e131072".to_owned()),
        Just("-0.0e-16383".to_owned()),
        Just("1e-16383".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("2.5E+3".to_owned()),
    ]
}

/// Any JSON value, as text.
fn value_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![string_text(), number_text(), Just("true".into()), Just("null".into())];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((string_text(), inner), 0..4).prop_map(|pairs| {
                let fields: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// An event object, as text: usually close to valid, so that many are accepted.
fn event_text() -> impl Strategy<Value = String> {
    let name = prop_oneof![4 => "[a-z0-9_.:-]{1,12}".prop_map(|s| format!("\"{s}\"")), 1 => value_text()];
    let timestamp = prop_oneof![
        Just(r#""2026-11-30T10:00:00.123456Z""#.to_owned()),
        Just("1796000000000".to_owned()),
        (0i64..=253_402_300_799_000).prop_map(|ms| ms.to_string()),
        value_text(),
    ];
    let properties = proptest::collection::vec((string_text(), value_text()), 0..5).prop_map(|pairs| {
        let fields: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", fields.join(","))
    });
    let optional = |s: BoxedStrategy<String>, key: &'static str| {
        proptest::option::weighted(0.6, s).prop_map(move |v| v.map(|v| format!("\"{key}\":{v}")))
    };
    (
        name.clone(),
        optional(name.boxed(), "source"),
        optional(timestamp.boxed(), "timestamp"),
        optional(prop_oneof![string_text(), any::<i32>().prop_map(|n| n.to_string())].boxed(), "user_id"),
        optional(string_text().boxed(), "session_id"),
        optional(prop_oneof![4 => properties, 1 => value_text()].boxed(), "properties"),
        proptest::option::weighted(0.1, (string_text(), value_text())),
    )
        .prop_map(|(event_type, source, ts, user, session, props, extra)| {
            let mut fields = vec![format!("\"event_type\":{event_type}")];
            fields.extend([source, ts, user, session, props].into_iter().flatten());
            fields.extend(extra.map(|(k, v)| format!("{k}:{v}")));
            format!("{{{}}}", fields.join(","))
        })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn the_event_parser_never_panics_on_arbitrary_text() {
    let input = prop_oneof![event_text(), any::<String>(), "[{}\"\\\\a-z0-9:,\\[\\]]{0,40}"];
    runner(2000)
        .run(&input, |text| {
            if let Ok(raw) = serde_json::from_str::<&RawValue>(&text) {
                let _ = parse_event(raw, 0, Utc::now());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_event_the_parser_accepts_is_stored_and_read_back_unchanged() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(async { TestApp::full(TestEnv::new().await).await });
    let accepted = std::cell::RefCell::new(HashMap::<Uuid, (Event, String)>::new());
    runner(300)
        .run(&event_text(), |text| {
            let raw: Box<RawValue> = serde_json::from_str(&text).expect("the generator writes JSON");
            let parsed = parse_event(&raw, 0, Utc::now());
            let response = rt.block_on(app.post_json("/v1/events", text.clone()));
            let status = response.status().as_u16();
            let json: Value = rt.block_on(response.json()).unwrap();
            match parsed {
                Ok(event) => {
                    prop_assert_eq!(status, 202, "{} -> {}", text, json);
                    let id = json["event_id"].as_str().unwrap().parse().unwrap();
                    accepted.borrow_mut().insert(id, (event, text));
                }
                Err(_) => prop_assert_eq!(status, 422, "{} -> {}", text, json),
            }
            Ok(())
        })
        .unwrap();
    let accepted = accepted.into_inner();
    assert!(accepted.len() > 30, "the generator should produce enough valid events, got {}", accepted.len());
    rt.block_on(async {
        let want = accepted.len() as i64;
        let stored = eventually(Duration::from_secs(20), || async { app.env.count_events().await == want }).await;
        assert!(stored, "every accepted event stored once: {} of {want}", app.env.count_events().await);
        let mut redis = app.env.redis();
        let dead: i64 = redis::cmd("XLEN").arg(&app.env.resources.keys.dead).query_async(&mut redis).await.unwrap();
        assert_eq!(dead, 0, "no accepted event is dead-lettered");
        for (id, (event, text)) in &accepted {
            assert_stored_as_sent(&app, *id, event, text).await;
        }
        app.stop().await;
    });
}

async fn assert_stored_as_sent(app: &TestApp, id: Uuid, event: &Event, text: &str) {
    type Row = (String, String, Option<String>, Option<String>, i64, bool);
    let (event_type, source, user, session, ts_micros, same_properties): Row = sqlx::query_as(
        "SELECT event_type, source, user_id, session_id, (extract(epoch FROM ts) * 1000000)::int8,
                properties = $2::jsonb FROM events WHERE event_id = $1",
    )
    .bind(id)
    .bind(event.properties.get())
    .fetch_one(app.env.pool())
    .await
    .unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(event_type, event.event_type.as_str(), "{text}");
    assert_eq!(source, event.source.as_str(), "{text}");
    assert_eq!(
        (user.as_deref(), session.as_deref()),
        (event.user_id.as_deref(), event.session_id.as_deref()),
        "{text}"
    );
    if !event.timestamp_defaulted {
        assert_eq!(ts_micros, event.ts.timestamp_micros(), "{text}");
    }
    assert!(same_properties, "{text}: properties changed on the way");
}

/// A job object: a known kind with plausible and hostile field values.
fn job_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[a-zA-Z0-9@._ -]{0,12}",
        Just("today".to_owned()),
        Just("-7d".to_owned()),
        Just("-1h".to_owned()),
        Just("2026-11-01".to_owned()),
        Just("2026-11-01T00:00:00Z".to_owned()),
        Just("a\0b".to_owned()),
        Just("x@example.com\r\nBcc: y@example.com".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("' OR 1=1; --".to_owned()),
        Just("CSV".to_owned()),
        Just("REVENUE_SUMMARY".to_owned()),
        Just("ENGAGEMENT".to_owned()),
    ];
    let leaf = prop_oneof![text.clone().prop_map(Value::from), any::<i64>().prop_map(Value::from), Just(Value::Null)];
    let value = leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let key = prop_oneof![
        Just("date"),
        Just("start_date"),
        Just("end_date"),
        Just("start_time"),
        Just("end_time"),
        Just("format"),
        Just("report_type"),
        Just("data_type"),
        Just("recipient_email"),
        Just("output_path"),
        Just("profile_ids"),
        Just("filters"),
    ];
    // A valid base object per kind, then random fields set (often to hostile values).
    let base = prop_oneof![
        Just(json!({"job_type": "HOURLY_ROLLUP", "start_time": "-1h", "end_time": "now"})),
        Just(json!({"job_type": "DAILY_ROLLUP", "date": "yesterday"})),
        Just(json!({"job_type": "GENERATE_REPORT", "report_type": "REVENUE_SUMMARY", "format": "CSV",
            "start_date": "-7d", "end_date": "today"})),
        Just(json!({"job_type": "EXPORT_DATA", "data_type": "ENGAGEMENT", "format": "JSON",
            "start_date": "-7d", "end_date": "today"})),
    ];
    let filters = proptest::collection::btree_map(
        prop_oneof![Just("event_type"), Just("source"), Just("user_id"), Just("properties")],
        prop_oneof![text.clone().prop_map(Value::from), value.clone()],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let field = prop_oneof![
        1 => (key, prop_oneof![3 => text.clone().prop_map(Value::from), 1 => value.clone()]),
        1 => filters.prop_map(|f| ("filters", f)),
        1 => proptest::collection::vec(text, 0..3).prop_map(|v| ("profile_ids", Value::from(v))),
    ];
    (base, proptest::collection::vec(field, 0..3)).prop_map(|(mut job, fields)| {
        for (k, v) in fields {
            job[k] = v;
        }
        job
    })
}

#[tokio::test]
async fn every_job_the_job_file_parser_accepts_round_trips_through_postgresql() {
    let env = TestEnv::new().await;
    let registry = registry();
    let cases = std::cell::RefCell::new(Vec::new());
    runner(3000)
        .run(&job_value(), |value| {
            if let Ok(template) = JobTemplate::from_value(value.clone(), &registry) {
                cases.borrow_mut().push((value, template.resolve(Utc::now()).expect("an accepted template resolves")));
            }
            Ok(())
        })
        .unwrap();
    let cases = cases.into_inner();
    assert!(cases.len() > 20, "the generator should produce enough valid jobs, got {}", cases.len());
    for (value, job) in cases {
        let text = serde_json::to_string(&job.payload).unwrap();
        let back: Result<String, _> =
            sqlx::query_scalar("SELECT $1::jsonb::text").bind(&text).fetch_one(env.pool()).await;
        let back = back.unwrap_or_else(|e| panic!("{value} was accepted but PostgreSQL refuses it: {e}"));
        let again: Value = serde_json::from_str(&back).unwrap();
        assert_eq!(again, job.payload, "{value}");
        let reparsed = JobTemplate::from_value(again, &registry).and_then(|t| t.resolve(Utc::now()));
        assert_eq!(reparsed.as_ref(), Ok(&job), "{value}");
    }
}
