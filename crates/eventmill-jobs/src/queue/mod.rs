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
mod claim;
pub mod context;
pub mod edit;
pub mod events;
pub mod flow;
pub mod history;
pub mod inspect;
pub mod maintenance;
pub mod job;
pub mod limits_in_force;
mod keys;
pub mod processes;
pub mod processor;
pub mod queues;
pub mod rate_limit;
pub mod registry;
mod scripts;
pub mod server;
pub mod slo;
pub mod store;
pub mod trace;
pub mod upgrade;
pub mod wait;
pub mod worker;

pub use bulk::BulkJob;
pub(crate) use claim::{Fetched, Finished, Latency, Live, Outcome, Recorded, Round};
pub use context::{ChildJob, JobContext, Progress};
pub use edit::DataEdit;
pub use events::{EventKind, Events, JobEvent};
pub use flow::{FailurePolicy, FlowEnqueued, FlowNode, Planned};
pub use history::{Histogram, History, Window};
pub use job::{Action, AttemptError, JobError, JobRecord, JobState, ResultExt};
pub use keys::key_base;
pub use limits_in_force::Limits;
pub use maintenance::BulkStep;
pub use processes::{ProcessInfo, Processes, WorkerProcess};
pub use processor::{Kind, Processor};
pub use queues::Queues;
pub use rate_limit::RateLimit;
pub use registry::{Catalog, Dispatch, QueueSpec, Registry, UnknownKind};
pub use server::RedisInfo;
pub use slo::{KindSlo, Objective, Slo, SloStatus, Transition};
pub use store::{Cancelled, DedupMode, EnqueueOptions, Enqueued, MAX_PRIORITY, Queue, QueueCounts};
pub use wait::WaitError;
pub use worker::{JobHandler, RunningJob, WorkerOptions};

pub use crate::job::{Job, JobOptions, JobTemplate, PlannedJob};

/// A failure to talk to Redis (the queue's own errors; job errors are `JobError`).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached, refused a command, or answered something unexpected; a
    /// refusal of a Redis that is up (out of memory, a read-only replica, failing persistence) is
    /// said as such, with what to do.
    #[error("{}", describe_redis_error(.0))]
    Redis(#[from] redis::RedisError),
    /// No job has this id (any more).
    #[error("no job with id {0}")]
    NotFound(String),
    /// A request that cannot be carried out as asked (unknown queue or kind, priority too large...).
    #[error("{0}")]
    Invalid(String),
}

/// A Redis error as an operator reads it: the refusals of a Redis that is up named with their
/// cause and fix (nothing of the refused command was written), anything else as Redis said it.
fn describe_redis_error(error: &redis::RedisError) -> String {
    let refusal = match error.code() {
        Some("OOM") => {
            "Redis is out of memory (maxmemory reached): nothing was written; let the queues and \
                        streams drain, free memory or raise maxmemory"
        }
        Some("READONLY") => "Redis is a read-only replica: nothing was written; point the Redis URL at the master",
        Some("MISCONF") => {
            "Redis refuses writes because it cannot save to disk (MISCONF): nothing was written; \
                            see Redis' log (disk space, permissions of its dir)"
        }
        _ => return format!("Redis error: {error}"),
    };
    format!("{refusal} ({error})")
}

/// Current time in unix ms (the queue's clock; scripts get it as an argument).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::QueueError;

    /// The error a Redis reply `-<code> <detail>` becomes.
    fn server_error(reply: &str) -> redis::RedisError {
        redis::parse_redis_value(reply.as_bytes()).unwrap().extract_error().unwrap_err()
    }

    #[test]
    fn a_redis_that_refuses_writes_is_named_with_the_cause_and_the_fix() {
        let oom = QueueError::from(server_error("-OOM command not allowed when used memory > 'maxmemory'.\r\n"));
        assert!(
            oom.to_string().starts_with("Redis is out of memory (maxmemory reached): nothing was written"),
            "{oom}"
        );
        let replica = QueueError::from(server_error("-READONLY You can't write against a read only replica.\r\n"));
        assert!(replica.to_string().contains("point the Redis URL at the master"), "{replica}");
        let other = QueueError::from(server_error("-ERR unknown command\r\n"));
        assert!(other.to_string().starts_with("Redis error:"), "{other}");
    }
}
