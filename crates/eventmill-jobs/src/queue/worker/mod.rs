//! Queue workers: one loop per queue drives `concurrency` job slots itself (apalis' `WorkerBuilder`
//! fed one job per round trip and could not keep 50 slots busy: see docs/jobs.md).
//!
//! ```text
//!   finished attempts ──┐                       ┌──▶ claimed jobs ──▶ slots (tasks)
//!                       ▼                       │
//!        one FINISH_AND_FETCH script per round trip (records every outcome, promotes due jobs,
//!        claims as many jobs as slots are free)
//!   idle: wait for the marker (BZPOPMIN on its own connection), the next due delayed job or
//!         lease (a local timer), or a finished slot, whichever comes first
//! ```
//!
//! Running jobs' leases, progress and log lines are written by `live` for all of them in one
//! call per interval. On shutdown processors are asked to stop (their cancellation token), get
//! `shutdown_grace` to finish, then are handed back to `waiting`.

mod live;
mod slot;
mod waker;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::BoxFuture;
use tokio::{
    sync::{Notify, mpsc},
    task::{AbortHandle, JoinSet},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

pub use slot::backoff;

use super::{EventKind, Finished, JobError, Outcome, Progress, Queue, Recorded, now_ms};
use crate::shutdown::Shutdown;

/// Runs claimed jobs; eventmill's is `registry::Dispatch`, tests plug in their own.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt; the value is stored as the job's result.
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>>;
}

/// A claimed job as its handler sees it.
#[derive(Clone)]
pub struct RunningJob {
    /// The job's id.
    pub id: String,
    /// Its kind (a registered `Processor::NAME`).
    pub kind: String,
    /// The payload JSON as enqueued (handlers parse it: a bad one is a permanent error).
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Runs in total, the first included.
    pub max_attempts: u32,
    /// Where the handler reports progress and log lines.
    pub progress: Progress,
    /// Cancelled when the job should stop (shutdown, claim lost).
    pub cancel: CancellationToken,
    /// Where its context reads the job's hash (`ctx.children()`); `None` outside a worker.
    pub(crate) store: Option<Arc<super::context::JobStore>>,
}

/// How one worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique per process and start (apalis-redis defect 4: names could not be reused).
    pub name: String,
    /// Jobs run at once.
    pub concurrency: usize,
}

/// A job in a slot.
struct Slot {
    kind: String,
    attempt: u32,
    progress: Progress,
    cancel: CancellationToken,
    abort: Option<AbortHandle>,
}

/// The jobs running in this worker, by id (shared with `live`).
type Active = Arc<Mutex<HashMap<String, Slot>>>;

fn lock(active: &Active) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
    active.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a worker on `queue` until `shutdown`; returns once running jobs are finished or handed back.
/// Dropping the future (a killed worker) stops everything it started at once.
pub async fn run(
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    options: WorkerOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let active: Active = Arc::default();
    let wake = Arc::new(Notify::new());
    let mut helpers = JoinSet::new();
    helpers.spawn(waker::run(queue.clone(), wake.clone()));
    helpers.spawn(live::run(queue.clone(), options.name.clone(), active.clone()));
    let (done, finished) = mpsc::unbounded_channel();
    let (queue_redis, job_prefix) = (queue.redis.clone(), queue.keys.job_prefix.clone());
    let worker = Worker {
        concurrency: options.concurrency.max(1),
        name: options.name,
        queue,
        handler,
        active,
        done,
        shutdown,
        jobs: JoinSet::new(),
        store: Arc::new(super::context::JobStore { redis: queue_redis, job_prefix }),
    };
    tracing::info!(worker = %worker.name, queue = worker.queue.name, concurrency = worker.concurrency, "job worker started");
    worker.drive(finished, wake).await;
    helpers.shutdown().await;
    Ok(())
}

struct Worker {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    name: String,
    concurrency: usize,
    active: Active,
    done: mpsc::UnboundedSender<Finished>,
    shutdown: Shutdown,
    jobs: JoinSet<()>,
    /// Shared by every job's context.
    store: Arc<super::context::JobStore>,
}

/// The loop's state between round trips.
#[derive(Default)]
struct Pace {
    /// Finished attempts not yet recorded.
    pending: Vec<Finished>,
    running: usize,
    /// Look for jobs at the next chance (woken, due, or the last claim filled every slot).
    look: bool,
    next_due: Option<Instant>,
    /// After a Redis error: no round trip before this.
    retry_at: Option<Instant>,
    /// Set at shutdown: running jobs are handed back at this time.
    grace_end: Option<Instant>,
    /// Past this, a stopping worker whose Redis is gone gives up (leases bring its jobs back).
    give_up_at: Option<Instant>,
}

impl Worker {
    async fn drive(mut self, mut finished: mpsc::UnboundedReceiver<Finished>, wake: Arc<Notify>) {
        let mut pace = Pace { look: true, ..Pace::default() };
        loop {
            while let Ok(done) = finished.try_recv() {
                pace.pending.push(done);
                pace.running -= 1;
            }
            while self.jobs.try_join_next().is_some() {}
            let stopping = pace.grace_end.is_some() || pace.give_up_at.is_some();
            if !stopping && self.shutdown.is_cancelled() {
                self.begin_shutdown(&mut pace);
                continue;
            }
            let free = if stopping { 0 } else { self.concurrency - pace.running };
            let ready = pace.retry_at.is_none_or(|at| Instant::now() >= at);
            if ready && (!pace.pending.is_empty() || (free > 0 && pace.look)) {
                let free = if stopping { 0 } else { free + linger(&mut pace, &mut finished).await };
                self.round_trip(&mut pace, free).await;
                continue;
            }
            if stopping && pace.running == 0 && (pace.pending.is_empty() || past(pace.give_up_at)) {
                return;
            }
            tokio::select! {
                Some(done) = finished.recv() => {
                    pace.pending.push(done);
                    pace.running -= 1;
                }
                () = self.shutdown.cancelled(), if !stopping => {}
                () = sleep_until(pace.grace_end), if pace.grace_end.is_some() => {
                    pace.grace_end = None;
                    self.release_all(&mut pace);
                }
                () = wake.notified(), if free > 0 => pace.look = true,
                () = sleep_until(pace.next_due), if free > 0 && pace.next_due.is_some() => {
                    pace.look = true;
                    pace.next_due = None;
                }
                () = sleep_until(pace.retry_at), if pace.retry_at.is_some() => {}
                () = sleep_until(pace.give_up_at), if pace.give_up_at.is_some() && pace.running == 0 => {}
            }
        }
    }

    /// Records what finished and claims up to `free` jobs.
    async fn round_trip(&mut self, pace: &mut Pace, free: usize) {
        match self.queue.finish_and_fetch(&self.name, &pace.pending, free).await {
            Ok(round) => {
                for (done, recorded) in pace.pending.iter().zip(&round.recorded) {
                    self.recorded(done, *recorded);
                }
                pace.pending.clear();
                pace.retry_at = None;
                pace.look = free > 0 && round.claimed.len() == free;
                pace.next_due = round.next_due.map(instant_at);
                pace.running += round.claimed.len();
                for job in round.claimed {
                    let events = self.queue.events();
                    events.emit(EventKind::Started, self.queue.name, &job.kind, &job.id, job.attempt, None, "");
                    self.start(job);
                }
            }
            Err(error) => {
                tracing::warn!(%error, queue = self.queue.name, "could not reach the queue; retrying in a second");
                pace.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// The lifecycle event of an attempt the queue just recorded.
    fn recorded(&self, done: &Finished, recorded: Recorded) {
        let (event, message) = match (recorded, &done.outcome) {
            (Recorded::Completed, _) => (EventKind::Completed, String::new()),
            (Recorded::Retrying, Outcome::Failed { error, .. }) => (EventKind::Retried, error.to_string()),
            (Recorded::Failed, Outcome::Failed { error, .. }) => (EventKind::Failed, error.to_string()),
            (Recorded::Released, _) => (EventKind::Released, String::new()),
            (Recorded::Postponed, _) => (EventKind::Delayed, String::new()),
            (Recorded::RateLimited, _) => (EventKind::RateLimited, String::new()),
            _ => {
                tracing::warn!(job = %done.id, "job finished after its claim was lost (lease expired, removed or cancelled)");
                return;
            }
        };
        self.queue.events().emit(event, self.queue.name, &done.kind, &done.id, done.attempt, None, &message);
    }

    /// Asks every running job to stop; what still runs after the grace period is handed back.
    fn begin_shutdown(&mut self, pace: &mut Pace) {
        let grace = self.queue.settings().shutdown_grace;
        for slot in lock(&self.active).values() {
            slot.cancel.cancel();
        }
        pace.grace_end = Some(Instant::now() + grace);
        pace.give_up_at = Some(Instant::now() + grace + Duration::from_secs(1));
        pace.next_due = None;
    }

    /// Stops the jobs still running and queues their hand-back.
    fn release_all(&mut self, pace: &mut Pace) {
        let slots: Vec<(String, Slot)> = lock(&self.active).drain().collect();
        if !slots.is_empty() {
            tracing::warn!(jobs = slots.len(), "shutdown: handing running jobs back to the queue");
        }
        for (id, slot) in slots {
            if let Some(abort) = slot.abort {
                abort.abort();
            }
            let logs = slot.progress.take().logs;
            pace.pending.push(Finished {
                id,
                kind: slot.kind,
                attempt: slot.attempt,
                outcome: Outcome::Released,
                logs,
            });
            crate::metrics::job_released(self.queue.name);
            pace.running -= 1;
        }
    }
}

/// How long a round trip waits for more slots to finish when some just did and others still run:
/// millisecond jobs then travel in batches instead of one per round trip.
const LINGER: Duration = Duration::from_millis(1);

/// Collects the outcomes of slots finishing within `LINGER`; answers how many slots that freed.
async fn linger(pace: &mut Pace, finished: &mut mpsc::UnboundedReceiver<Finished>) -> usize {
    if pace.pending.is_empty() || pace.running == 0 {
        return 0;
    }
    let (deadline, before) = (Instant::now() + LINGER, pace.running);
    while pace.running > 0 {
        match tokio::time::timeout_at(deadline, finished.recv()).await {
            Ok(Some(done)) => {
                pace.pending.push(done);
                pace.running -= 1;
            }
            _ => break,
        }
    }
    before - pace.running
}

fn past(at: Option<Instant>) -> bool {
    at.is_some_and(|at| Instant::now() >= at)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The local instant of unix time `ms` (at least a millisecond from now).
fn instant_at(ms: i64) -> Instant {
    Instant::now() + Duration::from_millis((ms - now_ms()).max(1) as u64)
}

/// A worker name unique to this process and start.
pub fn unique_worker_name(queue: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    let nonce: u32 = rand::random();
    format!("{}-{}-{queue}-{nonce:08x}", host.as_deref().unwrap_or("host"), std::process::id())
}
