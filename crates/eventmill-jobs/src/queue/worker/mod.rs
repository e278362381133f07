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
    collections::{HashMap, VecDeque},
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

use super::{
    EventKind, Fetched, Finished, JobError, Latency, Outcome, Progress, Queue, QueueError, Recorded, Round, now_ms,
};
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
    run_in(queue, handler, options, shutdown, None).await
}

/// As [`run`], listed in its process's record (`processes`): the running jobs are read from it
/// at each beat, and it leaves the record when it returns.
pub async fn run_in(
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    options: WorkerOptions,
    shutdown: Shutdown,
    process: Option<super::processes::Attachment>,
) -> anyhow::Result<()> {
    let active: Active = Arc::default();
    if let Some(process) = &process {
        let (active, queue_name) = (active.clone(), queue.name);
        process.read_running(move || {
            lock(&active)
                .iter()
                .filter(|(_, slot)| slot.abort.is_some())
                .map(|(id, slot)| super::processes::RunningEntry {
                    id: id.clone(),
                    queue: queue_name.to_owned(),
                    kind: slot.kind.clone(),
                    attempt: slot.attempt,
                })
                .collect()
        });
    }
    let wake = Arc::new(Notify::new());
    let mut helpers = JoinSet::new();
    helpers.spawn(waker::run(queue.clone(), wake.clone()));
    helpers.spawn(live::run(queue.clone(), options.name.clone(), active.clone()));
    let (done, finished) = mpsc::unbounded_channel();
    let (queue_redis, job_prefix) = (queue.redis.clone(), queue.keys.job_prefix.clone());
    let worker = Worker {
        concurrency: options.concurrency.max(1),
        prefetch: queue.settings().prefetch,
        name: options.name,
        queue,
        handler,
        active,
        done,
        shutdown,
        jobs: JoinSet::new(),
        held: VecDeque::new(),
        store: Arc::new(super::context::JobStore { redis: queue_redis, job_prefix }),
    };
    tracing::info!(worker = %worker.name, queue = worker.queue.name, concurrency = worker.concurrency,
        prefetch = worker.prefetch, "job worker started");
    worker.drive(finished, wake).await;
    helpers.shutdown().await;
    drop(process);
    Ok(())
}

struct Worker {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    name: String,
    concurrency: usize,
    /// Jobs held ahead at most (`JobSettings::prefetch`).
    prefetch: usize,
    active: Active,
    done: mpsc::UnboundedSender<Finished>,
    shutdown: Shutdown,
    jobs: JoinSet<()>,
    /// Claimed ahead, leased, not started (their slots in `active` have no task yet), oldest first.
    held: VecDeque<Fetched>,
    /// Shared by every job's context.
    store: Arc<super::context::JobStore>,
}

/// Held jobs start without asking Redis only this long after a round trip said the queue is not
/// paused; later, the next round trip (which a finished job sends anyway) decides.
const HELD_FRESH: Duration = Duration::from_millis(50);

/// Jobs are held ahead only while attempts take at most this long on average: a round trip is
/// then a large part of a job's time, and held jobs wait at most a few of them, so a worker
/// never sits on jobs another idle worker could run.
const PREFETCH_JOB_MAX: Duration = Duration::from_millis(10);

/// A round trip in flight: it owns what it records, and answers it back with the outcome.
type Trip = BoxFuture<'static, (Sent, Result<Round, QueueError>)>;

/// What a round trip carried.
struct Sent {
    finished: Vec<Finished>,
    started: Vec<String>,
    /// Claimed jobs to start at once (the rest of the claim is held).
    want: usize,
    /// Claimed jobs to hold.
    hold: usize,
}

/// The loop's state between round trips.
#[derive(Default)]
struct Pace {
    /// Finished attempts not yet recorded.
    pending: Vec<Finished>,
    /// Held jobs started since the last round trip (their attempts are counted by the next).
    started: Vec<String>,
    running: usize,
    /// Slots kept for the jobs the round trip in flight claims to start.
    reserved: usize,
    /// Look for jobs at the next chance (woken, due, or the last claim filled every slot).
    look: bool,
    next_due: Option<Instant>,
    /// After a Redis error: no round trip before this.
    retry_at: Option<Instant>,
    /// Set at shutdown: running jobs are handed back at this time.
    grace_end: Option<Instant>,
    /// Past this, a stopping worker whose Redis is gone gives up (leases bring its jobs back).
    give_up_at: Option<Instant>,
    /// Held jobs may start without a round trip until then (see `HELD_FRESH`).
    held_fresh_until: Option<Instant>,
    /// Recent attempts' average run time (none finished yet: unknown, nothing is held).
    job_time: Option<Duration>,
    /// While held jobs keep the slots busy, the next round trip waits until then for more
    /// outcomes (see `Worker::batch_ready`).
    batch_until: Option<Instant>,
}

impl Pace {
    fn finished(&mut self, done: Finished) {
        if !matches!(done.outcome, Outcome::Released) {
            self.job_time = Some(match self.job_time {
                Some(average) => (average * 3 + done.ran) / 4,
                None => done.ran,
            });
        }
        self.pending.push(done);
        self.running -= 1;
    }

    fn stopping(&self) -> bool {
        self.grace_end.is_some() || self.give_up_at.is_some()
    }
}

impl Worker {
    async fn drive(mut self, mut finished: mpsc::UnboundedReceiver<Finished>, wake: Arc<Notify>) {
        let mut pace = Pace { look: true, ..Pace::default() };
        let mut trip: Option<Trip> = None;
        loop {
            while let Ok(done) = finished.try_recv() {
                pace.finished(done);
            }
            while self.jobs.try_join_next().is_some() {}
            let stopping = pace.stopping();
            if !stopping && self.shutdown.is_cancelled() {
                self.begin_shutdown(&mut pace);
                continue;
            }
            if !stopping {
                self.start_held(&mut pace);
            }
            let (want, hold) = self.claims(&pace);
            if trip.is_none() {
                let ready = pace.retry_at.is_none_or(|at| Instant::now() >= at);
                let news = !pace.pending.is_empty() || !pace.started.is_empty();
                if ready && (news || (want + hold > 0 && pace.look)) {
                    if self.held.is_empty() && !stopping {
                        linger(&mut pace, &mut finished).await;
                    }
                    if stopping || self.held.is_empty() || self.batch_ready(&mut pace) {
                        pace.batch_until = None;
                        let (want, hold) = self.claims(&pace);
                        trip = Some(self.launch(&mut pace, want, hold));
                        continue;
                    }
                }
                if stopping && pace.running == 0 && (pace.pending.is_empty() || past(pace.give_up_at)) {
                    return;
                }
            }
            let can_claim = want + hold > 0;
            tokio::select! {
                (sent, result) = in_flight(&mut trip), if trip.is_some() => {
                    trip = None;
                    self.landed(&mut pace, sent, result);
                }
                Some(done) = finished.recv() => pace.finished(done),
                () = self.shutdown.cancelled(), if !stopping => {}
                () = sleep_until(pace.grace_end), if pace.grace_end.is_some() => {
                    pace.grace_end = None;
                    self.release_all(&mut pace);
                }
                () = wake.notified(), if can_claim => pace.look = true,
                () = sleep_until(pace.next_due), if can_claim && pace.next_due.is_some() => {
                    pace.look = true;
                    pace.next_due = None;
                }
                () = sleep_until(pace.retry_at), if pace.retry_at.is_some() => {}
                () = sleep_until(pace.batch_until), if trip.is_none() && pace.batch_until.is_some() => {}
                () = sleep_until(pace.give_up_at), if pace.give_up_at.is_some() && pace.running == 0 => {}
            }
        }
    }

    /// How many jobs the next round trip claims to start at once, and how many more to hold.
    fn claims(&self, pace: &Pace) -> (usize, usize) {
        if pace.stopping() {
            return (0, 0);
        }
        let free = self.concurrency.saturating_sub(pace.running + pace.reserved);
        let want = free.saturating_sub(self.held.len());
        let short = pace.job_time.is_some_and(|t| t <= PREFETCH_JOB_MAX);
        // Held jobs fill the free slots first; what stays held plus the new claim is at most `prefetch`.
        let hold = if short { self.prefetch.saturating_sub(self.held.len().saturating_sub(free)) } else { 0 };
        (want, hold)
    }

    /// Whether the outcomes gathered make a round trip now, while held jobs keep the slots busy:
    /// half the slots' worth have finished, or `LINGER` has passed since the first (a look for
    /// jobs alone goes at once). Without it, a batch is whatever finished during the last round
    /// trip: at concurrency 50, three times the round trips per job, and Redis, which runs each
    /// script alone, was the bottleneck.
    fn batch_ready(&self, pace: &mut Pace) -> bool {
        if pace.pending.is_empty() && pace.started.is_empty() {
            return true;
        }
        if pace.pending.len() * 2 >= self.concurrency {
            return true;
        }
        let until = *pace.batch_until.get_or_insert_with(|| Instant::now() + LINGER);
        Instant::now() >= until
    }

    /// Starts held jobs in free slots, if the last round trip is recent enough to trust it.
    fn start_held(&mut self, pace: &mut Pace) {
        if self.held.is_empty() || pace.held_fresh_until.is_none_or(|until| Instant::now() >= until) {
            return;
        }
        while pace.running + pace.reserved < self.concurrency {
            let Some(job) = self.held.pop_front() else { break };
            let lost = lock(&self.active).get(&job.id).is_none_or(|slot| slot.cancel.is_cancelled());
            if lost {
                lock(&self.active).remove(&job.id);
                tracing::warn!(job = %job.id, "a held job's claim was lost (removed or lease expired): not starting it");
                continue;
            }
            pace.running += 1;
            pace.started.push(job.id.clone());
            self.queue.events().emit(EventKind::Started, self.queue.name, &job.kind, &job.id, job.attempt, None, "");
            self.start(job);
        }
    }

    /// Sends a round trip recording what finished and started, claiming `want` + `hold` jobs.
    fn launch(&mut self, pace: &mut Pace, want: usize, hold: usize) -> Trip {
        let sent = Sent {
            finished: std::mem::take(&mut pace.pending),
            started: std::mem::take(&mut pace.started),
            want,
            hold,
        };
        pace.reserved = want;
        let (queue, name) = (self.queue.clone(), self.name.clone());
        Box::pin(async move {
            let result = queue.finish_and_fetch(&name, &sent.started, &sent.finished, sent.want, sent.hold).await;
            (sent, result)
        })
    }

    /// A round trip's answer: lifecycle events, claimed jobs started or held, held jobs handed
    /// back if the queue is paused.
    fn landed(&mut self, pace: &mut Pace, mut sent: Sent, result: Result<Round, QueueError>) {
        pace.reserved = 0;
        let round = match result {
            Ok(round) => round,
            Err(error) => {
                tracing::warn!(%error, queue = self.queue.name, "could not reach the queue; retrying in a second");
                sent.finished.append(&mut pace.pending);
                sent.started.append(&mut pace.started);
                (pace.pending, pace.started) = (sent.finished, sent.started);
                pace.retry_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
        };
        for (done, recorded) in sent.finished.iter().zip(&round.recorded) {
            self.recorded(done, *recorded);
        }
        pace.retry_at = None;
        pace.next_due = round.next_due.map(instant_at);
        let (want, take) = (sent.want, sent.want + sent.hold);
        pace.look = take > 0 && round.claimed.len() == take && !round.paused;
        let stopping = pace.stopping();
        if round.paused || stopping {
            pace.held_fresh_until = None;
            let held: Vec<Fetched> = self.held.drain(..).collect();
            for job in held {
                self.hand_back(pace, job);
            }
        } else {
            pace.held_fresh_until = Some(Instant::now() + HELD_FRESH);
        }
        for (n, job) in round.claimed.into_iter().enumerate() {
            if n >= want || stopping {
                if stopping {
                    self.hand_back(pace, job);
                } else {
                    self.hold(job);
                }
                continue;
            }
            pace.running += 1;
            self.queue.events().emit(EventKind::Started, self.queue.name, &job.kind, &job.id, job.attempt, None, "");
            self.start(job);
        }
    }

    /// Keeps a claimed job to start later; its slot in `active` renews its lease meanwhile.
    fn hold(&mut self, job: Fetched) {
        let slot = Slot {
            kind: job.kind.clone(),
            attempt: job.attempt,
            progress: Progress::default(),
            cancel: CancellationToken::new(),
            abort: None,
        };
        lock(&self.active).insert(job.id.clone(), slot);
        self.held.push_back(job);
    }

    /// Hands a held (or just claimed, when stopping) job back to `waiting` in the next round trip.
    fn hand_back(&mut self, pace: &mut Pace, job: Fetched) {
        lock(&self.active).remove(&job.id);
        pace.pending.push(Finished {
            id: job.id,
            kind: job.kind,
            attempt: job.attempt,
            outcome: Outcome::Released,
            logs: Vec::new(),
            ran: Duration::ZERO,
            latency: Latency::default(),
        });
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

    /// Asks every running job to stop and hands held jobs back at once; what still runs after the
    /// grace period is handed back.
    fn begin_shutdown(&mut self, pace: &mut Pace) {
        let grace = self.queue.settings().shutdown_grace;
        let held: Vec<Fetched> = self.held.drain(..).collect();
        for job in held {
            self.hand_back(pace, job);
        }
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
            let running = slot.abort.is_some();
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
                ran: Duration::ZERO,
                latency: Latency::default(),
            });
            crate::metrics::job_released(self.queue.name);
            if running {
                pace.running -= 1;
            }
        }
    }
}

/// The round trip in flight's answer (only polled while there is one).
async fn in_flight(trip: &mut Option<Trip>) -> (Sent, Result<Round, QueueError>) {
    match trip.as_mut() {
        Some(trip) => trip.await,
        None => std::future::pending().await,
    }
}

/// How long a round trip waits for more slots to finish when some just did and others still run:
/// millisecond jobs then travel in batches instead of one per round trip.
const LINGER: Duration = Duration::from_millis(1);

/// Collects the outcomes of slots finishing within `LINGER`.
async fn linger(pace: &mut Pace, finished: &mut mpsc::UnboundedReceiver<Finished>) {
    if pace.pending.is_empty() || pace.running == 0 {
        return;
    }
    let deadline = Instant::now() + LINGER;
    while pace.running > 0 {
        match tokio::time::timeout_at(deadline, finished.recv()).await {
            Ok(Some(done)) => pace.finished(done),
            _ => break,
        }
    }
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
