//! The query API against an independent computation: the golden events (figures computed by the
//! fixture's Python script) after the rollups ran, and live traffic of the current minute counted
//! by the live counters exactly once (re-sends, a crash between commit and XACK, kill -9).

use std::{collections::BTreeMap, time::Duration};

use chrono::{SecondsFormat, Utc};
use eventmill::{
    domain::job::{DailyRollup, HourlyRollup, Job},
    processors::{self, DailyRollups, HourlyRollups, JobContext},
};
use serde_json::Value;

use crate::{
    browser::{ADMIN_TOKEN, READONLY_TOKEN},
    faults_support::Proc,
    golden::{self, cents, expected, n, s},
    helpers::{TestApp, TestEnv, eventually},
};

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = get(app, path, ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn golden_app() -> TestApp {
    let env = TestEnv::with(&[("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN)]).await;
    golden::load(&env).await;
    let ctx = JobContext::new(env.resources.analytics.clone(), "test".into(), 1, None);
    let hourly = HourlyRollup {
        start_time: "2026-03-07T00:00:00Z".parse().unwrap(),
        end_time: "2026-03-10T00:00:00Z".parse().unwrap(),
    };
    processors::dispatch(Job::of::<HourlyRollups, _>(&hourly), &ctx).await.unwrap();
    for day in ["2026-03-07", "2026-03-08", "2026-03-09"] {
        let daily = DailyRollup { date: day.parse().unwrap(), profile_ids: None };
        processors::dispatch(Job::of::<DailyRollups, _>(&daily), &ctx).await.unwrap();
    }
    TestApp::api(env).await
}

/// Expected (events, revenue cents) per bucket from a fixture section, with an optional filter.
fn sums(section: &str, keep: impl Fn(&Value) -> bool) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (bucket, count, revenue) in
        expected(section, |r| (keep(r), s(&r["bucket"]), n(&r["count"]), cents(&r["revenue"])))
            .into_iter()
            .filter(|r| r.0)
            .map(|r| (r.1, r.2, r.3))
    {
        let cell = out.entry(bucket).or_default();
        cell.0 += count;
        cell.1 += revenue;
    }
    out
}

fn points(body: &Value, day_keys: bool) -> BTreeMap<String, (i64, i64)> {
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| n(&p["events"]) > 0)
        .map(|p| {
            let t = s(&p["t"]);
            let key = if day_keys { t[..10].to_owned() } else { t };
            (key, (n(&p["events"]), cents(&p["revenue"])))
        })
        .collect()
}

#[tokio::test]
async fn every_endpoint_over_the_golden_events_equals_the_independent_computation() {
    let app = golden_app().await;
    let window = "from=2026-03-07T00:00:00Z&to=2026-03-10T00:00:00Z";

    let hourly = ok(&app, &format!("/v1/analytics/timeseries?interval=hour&{window}")).await;
    assert_eq!(hourly["points"].as_array().unwrap().len(), 72);
    assert_eq!(points(&hourly, false), sums("by_hour", |_| true));
    let filtered =
        ok(&app, &format!("/v1/analytics/timeseries?interval=hour&event_type=purchase&source=web&{window}")).await;
    assert_eq!(points(&filtered, false), sums("by_hour", |r| r["event_type"] == "purchase" && r["source"] == "web"));
    let daily = ok(&app, &format!("/v1/analytics/timeseries?interval=day&{window}")).await;
    assert_eq!(points(&daily, true), sums("by_day", |_| true));

    let summary = ok(&app, &format!("/v1/analytics/summary?{window}")).await;
    let totals = &golden::EXPECTED["totals"];
    assert_eq!(n(&summary["events"]), n(&totals["events"]));
    assert_eq!(cents(&summary["revenue"]), cents(&totals["revenue"]));
    assert_eq!(n(&summary["purchases"]), n(&totals["orders"]));
    let errors: i64 = expected("engagement_by_day", |r| n(&r["errors"])).iter().sum();
    assert_eq!(n(&summary["errors"]), errors);

    // Cursor pagination, one day per page, to the end.
    let mut days = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let after = cursor.as_ref().map(|c| format!("&after_day={c}")).unwrap_or_default();
        let page = ok(&app, &format!("/v1/analytics/events/daily?from=2026-03-07&to=2026-03-09&limit=1{after}")).await;
        for item in page["items"].as_array().unwrap() {
            days.push((s(&item["day"]), n(&item["events"]), n(&item["errors"])));
        }
        match page["next_after_day"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let want = expected("engagement_by_day", |r| (s(&r["day"]), n(&r["events"]), n(&r["errors"])));
    assert_eq!(days, want);

    let types = ok(&app, "/v1/analytics/event-types").await;
    let got: BTreeMap<String, i64> =
        types.as_array().unwrap().iter().map(|t| (s(&t["event_type"]), n(&t["events"]))).collect();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (t, c) in expected("by_day", |r| (s(&r["event_type"]), n(&r["count"]))) {
        *want.entry(t).or_default() += c;
    }
    assert_eq!(got, want);

    // The first hour, from raw rows: every event (per-minute buckets and the raw listing).
    let first_hour = "from=2026-03-07T00:00:00Z&to=2026-03-07T01:00:00Z";
    let hour_count = sums("by_hour", |_| true)["2026-03-07T00:00:00Z"].0;
    let minutes = ok(&app, &format!("/v1/analytics/timeseries?interval=minute&{first_hour}")).await;
    assert_eq!(minutes["points"].as_array().unwrap().iter().map(|p| n(&p["events"])).sum::<i64>(), hour_count);
    let raw = ok(&app, &format!("/v1/analytics/events/raw?limit=5000&{first_hour}")).await;
    assert_eq!(raw.as_array().unwrap().len() as i64, hour_count);
    let raw_errors = ok(&app, &format!("/v1/analytics/events/raw?event_type=error&{first_hour}")).await;
    let want_errors = expected("by_hour", |r| (s(&r["bucket"]), s(&r["event_type"]), n(&r["count"])))
        .into_iter()
        .filter(|(b, t, _)| b == "2026-03-07T00:00:00Z" && t == "error")
        .map(|r| r.2)
        .sum::<i64>();
    assert_eq!(raw_errors.as_array().unwrap().len() as i64, want_errors);
    assert!(raw_errors.as_array().unwrap().iter().all(|e| e["event_type"] == "error"));
    let limited = ok(&app, &format!("/v1/analytics/events/raw?limit=7&{first_hour}")).await;
    assert_eq!(limited.as_array().unwrap().len(), 7);
    app.stop().await;
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let app = TestApp::api(TestEnv::new().await).await;
    let cases = [
        ("/v1/analytics/timeseries?interval=week", "interval"),
        ("/v1/analytics/timeseries?from=yesterday", "from"),
        ("/v1/analytics/timeseries?to=2026-13-01T00:00:00Z", "to"),
        ("/v1/analytics/timeseries?from=2026-03-08T00:00:00Z&to=2026-03-07T00:00:00Z", "from"),
        ("/v1/analytics/timeseries?interval=second&from=2026-03-07T00:00:00Z&to=2026-03-07T02:00:00Z", "to"),
        ("/v1/analytics/timeseries?event_type=Page%20View", "event_type"),
        ("/v1/analytics/timeseries?source=", "source"),
        ("/v1/analytics/timeseries?colour=red", "colour"),
        ("/v1/analytics/summary?from=1x", "from"),
        ("/v1/analytics/summary?interval=hour", "interval"),
        ("/v1/analytics/events/daily?from=2026-03-32", "from"),
        ("/v1/analytics/events/daily?from=2026-03-09&to=2026-03-07", "from"),
        ("/v1/analytics/events/daily?after_day=soon", "after_day"),
        ("/v1/analytics/events/daily?limit=0", "limit"),
        ("/v1/analytics/events/daily?limit=many", "limit"),
        ("/v1/analytics/event-types?limit=3", "limit"),
        ("/v1/analytics/events/raw?from=2026-03-07T00:00:00Z&to=2026-03-07T01:00:01Z", "to"),
        ("/v1/analytics/events/raw?limit=5001", "limit"),
        ("/v1/analytics/events/raw?event_type=a%20b", "event_type"),
        ("/v1/analytics/events/raw?source=web", "source"),
        // Times PostgreSQL cannot hold were a 500 (found by schemathesis with seed 2).
        ("/v1/analytics/summary?to=-981944275503547", "to"),
        ("/v1/analytics/timeseries?from=253402300800000", "from"),
        ("/v1/analytics/events/raw?from=0001-01-01T00:00:00Z", "from"),
    ];
    for (path, name) in cases {
        let (status, body) = get(&app, path, ADMIN_TOKEN).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_parameter", "{path}: {body}");
        assert_eq!(body["details"][0]["parameter"], name, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(name), "{path}: {body}");
    }
    let (status, _) = get(&app, "/v1/analytics/events/raw?limit=5000", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "5,000 rows and a one-hour window are allowed");
    app.stop().await;
}

#[tokio::test]
async fn the_query_api_wants_a_token_and_the_read_only_one_reads() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN)]).await).await;
    for path in ["/v1/analytics/summary", "/v1/analytics/timeseries", "/v1/analytics/live", "/v1/analytics/event-types"]
    {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let (status, _) = get(&app, path, "wrong-token").await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = get(&app, "/v1/analytics/summary", READONLY_TOKEN).await;
    assert_eq!(status, 200);
    let openapi = app.client.get(app.url("/openapi.json")).send().await.unwrap().json::<Value>().await.unwrap();
    for path in [
        "/v1/analytics/timeseries",
        "/v1/analytics/summary",
        "/v1/analytics/events/daily",
        "/v1/analytics/event-types",
        "/v1/analytics/events/raw",
    ] {
        assert!(openapi["paths"][path]["get"].is_object(), "{path} in /openapi.json");
    }
    app.stop().await;
}

/// Purchase events at `ts` with the given ids and amounts.
fn purchases(ts: &str, bought: &[(uuid::Uuid, f64)], source: &str) -> Vec<String> {
    bought
        .iter()
        .enumerate()
        .map(|(i, (id, a))| {
            format!(
                r#"{{"event_id":"{id}","event_type":"purchase","timestamp":"{ts}","user_id":"b{i}","source":"{source}","properties":{{"amount":{a}}}}}"#
            )
        })
        .collect()
}

/// A bulk body of events at `ts`: `views` page views, one purchase per amount, `errors` errors.
pub fn live_body(ts: &str, views: usize, amounts: &[f64], errors: usize, source: &str) -> String {
    let mut events = Vec::new();
    for i in 0..views {
        events.push(format!(r#"{{"event_type":"page_view","timestamp":"{ts}","user_id":"u{i}","source":"{source}"}}"#));
    }
    let bought: Vec<(uuid::Uuid, f64)> = amounts.iter().map(|a| (uuid::Uuid::new_v4(), *a)).collect();
    events.extend(purchases(ts, &bought, source));
    for i in 0..errors {
        events.push(format!(r#"{{"event_type":"error","timestamp":"{ts}","user_id":"e{i}","source":"{source}"}}"#));
    }
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

async fn summary_now(app: &TestApp) -> Value {
    let from = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    ok(app, &format!("/v1/analytics/summary?from={from}")).await
}

async fn stored(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), coalesce(round(sum((properties->>'amount')::numeric) FILTER (WHERE event_type = 'purchase') * 100), 0)::bigint FROM events",
    )
    .fetch_one(app.env.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn live_traffic_is_counted_once_across_re_sends_and_a_crash_between_commit_and_xack() {
    let app = TestApp::api(TestEnv::new().await).await;
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let bought: Vec<(uuid::Uuid, f64)> = [19.99, 5.01, 100.0].into_iter().map(|a| (uuid::Uuid::new_v4(), a)).collect();
    let bulk = |events: Vec<String>| format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut events = purchases(&ts, &bought, "web");
    let rest: Value = serde_json::from_str(&live_body(&ts, 40, &[], 7, "web")).unwrap();
    events.extend(rest["events"].as_array().unwrap().iter().map(Value::to_string));
    assert_eq!(app.post_json("/v1/events/bulk", bulk(events)).await.status(), 202);

    // A consumer commits the entries, then dies before its XACK (and before counting).
    let env = &app.env;
    let mut redis = env.redis();
    let keys = &env.resources.keys;
    eventmill::stream::ensure_group(&mut redis, keys).await.unwrap();
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&keys.group)
        .arg("dead")
        .arg("COUNT")
        .arg(30)
        .arg("STREAMS")
        .arg(&keys.events)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    let rows: Vec<eventmill::store::EventRow> = reply.keys[0]
        .ids
        .iter()
        .flat_map(|id| {
            eventmill::stream::entry::decode(
                &redis::from_redis_value::<String>(id.map[eventmill::stream::entry::EVENT_FIELD].clone()).unwrap(),
            )
        })
        .map(|decoded| decoded.row.unwrap())
        .collect();
    let refs: Vec<_> = rows.iter().collect();
    env.resources.partitions.ensure_for(refs.iter().map(|r| r.ts_micros)).await.unwrap();
    assert!(eventmill::store::write_rows(env.pool(), &refs).await.unwrap().refused.is_empty());

    // A client re-sends the purchases (same event ids), the survivor reclaims and stores the rest.
    assert_eq!(app.post_json("/v1/events/bulk", bulk(purchases(&ts, &bought, "web"))).await.status(), 202);
    let mut consumer = env.consumer().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..20 {
        consumer.consume_once().await.unwrap();
    }
    assert_eq!(stored(&app).await, (50, 12500));
    let summary = summary_now(&app).await;
    assert_eq!((n(&summary["events"]), cents(&summary["revenue"])), (50, 12500), "{summary}");
    assert_eq!((n(&summary["page_views"]), n(&summary["purchases"]), n(&summary["errors"])), (40, 3, 7));
    assert!((45..=55).contains(&summary["active_users"].as_u64().unwrap()), "{summary}");
    let from = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let seconds = ok(&app, &format!("/v1/analytics/timeseries?interval=second&from={from}")).await;
    assert_eq!(seconds["points"].as_array().unwrap().iter().map(|p| n(&p["events"])).sum::<i64>(), 50);
    app.stop().await;
}

#[tokio::test]
async fn after_kill_9_of_a_worker_under_load_the_dashboard_totals_equal_the_stored_rows() {
    let env = TestEnv::with(&[("EVENTMILL_BATCH_SIZE", "50")]).await;
    let app = TestApp::api(env).await;
    let worker_settings = [
        ("EVENTMILL_BATCH_SIZE", "50"),
        ("EVENTMILL_CONSUMERS", "2"),
        ("EVENTMILL_RECLAIM_IDLE_MS", "500"),
        ("EVENTMILL_RECLAIM_INTERVAL_MS", "200"),
    ];
    let spawn_worker = || Proc::start(&app.env, &["worker"], &worker_settings);
    let mut first = Some(spawn_worker());
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    for round in 0..20 {
        let body = live_body(&ts, 80, &[10.5, 0.25, 3.0], 5, &format!("s{}", round % 3));
        assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
        if round == 10 {
            assert!(eventually(Duration::from_secs(20), || async { app.env.count_events().await >= 400 }).await);
            first.take().expect("killed once").kill9().await; // SIGKILL, mid-load
        }
    }
    let second = spawn_worker();
    assert!(eventually(Duration::from_secs(30), || async { app.env.count_events().await >= 1760 }).await);
    let (rows, revenue) = stored(&app).await;
    assert_eq!((rows, revenue), (1760, 20 * 1375));
    assert!(
        eventually(Duration::from_secs(20), || async {
            let s = summary_now(&app).await;
            (n(&s["events"]), cents(&s["revenue"])) == (rows, revenue)
        })
        .await,
        "dashboard totals {} vs stored ({rows}, {revenue})",
        summary_now(&app).await
    );
    second.kill9().await;
    app.stop().await;
}
