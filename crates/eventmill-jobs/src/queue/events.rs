//! Lifecycle events of jobs: started, progress, completed, retried, failed, cancelled, released.
//! Each is emitted once per transition by the process that made it (the worker that recorded the
//! attempt, the process that cancelled), logged as a tracing line with the job's id, kind and
//! queue, counted in `/metrics` (`eventmill_job_events_total`), and handed to every subscriber
//! (`Queues::events().subscribe()`), so a framework user can observe jobs without polling Redis.

use std::sync::Arc;

use tokio::sync::broadcast;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An attempt was claimed and its processor started.
    Started,
    /// The processor reported progress (written with the worker's next report).
    Progress,
    /// An attempt succeeded: the job is completed.
    Completed,
    /// An attempt failed and the job waits out its backoff.
    Retried,
    /// Failed for good (permanent error, or out of attempts).
    Failed,
    /// Cancelled by an operator (removed before it ran, or stopped while running).
    Cancelled,
    /// Handed back to the queue at shutdown (its attempt not counted).
    Released,
    /// Its processor moved it to `delayed` (`JobError::delay_until`; its attempt not counted).
    Delayed,
    /// Its processor paused its queue (`JobError::rate_limited`); back in `waiting`, its attempt
    /// not counted.
    RateLimited,
}

impl EventKind {
    /// The event's name in logs and metrics (`started`, `completed`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Progress => "progress",
            Self::Completed => "completed",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Released => "released",
            Self::Delayed => "delayed",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// One event: which job, where, and what came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// What happened.
    pub event: EventKind,
    /// The job's id.
    pub job_id: String,
    /// The job's kind (`DAILY_ROLLUP`...).
    pub kind: String,
    /// The queue it runs on.
    pub queue: &'static str,
    /// The attempt's number (0 when not known, e.g. for a cancelled job).
    pub attempt: u32,
    /// The percent of a progress event; `None` for the others.
    pub percent: Option<u8>,
    /// The progress message, the error (retried, failed), why it was cancelled; empty otherwise.
    pub message: String,
}

/// How many events a slow subscriber may fall behind before it misses some (it is told how many).
const BUFFER: usize = 4096;

/// The event hub every queue of a process shares.
#[derive(Clone)]
pub struct Events {
    sender: Arc<broadcast::Sender<JobEvent>>,
}

impl Default for Events {
    fn default() -> Self {
        Self { sender: Arc::new(broadcast::channel(BUFFER).0) }
    }
}

impl Events {
    /// Every event from now on. A subscriber that falls more than 4,096 events behind gets
    /// `RecvError::Lagged` with the number it missed, then the newest ones.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.sender.subscribe()
    }

    /// Logs, counts and broadcasts one event (the event is built only when someone subscribes).
    /// Started, progress and completed are debug lines (one per job at thousands of jobs/s:
    /// `EVENTMILL_LOG=info,eventmill::queue::events=debug` shows them); the others are info lines.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &self,
        event: EventKind,
        queue: &'static str,
        kind: &str,
        id: &str,
        attempt: u32,
        percent: Option<u8>,
        message: &str,
    ) {
        crate::metrics::job_event(queue, kind, event.as_str());
        let name = event.as_str();
        match event {
            EventKind::Started | EventKind::Progress | EventKind::Completed => {
                tracing::debug!(job = %id, kind, queue, attempt, event = name, percent, message, "job {name}")
            }
            _ => tracing::info!(job = %id, kind, queue, attempt, event = name, message, "job {name}"),
        }
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(JobEvent {
                event,
                job_id: id.to_owned(),
                kind: kind.to_owned(),
                queue,
                attempt,
                percent,
                message: message.to_owned(),
            });
        }
    }
}
