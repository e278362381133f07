//! PostgreSQL: the `events` table partitioned by day, written with binary COPY.
//!
//! `copy` encodes rows in COPY's binary format; `writer` stores a batch exactly once (a fast COPY,
//! a duplicate-skipping path for re-deliveries and re-sends, and isolation of rows PostgreSQL
//! refuses); `partitions` creates day partitions ahead and on demand and drops expired ones.

pub mod copy;
pub mod partitions;
pub mod wait;
pub mod writer;

use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::{PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

pub use partitions::Partitions;
pub use writer::{RowFailure, StoreError, Written, write_rows};

/// Migrations compiled into the binary (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// One row of `events`, as the stream carries it (field names are the entry's short keys).
#[derive(Debug, Clone, Deserialize)]
pub struct EventRow {
    #[serde(rename = "id")]
    pub event_id: Uuid,
    #[serde(rename = "t")]
    pub event_type: String,
    /// Event time, unix microseconds.
    #[serde(rename = "ts")]
    pub ts_micros: i64,
    #[serde(rename = "u", default)]
    pub user_id: Option<String>,
    #[serde(rename = "s", default)]
    pub session_id: Option<String>,
    #[serde(rename = "src")]
    pub source: String,
    #[serde(rename = "p")]
    pub properties: Box<RawValue>,
    /// Arrival time, unix microseconds.
    #[serde(rename = "at")]
    pub ingested_micros: i64,
}

/// Opens the pool; fails fast with the URL's host in the message when PostgreSQL is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
}

/// A pool that connects on first use: the HTTP API starts (and reports 503 in health) while
/// PostgreSQL is down.
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_lazy(url)
}

/// Applies pending migrations (idempotent; sqlx holds an advisory lock while it runs).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
