//! Job queues on Redis (SPEC section 7): `analytics:rollup` and `analytics:reports`.
//!
//! ```text
//!  enqueue ──▶ waiting (list) ◀── promote ── delayed (zset, run-at ms) ◀── fail, attempts left (backoff)
//!                 │ fetch (lease)                 ▲
//!                 ▼                               │
//!              active (zset, lease expiry) ──────┘  lease expired: back to waiting (attempt counted)
//!                 │ complete            │ fail, no attempts left / permanent error
//!                 ▼                     ▼
//!              completed (zset)      failed (zset) ── retry one / all ──▶ waiting
//! ```
//!
//! eventmill's own backend, not apalis-redis (see docs/jobs.md for the defects that decided it):
//! every transition is one Lua script (`scripts`), so a job is always in exactly one place, a
//! retry waiting out its backoff lives in Redis (not in a worker's memory), and completed and
//! failed jobs are trimmed by count and age as they arrive. `worker` runs handlers on apalis'
//! `WorkerBuilder` over a custom backend that polls these queues.

pub mod inspect;
pub mod job;
pub mod scripts;
pub mod store;
pub mod worker;

pub use job::{AttemptError, JobError, JobRecord, JobState};
pub use store::{EnqueueOptions, Enqueued, Fetched, Queue, QueueCounts, Queues};
pub use worker::{JobHandler, Progress, RunningJob, WorkerOptions};

/// The queue of rollup jobs.
pub const ROLLUP_QUEUE: &str = "analytics:rollup";
/// The queue of report and export jobs.
pub const REPORTS_QUEUE: &str = "analytics:reports";
/// Both queues, in display order.
pub const QUEUES: [&str; 2] = [ROLLUP_QUEUE, REPORTS_QUEUE];

/// The queue a job kind (`job_type`) runs on.
pub fn queue_for_kind(kind: &str) -> &'static str {
    match kind {
        "HOURLY_ROLLUP" | "DAILY_ROLLUP" => ROLLUP_QUEUE,
        _ => REPORTS_QUEUE,
    }
}

/// A failure to talk to Redis (the queue's own errors; job errors are `JobError`).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no job with id {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// Current time in unix ms (the queue's clock; scripts get it as an argument).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
