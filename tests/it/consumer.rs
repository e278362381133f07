//! The stream consumer: exactly-once storage across crashes, reclaiming a dead consumer's entries,
//! dead letters and their replay.

use std::{process::Stdio, time::Duration};

use eventmill::{
    store::{self, EventRow},
    stream::{dead_letter, entry},
};

use crate::helpers::{TestApp, TestEnv, bulk_events, eventually, read_entries_as};

async fn pending(env: &TestEnv) -> usize {
    let mut redis = env.redis();
    let keys = &env.resources.keys;
    let groups: redis::streams::StreamInfoGroupsReply =
        redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(&mut redis).await.unwrap();
    groups.groups.iter().find(|g| g.name == keys.group).map(|g| g.pending).unwrap_or(0)
}

#[tokio::test]
async fn a_consumer_killed_after_commit_before_xack_stores_nothing_twice() {
    let app = TestApp::api(TestEnv::new().await).await;
    let (body, _) = bulk_events(400, "2026-11-23T10:00:00Z");
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    let env = &app.env;

    // A consumer reads 2 of the 4 packed entries (200 events) and commits them, then dies before XACK.
    let taken = read_entries_as(env, "dead-consumer", 2).await;
    let rows: Vec<EventRow> =
        taken.iter().flat_map(|(_, payload)| entry::decode(payload)).map(|d| d.row.unwrap()).collect();
    let mut refs: Vec<&EventRow> = rows.iter().collect();
    refs.sort_by_key(|r| r.ts_micros);
    env.resources.partitions.ensure_for(refs.iter().map(|r| r.ts_micros)).await.unwrap();
    assert!(store::write_rows(env.pool(), &refs).await.unwrap().refused.is_empty());
    assert_eq!(env.count_events().await, 200);
    assert_eq!(pending(env).await, 2);

    // A new consumer reclaims the dead one's entries once idle, and reads the rest.
    let mut consumer = env.consumer().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..10 {
        consumer.consume_once().await.unwrap();
    }
    assert_eq!(env.count_events().await, 400);
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM events").fetch_one(env.pool()).await.unwrap();
    assert_eq!(distinct, 400);
    assert_eq!(pending(env).await, 0, "reclaimed entries are acknowledged");
    app.stop().await;
}

#[tokio::test]
async fn pending_entries_of_a_dead_consumer_are_reclaimed_and_stored() {
    let app = TestApp::api(TestEnv::new().await).await;
    let (body, _) = bulk_events(100, "2026-11-23T10:00:00Z");
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    assert_eq!(read_entries_as(&app.env, "crashed-before-commit", 100).await.len(), 1, "one packed entry");
    assert_eq!(pending(&app.env).await, 1);

    let mut consumer = app.env.consumer().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.env.count_events().await < 100 && tokio::time::Instant::now() < deadline {
        consumer.consume_once().await.unwrap();
    }
    assert_eq!(app.env.count_events().await, 100);
    assert_eq!(pending(&app.env).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_worker_process_killed_mid_stream_loses_and_duplicates_nothing() {
    let env = TestEnv::with(&[("EVENTMILL_BATCH_SIZE", "100")]).await;
    let app = TestApp::api(env).await;
    for day in 0..10 {
        let (body, _) = bulk_events(500, &format!("2026-11-{:02}T10:00:00Z", 10 + day));
        assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    }
    let spawn_worker = || {
        let env = &app.env;
        tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
            .arg("worker")
            .env("EVENTMILL_REDIS_URL", secrecy::ExposeSecret::expose_secret(&env.settings.redis.url))
            .env("EVENTMILL_DATABASE_URL", &env.db_url)
            .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
            .env("EVENTMILL_BATCH_SIZE", "100")
            .env("EVENTMILL_CONSUMERS", "2")
            .env("EVENTMILL_RECLAIM_IDLE_MS", "500")
            .env("EVENTMILL_RECLAIM_INTERVAL_MS", "200")
            .env("EVENTMILL_ADMIN_TOKEN", "x")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut first = spawn_worker();
    assert!(eventually(Duration::from_secs(20), || async { app.env.count_events().await >= 1000 }).await);
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();
    let after_kill = app.env.count_events().await;
    assert!(after_kill < 5000, "killed mid-stream ({after_kill} stored)");

    let mut second = spawn_worker();
    assert!(eventually(Duration::from_secs(30), || async { app.env.count_events().await >= 5000 }).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (rows, distinct): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events")
        .fetch_one(app.env.pool())
        .await
        .unwrap();
    assert_eq!((rows, distinct), (5000, 5000));
    second.start_kill().unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_poison_entry_ends_in_the_dead_letter_stream_with_its_reason() {
    let env = TestEnv::new().await;
    let mut redis = env.redis();
    let keys = env.resources.keys.clone();
    let _: String = redis::cmd("XADD")
        .arg(&keys.events)
        .arg("*")
        .arg("e")
        .arg("{not json")
        .arg("r")
        .arg("req-poison")
        .query_async(&mut redis)
        .await
        .unwrap();
    let (body, _) = bulk_events(5, "2026-11-23T10:00:00Z");
    let app = TestApp::full(env).await;
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);

    let mut conn = app.env.redis();
    assert!(
        eventually(Duration::from_secs(10), || async {
            dead_letter::count(&mut conn.clone(), std::slice::from_ref(&keys)).await.unwrap() == 1
        })
        .await
    );
    let letters = dead_letter::list(&mut conn, std::slice::from_ref(&keys), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("not a valid event"), "{}", letters[0].reason);
    assert_eq!(letters[0].deliveries, 3);
    assert_eq!(letters[0].request_id, "req-poison");
    assert_eq!(letters[0].payload, "{not json");
    assert_eq!(app.env.count_events().await, 5, "the good events of the stream are stored");
    assert!(eventually(Duration::from_secs(5), || async { pending(&app.env).await == 0 }).await);
    app.stop().await;
}

#[tokio::test]
async fn a_poison_event_inside_a_packed_entry_is_dead_lettered_alone_and_the_rest_stored() {
    let env = TestEnv::new().await;
    env.refuse_blocked_events().await;
    // 250 events: three packed entries; the poison one sits inside the second.
    let events: Vec<String> = (0..250)
        .map(|i| {
            let kind = if i == 130 { "blocked" } else { "page_view" };
            format!(r#"{{"event_type":"{kind}","user_id":"u{i}","timestamp":"2026-11-23T10:00:00Z"}}"#)
        })
        .collect();
    let app = TestApp::full(env).await;
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    // And an entry written by hand whose list holds one unreadable item.
    let keys = app.env.resources.keys.clone();
    let mut conn = app.env.redis();
    let good = r#"{"id":"0193a5b0-0000-7000-8000-000000000001","t":"signup","ts":1763892000000000,"src":"web","p":{},"at":1763892000000000}"#;
    let _: String = redis::cmd("XADD")
        .arg(&keys.events)
        .arg("*")
        .arg(entry::EVENT_FIELD)
        .arg(format!(r#"[{good}, {{"t":"no_id"}}]"#))
        .arg(entry::REQUEST_FIELD)
        .arg("req-hand")
        .query_async(&mut conn)
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(15), || async {
            dead_letter::count(&mut conn.clone(), std::slice::from_ref(&keys)).await.unwrap() == 2
        })
        .await
    );
    assert!(eventually(Duration::from_secs(5), || async { pending(&app.env).await == 0 }).await);
    assert_eq!(app.env.count_events().await, 250, "249 good events and the hand-written good one");
    let letters = dead_letter::list(&mut conn, std::slice::from_ref(&keys), 10).await.unwrap();
    let blocked = letters.iter().find(|l| l.reason.contains("blocked events are refused")).expect("the poison event");
    assert!(blocked.entry_id.ends_with("#46"), "{}", blocked.entry_id);
    assert!(blocked.payload.starts_with('{') && blocked.payload.contains(r#""u":"u130""#), "{}", blocked.payload);
    let unreadable = letters.iter().find(|l| l.request_id == "req-hand").expect("the unreadable item");
    assert_eq!(unreadable.payload, r#"{"t":"no_id"}"#);
    assert!(unreadable.entry_id.ends_with("#1"), "{}", unreadable.entry_id);
    app.stop().await;
}

#[tokio::test]
async fn a_dead_letter_refused_by_postgres_is_replayed_with_the_cli_once_fixed() {
    let env = TestEnv::new().await;
    // A rule PostgreSQL enforces on one kind of event: every delivery of it fails.
    env.refuse_blocked_events().await;
    let app = TestApp::full(env).await;
    let body = r#"{"events":[{"event_type":"ok_1"},{"event_type":"blocked","user_id":"u9"},{"event_type":"ok_2"}]}"#;
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    let keys = app.env.resources.keys.clone();
    let conn = app.env.redis();
    assert!(
        eventually(Duration::from_secs(10), || async {
            dead_letter::count(&mut conn.clone(), std::slice::from_ref(&keys)).await.unwrap() == 1
        })
        .await
    );
    assert_eq!(app.env.count_events().await, 2);
    let letter = &dead_letter::list(&mut conn.clone(), std::slice::from_ref(&keys), 10).await.unwrap()[0];
    assert!(letter.reason.contains("blocked events are refused"), "{}", letter.reason);

    sqlx::query("DROP TRIGGER refuse_blocked ON events").execute(app.env.pool()).await.unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
            .args(args)
            .env("EVENTMILL_REDIS_URL", secrecy::ExposeSecret::expose_secret(&app.env.settings.redis.url))
            .env("EVENTMILL_DATABASE_URL", &app.env.db_url)
            .env("EVENTMILL_REDIS_PREFIX", &app.env.prefix)
            .env("EVENTMILL_ADMIN_TOKEN", "x")
            .output()
            .unwrap()
    };
    let listed = cli(&["dead-letters", "list"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && listed_text.contains("blocked events are refused"), "{listed_text}");
    let replayed = cli(&["dead-letters", "replay", &letter.id]);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("replayed 1"));

    assert!(eventually(Duration::from_secs(10), || async { app.env.count_events().await == 3 }).await);
    let user: String = sqlx::query_scalar("SELECT user_id FROM events WHERE event_type = 'blocked'")
        .fetch_one(app.env.pool())
        .await
        .unwrap();
    assert_eq!(user, "u9");
    assert_eq!(dead_letter::count(&mut conn.clone(), std::slice::from_ref(&keys)).await.unwrap(), 0);
    let unknown = cli(&["dead-letters", "replay", "1-1"]);
    assert_eq!(unknown.status.code(), Some(1));
    app.stop().await;
}

/// The worker's consumer has created (or found) the group, just before its first read. On Redis
/// Cluster its first connection takes longer than the test's first request, and a worker stopped
/// before its first read stores nothing (the events wait in the stream for the next one).
async fn joined(env: &TestEnv) -> bool {
    let mut redis = env.redis();
    let keys = &env.resources.keys;
    let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
        redis::cmd("XINFO").arg("GROUPS").arg(&keys.events).query_async(&mut redis).await;
    groups.is_ok_and(|r| r.groups.iter().any(|g| g.name == keys.group))
}

#[tokio::test]
async fn graceful_shutdown_stores_what_was_accepted() {
    let app = TestApp::full(TestEnv::with(&[("EVENTMILL_FLUSH_INTERVAL_MS", "1000")]).await).await;
    assert!(eventually(Duration::from_secs(20), || joined(&app.env)).await, "the worker never joined the group");
    let (body, _) = bulk_events(200, "2026-11-23T10:00:00Z");
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    let env = app.stop().await;
    assert_eq!(env.count_events().await, 200);
}

#[tokio::test]
async fn stored_entries_are_trimmed_from_the_stream_even_in_large_numbers() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_BATCH_SIZE", "5000")]).await).await;
    // 25,000 single-event entries (an older writer's format), more than one XTRIM removes by default.
    let (body, _) = bulk_events(1, "2026-11-23T10:00:00Z");
    assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
    let one: String = read_entries_as(&app.env, "peek", 1).await.remove(0).1;
    let template: serde_json::Value = serde_json::from_str(&one).unwrap();
    let mut redis = app.env.redis();
    let _: i64 = redis::cmd("XTRIM")
        .arg(&app.env.resources.keys.events)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&app.env.resources.keys.events)
        .arg(&app.env.resources.keys.group)
        .query_async(&mut redis)
        .await
        .unwrap();
    for chunk in 0..5 {
        let mut pipe = redis::pipe();
        for i in 0..5000 {
            let mut event = template.clone();
            event["id"] = uuid::Uuid::new_v4().to_string().into();
            event["u"] = format!("u{chunk}-{i}").into();
            pipe.cmd("XADD")
                .arg(&app.env.resources.keys.events)
                .arg("*")
                .arg(entry::EVENT_FIELD)
                .arg(event.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut redis).await.unwrap();
    }
    let mut consumer = app.env.consumer().await;
    while app.env.count_events().await < 25_000 {
        consumer.consume_once().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // the trim interval
    consumer.consume_once().await.unwrap();
    let len: u64 = redis::cmd("XLEN").arg(&app.env.resources.keys.events).query_async(&mut redis).await.unwrap();
    // Approximate trimming keeps at most the last partly used node (100 entries by default).
    assert!(len <= 100, "{len} stored entries left in the stream");
    app.stop().await;
}

#[tokio::test]
async fn consumers_that_stopped_holding_nothing_are_forgotten() {
    let env = TestEnv::new().await;
    let mut redis = env.redis();
    let keys = env.resources.keys.clone();
    eventmill::stream::ensure_group(&mut redis, &keys).await.unwrap();
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(&keys.events)
        .arg(&keys.group)
        .arg("ghost")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut consumer = env.consumer().await;
    tokio::time::sleep(Duration::from_millis(3200)).await; // ten reclaim periods of the test settings
    consumer.consume_once().await.unwrap();
    let members: redis::streams::StreamInfoConsumersReply =
        redis::cmd("XINFO").arg("CONSUMERS").arg(&keys.events).arg(&keys.group).query_async(&mut redis).await.unwrap();
    let names: Vec<&str> = members.consumers.iter().map(|c| c.name.as_str()).collect();
    assert!(!names.contains(&"ghost"), "{names:?}");
}

#[tokio::test]
async fn sigterm_stops_eventmill_run_within_ten_seconds_with_every_accepted_event_stored() {
    let env = TestEnv::with(&[("EVENTMILL_FLUSH_INTERVAL_MS", "2000")]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
        .arg("run")
        .env("EVENTMILL_REDIS_URL", secrecy::ExposeSecret::expose_secret(&env.settings.redis.url))
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("EVENTMILL_FLUSH_INTERVAL_MS", "2000")
        .env("EVENTMILL_ADMIN_TOKEN", "x")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/events/bulk");
    let up = eventually(Duration::from_secs(10), || async {
        client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "eventmill run did not start");
    let (body, _) = bulk_events(300, "2026-11-23T10:00:00Z");
    let response = client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(response.status(), 202);

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits within 10 s").unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(env.count_events().await, 300);
}
