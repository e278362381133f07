//! Integration tests against real Redis and PostgreSQL (started by `scripts/test.sh`).
//! One binary; each module covers one stage of the flow.

mod browser;
mod golden;
mod fleet;
mod helpers;
mod jobs_support;
mod report_support;

mod admin_board;
mod admin_queues;
mod admin_schedules;
mod admin_stream;
mod admin_history;
mod analytics;
mod live_counts;
mod dashboard;
mod consumer;
mod ingest;
mod shards;
mod properties;
mod hostile;
mod faults_support;
mod faults;
mod cluster_support;
mod cluster_flow;
mod cluster;
mod outages;
mod redis_limits;
mod limits;
mod login;
mod private;
mod partitions;
mod reports;
mod freshness;
mod exports;
mod email;
mod cli;
mod bullmq;
mod priorities;
mod events;
mod flows;
mod custom_kind;
mod traces;

mod rollup;
mod scheduler;
mod processes;
mod compose;
mod schemathesis;
mod secrets;
mod confirm;
