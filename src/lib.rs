//! eventmill: self-hosted product analytics.
//!
//! ```text
//!  HTTP POST /v1/events[/bulk]          (web::ingest: validate every event, 202 once in the stream)
//!        │  XADD, pipelined, MULTI/EXEC
//!        ▼
//!  Redis Stream  <prefix>:events        (stream: consumer group, reclaim, dead letters;
//!        │                               EVENTMILL_STREAM_SHARDS keys over a cluster's slots)
//!        │  XREADGROUP → sort → binary COPY → commit → XACK
//!        ▼
//!  PostgreSQL  events, partitioned by day (store: partitions, exactly-once writes)
//!        │  live: counters per second/minute added in the XACK's Lua call → SSE → web::dashboard
//!        │
//!        ▼
//!  eventmill-jobs: analytics:rollup / analytics:reports on Redis (waiting, delayed, active,
//!        │  completed, failed; retries with backoff)  ◀── scheduler (scheduler.toml) / CLI enqueue
//!        ▼
//!  processors: rollups (hourly, daily, profile, cost tables) → report (CSV, JSON, PDF) /
//!        export (streamed) → deliver: file (atomic, confined to reports/), e-mail
//! ```
//!
//! Modules in the order an event meets them; `app` composes the long-running parts and `commands`
//! maps each CLI subcommand onto them. The job framework (queues, worker, registry, scheduler,
//! the Redis connection for a node or a cluster) is the crate `eventmill-jobs`
//! (crates/eventmill-jobs); eventmill is its first user: `processors` are its kinds, run with the
//! state `processors::Analytics`. Its modules are re-exported here under their old names.
//! `redis_limits` watches Redis' memory and policy and explains refused writes (SPEC section 13).

pub mod settings;
pub use eventmill_jobs::redis_conn;
pub mod redis_limits;
pub mod telemetry;
pub mod metrics;
pub use eventmill_jobs::shutdown;
pub mod domain;
pub mod stream;
pub mod store;
pub mod live;
pub use eventmill_jobs::queue;
pub mod processors;
pub mod report;
pub mod export;
pub mod deliver;
pub use eventmill_jobs::scheduler;
pub mod web;
pub mod app;
pub mod cli;
pub mod commands;
pub mod loadgen;
