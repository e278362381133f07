//! What the fault tests share: `eventmill` child processes to kill, a client that keeps sending
//! bulk requests (re-sending the same event ids until a 202) and the final count check.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{SecondsFormat, Utc};
use secrecy::ExposeSecret;
use tokio::{
    process::{Child, Command},
    sync::watch,
    task::JoinHandle,
};
use uuid::Uuid;

use crate::helpers::{TestEnv, eventually};

/// One `eventmill <subcommand>` process on `env`'s servers, database and prefix.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn start(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Self {
        Self { child: Self::command(env, args, extra).spawn().expect("the eventmill binary runs") }
    }

    /// Runs `eventmill <args>` to its end (at most 60 s): its exit status, stdout and stderr.
    pub async fn output(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut command = Self::command(env, args, extra);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let run = command.output();
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("ends within 60 s").unwrap()
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    fn command(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventmill"));
        command
            .args(args)
            .env("EVENTMILL_REDIS_URL", env.settings.redis.url.expose_secret())
            .env("EVENTMILL_DATABASE_URL", &env.db_url)
            .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
            .env("EVENTMILL_REPORTS_DIR", &env.settings.reports_dir)
            .env("EVENTMILL_ADMIN_TOKEN", "test-admin-token")
            .env("EVENTMILL_FLUSH_INTERVAL_MS", "50")
            .env("EVENTMILL_RECLAIM_IDLE_MS", "300")
            .env("EVENTMILL_RECLAIM_INTERVAL_MS", "100")
            .env("EVENTMILL_CONSUMERS", "1")
            .env("EVENTMILL_DB_MAX_CONNECTIONS", "4")
            .env("EVENTMILL_LOG", "warn")
            .kill_on_drop(true);
        for (k, v) in extra {
            command.env(k, v);
        }
        command
    }

    /// `eventmill serve` on `port`, once it answers.
    pub async fn serve(env: &TestEnv, port: u16, extra: &[(&str, &str)]) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let mut all = vec![("EVENTMILL_HTTP_ADDR", addr.as_str())];
        all.extend_from_slice(extra);
        let proc = Self::start(env, &["serve"], &all);
        let url = format!("http://{addr}/healthz");
        let up = eventually(Duration::from_secs(20), || async { reqwest::get(&url).await.is_ok() }).await;
        assert!(up, "eventmill serve did not answer on {addr}");
        proc
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// SIGKILL, at whatever point the process is.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM; returns the exit status and how long the process took to exit.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let pid = self.child.id().expect("still running").to_string();
        let started = tokio::time::Instant::now();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("exits").unwrap();
        (status, started.elapsed())
    }
}

/// A client sending bulk requests of `batch` events with their own ids, each re-sent unchanged
/// (same ids) after an error, a 429 or a 503 until it gets its 202, as docs/api.md tells clients to.
pub struct Load {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    accepted: Arc<Mutex<Vec<Uuid>>>,
    /// Status codes answered, with their counts.
    pub statuses: Arc<Mutex<std::collections::BTreeMap<u16, u64>>>,
}

impl Load {
    pub fn start(url: String, batch: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let accepted: Arc<Mutex<Vec<Uuid>>> = Arc::default();
        let statuses: Arc<Mutex<std::collections::BTreeMap<u16, u64>>> = Arc::default();
        let (ids, codes) = (accepted.clone(), statuses.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            while !*stopped.borrow() {
                let (body, batch_ids) = bulk(batch);
                loop {
                    let sent = client.post(&url).header("content-type", "application/json").body(body.clone()).send();
                    let status = sent.await.map(|r| r.status().as_u16()).unwrap_or(0);
                    *codes.lock().unwrap().entry(status).or_default() += 1;
                    if status == 202 {
                        ids.lock().unwrap().extend(batch_ids);
                        // Sustained, not flat out: the machine running the suite has other tests too.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        break;
                    }
                    assert!(matches!(status, 0 | 429 | 503), "unexpected answer {status}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self { stop, task, accepted, statuses }
    }

    /// Events accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// The ids accepted so far, in the order their 202s arrived.
    pub fn accepted_ids(&self) -> Vec<Uuid> {
        self.accepted.lock().unwrap().clone()
    }

    /// Stops after the batch in flight is accepted; returns every accepted id.
    pub async fn stop(self) -> Vec<Uuid> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("the load stops").unwrap();
        Arc::try_unwrap(self.accepted).unwrap().into_inner().unwrap()
    }
}

/// A bulk body of `n` events with fresh ids, timestamped now.
pub fn bulk(n: usize) -> (String, Vec<Uuid>) {
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let events: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"event_id":"{id}","event_type":"page_view","timestamp":"{ts}","user_id":"u"}}"#))
        .collect();
    (format!(r#"{{"events":[{}]}}"#, events.join(",")), ids)
}

/// Sent, stored, duplicates and lost, of one fault test.
#[derive(Debug, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub stored: i64,
    pub duplicates: i64,
    pub lost: i64,
}

/// Waits (up to a minute) until every id of `accepted` is stored, then counts them against `events`.
pub async fn tally(env: &TestEnv, accepted: &[Uuid]) -> Tally {
    let count = || async {
        let (rows, distinct, present): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT event_id),
                    count(DISTINCT event_id) FILTER (WHERE event_id = ANY($1)) FROM events",
        )
        .bind(accepted)
        .fetch_one(env.pool())
        .await
        .unwrap();
        Tally { sent: accepted.len(), stored: rows, duplicates: rows - distinct, lost: accepted.len() as i64 - present }
    };
    eventually(Duration::from_secs(60), || async { count().await.lost == 0 }).await;
    let tally = count().await;
    eprintln!("fault tally: {tally:?}");
    tally
}

/// Every accepted event stored exactly once.
pub async fn assert_each_stored_once(env: &TestEnv, accepted: &[Uuid]) {
    let tally = tally(env, accepted).await;
    assert!(tally.sent > 0, "the load sent nothing");
    assert_eq!((tally.duplicates, tally.lost), (0, 0), "{tally:?}");
}

/// A random pause in `[min_ms, max_ms)`: the fault lands at a different moment each round.
pub async fn random_pause(min_ms: u64, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rand::random_range(min_ms..max_ms))).await;
}
