//! Integration tests against real Redis and PostgreSQL (started by `scripts/test.sh`).
//! One binary; each module covers one stage of the flow.

mod helpers;
mod golden;

mod consumer;
mod ingest;
mod partitions;
mod reports;
mod exports;
mod email;
