//! Test doubles for queue tests: a scripted `JobHandler` (fails, blocks or succeeds on command,
//! records when each attempt started) and helpers to run and kill workers.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use eventmill::{
    processors::{REPORTS_QUEUE, ROLLUP_QUEUE},
    queue::{
        self, EnqueueOptions, JobError, JobHandler, JobRecord, JobState, Queue, Queues, RunningJob, WorkerOptions,
    },
    shutdown::Shutdown,
};
use futures_util::{FutureExt, future::BoxFuture};
use tokio::task::JoinHandle;

use crate::helpers::eventually;

/// What the scripted handler does with the next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Succeed,
    FailPermanent,
    /// Never finishes (a worker that hangs or is killed mid-job).
    Hang,
    /// Succeeds after this long (a slow kind).
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
