//! Redis refusing writes (issue 20, SPEC section 13), on private servers (`private`): a Redis
//! filling up while PostgreSQL is down answers 429 naming memory before Redis refuses anything;
//! one pushed to `maxmemory` anyway still drains; an evicting policy is refused at start; a worker
//! started while PostgreSQL is down waits for it; `MISCONF` and `READONLY` get their own answers
//! and recover. Each ends with the count check of `faults_support`.

use std::time::Duration;

use serde_json::Value;
use tokio::task::block_in_place;

use crate::{
    faults_support::{Load, Proc, assert_each_stored_once, tally},
    helpers::{TestApp, TestEnv, base_urls, bulk_events, eventually},
    private::{PrivatePostgres, PrivateRedis},
};

/// A plain connection to a private server, to configure and inspect it.
async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    conn.set_response_timeout(Duration::from_secs(10));
    conn
}

async fn config_set(conn: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async(conn).await.unwrap();
}

/// A numeric field of `INFO <section>`.
async fn info_field(conn: &mut redis::aio::MultiplexedConnection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query_async(conn).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    info_field(conn, "memory", "used_memory").await.unwrap().parse().unwrap()
}

/// Commands Redis refused with OOM so far (`INFO errorstats`).
async fn oom_refusals(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let stat = info_field(conn, "errorstats", "errorstat_OOM").await;
    stat.and_then(|s| s.strip_prefix("count=")?.split(',').next()?.parse().ok()).unwrap_or(0)
}

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/healthz/detailed")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// One event's answer: status and body.
async fn post_one(app: &TestApp) -> (u16, Value, Option<String>) {
    let response = app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_filling_while_postgresql_is_down_answers_429_naming_memory_before_refusing_a_write_then_drains() {
    let redis = block_in_place(PrivateRedis::start);
    let pg = block_in_place(PrivatePostgres::start);
    let overrides = [("EVENTMILL_STREAM_MAX_LEN", "100000000"), ("EVENTMILL_DB_MAX_CONNECTIONS", "2")];
    let app = TestApp::full(TestEnv::on(&redis.url(), &pg.url(), &overrides).await).await;
    let mut conn = admin(&redis.url()).await;
    let max = used_memory(&mut conn).await + 16 * 1024 * 1024;
    config_set(&mut conn, "maxmemory", &max.to_string()).await;

    block_in_place(|| pg.stop());
    let load = Load::start(app.url("/v1/events/bulk"), 200);
    let refused = eventually(Duration::from_secs(90), || async { load.statuses.lock().unwrap().contains_key(&429) });
    assert!(refused.await, "no 429 while Redis filled up: {:?}", load.statuses.lock().unwrap());
    let (status, body, retry_after) = post_one(&app).await;
    assert_eq!((status, &body["error"]), (429, &"backpressure".into()), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Redis memory is at") && message.contains("EVENTMILL_REDIS_MEMORY_HIGH_WATER"),
        "{body}"
    );
    assert!(retry_after.is_some(), "429 without Retry-After");
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "{body}");
    assert_eq!(body["redis"]["memory"]["max"], max, "{body}");
    assert_eq!(body["redis"]["memory"]["policy"], "noeviction", "{body}");
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("Redis memory is at") && reasons.contains("PostgreSQL is unreachable"), "{body}");
    assert_eq!(oom_refusals(&mut conn).await, 0, "Redis refused a write before ingestion backed off");
    let full = used_memory(&mut conn).await;

    block_in_place(|| pg.resume());
    let accepted = load.stop().await;
    assert_each_stored_once(&app.env, &accepted).await;
    let freed =
        eventually(Duration::from_secs(30), || async { used_memory(&mut admin(&redis.url()).await).await < max / 2 });
    let now = used_memory(&mut conn).await;
    assert!(freed.await, "Redis memory did not fall back: {now} of {max} (full: {full})");
    let healthy = eventually(Duration::from_secs(10), || async { health(&app).await.1["status"] == "ok" }).await;
    assert!(healthy, "{}", health(&app).await.1);
    eprintln!("memory high water: {} accepted, peak {full} of {max} bytes, after {now}", accepted.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_at_maxmemory_still_drains_the_stream_into_postgresql_and_enqueue_says_it_is_full() {
    let redis = block_in_place(PrivateRedis::start);
    let pg = block_in_place(PrivatePostgres::start);
    let overrides = [("EVENTMILL_STREAM_MAX_LEN", "100000000"), ("EVENTMILL_DB_MAX_CONNECTIONS", "2")];
    let app = TestApp::full(TestEnv::on(&redis.url(), &pg.url(), &overrides).await).await;
    let mut conn = admin(&redis.url()).await;

    // A backlog builds while PostgreSQL is down (no limit yet), then the limit is lowered under
    // load below what Redis holds: Redis is at maxmemory and refuses writes.
    block_in_place(|| pg.stop());
    let load = Load::start(app.url("/v1/events/bulk"), 200);
    assert!(eventually(Duration::from_secs(60), || async { load.accepted() >= 30_000 }).await);
    let max = used_memory(&mut conn).await - 1024 * 1024;
    config_set(&mut conn, "maxmemory", &max.to_string()).await;
    let refused = eventually(Duration::from_secs(10), || async {
        let (status, body, _) = post_one(&app).await;
        status == 429 && body["message"].as_str().is_some_and(|m| m.contains("of maxmemory"))
    });
    assert!(refused.await, "a full Redis is answered 429 naming memory");
    let enqueue = Proc::output(&app.env, &["enqueue", "rollup", "--daily", "--date", "today"], &[]).await;
    let stderr = String::from_utf8_lossy(&enqueue.stderr);
    assert_eq!(enqueue.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Redis is out of memory (used") && !stderr.contains("is Redis running"), "{stderr}");
    assert_eq!(stderr.matches("out of memory").count(), 1, "said once: {stderr}");

    // PostgreSQL returns: the consumers store and acknowledge at maxmemory (their usual
    // transaction is refused there), which frees memory, and ingestion resumes by itself.
    let refusals_before = oom_refusals(&mut conn).await;
    block_in_place(|| pg.resume());
    let before = load.accepted();
    let resumed = eventually(Duration::from_secs(60), || async { load.accepted() > before + 2000 }).await;
    assert!(resumed, "ingestion never resumed: {:?}", load.statuses.lock().unwrap());
    let accepted = load.stop().await;
    let counts = tally(&app.env, &accepted).await;
    assert_eq!((counts.duplicates, counts.lost), (0, 0), "{counts:?}");
    let refusals = oom_refusals(&mut conn).await;
    assert!(refusals > refusals_before, "the consumers' usual acknowledge was refused at maxmemory");
    eprintln!("at maxmemory: {counts:?}, OOM refusals: {refusals_before} before PostgreSQL returned, {refusals} after");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_is_refused_at_start_naming_the_setting_unless_explicitly_allowed() {
    let redis = block_in_place(PrivateRedis::start);
    let (_, db) = base_urls();
    let env = TestEnv::on(&redis.url(), &db, &[]).await;
    config_set(&mut admin(&redis.url()).await, "maxmemory-policy", "allkeys-lru").await;

    for args in [&["worker"][..], &["serve"], &["enqueue", "rollup", "--daily", "--date", "today"]] {
        let refused = Proc::output(&env, args, &[("EVENTMILL_HTTP_ADDR", "127.0.0.1:0")]).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("maxmemory-policy is `allkeys-lru`"), "{args:?}: {stderr}");
        assert!(stderr.contains("noeviction") && stderr.contains("EVENTMILL_ALLOW_EVICTING_REDIS=true"), "{stderr}");
    }

    // CONFIG renamed away (as some hosted Redis do): the policy is read from INFO memory instead.
    let hosted = block_in_place(|| {
        PrivateRedis::start_with(&["--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""])
    });
    let hosted_url = [("EVENTMILL_REDIS_URL", hosted.url())];
    let hosted_env: Vec<(&str, &str)> = hosted_url.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = Proc::output(&env, &["worker"], &hosted_env).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("maxmemory-policy is `volatile-lru`"), "{stderr}");

    let allowed = [("EVENTMILL_ALLOW_EVICTING_REDIS", "true")];
    let listed = Proc::output(&env, &["jobs", "list"], &allowed).await;
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{stderr}");
    assert!(stderr.contains("WARNING: Redis' maxmemory-policy is `allkeys-lru`"), "{stderr}");
    let port = crate::private::free_port();
    let mut serve = Proc::serve(&env, port, &allowed).await;
    assert!(serve.exited().is_none(), "serve runs on an evicting Redis when allowed");
    let body: Value =
        reqwest::get(format!("http://127.0.0.1:{port}/healthz/detailed")).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(body["reasons"].to_string().contains("allowed by EVENTMILL_ALLOW_EVICTING_REDIS"), "{body}");
    serve.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_that_was_down_at_start_stops_the_process_once_it_answers() {
    let mut redis = block_in_place(|| PrivateRedis::start_with(&["--maxmemory-policy", "allkeys-lru"]));
    let (_, db) = base_urls();
    let env = TestEnv::on(&redis.url(), &db, &[]).await;
    block_in_place(|| redis.crash());
    let port = crate::private::free_port();
    let mut serve = Proc::serve(&env, port, &[]).await;
    assert!(serve.exited().is_none(), "serve starts while Redis is down");

    block_in_place(|| redis.restart());
    let stopped = eventually(Duration::from_secs(20), || {
        let exited = serve.exited();
        async move { exited.is_some() }
    });
    assert!(stopped.await, "serve kept running on an evicting Redis");
    assert_eq!(serve.exited().and_then(|status| status.code()), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_postgresql_is_down_waits_for_it_and_then_stores_everything() {
    let pg = block_in_place(PrivatePostgres::start);
    let (redis_url, _) = base_urls();
    let env = TestEnv::on(&redis_url, &pg.url(), &[]).await;
    block_in_place(|| pg.stop());
    let mut worker = Proc::start(&env, &["worker"], &[]);
    let app = TestApp::api(env).await;
    let load = Load::start(app.url("/v1/events/bulk"), 100);
    assert!(eventually(Duration::from_secs(20), || async { load.accepted() >= 2000 }).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(worker.exited().is_none(), "the worker exited while PostgreSQL was down");

    block_in_place(|| pg.resume());
    let accepted = load.stop().await;
    assert_each_stored_once(&app.env, &accepted).await;
    assert!(worker.exited().is_none(), "the worker keeps running");
    worker.kill9().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misconf_persistence_failing_is_answered_with_its_cause_and_recovers_by_itself() {
    let redis = block_in_place(|| PrivateRedis::start_with(&["--enable-protected-configs", "yes"]));
    let (_, db) = base_urls();
    let app = TestApp::full(TestEnv::on(&redis.url(), &db, &[]).await).await;
    let mut conn = admin(&redis.url()).await;
    let load = Load::start(app.url("/v1/events/bulk"), 100);
    assert!(eventually(Duration::from_secs(20), || async { load.accepted() >= 1000 }).await);

    // Snapshots fail (a folder no file can be created in, even by root) and Redis stops writes.
    let dir = info_dir(&mut conn).await;
    config_set(&mut conn, "appendonly", "no").await;
    config_set(&mut conn, "save", "3600 1").await;
    config_set(&mut conn, "dir", "/proc").await;
    let _: String = redis::cmd("BGSAVE").query_async(&mut conn).await.unwrap();
    let failed = eventually(Duration::from_secs(10), || async {
        info_field(&mut admin(&redis.url()).await, "persistence", "rdb_last_bgsave_status").await.as_deref()
            == Some("err")
    });
    assert!(failed.await, "the snapshot did not fail");
    let (status, body, retry_after) = post_one(&app).await;
    assert_eq!((status, &body["error"]), (503, &"unavailable".into()), "{body}");
    assert!(body["message"].as_str().unwrap().contains("cannot save to disk (MISCONF"), "{body}");
    assert!(retry_after.is_some());
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "{body}");
    assert!(body["reasons"].to_string().contains("MISCONF"), "{body}");

    config_set(&mut conn, "dir", &dir).await;
    let _: String = redis::cmd("BGSAVE").query_async(&mut conn).await.unwrap();
    let before = load.accepted();
    assert!(eventually(Duration::from_secs(30), || async { load.accepted() > before + 1000 }).await, "no recovery");
    let accepted = load.stop().await;
    assert_each_stored_once(&app.env, &accepted).await;
    let healthy = eventually(Duration::from_secs(10), || async { health(&app).await.1["status"] == "ok" }).await;
    assert!(healthy, "{}", health(&app).await.1);
    app.stop().await;
}

async fn info_dir(conn: &mut redis::aio::MultiplexedConnection) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("dir").query_async(conn).await.unwrap();
    pair[1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_turned_read_only_replica_is_answered_with_its_cause_and_recovers_when_it_is_master_again() {
    let redis = block_in_place(PrivateRedis::start);
    let other = block_in_place(PrivateRedis::start);
    let (_, db) = base_urls();
    let app = TestApp::full(TestEnv::on(&redis.url(), &db, &[]).await).await;
    let (mut conn, mut other_conn) = (admin(&redis.url()).await, admin(&other.url()).await);
    replica_of(&mut other_conn, Some(redis.port)).await;
    let linked = eventually(Duration::from_secs(30), || async {
        info_field(&mut admin(&other.url()).await, "replication", "master_link_status").await.as_deref() == Some("up")
    });
    assert!(linked.await, "the second server never synced as a replica");

    let load = Load::start(app.url("/v1/events/bulk"), 100);
    assert!(eventually(Duration::from_secs(20), || async { load.accepted() >= 1000 }).await);
    let first = load.stop().await;
    // A failover: the other server (in sync) is promoted and ours becomes its replica.
    // WAIT covers this connection's writes, and the replication stream is in order: a write of
    // its own after the load makes it cover every accepted event.
    let synced = eventually(Duration::from_secs(30), || async {
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg("synced").arg(1).ignore().cmd("WAIT").arg(1).arg(1000);
        let (acked,): (i64,) = pipe.query_async(&mut admin(&redis.url()).await).await.unwrap();
        acked == 1
    });
    assert!(synced.await, "the replica is in sync");
    replica_of(&mut other_conn, None).await;
    replica_of(&mut conn, Some(other.port)).await;
    let read_only = eventually(Duration::from_secs(10), || async {
        let (status, body, _) = post_one(&app).await;
        status == 503 && body["message"].as_str().is_some_and(|m| m.contains("read-only replica (READONLY)"))
    });
    assert!(read_only.await, "{:?}", post_one(&app).await);
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["status"]), (503, &"down".into()), "{body}");
    assert!(body["reasons"].to_string().contains("READONLY"), "{body}");

    replica_of(&mut conn, None).await;
    let load = Load::start(app.url("/v1/events/bulk"), 100);
    assert!(eventually(Duration::from_secs(30), || async { load.accepted() >= 1000 }).await, "no recovery");
    let second = load.stop().await;
    assert_each_stored_once(&app.env, &[first, second].concat()).await;
    app.stop().await;
}

/// `REPLICAOF 127.0.0.1 <port>`, or `REPLICAOF NO ONE`.
async fn replica_of(conn: &mut redis::aio::MultiplexedConnection, port: Option<u16>) {
    let mut cmd = redis::cmd("REPLICAOF");
    match port {
        Some(port) => cmd.arg("127.0.0.1").arg(port),
        None => cmd.arg("NO").arg("ONE"),
    };
    let _: () = cmd.query_async(conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_at_maxmemory_stores_and_acknowledges_uncounted_and_the_reconciler_makes_the_minute_exact() {
    // Two stream shards: the first acknowledges and counts in one script, the second counts first
    // (its slot is not the counters'): both paths must acknowledge at maxmemory.
    let redis = block_in_place(PrivateRedis::start);
    let (_, db) = base_urls();
    let app = TestApp::api(TestEnv::on(&redis.url(), &db, &[("EVENTMILL_STREAM_SHARDS", "2")]).await).await;
    let shards = app.env.resources.shards.clone();
    let mut consumers = Vec::new();
    for keys in shards.iter() {
        consumers.push(app.env.shard_consumer(keys.clone()).await);
    }
    let at = chrono::Utc::now() - chrono::Duration::minutes(3);
    let mut ids = Vec::new();
    for _ in 0..40 {
        let (body, batch) = bulk_events(500, &at.to_rfc3339());
        assert_eq!(app.post_json("/v1/events/bulk", body).await.status(), 202);
        ids.extend(batch);
    }
    let mut conn = admin(&redis.url()).await;
    // Well below what Redis holds: replies and buffers come and go, and it must stay full.
    let max = used_memory(&mut conn).await - 1024 * 1024;
    config_set(&mut conn, "maxmemory", &max.to_string()).await;
    let refused: redis::RedisResult<()> = redis::cmd("SET").arg("probe").arg(1).query_async(&mut conn).await;
    assert!(refused.is_err_and(|e| e.code() == Some("OOM")), "Redis is at maxmemory");

    let keys = app.env.resources.keys.clone();
    let mut redis_conn = app.env.redis();
    for _ in 0..200 {
        for consumer in &mut consumers {
            consumer.consume_once().await.unwrap();
        }
        let mut left = 0;
        for shard in shards.iter() {
            left += pending(&mut conn, shard).await;
        }
        if app.env.count_events().await == ids.len() as i64 && left == 0 {
            break;
        }
    }
    assert_each_stored_once(&app.env, &ids).await;
    for shard in shards.iter() {
        assert_eq!(pending(&mut conn, shard).await, 0, "every stored entry acknowledged at maxmemory");
    }
    let minute = at.timestamp().div_euclid(60);
    let dirty: Vec<i64> = redis::cmd("SMEMBERS").arg(keys.live.dirty()).query_async(&mut redis_conn).await.unwrap();
    assert_eq!(dirty, vec![minute], "the uncounted minute is left to the reconciler");
    let cell = "c|page_view|unknown";
    let counted: Option<i64> =
        redis::cmd("HGET").arg(keys.live.minute(minute)).arg(cell).query_async(&mut redis_conn).await.unwrap();
    // Batches acknowledged at maxmemory are not counted; once trimming made room, counting resumed.
    assert!(counted.unwrap_or(0) < ids.len() as i64, "some batches were acknowledged uncounted: {counted:?}");

    config_set(&mut conn, "maxmemory", "0").await;
    let rewritten = eventmill::live::reconcile::reconcile_once(app.env.pool(), &mut redis_conn, &keys.live).await;
    assert_eq!(rewritten.unwrap(), 1);
    let counted: Option<i64> =
        redis::cmd("HGET").arg(keys.live.minute(minute)).arg(cell).query_async(&mut redis_conn).await.unwrap();
    assert_eq!(counted, Some(ids.len() as i64), "the minute equals its rows once reconciled");
    app.stop().await;
}

/// Entries read but not acknowledged.
async fn pending(conn: &mut redis::aio::MultiplexedConnection, keys: &eventmill::stream::StreamKeys) -> u64 {
    let summary: redis::streams::StreamPendingReply =
        redis::cmd("XPENDING").arg(&keys.events).arg(&keys.group).query_async(conn).await.unwrap();
    summary.count() as u64
}
