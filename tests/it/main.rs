//! Integration tests against real Redis and PostgreSQL (started by `scripts/test.sh`).
//! One binary; each module covers one stage of the flow.

mod helpers;

mod consumer;
mod ingest;
mod partitions;
mod golden;
mod reports;
mod exports;
mod email;
