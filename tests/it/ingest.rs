//! The ingestion API: every status code of SPEC section 4, and nothing stored from a rejected request.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, TestEnv, bulk_events, eventually};

async fn stream_len(app: &TestApp) -> u64 {
    let mut redis = app.env.redis();
    redis::cmd("XLEN").arg(&app.env.resources.keys.events).query_async(&mut redis).await.unwrap()
}

#[tokio::test]
async fn a_bulk_request_is_accepted_and_every_event_stored_once() {
    let app = TestApp::full(TestEnv::new().await).await;
    let (body, _) = bulk_events(300, "2026-11-23T10:00:00Z");
    let response = app.post_json("/v1/events/bulk", body).await;
    assert_eq!(response.status(), 202);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["accepted"], 300);
    assert_eq!(json["queued"], 300);
    assert!(json["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == 300 }).await);
    app.stop().await;
}

#[tokio::test]
async fn a_single_event_with_old_client_aliases_is_stored_with_defaults() {
    let app = TestApp::full(TestEnv::new().await).await;
    let response = app
        .post_json("/v1/events", r#"{"type":"signup","actor_id":"u-7","sessionId":"s-1","attributes":{"plan":"pro"}}"#)
        .await;
    assert_eq!(response.status(), 202);
    let json: Value = response.json().await.unwrap();
    assert!(json["event_id"].is_string());
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == 1 }).await);
    let (event_type, user, session, source, plan): (String, String, String, String, String) =
        sqlx::query_as("SELECT event_type, user_id, session_id, source, properties->>'plan' FROM events")
            .fetch_one(app.env.pool())
            .await
            .unwrap();
    assert_eq!(
        (event_type.as_str(), user.as_str(), session.as_str(), source.as_str(), plan.as_str()),
        ("signup", "u-7", "s-1", "unknown", "pro")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_request_id_is_echoed_and_a_body_request_id_is_honoured() {
    let app = TestApp::api(TestEnv::new().await).await;
    let response = app
        .client
        .post(app.url("/v1/events"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-abc-123")
        .body(r#"{"event_type":"page_view"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-abc-123");
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["request_id"], "req-abc-123");

    let response = app.post_json("/v1/events/bulk", r#"{"request_id":"legacy-9","events":[{"type":"x"}]}"#).await;
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["request_id"], "legacy-9");
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_400_with_its_position() {
    let app = TestApp::api(TestEnv::new().await).await;
    let response = app.post_json("/v1/events/bulk", "{\"events\": [\n {\"event_type\": }]}").await;
    assert_eq!(response.status(), 400);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"], "malformed_json");
    assert_eq!(json["details"][0]["line"], 2);
    assert!(json["message"].as_str().unwrap().contains("line 2"));
    assert_eq!(stream_len(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn schema_errors_are_a_422_listing_every_bad_event_and_nothing_is_stored() {
    let app = TestApp::full(TestEnv::new().await).await;
    let body = r#"{"events":[
        {"event_type":"page_view"},
        {"event_type":"Page View"},
        {"event_type":"purchase","timestamp":"not a time","unknown":true},
        {"event_type":"a","type":"b"},
        {"event_type":"x","properties":[1]}
    ]}"#;
    let response = app.post_json("/v1/events/bulk", body).await;
    assert_eq!(response.status(), 422);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"], "invalid_events");
    let details: Vec<(u64, String)> = json["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["field"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(u64, String)> =
        [(1, "event_type"), (2, "unknown"), (2, "timestamp"), (3, "type"), (4, "properties")]
            .into_iter()
            .map(|(i, f)| (i, f.to_owned()))
            .collect();
    assert_eq!(details, expected);
    assert!(json["details"].as_array().unwrap().iter().all(|d| d["reason"].as_str().is_some_and(|r| !r.is_empty())));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream_len(&app).await, 0);
    assert_eq!(app.env.count_events().await, 0, "the valid event of a rejected batch is not stored");
    app.stop().await;
}

#[tokio::test]
async fn too_many_events_or_too_large_a_body_is_a_413() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_BODY_LIMIT_BYTES", "2000000")]).await).await;
    let (body, _) = bulk_events(5001, "2026-11-23T10:00:00Z");
    let response = app.post_json("/v1/events/bulk", body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "too_many_events");

    let huge = format!(r#"{{"events":[{{"event_type":"a","properties":{{"k":"{}"}}}}]}}"#, "x".repeat(2_100_000));
    let response = app.post_json("/v1/events/bulk", huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "body_too_large");
    assert_eq!(stream_len(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let app = TestApp::api(TestEnv::new().await).await;
    let response = app
        .client
        .post(app.url("/v1/events"))
        .header("content-type", "text/plain")
        .body(r#"{"event_type":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unsupported_media_type");
    app.stop().await;
}

#[tokio::test]
async fn ingest_keys_are_required_when_configured() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_INGEST_KEYS", "k1, k2")]).await).await;
    let send = |auth: Option<(&'static str, &'static str)>| {
        let mut request = app
            .client
            .post(app.url("/v1/events"))
            .header("content-type", "application/json")
            .body(r#"{"event_type":"a"}"#);
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        request.send()
    };
    let missing = send(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "unauthorized");
    assert_eq!(send(Some(("authorization", "Bearer nope"))).await.unwrap().status(), 401);
    assert_eq!(send(Some(("authorization", "Bearer k2"))).await.unwrap().status(), 202);
    assert_eq!(send(Some(("x-api-key", "k1"))).await.unwrap().status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn redis_down_is_a_fast_503_with_retry_after() {
    // Nothing listens on port 1.
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_REDIS_URL", "redis://127.0.0.1:1")]).await).await;
    let started = Instant::now();
    let response = app.post_json("/v1/events", r#"{"event_type":"a"}"#).await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unavailable");

    let health = app.client.get(app.url("/healthz/detailed")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let json: Value = health.json().await.unwrap();
    assert_eq!(json["redis"]["ok"], false);
    assert_eq!(json["postgres"]["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_full_stream_answers_429_and_trims_nothing_until_events_are_stored() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_STREAM_MAX_LEN", "10")]).await).await;
    let (body, _) = bulk_events(10, "2026-11-23T10:00:00Z");
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    let refused = app.post_json("/v1/events", r#"{"event_type":"a"}"#).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(stream_len(&app).await, 1, "no accepted entry (10 events packed in one) was trimmed");

    let mut consumer = app.env.consumer().await;
    while app.env.count_events().await < 10 {
        consumer.consume_once().await.unwrap();
    }
    // The consumer trims what it stored; ingestion resumes.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = 0;
    while status != 202 && Instant::now() < deadline {
        consumer.consume_once().await.unwrap();
        status = app.post_json("/v1/events", r#"{"event_type":"a"}"#).await.status().as_u16();
    }
    assert_eq!(status, 202);
    app.stop().await;
}

#[tokio::test]
async fn a_client_resending_the_same_event_ids_is_stored_once() {
    let app = TestApp::full(TestEnv::new().await).await;
    let (body, _) = bulk_events(50, "2026-11-23T10:00:00Z");
    for _ in 0..3 {
        assert_eq!(app.post_json("/v1/events/bulk", body.clone()).await.status(), 202);
    }
    // Without a timestamp the first arrival time is pinned, so a re-send is the same row too.
    let no_ts = r#"{"event_id":"6f1c1a52-5d7e-4e55-9a3b-0c6d2f1e9a10","event_type":"retry_me"}"#;
    assert_eq!(app.post_json("/v1/events", no_ts).await.status(), 202);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(app.post_json("/v1/events", no_ts).await.status(), 202);
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await >= 51 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.env.count_events().await, 51);
    app.stop().await;
}

#[tokio::test]
async fn idempotency_state_is_bounded_a_uuid_v7_needs_none_and_other_ids_live_for_the_resend_window() {
    let app = TestApp::full(TestEnv::with(&[("EVENTMILL_RESEND_WINDOW_SECS", "120")]).await).await;
    let v7 = uuid::Uuid::now_v7();
    let v4 = uuid::Uuid::new_v4();
    let body =
        format!(r#"{{"events":[{{"event_id":"{v7}","event_type":"a"}},{{"event_id":"{v4}","event_type":"b"}}]}}"#);
    assert_eq!(app.post_json("/v1/events/bulk", body.clone()).await.status(), 202);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await >= 2 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.env.count_events().await, 2, "each re-sent event stored once");

    // The UUIDv7 event's time is its id's time, and no key was written for it.
    let ts: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT ts FROM events WHERE event_id = $1")
        .bind(v7)
        .fetch_one(app.env.pool())
        .await
        .unwrap();
    let (secs, nanos) = v7.get_timestamp().unwrap().to_unix();
    assert_eq!(ts.timestamp_millis(), secs as i64 * 1000 + i64::from(nanos / 1_000_000));
    let mut redis = app.env.redis();
    let pins: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", app.env.resources.keys.pinned_ts)).query_async(&mut redis).await.unwrap();
    assert_eq!(pins, [format!("{}{v4}", app.env.resources.keys.pinned_ts)], "only the v4 id is pinned");
    let ttl: i64 = redis::cmd("TTL").arg(&pins[0]).query_async(&mut redis).await.unwrap();
    assert!((1..=120).contains(&ttl), "pinned for the re-send window, not a day: {ttl} s");
    app.stop().await;
}

#[tokio::test]
async fn health_reports_postgres_down_as_degraded_while_events_are_still_accepted() {
    let env = TestEnv::new().await;
    let mut settings = env.settings.clone();
    settings.database_url = "postgres://eventmill@127.0.0.1:1/nothing".to_owned().into();
    let resources = eventmill::app::Resources::new(settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = eventmill::shutdown::Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { eventmill::app::serve(&resources, listener, shutdown).await }
    });
    let response = reqwest::get(format!("http://{addr}/healthz/detailed")).await.unwrap();
    assert_eq!(response.status(), 200, "202s continue: not down");
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["status"], "degraded", "{json}");
    assert_eq!(json["postgres"]["ok"], false);
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 200);
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_the_ingestion_endpoints() {
    let app = TestApp::api(TestEnv::new().await).await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let bulk = &doc["paths"]["/v1/events/bulk"]["post"];
    for status in ["202", "400", "401", "413", "415", "422", "429", "503"] {
        assert!(bulk["responses"][status].is_object(), "bulk lacks {status}");
    }
    assert!(doc["components"]["schemas"]["EventInput"]["properties"]["event_type"].is_object());
    app.stop().await;
}
