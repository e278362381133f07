//! Outages of the servers themselves, on private instances (`private`) so the shared test servers
//! stay up: PostgreSQL stopped under load (then the stream filling to its high-water mark), and
//! Redis crashed and restarted with AOF `everysec`. Each ends with the count check. CI uses a short
//! outage; `scripts/chaos.sh` the 30 s one.

use std::time::Duration;

use serde_json::Value;
use tokio::task::block_in_place;

use crate::{
    faults_support::{Load, assert_each_stored_once, tally},
    helpers::{TestApp, TestEnv, base_urls, eventually},
    private::{PrivatePostgres, PrivateRedis},
};

/// How long the CI variant keeps a server down.
const OUTAGE: Duration = Duration::from_secs(3);

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/healthz/detailed")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn stream_len(app: &TestApp) -> u64 {
    let mut redis = app.env.redis();
    redis::cmd("XLEN").arg(&app.env.resources.keys.events).query_async(&mut redis).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_under_load_keeps_202s_coming_until_the_high_water_mark_then_everything_lands() {
    let pg = block_in_place(PrivatePostgres::start);
    let high_water = 6000;
    let overrides = [("EVENTMILL_STREAM_MAX_LEN", "6000"), ("EVENTMILL_DB_MAX_CONNECTIONS", "2")];
    let app = TestApp::full(TestEnv::on(&base_urls().0, &pg.url(), &overrides).await).await;
    let load = Load::start(app.url("/v1/events/bulk"), 200);
    assert!(eventually(Duration::from_secs(10), || async { load.accepted() >= 1000 }).await);

    block_in_place(|| pg.stop());
    let before = load.accepted();
    // Degraded, not down: 202s continue while the stream has room.
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (200, &"degraded".into()), "{body}");
    assert!(body["reasons"][0].as_str().unwrap().starts_with("PostgreSQL is unreachable"), "{body}");
    assert_eq!(body["postgres"]["ok"], false, "{body}");
    assert_eq!(body["redis"]["ok"], true, "{body}");
    tokio::time::sleep(OUTAGE).await;
    assert!(load.accepted() > before, "202s continue while the stream has room");

    // The stream fills to its high-water mark (counted in events; entries pack ~100 each): 429 with
    // Retry-After, and nothing unstored trimmed.
    let full = eventually(Duration::from_secs(30), || async { load.statuses.lock().unwrap().contains_key(&429) }).await;
    assert!(full, "the stream never reached its high-water mark of {high_water} events (no 429)");
    assert!(stream_len(&app).await > 0, "unstored entries are kept");
    let response = app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await;
    assert_eq!(response.status(), 429);
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "429 without a Retry-After");
    assert!(load.statuses.lock().unwrap().contains_key(&429), "the client was told to back off");
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "a full stream refuses events: {body}");

    block_in_place(|| pg.resume());
    let accepted = load.stop().await;
    assert_each_stored_once(&app.env, &accepted).await;
    let healthy = eventually(Duration::from_secs(10), || async { health(&app).await.1["status"] == "ok" }).await;
    assert!(healthy, "{}", health(&app).await.1);
    app.stop().await;
}

#[tokio::test]
async fn a_stream_past_80_percent_of_its_high_water_mark_is_degraded_and_a_full_one_down() {
    // No consumer: what is sent stays in the stream.
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_STREAM_MAX_LEN", "100")]).await).await;
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"], &body["reasons"]), (200, &"ok".into(), &serde_json::json!([])), "{body}");
    for _ in 0..80 {
        assert_eq!(app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await.status(), 202);
    }
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (200, &"degraded".into()), "{body}");
    assert!(body["reasons"][0].as_str().unwrap().contains("80 of at most 100 events"), "{body}");
    for _ in 0..20 {
        assert_eq!(app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await.status(), 202);
    }
    assert_eq!(app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await.status(), 429);
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "{body}");
    assert!(body["reasons"][0].as_str().unwrap().contains("refused with 429"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crashed_and_restarted_with_aof_answers_503_recovers_by_itself_and_loses_at_most_the_last_second() {
    let mut redis = block_in_place(PrivateRedis::start);
    let (_, db) = base_urls();
    let overrides = [("EVENTMILL_REDIS_TIMEOUT_MS", "500")];
    let app = TestApp::full(TestEnv::on(&redis.url(), &db, &overrides).await).await;
    let load = Load::start(app.url("/v1/events/bulk"), 200);
    assert!(eventually(Duration::from_secs(10), || async { load.accepted() >= 2000 }).await);
    // Acknowledged more than a second before the crash: the AOF (fsynced every second) has them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let durable = load.accepted_ids();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    block_in_place(|| redis.crash());
    let response = app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await;
    assert_eq!(response.status(), 503, "Redis down is a 503");
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "{body}");
    assert_eq!(body["redis"]["ok"], false, "{body}");
    tokio::time::sleep(OUTAGE).await;

    block_in_place(|| redis.restart());
    // No restart of eventmill: the API, the consumers and the job queues reconnect by themselves.
    let before = load.accepted();
    assert!(eventually(Duration::from_secs(30), || async { load.accepted() > before + 1000 }).await);
    let after_restart: Vec<_> = load.accepted_ids().split_off(before);
    let accepted = load.stop().await;
    // The queues' connection reconnects on its next command (an idle worker sends almost none).
    let queue = &app.env.resources.queues.all()[0];
    let recovered = eventually(Duration::from_secs(10), || async { queue.counts().await.is_ok() }).await;
    assert!(recovered, "the job queues work again: {:?}", queue.counts().await);

    // Everything durable before the crash and everything sent after it is stored exactly once.
    assert_each_stored_once(&app.env, &[durable.clone(), after_restart].concat()).await;
    let all = tally(&app.env, &accepted).await;
    assert_eq!(all.duplicates, 0, "{all:?}");
    eprintln!("redis crash: {} accepted in the last ~1.5 s before it were lost", all.lost);
    app.stop().await;
}
