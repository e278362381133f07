//! Test harness: each test gets a fresh PostgreSQL database and its own Redis key prefix, so tests
//! run in parallel against the same two servers without seeing each other.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use eventmill::{
    app::{self, Resources},
    settings::Settings,
    shutdown::Shutdown,
    store::Partitions,
    stream::{self, Consumer},
};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::{net::TcpListener, task::JoinHandle};

/// The servers' URLs, from the environment `scripts/test.sh` sets up.
pub fn base_urls() -> (String, String) {
    let redis = std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let db = std::env::var("EVENTMILL_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://eventmill@127.0.0.1:5432/eventmill".into());
    (redis, db)
}

/// A fresh database and Redis prefix, migrated, with settings tuned for fast tests.
pub struct TestEnv {
    pub settings: Settings,
    pub resources: Resources,
    pub db_url: String,
    pub prefix: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// `overrides` are `EVENTMILL_*` settings for this test.
    pub async fn with(overrides: &[(&str, &str)]) -> Self {
        let (redis_url, admin_db_url) = base_urls();
        Self::on(&redis_url, &admin_db_url, overrides).await
    }

    /// On other servers than the shared ones (the fault tests' private servers).
    pub async fn on(redis_url: &str, admin_db_url: &str, overrides: &[(&str, &str)]) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("em_test_{}", &id[..16]);
        let mut admin = PgConnection::connect(admin_db_url).await.expect("PostgreSQL reachable (run scripts/test.sh)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&mut admin).await.unwrap();
        let db_url = replace_db_name(admin_db_url, &db_name);
        let prefix = format!("emtest:{}", &id[..12]);
        let mut values: HashMap<String, String> = [
            ("EVENTMILL_REDIS_URL", redis_url),
            ("EVENTMILL_DATABASE_URL", db_url.as_str()),
            ("EVENTMILL_REDIS_PREFIX", prefix.as_str()),
            ("EVENTMILL_ADMIN_TOKEN", "test-admin-token"),
            ("EVENTMILL_FLUSH_INTERVAL_MS", "50"),
            ("EVENTMILL_RECLAIM_IDLE_MS", "300"),
            ("EVENTMILL_RECLAIM_INTERVAL_MS", "100"),
            ("EVENTMILL_MAX_DELIVERIES", "3"),
            ("EVENTMILL_CONSUMERS", "1"),
            ("EVENTMILL_DB_MAX_CONNECTIONS", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in overrides {
            values.insert((*k).to_owned(), (*v).to_owned());
        }
        let settings =
            Settings::from_lookup(eventmill::processors::registry().catalog(), |k| values.get(k).cloned()).unwrap();
        let resources = Resources::new(settings.clone()).unwrap();
        resources.migrate().await.unwrap();
        Self { settings, resources, db_url, prefix }
    }

    pub fn pool(&self) -> &PgPool {
        &self.resources.pool
    }

    pub fn redis(&self) -> eventmill::redis_conn::RedisConn {
        self.resources.redis.clone()
    }

    /// A consumer with its own connection and a unique name, as `worker` builds them.
    pub async fn consumer(&self) -> Consumer {
        self.shard_consumer(self.resources.keys.clone()).await
    }

    /// A consumer of the stream shard `keys` (one of `resources.shards`).
    pub async fn shard_consumer(&self, keys: eventmill::stream::StreamKeys) -> Consumer {
        let redis = self.resources.redis_target.connect(Duration::from_secs(10)).unwrap();
        let partitions = Arc::new(Partitions::new(self.pool().clone(), &self.settings.storage));
        Consumer::new(
            redis,
            self.pool().clone(),
            partitions,
            keys,
            stream::unique_consumer_name(0),
            self.settings.consumer.clone(),
        )
        .await
        .unwrap()
    }

    /// Makes PostgreSQL refuse every event of type `blocked` ("blocked events are refused"), as a
    /// rule of the database would: each delivery of one fails, until `DROP TRIGGER refuse_blocked`.
    pub async fn refuse_blocked_events(&self) {
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.event_type = 'blocked' THEN RAISE EXCEPTION 'blocked events are refused'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse_blocked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_blocked();",
        )
        .execute(self.pool())
        .await
        .unwrap();
    }

    pub async fn count_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(self.pool()).await.unwrap()
    }
}

fn replace_db_name(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL with a database name");
    format!("{base}/{db}")
}

/// A running HTTP API (and optionally the stream consumers) on an ephemeral port.
pub struct TestApp {
    pub env: TestEnv,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub shutdown: Shutdown,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// API only: events stay in the stream until a consumer is run.
    pub async fn api(env: TestEnv) -> Self {
        Self::start(env, false).await
    }

    /// API and worker, as `eventmill run`.
    pub async fn full(env: TestEnv) -> Self {
        Self::start(env, true).await
    }

    async fn start(env: TestEnv, with_worker: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let resources = env.resources.clone();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            if with_worker {
                app::run(&resources, listener, token).await
            } else {
                app::serve(&resources, listener, token).await
            }
        });
        Self { env, addr, client: reqwest::Client::new(), shutdown, handle: Some(handle) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs JSON text to `path`.
    pub async fn post_json(&self, path: &str, body: impl Into<String>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .unwrap()
    }

    /// Stops the app and waits for it (graceful shutdown).
    pub async fn stop(mut self) -> TestEnv {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle).await.expect("stops within 10 s").unwrap().unwrap();
        }
        self.env
    }
}

/// Polls `check` every 25 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A bulk body of `n` valid events with explicit ids.
pub fn bulk_events(n: usize, ts: &str) -> (String, Vec<uuid::Uuid>) {
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    let events: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"event_id":"{id}","event_type":"page_view","timestamp":"{ts}","user_id":"u{i}","properties":{{"i":{i}}}}}"#
            )
        })
        .collect();
    (format!(r#"{{"events":[{}]}}"#, events.join(",")), ids)
}

/// Reads up to `count` new entries of the first stream shard as `consumer`, which holds them
/// pending (as a consumer that then "dies" would): (entry id, packed events).
pub async fn read_entries_as(env: &TestEnv, consumer: &str, count: usize) -> Vec<(String, String)> {
    let mut redis = env.redis();
    let keys = &env.resources.keys;
    eventmill::stream::ensure_group(&mut redis, keys).await.unwrap();
    let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&keys.group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(&keys.events)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|mut id| {
            let payload: String =
                redis::from_redis_value(id.map.remove(eventmill::stream::entry::EVENT_FIELD).unwrap()).unwrap();
            (id.id, payload)
        })
        .collect()
}
