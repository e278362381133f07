//! The live counters' hard paths: the race where a slow consumer's batch was partly taken over
//! (counted by nobody until the reconciler rewrites its minutes from PostgreSQL), and active users
//! honouring the period and the filters, against `count(DISTINCT user_id)` over the same rows.

use chrono::{Duration, SecondsFormat, Utc};
use eventmill::{
    live::{self, Tally},
    store::EventRow,
};
use serde_json::Value;

use crate::{
    analytics::live_body,
    browser::ADMIN_TOKEN,
    golden::{cents, n},
    helpers::{TestApp, TestEnv, read_entries_as},
};

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.client.get(app.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads every new entry as consumer `name`: (entry id, its rows).
async fn read_as(app: &TestApp, name: &str) -> Vec<(String, Vec<EventRow>)> {
    let entries = read_entries_as(&app.env, name, 100).await;
    let rows = |packed: &str| eventmill::stream::entry::decode(packed).into_iter().map(|d| d.row.unwrap()).collect();
    entries.into_iter().map(|(id, packed)| (id, rows(&packed))).collect()
}

/// What a consumer's acknowledge step does for `entries`: XACK them and count them in one call.
async fn ack_and_count(app: &TestApp, entries: &[&(String, Vec<EventRow>)]) {
    let keys = &app.env.resources.keys;
    let mut tally = Tally::default();
    let now = Utc::now().timestamp();
    entries.iter().flat_map(|(_, rows)| rows).for_each(|row| tally.add(row, now));
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    let mut pipe = redis::pipe();
    pipe.atomic();
    live::queue_ack_and_count(&mut pipe, &keys.events, &keys.group, &keys.live, &ids, &tally);
    let _: () = pipe.query_async(&mut app.env.redis()).await.unwrap();
}

async fn totals(app: &TestApp, from: &str) -> (i64, i64) {
    let s = get(app, &format!("/v1/analytics/summary?from={from}")).await;
    (n(&s["events"]), cents(&s["revenue"]))
}

#[tokio::test]
async fn a_batch_taken_over_midway_is_counted_once_after_the_reconciler_rewrites_its_minute() {
    let app = TestApp::api(TestEnv::new().await).await;
    // Two entries in a closed minute five minutes ago (live, but past the reconciler's grace).
    let ts = rfc(Utc::now() - Duration::minutes(5));
    assert_eq!(app.post_json("/v1/events/bulk", live_body(&ts, 10, &[2.5], 0, "web")).await.status(), 202);
    assert_eq!(app.post_json("/v1/events/bulk", live_body(&ts, 20, &[4.0, 1.5], 3, "app")).await.status(), 202);

    // Slow consumer `a` reads and stores both entries but has not acknowledged them yet.
    let entries = read_as(&app, "a").await;
    assert_eq!(entries.len(), 2);
    let env = &app.env;
    let rows: Vec<&EventRow> = entries.iter().flat_map(|(_, rows)| rows).collect();
    env.resources.partitions.ensure_for(rows.iter().map(|r| r.ts_micros)).await.unwrap();
    assert!(eventmill::store::write_rows(env.pool(), &rows).await.unwrap().refused.is_empty());

    // Consumer `b` takes the first entry over and acknowledges it (counting its 11 rows)...
    let keys = &env.resources.keys;
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&keys.events)
        .arg(&keys.group)
        .arg("b")
        .arg(0)
        .arg(&entries[0].0)
        .query_async(&mut env.redis())
        .await
        .unwrap();
    ack_and_count(&app, &[&entries[0]]).await;
    // ...then `a` acknowledges both: one was no longer its own, so it counts nothing.
    ack_and_count(&app, &[&entries[0], &entries[1]]).await;
    let from = rfc(Utc::now() - Duration::minutes(30));
    assert_eq!(totals(&app, &from).await, (11, 250), "only `b`'s entry is counted before reconciling");
    let dirty: Vec<i64> = redis::cmd("SMEMBERS").arg(keys.live.dirty()).query_async(&mut env.redis()).await.unwrap();
    assert_eq!(dirty.len(), 1, "the batch's minute is marked dirty");

    // The reconciler rewrites the closed minute from the rows: counted once, seconds, minute,
    // hour and users alike; a second pass finds nothing to do and changes nothing.
    let mut redis = env.redis();
    assert_eq!(live::reconcile::reconcile_once(env.pool(), &mut redis, &keys.live).await.unwrap(), 1);
    let expected = (36, 800);
    assert_eq!(totals(&app, &from).await, expected);
    assert_eq!(live::reconcile::reconcile_once(env.pool(), &mut redis, &keys.live).await.unwrap(), 0);
    live::reconcile::rewrite_minute(env.pool(), &mut redis, &keys.live, dirty[0]).await.unwrap();
    assert_eq!(totals(&app, &from).await, expected, "rewriting again never double counts");
    for interval in ["second", "minute", "hour"] {
        let series = get(&app, &format!("/v1/analytics/timeseries?interval={interval}&from={from}")).await;
        let events: i64 = series["points"].as_array().unwrap().iter().map(|p| n(&p["events"])).sum();
        assert_eq!(events, 36, "{interval} buckets");
    }
    let summary = get(&app, &format!("/v1/analytics/summary?from={from}")).await;
    assert_eq!(summary["active_users"], 25, "{summary}");
    app.stop().await;
}

/// Events of `users` users (ids `{prefix}{i}`) of one type and source at `ts`.
fn events(ts: &str, event_type: &str, source: &str, prefix: &str, users: usize) -> String {
    let events: Vec<String> = (0..users)
        .map(|i| {
            format!(r#"{{"event_type":"{event_type}","timestamp":"{ts}","user_id":"{prefix}{i}","source":"{source}","properties":{{"amount":1}}}}"#)
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

async fn distinct_users(app: &TestApp, from: &str, to: &str, event_type: Option<&str>, source: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT user_id) FROM events WHERE ts >= $1::timestamptz AND ts < $2::timestamptz \
         AND ($3::text IS NULL OR event_type = $3) AND ($4::text IS NULL OR source = $4)",
    )
    .bind(from)
    .bind(to)
    .bind(event_type)
    .bind(source)
    .fetch_one(app.env.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn active_users_count_the_period_and_the_filters_like_count_distinct_over_the_rows() {
    let app = TestApp::api(TestEnv::new().await).await;
    let now = Utc::now();
    // Live traffic now, and older traffic the live counters never saw (26 h to 3 days ago).
    let batches = [
        (now, "page_view", "web", "a", 40),
        (now, "purchase", "web", "a", 12),
        (now, "page_view", "app", "m", 25),
        (now - Duration::minutes(90), "error", "app", "a", 7),
        (now - Duration::hours(26), "page_view", "web", "old", 30),
        (now - Duration::hours(50), "purchase", "app", "a", 18),
        (now - Duration::hours(70), "page_view", "web", "older", 9),
    ];
    for (ts, event_type, source, prefix, users) in batches {
        let body = events(&rfc(ts), event_type, source, prefix, users);
        assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    }
    let mut consumer = app.env.consumer().await;
    while app.env.count_events().await < 141 {
        consumer.consume_once().await.unwrap();
    }
    let to = rfc(now + Duration::minutes(1));
    let live_start = eventmill::web::query::series::live_start(now.timestamp());
    for from in
        [now - Duration::minutes(30), now - Duration::hours(2), now - Duration::hours(60), now - Duration::days(4)]
    {
        for (event_type, source) in
            [(None, None), (None, Some("web")), (Some("purchase"), None), (Some("page_view"), Some("app"))]
        {
            // As documented: before the live window whole UTC days, inside it whole hours when filtered.
            let t = from.timestamp();
            let counted_from = if t < live_start {
                t.div_euclid(86_400) * 86_400
            } else if event_type.is_some() || source.is_some() {
                t.div_euclid(3600) * 3600
            } else {
                t
            };
            let (from, counted_from) = (rfc(from), rfc(chrono::DateTime::from_timestamp(counted_from, 0).unwrap()));
            let mut path = format!("/v1/analytics/summary?from={from}&to={to}");
            event_type.inspect(|t| path.push_str(&format!("&event_type={t}")));
            source.inspect(|s| path.push_str(&format!("&source={s}")));
            let summary = get(&app, &path).await;
            let expected = distinct_users(&app, &counted_from, &to, event_type, source).await;
            // HyperLogLog: exact or within its ~1 % error at these sizes.
            let got = n(&summary["active_users"]);
            assert!((got - expected).abs() <= 1 + expected / 100, "{path}: {got} vs {expected}: {summary}");
        }
    }
    app.stop().await;
}
