//! A sharded ingestion stream (`EVENTMILL_STREAM_SHARDS`, SPEC section 15): requests spread over
//! every shard whole, each event stored once, counted live once, and dead letters kept and
//! replayed per shard. Runs against one node and (in `scripts/test.sh`'s second pass) a cluster.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use eventmill::stream::{StreamKeys, dead_letter};
use serde_json::Value;

use crate::{
    browser::ADMIN_TOKEN,
    golden::{cents, n},
    helpers::{TestApp, TestEnv, eventually},
};

const REQUESTS: usize = 12;
const EVENTS_PER_REQUEST: usize = 50;

/// Request `r`: 45 page views and 5 purchases of 2.50 by fresh users, and in the first three
/// requests (one per shard) one `blocked` event that PostgreSQL refuses.
fn request(r: usize) -> String {
    let mut events: Vec<String> = (0..EVENTS_PER_REQUEST)
        .map(|i| match i % 10 {
            0 => format!(r#"{{"event_type":"purchase","user_id":"r{r}u{i}","properties":{{"amount":2.5}}}}"#),
            _ => format!(r#"{{"event_type":"page_view","user_id":"r{r}u{i}"}}"#),
        })
        .collect();
    if r < 3 {
        events[1] = format!(r#"{{"event_type":"blocked","user_id":"r{r}blocked"}}"#);
    }
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

async fn summary_now(app: &TestApp) -> Value {
    let from = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let response =
        app.client.get(app.url(&format!("/v1/analytics/summary?from={from}"))).bearer_auth(ADMIN_TOKEN).send().await;
    response.unwrap().json().await.unwrap()
}

async fn entries_added(app: &TestApp, keys: &StreamKeys) -> u64 {
    let info: std::collections::HashMap<String, redis::Value> =
        redis::cmd("XINFO").arg("STREAM").arg(&keys.events).query_async(&mut app.env.redis()).await.unwrap();
    redis::from_redis_value(info["entries-added"].clone()).unwrap()
}

#[tokio::test]
async fn three_shards_store_every_request_once_count_it_live_and_keep_dead_letters_per_shard() {
    let env = TestEnv::with(&[("EVENTMILL_STREAM_SHARDS", "3"), ("EVENTMILL_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.event_type = 'blocked' THEN RAISE EXCEPTION 'blocked events are refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_blocked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_blocked();",
    )
    .execute(env.pool())
    .await
    .unwrap();
    let app = TestApp::full(env).await;
    let shards = app.env.resources.shards.clone();
    assert_eq!(shards.len(), 3);
    for r in 0..REQUESTS {
        assert_eq!(app.post_json("/v1/events/bulk", request(r)).await.status(), 202);
    }
    let good = (REQUESTS * EVENTS_PER_REQUEST - 3) as i64;
    let conn = app.env.redis();
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.env.count_events().await == good && dead_letter::count(&mut conn.clone(), &shards).await.unwrap() == 3
        })
        .await,
        "stored {} of {good}",
        app.env.count_events().await
    );
    // Requests took turns: every shard got a third of them, each whole.
    for keys in shards.iter() {
        assert_eq!(entries_added(&app, keys).await, (REQUESTS / 3) as u64, "shard {}", keys.shard);
    }
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM events").fetch_one(app.env.pool()).await.unwrap();
    assert_eq!(distinct, good, "no event stored twice");

    // Counted live exactly once, whichever shard's consumer stored it.
    let summary = summary_now(&app).await;
    assert_eq!(n(&summary["events"]), good, "{summary}");
    assert_eq!(n(&summary["purchases"]), (REQUESTS * 5) as i64, "{summary}");
    assert_eq!(cents(&summary["revenue"]), (REQUESTS * 5 * 250) as i64, "{summary}");

    // One dead letter per shard, each replayed into its own shard once PostgreSQL accepts it.
    let letters = dead_letter::list(&mut conn.clone(), &shards, 10).await.unwrap();
    let mut suffixes: Vec<Option<&str>> = letters.iter().map(|l| l.id.split_once('@').map(|(_, s)| s)).collect();
    suffixes.sort();
    assert_eq!(suffixes, vec![None, Some("1"), Some("2")], "{letters:?}");
    sqlx::raw_sql("DROP TRIGGER refuse_blocked ON events").execute(app.env.pool()).await.unwrap();
    let replayed = dead_letter::replay_all(&mut conn.clone(), &shards).await.unwrap();
    assert_eq!((replayed.replayed, replayed.not_found.len()), (3, 0));
    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == good + 3 }).await);
    assert_eq!(dead_letter::count(&mut conn.clone(), &shards).await.unwrap(), 0);
    let unknown = dead_letter::replay(&mut conn.clone(), &shards, &["1-1@7".to_owned()]).await.unwrap();
    assert_eq!(unknown.not_found, vec!["1-1@7".to_owned()]);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_abandoned_in_flight_by_a_dead_process_marks_its_minutes_dirty() {
    let env = TestEnv::new().await;
    let live = env.resources.keys.live.clone();
    let mut conn = env.redis();
    let old = format!("{}-00000001", Utc::now().timestamp_millis() - 120_000);
    let fresh = format!("{}-00000002", Utc::now().timestamp_millis());
    let _: () = redis::cmd("HSET")
        .arg(live.in_flight())
        .arg(&old)
        .arg("[29000000,29000001]")
        .arg(&fresh)
        .arg("[29000002]")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(eventmill::live::ack::settle_abandoned(&mut conn, &live).await.unwrap(), 1);
    let mut dirty: Vec<i64> = redis::cmd("SMEMBERS").arg(live.dirty()).query_async(&mut conn).await.unwrap();
    dirty.sort();
    assert_eq!(dirty, vec![29000000, 29000001], "only the abandoned batch's minutes");
    let left: Vec<String> = redis::cmd("HKEYS").arg(live.in_flight()).query_async(&mut conn).await.unwrap();
    assert_eq!(left, vec![fresh], "a batch still in flight is left alone");
}
