//! The framework tests' harness: Redis only (no PostgreSQL). Each test gets its own key prefix on
//! the server `EVENTMILL_REDIS_URL` names (`scripts/test.sh` starts one; the cluster pass gives a
//! cluster's nodes), so tests run in parallel without seeing each other. A scripted `JobHandler`
//! fails, hangs or succeeds on command and records when each attempt started.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use eventmill_jobs::{
    EnqueueOptions, JobContext, JobError, JobRecord, JobState, Jobs, JobsSettings, Processor, Queue, QueueSpec, Queues,
    Registry,
    queue::{self, JobHandler, RunningJob, WorkerOptions},
    redis_conn::RedisConn,
    shutdown::Shutdown,
};
use futures_util::{FutureExt, future::BoxFuture};
use serde_json::Value;
use tokio::task::JoinHandle;

/// The two queues of the tests (named as eventmill's, whose behaviour these tests pinned first).
pub const ROLLUP_QUEUE: &str = "analytics:rollup";
pub const REPORTS_QUEUE: &str = "analytics:reports";

/// A kind whose payload is any object; the tests mostly run jobs with a `Scripted` handler.
pub struct Echo;

impl Processor<()> for Echo {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "DAILY_ROLLUP";
    const QUEUE: &'static str = ROLLUP_QUEUE;
    const DATE_FIELDS: &'static [&'static str] = &["date"];

    async fn process(&self, _: &JobContext<()>, payload: Self::Payload) -> Result<Value, JobError> {
        Ok(Value::Object(payload))
    }
}

/// A report-queue kind.
pub struct Report;

impl Processor<()> for Report {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "GENERATE_REPORT";
    const QUEUE: &'static str = REPORTS_QUEUE;

    async fn process(&self, _: &JobContext<()>, payload: Self::Payload) -> Result<Value, JobError> {
        Ok(Value::Object(payload))
    }
}

pub fn registry() -> Registry<()> {
    Registry::new()
        .queue(QueueSpec::new(ROLLUP_QUEUE))
        .queue(QueueSpec::new(REPORTS_QUEUE))
        .register(Echo)
        .register(Report)
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix on the test Redis, with settings tuned for fast tests.
pub struct TestEnv {
    pub jobs: Jobs<()>,
    pub queues: Queues,
    pub prefix: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// `overrides` are `EVENTMILL_*` settings for this test.
    pub async fn with(overrides: &[(&str, &str)]) -> Self {
        let prefix = format!("emjobs:{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let url = redis_url();
        let mut values: Vec<(String, String)> = vec![
            ("EVENTMILL_REDIS_URL".into(), url),
            ("EVENTMILL_REDIS_PREFIX".into(), prefix.clone()),
            ("EVENTMILL_JOB_IDLE_CHECK_MS".into(), "500".into()),
        ];
        values.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let registry = registry();
        let get = |k: &str| values.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let settings =
            JobsSettings::from_lookup("EVENTMILL", &registry.kind_names(), &registry.queue_names(), get).unwrap();
        let jobs = Jobs::connect(settings, registry).unwrap();
        let queues = jobs.queues().clone();
        Self { jobs, queues, prefix }
    }

    pub fn redis(&self) -> RedisConn {
        self.jobs.redis().clone()
    }
}

/// Polls `check` every 25 ms until it is true (true) or `timeout` passes (false).
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
/// What the scripted handler does with the next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Succeed,
    FailRetryable,
    FailPermanent,
    /// Never finishes (a worker that hangs or is killed mid-job).
    Hang,
    Sleep(Duration),
}

/// A handler that behaves as told and records each attempt's start.
pub struct Scripted {
    behaviour: Mutex<Behaviour>,
    /// Behaviour from the second attempt on (None = same as the first).
    then: Mutex<Option<Behaviour>>,
    pub started: Mutex<Vec<(String, u32, Instant)>>,
    pub done: AtomicUsize,
    pub hung: AtomicBool,
}

impl Scripted {
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour: Mutex::new(behaviour),
            then: Mutex::new(None),
            started: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            hung: AtomicBool::new(false),
        })
    }

    /// First attempt does `first`, later ones `then`.
    pub fn first_then(first: Behaviour, then: Behaviour) -> Arc<Self> {
        let s = Self::new(first);
        *s.then.lock().unwrap() = Some(then);
        s
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
        *self.then.lock().unwrap() = None;
    }

    pub fn attempts(&self) -> Vec<(String, u32, Instant)> {
        self.started.lock().unwrap().clone()
    }
}

impl JobHandler for Scripted {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        self.started.lock().unwrap().push((job.id.clone(), job.attempt, Instant::now()));
        let behaviour = match (*self.then.lock().unwrap(), job.attempt) {
            (Some(then), attempt) if attempt > 1 => then,
            _ => *self.behaviour.lock().unwrap(),
        };
        if behaviour == Behaviour::Hang {
            self.hung.store(true, Ordering::SeqCst);
        } else {
            self.done.fetch_add(1, Ordering::SeqCst);
        }
        async move {
            match behaviour {
                Behaviour::Succeed => Ok(serde_json::json!({ "attempt": job.attempt })),
                Behaviour::FailRetryable => {
                    Err(JobError::retryable(format!("flaky failure on attempt {}", job.attempt)))
                }
                Behaviour::FailPermanent => Err(JobError::permanent("unknown report type NOPE")),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Ok(serde_json::Value::Null)
                }
            }
        }
        .boxed()
    }
}

/// eventmill's two declared queues by name.
pub trait AnalyticsQueues {
    fn rollup(&self) -> &Queue;
    fn reports(&self) -> &Queue;
}

impl AnalyticsQueues for Queues {
    fn rollup(&self) -> &Queue {
        self.named(ROLLUP_QUEUE).unwrap()
    }

    fn reports(&self) -> &Queue {
        self.named(REPORTS_QUEUE).unwrap()
    }
}

/// A worker on `queue` running `handler`, as `eventmill worker` starts them.
pub struct RunningWorker {
    pub shutdown: Shutdown,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

pub fn start_worker(queue: &Queue, handler: Arc<dyn JobHandler>, concurrency: usize) -> RunningWorker {
    let shutdown = Shutdown::new();
    let options = WorkerOptions { name: queue::worker::unique_worker_name(queue.name), concurrency };
    let handle = tokio::spawn(queue::worker::run(queue.clone(), handler, options, shutdown.clone()));
    RunningWorker { shutdown, handle }
}

/// Enqueues a (never parsed) payload of kind `kind` on `queue`.
pub async fn enqueue(queue: &Queue, kind: &str) -> String {
    queue.enqueue(kind, r#"{"test":true}"#, EnqueueOptions::default()).await.unwrap().id
}

/// Waits until job `id` is in `state` (panics after `timeout`), and returns it.
pub async fn wait_for_state(queues: &Queues, id: &str, state: JobState, timeout: Duration) -> JobRecord {
    let found = eventually(timeout, || async { queues.job(id).await.unwrap().is_some_and(|j| j.state == state) }).await;
    let job = queues.job(id).await.unwrap();
    assert!(found, "job {id} did not reach {state} within {timeout:?}: {job:?}");
    job.unwrap()
}
