//! Job queues on Redis (SPEC section 7), and the framework around them: a job kind is a
//! [`Processor`] in a [`Registry`]; queues are declared there (eventmill's: `analytics:rollup` and
//! `analytics:reports`).
//!
//! ```text
//!  enqueue ──▶ waiting (zset) ◀── promote ── delayed (zset, run-at ms) ◀── fail, attempts left (backoff)
//!       │         │ claim (lease)                 ▲
//!       ▼         ▼                               │
//!    marker    active (zset, lease expiry) ──────┘  lease expired: back to waiting (attempt counted)
//!  (wakes idle    │ complete            │ fail, no attempts left / permanent error
//!   workers)      ▼                     ▼
//!              completed (zset)      failed (zset) ── retry one / all ──▶ waiting
//! ```
//!
//! eventmill's own backend, not apalis-redis (see docs/jobs.md for the defects that decided it):
//! every transition is one Lua script (`scripts`), so a job is always in exactly one place, a
//! retry waiting out its backoff lives in Redis (not in a worker's memory), and completed and
//! failed jobs are trimmed by count and age as they arrive. `worker` drives the job slots: one
//! script per round trip records finished attempts and claims the next jobs; idle workers block
//! on the queue's marker. What BullMQ users expect is built on the same scripts: priorities
//! (the waiting set's score), per-queue rate limits (a window counted inside the fetch script),
//! lifecycle `events`, and `flow`s (a parent in `waiting-children` until its children completed).

pub mod bulk;
pub mod claim;
pub mod context;
pub mod events;
pub mod flow;
pub mod inspect;
pub mod job;
pub mod processor;
pub mod queues;
pub mod rate_limit;
pub mod registry;
pub mod scripts;
pub mod store;
pub mod upgrade;
pub mod worker;

pub use bulk::BulkJob;
pub use claim::{Fetched, Finished, Outcome, Round};
pub use context::{JobContext, Progress};
pub use events::{EventKind, Events, JobEvent};
pub use flow::{FlowEnqueued, Planned};
pub use job::{AttemptError, JobError, JobRecord, JobState, ResultExt};
pub use processor::{Kind, Processor};
pub use queues::Queues;
pub use rate_limit::RateLimit;
pub use registry::{Catalog, Dispatch, QueueSpec, Registry, UnknownKind};
pub use store::{Cancelled, EnqueueOptions, Enqueued, MAX_PRIORITY, Queue, QueueCounts, key_base};
pub use worker::{JobHandler, RunningJob, WorkerOptions};

pub use crate::job::{Job, JobOptions, JobTemplate, PlannedJob};

/// A failure to talk to Redis (the queue's own errors; job errors are `JobError`).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Redis error: {0}")]
    /// Redis refused or did not answer.
    Redis(#[from] redis::RedisError),
    #[error("no job with id {0}")]
    /// No job has this id.
    NotFound(String),
    #[error("{0}")]
    /// A request that cannot be done as asked (the message says why).
    Invalid(String),
}

/// Current time in unix ms (the queue's clock; scripts get it as an argument).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
