//! The framework's integration tests, against real Redis only (no PostgreSQL): `scripts/test.sh`
//! runs them on one node and again on the local Redis Cluster. One binary; `support` is the harness.

mod support;

mod queue;
mod upgrade;
mod examples;
mod flows;
mod limits;
mod scheduler;
mod history;
mod workers;
mod prefetch;
mod layout;
mod schedule_processes;
mod wait;
mod slos;
mod dedup;
mod steps;
