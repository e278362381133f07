//! What the queue knows about a job (its Redis hash, read back for the CLI and admin) and the error
//! contract between handlers and the queue: permanent errors fail at once, others are retried.

use std::{collections::HashMap, fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Ready to run, in line by priority.
    Waiting,
    /// A flow's parent, waiting for its children to complete.
    WaitingChildren,
    /// Waiting for its run-at time (delayed when enqueued, or a retry waiting out its backoff).
    Delayed,
    /// Claimed by a worker, under a lease.
    Active,
    /// Done: its processor succeeded.
    Completed,
    /// Failed for good (permanent error, or out of attempts).
    Failed,
    /// Stopped by `jobs cancel` while it ran (kept with the failed jobs, which list it).
    Cancelled,
}

impl JobState {
    /// Every state a queue lists jobs by (cancelled jobs are listed with the failed ones).
    pub const ALL: [JobState; 6] =
        [Self::Waiting, Self::WaitingChildren, Self::Delayed, Self::Active, Self::Completed, Self::Failed];

    /// The state's name in the job hash, the CLI and URLs (`waiting-children`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::WaitingChildren => "waiting-children",
            Self::Delayed => "delayed",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Finished jobs (completed, failed or cancelled) no longer change by themselves.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().chain([Self::Cancelled]).find(|state| state.as_str() == s).ok_or_else(|| {
            format!("unknown state {s:?}: expected waiting, waiting-children, delayed, active, completed or failed")
        })
    }
}

/// One failed attempt, kept in the job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    /// The attempt's number, from 1 (0: the job failed without running, e.g. a failed child).
    pub attempt: u32,
    /// Unix ms.
    pub at: i64,
    /// What went wrong.
    pub error: String,
    /// The worker that ran it (empty when none did).
    #[serde(default)]
    pub worker: String,
}

/// A job as stored: payload, state, attempts, progress, timestamps (unix ms), result and errors.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: String,
    /// The queue it runs on.
    pub queue: String,
    /// Its kind (a registered `Processor::NAME`).
    pub kind: String,
    /// The payload as enqueued (a string if it is not JSON).
    pub payload: serde_json::Value,
    /// Where it is now.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Runs in total, the first included.
    pub max_attempts: u32,
    /// The running attempt's progress percent (100 once completed).
    pub progress: u8,
    /// What the processor last said it was doing, or why the job is where it is.
    pub progress_message: String,
    /// When it was enqueued.
    pub created_at: i64,
    /// When it may run (delayed jobs and retries).
    pub run_at: Option<i64>,
    /// When its last attempt started.
    pub started_at: Option<i64>,
    /// When it completed or failed for good.
    pub finished_at: Option<i64>,
    /// What a completed job's processor answered (a string if it is not JSON).
    pub result: Option<serde_json::Value>,
    /// Every failed attempt, oldest first.
    pub errors: Vec<AttemptError>,
    /// The worker that claimed it last.
    pub worker: Option<String>,
    /// What enqueued it: `cli`, `schedule:<name>@<tick>`...
    pub origin: String,
    /// 0: none (runs before prioritised jobs); else 1 first, 2 next...
    pub priority: u32,
    /// The deduplication key it was enqueued with.
    pub key: Option<String>,
    /// A flow's child: its parent's id.
    pub parent: Option<String>,
    /// A flow's parent: its children's ids.
    pub children: Vec<String>,
    /// A flow's parent: how many of its children have not completed yet.
    pub pending_children: u32,
    /// The W3C `traceparent` of its enqueue, when it was enqueued under a trace (`queue::trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

impl JobRecord {
    /// Builds the record of job `id` from its hash; `None` for an empty (missing) hash. A missing
    /// field is its default: a waiting job's hash holds only what it needs (docs/jobs.md, "Memory
    /// per waiting job"), with no `id`, `state` (waiting), `attempts`, `progress` or `errors`.
    pub fn from_hash(id: &str, mut h: HashMap<String, String>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let id = h.remove("id").unwrap_or_else(|| id.to_owned());
        let num = |h: &HashMap<String, String>, k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok());
        let json = |v: String| serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
        Some(Self {
            queue: h.remove("queue").unwrap_or_default(),
            kind: h.remove("kind").unwrap_or_default(),
            payload: h.remove("payload").map(json).unwrap_or_default(),
            state: h.get("state").and_then(|s| s.parse().ok()).unwrap_or(JobState::Waiting),
            attempts: num(&h, "attempts").unwrap_or(0) as u32,
            max_attempts: num(&h, "max_attempts").unwrap_or(1) as u32,
            progress: num(&h, "progress").unwrap_or(0).clamp(0, 100) as u8,
            progress_message: h.remove("progress_message").unwrap_or_default(),
            created_at: num(&h, "created_at").unwrap_or(0),
            run_at: num(&h, "run_at"),
            started_at: num(&h, "started_at"),
            finished_at: num(&h, "finished_at"),
            result: h.remove("result").map(json),
            errors: h.get("errors").and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default(),
            worker: h.remove("worker"),
            origin: h.remove("origin").unwrap_or_default(),
            priority: num(&h, "priority").unwrap_or(0).max(0) as u32,
            key: h.remove("key").filter(|k| !k.is_empty()),
            parent: h.remove("parent").filter(|p| !p.is_empty()),
            children: h.get("children").and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default(),
            pending_children: num(&h, "pending").unwrap_or(0).max(0) as u32,
            trace: h.remove("trace").filter(|t| !t.is_empty()),
            id,
        })
    }

    /// The last attempt's error, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.errors.last().map(|e| e.error.as_str())
    }
}

/// Why a job attempt failed, and whether trying again can help; keeps the error it came from.
///
/// Build one with [`JobError::permanent`] / [`JobError::retryable`], or mark any error where it
/// happens with [`ResultExt`]: `send(&mail).await.retryable()?`.
#[derive(Clone)]
pub struct JobError {
    retry: bool,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    action: Action,
}

/// What the queue does with a job whose processor returned a [`JobError`]: fail it (retried while
/// attempts are left, unless permanent), or one of the two answers that spend no attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A failure: retried with backoff while attempts are left (unless permanent).
    Fail,
    /// [`JobError::rate_limited`]: the job goes back to waiting (first in line) and its queue
    /// starts no job for this long, in any worker process.
    RateLimited(std::time::Duration),
    /// [`JobError::delay_until`]: the job waits in `delayed` until this time (unix ms).
    DelayUntil(i64),
}

impl JobError {
    /// Bad payload, unknown kind, a request that can never succeed: fail at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self { retry: false, message: message.to_string(), source: None, action: Action::Fail }
    }

    /// Database down, timeout, flaky delivery: retry with backoff while attempts are left.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self { retry: true, message: message.to_string(), source: None, action: Action::Fail }
    }

    /// A downstream limit was hit (an SMTP 421, an HTTP 429): the job goes back to waiting, first
    /// in line, **without spending an attempt**, and its queue starts no job for `duration`, in any
    /// worker process (BullMQ's `worker.rateLimit(ms)` + `RateLimitError`). A longer pause already
    /// in force is kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmill_jobs::JobError;
    ///
    /// let error = JobError::rate_limited(Duration::from_secs(30)); // `return Err(error)` from process
    /// assert_eq!(error.rate_limited_for(), Some(Duration::from_secs(30)));
    /// ```
    pub fn rate_limited(duration: std::time::Duration) -> Self {
        let message = format!("rate limited: the queue takes no job for {}", humantime::format_duration(duration));
        Self { retry: true, message, source: None, action: Action::RateLimited(duration) }
    }

    /// A step job's "come back later": the job moves to `delayed` until `time` **without spending
    /// an attempt** (its payload, e.g. written by
    /// [`JobContext::update_data`](super::JobContext::update_data), is what the next run gets).
    /// A time in the past makes it due at once.
    pub fn delay_until(time: chrono::DateTime<chrono::Utc>) -> Self {
        let message =
            format!("delayed by its processor until {}", time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        Self { retry: true, message, source: None, action: Action::DelayUntil(time.timestamp_millis()) }
    }

    /// What the queue does with the job (fail, or wait without spending an attempt).
    pub fn action(&self) -> Action {
        self.action
    }

    /// The queue's pause asked by [`JobError::rate_limited`].
    pub fn rate_limited_for(&self) -> Option<std::time::Duration> {
        match self.action {
            Action::RateLimited(duration) => Some(duration),
            _ => None,
        }
    }

    /// `error` as a job error (its message is the error's), kept as the source.
    pub fn from_error(error: impl std::error::Error + Send + Sync + 'static, retry: bool) -> Self {
        Self { retry, message: error.to_string(), source: Some(Arc::new(error)), action: Action::Fail }
    }

    /// Whether the queue retries the job (while attempts are left).
    pub fn is_retryable(&self) -> bool {
        self.retry
    }

    /// What went wrong, as stored with the job.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.action {
            Action::RateLimited(_) => "RateLimited",
            Action::DelayUntil(_) => "DelayUntil",
            Action::Fail if self.retry => "Retryable",
            Action::Fail => "Permanent",
        };
        write!(f, "{kind}({:?})", self.message)
    }
}

impl PartialEq for JobError {
    fn eq(&self, other: &Self) -> bool {
        self.retry == other.retry && self.message == other.message && self.action == other.action
    }
}

impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<redis::RedisError> for JobError {
    fn from(error: redis::RedisError) -> Self {
        Self::retryable(format!("Redis error: {error}"))
    }
}

/// Marks any error as a [`JobError`] where it happens, so `?` says whether a retry can help.
///
/// ```
/// use eventmill_jobs::{JobError, ResultExt};
///
/// fn parse(text: &str) -> Result<u32, JobError> {
///     let n: u32 = text.parse().permanent()?; // a bad number stays bad: no retry
///     Ok(n)
/// }
/// assert!(!parse("x").unwrap_err().is_retryable());
/// ```
pub trait ResultExt<T> {
    /// The error fails the job at once.
    fn permanent(self) -> Result<T, JobError>;
    /// The error is retried with backoff while attempts are left.
    fn retryable(self) -> Result<T, JobError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, JobError> {
        self.map_err(|e| JobError::from_error(e, false))
    }

    fn retryable(self) -> Result<T, JobError> {
        self.map_err(|e| JobError::from_error(e, true))
    }
}
