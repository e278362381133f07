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
//!  queue: analytics:rollup / analytics:reports on Redis (waiting, delayed, active, completed,
//!        │  failed; retries with backoff)  ◀── scheduler (scheduler.toml, cron) / CLI enqueue
//!        ▼
//!  processors: rollups (hourly, daily, profile, cost tables) → report (CSV, JSON, PDF) /
//!        export (streamed) → deliver: file (atomic, confined to reports/), e-mail
//! ```
//!
//! Modules in the order an event meets them; `app` composes the long-running parts and `commands`
//! maps each CLI subcommand onto them. `redis_conn` is the one Redis connection type, for a single
//! node or a Redis Cluster (SPEC section 15); `redis_limits` watches its memory and policy and
//! explains refused writes (SPEC section 13).

pub mod settings;
pub mod redis_conn;
pub mod redis_limits;
pub mod telemetry;
pub mod metrics;
pub mod shutdown;
pub mod domain;
pub mod stream;
pub mod store;
pub mod live;
pub mod queue;
pub mod processors;
pub mod report;
pub mod export;
pub mod deliver;
pub mod scheduler;
pub mod web;
pub mod app;
pub mod cli;
pub mod commands;
pub mod loadgen;
