//! eventmill-jobs: a BullMQ-style job queue on Redis for Rust.
//!
//! ```text
//!  enqueue (code, CLI, job file, board, schedule)
//!        │  one Lua script: the job hash and its place in `waiting` or `delayed`
//!        ▼
//!  Redis: {<prefix>:queue}:<queue>:waiting(:fifo) / delayed / active / completed / failed
//!        │  a worker's one round trip records finished attempts and claims the next jobs
//!        ▼
//!  your Processor<S>::process(&JobContext<S>, payload) ── Ok(result) ──▶ completed
//!        │ Err(retryable), attempts left: delayed with exponential backoff
//!        └ Err(permanent) or no attempts left: failed (retry one or all later)
//! ```
//!
//! A job kind is a type implementing [`Processor<S>`]: its name, its queue, a serde payload and an
//! async `process`. `S` is your application's state (a database pool, a mailer, folders...),
//! built once and handed to the workers; every job reads it with [`JobContext::state`], as an
//! axum handler reads `State<S>`. Kinds and queues are declared in a [`Registry`]; [`Jobs`] ties
//! the registry to Redis and runs what you ask of it.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use eventmill_jobs::{JobContext, JobError, Jobs, JobsSettings, Processor, QueueSpec, Registry, ResultExt};
//! use serde::{Deserialize, Serialize};
//! use serde_json::{Value, json};
//!
//! struct Mailer; // your state: clients, pools, settings
//! impl Mailer {
//!     async fn send(&self, user: &str) -> std::io::Result<()> { Ok(()) }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { user_id: String }
//!
//! struct SendWelcome;
//! impl Processor<Mailer> for SendWelcome {
//!     type Payload = Welcome;
//!     const NAME: &'static str = "SEND_WELCOME";
//!     const QUEUE: &'static str = "emails";
//!     async fn process(&self, ctx: &JobContext<Mailer>, job: Welcome) -> Result<Value, JobError> {
//!         ctx.state().send(&job.user_id).await.retryable()?; // an I/O error: try again later
//!         Ok(json!({ "sent": true }))
//!     }
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let registry = Registry::new().queue(QueueSpec::new("emails").concurrency(8)).register(SendWelcome);
//! let jobs = Jobs::connect(JobsSettings::from_env("MYAPP", &registry)?, registry)?; // MYAPP_REDIS_URL...
//! jobs.enqueue::<SendWelcome>(&Welcome { user_id: "u1".into() }).await?;
//! jobs.run_workers(Arc::new(Mailer), eventmill_jobs::shutdown::on_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! What else is here, in the order a job meets it:
//! - [`settings`]: Redis and job settings from `<PREFIX>_*` variables.
//! - [`job`]: a checked [`Job`]; job files (TOML or JSON, relative dates such as `yesterday`,
//!   flows of `[[children]]`) and their `[options]` (priority, delay, deduplication key).
//! - [`queue`]: the queues in Redis, every state change one Lua script; the worker; flows,
//!   lifecycle events, rate limits, cancellation, leases taken over when a worker dies.
//! - [`queue::trace`]: traces across the queue: a job keeps its enqueue's W3C trace context, each
//!   attempt's span continues it (with any `tracing-opentelemetry` layer; nothing without one).
//! - [`scheduler`]: cron schedules (`scheduler.toml`) that enqueue exactly one job per tick across
//!   any number of scheduler processes, with misfire handling and timezones.
//! - [`redis_conn`]: one connection type for a Redis node or a Redis Cluster.
//! - [`metrics`]: Prometheus counters registered into your registry.
//! - [`shutdown`]: the one signal every long-running part stops on.
//! - [`cli`] (feature `cli`, on by default): the `enqueue`, `jobs` and `schedules` subcommands an
//!   application embeds in its own clap command line.
//! - [`board`] (feature `board`, on by default): the queue admin pages and their JSON API as an
//!   axum `Router` you mount under your own path and authentication.
//!
//! Redis must not evict keys (`maxmemory-policy noeviction`): an evicted job is a lost job.

#![warn(missing_docs, unreachable_pub)]

pub mod settings;
pub mod redis_conn;
pub mod shutdown;
pub mod metrics;
pub mod job;
pub mod queue;
pub mod scheduler;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "board")]
pub mod board;
mod jobs;

#[cfg(test)]
mod test_kinds;

pub use job::{Job, JobOptions, JobTemplate, PlannedJob};
pub use jobs::Jobs;
pub use queue::{
    BulkJob, Catalog, ChildJob, DedupMode, Dispatch, EnqueueOptions, Enqueued, FailurePolicy, JobContext, JobError,
    JobRecord, JobState, Kind, Processor, Progress, Queue, QueueError, QueueSpec, Queues, RateLimit, Registry,
    ResultExt, WaitError,
};
pub use settings::{JobSettings, JobsSettings, RedisSettings, RetryPolicy};
