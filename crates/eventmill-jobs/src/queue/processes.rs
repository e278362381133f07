//! Worker processes: every process that runs workers registers itself in Redis (host, pid,
//! version, its queues with their concurrency, the jobs it runs, when it started, its last beat)
//! and renews that record every third of its lease. A process that dies stops renewing: its
//! record expires with the lease and it leaves the board's workers page; a graceful shutdown
//! removes it at once.
//!
//! ```text
//!  {p:queue}:processes            sorted set: process id -> last beat (unix ms)
//!  {p:queue}:process:<id>         JSON of the process (ProcessInfo), PX = the lease
//!        ▲ SET PX + ZADD every lease/3            │ list(): ZRANGE + MGET; ids whose record
//!        │ (Jobs::spawn_workers' beat task)       ▼ expired are dropped from the set
//! ```
//!
//! Both keys carry the queues' hash tag, so they live in the queues' slot on Redis Cluster.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{QueueError, now_ms};
use crate::{redis_conn::RedisConn, shutdown::Shutdown};

/// One queue a process works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessQueue {
    /// The queue's name.
    pub queue: String,
    /// Jobs the process runs from it at once.
    pub concurrency: usize,
}

/// A job a process is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningEntry {
    /// The job's id (its page is `/jobs/{id}` on the board).
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// The attempt running, from 1.
    pub attempt: u32,
}

/// A worker process as it last described itself (`GET /api/workers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Unique per process and start: `<host>-<pid>-<nonce>`.
    pub id: String,
    /// The machine (`/etc/hostname`).
    pub host: String,
    /// The process id on that machine.
    pub pid: u32,
    /// The application's version (see `Jobs::with_version`).
    pub version: String,
    /// When it started (unix ms).
    pub started_at: i64,
    /// Its last beat (unix ms).
    pub beat_at: i64,
    /// How long its record lives after a beat (ms): a process silent for that long has left.
    pub lease_ms: i64,
    /// The queues it works on, in declaration order.
    pub queues: Vec<ProcessQueue>,
    /// The jobs it was running at its last beat, by queue then id.
    pub running: Vec<RunningEntry>,
}

impl ProcessInfo {
    /// When it leaves the list unless it beats again (unix ms).
    pub fn leaves_at(&self) -> i64 {
        self.beat_at + self.lease_ms
    }
}

/// The worker processes registered under one key prefix: read them, and (for the framework's
/// own beat task) write them.
#[derive(Clone)]
pub struct Processes {
    redis: RedisConn,
    /// `{p:queue}:processes`.
    set: String,
    /// `{p:queue}:process:`, followed by the process id.
    record_prefix: String,
    lease: Duration,
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes").field("set", &self.set).field("lease", &self.lease).finish()
    }
}

impl Processes {
    /// The processes of the queues under `key_base` (`{<prefix>:queue}:`), leased for `lease`.
    pub(crate) fn new(redis: RedisConn, key_base: &str, lease: Duration) -> Self {
        Self {
            redis,
            set: format!("{key_base}processes"),
            record_prefix: format!("{key_base}process:"),
            lease: lease.max(Duration::from_millis(300)),
        }
    }

    /// How long a process stays listed after its last beat (`<PREFIX>_JOB_WORKER_LEASE_MS`).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn record(&self, id: &str) -> String {
        format!("{}{id}", self.record_prefix)
    }

    /// The live processes, by host then pid. Ids whose record expired (a process that died) are
    /// dropped from the set on the way.
    pub async fn list(&self) -> Result<Vec<ProcessInfo>, QueueError> {
        let mut redis = self.redis.clone();
        let ids: Vec<String> = redis.zrange(&self.set, 0, -1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.record(id)).collect();
        let records: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut redis).await?;
        let now = now_ms();
        let mut alive = Vec::new();
        let mut gone = Vec::new();
        for (id, record) in ids.iter().zip(records) {
            match record.and_then(|json| serde_json::from_str::<ProcessInfo>(&json).ok()) {
                Some(info) if info.leaves_at() > now => alive.push(info),
                _ => gone.push(id.clone()),
            }
        }
        if !gone.is_empty() {
            let _: () = redis.zrem(&self.set, &gone).await?;
        }
        alive.sort_by(|a, b| (&a.host, a.pid, &a.id).cmp(&(&b.host, b.pid, &b.id)));
        Ok(alive)
    }

    /// Writes `info` with a fresh lease.
    pub(crate) async fn beat(&self, info: &ProcessInfo) -> Result<(), QueueError> {
        let json = serde_json::to_string(info).expect("a process record serializes");
        let lease_ms = self.lease.as_millis() as u64;
        redis::pipe()
            .cmd("SET")
            .arg(self.record(&info.id))
            .arg(json)
            .arg("PX")
            .arg(lease_ms)
            .ignore()
            .zadd(&self.set, &info.id, info.beat_at)
            .ignore()
            // Ids silent for 10 leases are certainly gone (list() drops them sooner).
            .zrembyscore(&self.set, "-inf", info.beat_at - 10 * lease_ms as i64)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Removes process `id` (a graceful shutdown).
    pub(crate) async fn remove(&self, id: &str) -> Result<(), QueueError> {
        redis::pipe()
            .del(self.record(id))
            .ignore()
            .zrem(&self.set, id)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }
}

/// Reads the jobs one worker is running (set by the worker once it runs).
type RunningReader = Box<dyn Fn() -> Vec<RunningEntry> + Send + Sync>;

struct Attached {
    queue: String,
    concurrency: usize,
    running: Option<RunningReader>,
}

struct Inner {
    processes: Processes,
    id: String,
    host: String,
    pid: u32,
    version: String,
    started_at: i64,
    /// The workers of this process, by attachment number.
    workers: Mutex<BTreeMap<u64, Attached>>,
    next: Mutex<u64>,
}

/// This process's registration: workers attach to it, its beat task writes it to Redis.
#[derive(Clone)]
pub struct WorkerProcess {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerProcess").field("id", &self.inner.id).finish()
    }
}

/// One worker's place in its process's record; dropping it (the worker ended) removes it.
pub struct Attachment {
    process: WorkerProcess,
    number: u64,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment").field("number", &self.number).finish()
    }
}

impl Attachment {
    /// Tells the process how to read the jobs this worker is running.
    pub(crate) fn read_running(&self, reader: impl Fn() -> Vec<RunningEntry> + Send + Sync + 'static) {
        if let Some(worker) = self.process.lock().get_mut(&self.number) {
            worker.running = Some(Box::new(reader));
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.process.lock().remove(&self.number);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "host".to_owned())
}

impl WorkerProcess {
    /// This process, running version `version`, registered in `processes`.
    pub fn new(processes: Processes, version: &str) -> Self {
        let host = hostname();
        let pid = std::process::id();
        let nonce: u32 = rand::random();
        Self {
            inner: Arc::new(Inner {
                processes,
                id: format!("{host}-{pid}-{nonce:08x}"),
                host,
                pid,
                version: version.to_owned(),
                started_at: now_ms(),
                workers: Mutex::default(),
                next: Mutex::new(0),
            }),
        }
    }

    /// Its id in Redis.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Attached>> {
        self.inner.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a worker of `queue` running `concurrency` jobs at once; it stays in the record
    /// until the attachment is dropped.
    pub fn attach(&self, queue: &str, concurrency: usize) -> Attachment {
        let number = {
            let mut next = self.inner.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *next += 1;
            *next
        };
        self.lock().insert(number, Attached { queue: queue.to_owned(), concurrency, running: None });
        Attachment { process: self.clone(), number }
    }

    /// Workers attached now.
    fn attached(&self) -> usize {
        self.lock().len()
    }

    /// The record as of now.
    pub fn info(&self) -> ProcessInfo {
        let workers = self.lock();
        let queues =
            workers.values().map(|w| ProcessQueue { queue: w.queue.clone(), concurrency: w.concurrency }).collect();
        let mut running: Vec<RunningEntry> =
            workers.values().filter_map(|w| w.running.as_ref()).flat_map(|read| read()).collect();
        running.sort_by(|a, b| (&a.queue, &a.id).cmp(&(&b.queue, &b.id)));
        ProcessInfo {
            id: self.inner.id.clone(),
            host: self.inner.host.clone(),
            pid: self.inner.pid,
            version: self.inner.version.clone(),
            started_at: self.inner.started_at,
            beat_at: now_ms(),
            lease_ms: self.inner.processes.lease.as_millis() as i64,
            queues,
            running,
        }
    }

    /// Writes the record once; a failure is logged once until a beat succeeds again.
    async fn beat(&self, warned: &mut bool) {
        match self.inner.processes.beat(&self.info()).await {
            Ok(()) => *warned = false,
            Err(error) if !*warned => {
                *warned = true;
                tracing::warn!(%error, "could not record this worker process's beat (the workers page may miss it)");
            }
            Err(_) => {}
        }
    }

    /// Beats every third of the lease until `shutdown`, then until its workers have ended (at
    /// most `linger`), then removes the record. Dropping the future (a killed process) leaves the
    /// record to expire with its lease.
    pub async fn run(self, shutdown: Shutdown, linger: Duration) -> anyhow::Result<()> {
        let every = (self.inner.processes.lease / 3).max(Duration::from_millis(100));
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.beat(&mut warned).await,
                () = shutdown.cancelled() => break,
            }
        }
        // Shutting down: still listed (with the jobs being finished) until the workers end.
        let until = tokio::time::Instant::now() + linger;
        while self.attached() > 0 && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = ticker.tick() => self.beat(&mut warned).await,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        if let Err(error) = self.inner.processes.remove(&self.inner.id).await {
            tracing::warn!(%error, "could not remove this worker process's record; it leaves when its lease runs out");
        }
        Ok(())
    }
}
