//! Stores a batch of rows exactly once.
//!
//! The fast path is one binary COPY (one commit per batch). If PostgreSQL reports a duplicate key
//! (a re-delivered entry after a crash between commit and XACK, or a client re-sending event ids)
//! the batch goes through a temporary table and `INSERT .. ON CONFLICT DO NOTHING`. If it refuses a
//! row's data, the batch is split in halves until the refused rows are isolated, so one bad row
//! costs a few dozen small transactions, not one per row; the good rows are stored.
//!
//! The duplicate-skipping path also reports the rows another entry stored before (a client
//! re-send: same key, another arrival time), which the live counters must not count again; a row
//! found stored with its own arrival time was committed by an earlier delivery of the same entry,
//! which was never acknowledged, so it was never counted.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use super::{EventRow, copy};

/// A row PostgreSQL refused, by its index in the batch, with PostgreSQL's reason.
#[derive(Debug, Clone)]
pub struct RowFailure {
    pub index: usize,
    pub reason: String,
}

/// What a batch's write did.
#[derive(Debug, Default)]
pub struct Written {
    /// Rows PostgreSQL refused.
    pub refused: Vec<RowFailure>,
    /// Indexes of rows another stream entry had stored already (not new, not to be counted).
    pub already_stored: Vec<usize>,
}

/// The database could not take the batch at all; nothing is lost, the caller retries later.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL is unavailable: {0}")]
pub struct StoreError(#[from] pub sqlx::Error);

/// What a database error means for the batch that caused it.
enum ErrorKind {
    Duplicate,
    RowRefused,
    Unavailable,
}

impl ErrorKind {
    fn of(error: &sqlx::Error) -> Self {
        let sqlx::Error::Database(db) = error else { return Self::Unavailable };
        match db.code().as_deref() {
            Some("23505") => Self::Duplicate,
            // data exceptions, integrity violations, program limits, errors raised by triggers
            Some(code) if ["22", "23", "54", "P0"].iter().any(|class| code.starts_with(class)) => Self::RowRefused,
            // connection, resources, operator intervention, missing schema...: retry the batch later
            _ => Self::Unavailable,
        }
    }
}

/// Stores `rows` (sorted by time by the caller: in-order index inserts are three times cheaper).
/// Returns the rows PostgreSQL refused; all others are committed once.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn write_rows(pool: &PgPool, rows: &[&EventRow]) -> Result<Written, StoreError> {
    let error = match copy_rows(pool, rows).await {
        Ok(()) => return Ok(Written::default()),
        Err(error) => error,
    };
    match ErrorKind::of(&error) {
        ErrorKind::Unavailable => Err(StoreError(error)),
        ErrorKind::Duplicate | ErrorKind::RowRefused => {
            tracing::info!(%error, "batch not stored by the fast path; storing it row-safely");
            isolate_refused_rows(pool, rows).await
        }
    }
}

/// Splits the batch until every refused row stands alone; good halves commit as they go.
async fn isolate_refused_rows(pool: &PgPool, rows: &[&EventRow]) -> Result<Written, StoreError> {
    let mut written = Written::default();
    let mut ranges = vec![(0, rows.len())];
    while let Some((start, end)) = ranges.pop() {
        let error = match copy_rows_skipping_duplicates(pool, &rows[start..end]).await {
            Ok(skipped) => {
                written.already_stored.extend(skipped.into_iter().map(|i| start + i));
                continue;
            }
            Err(error) => error,
        };
        match ErrorKind::of(&error) {
            ErrorKind::Unavailable | ErrorKind::Duplicate => return Err(StoreError(error)),
            ErrorKind::RowRefused if end - start == 1 => {
                written.refused.push(RowFailure { index: start, reason: database_message(&error) });
            }
            ErrorKind::RowRefused => {
                let mid = start + (end - start) / 2;
                ranges.push((mid, end));
                ranges.push((start, mid));
            }
        }
    }
    Ok(written)
}

async fn copy_rows(pool: &PgPool, rows: &[&EventRow]) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    copy_into(&mut conn, "events", rows).await
}

/// Returns the indexes of the rows another entry had stored (same key, another arrival time).
async fn copy_rows_skipping_duplicates(pool: &PgPool, rows: &[&EventRow]) -> Result<Vec<usize>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    copy_into(&mut tx, "incoming_events", rows).await?;
    // The outer query sees `events` as it was before the CTE's insert: a row found there with the
    // incoming arrival time was stored by an earlier delivery of the same entry.
    let insert = format!(
        "WITH inserted AS (INSERT INTO events ({cols}) SELECT {cols} FROM incoming_events ORDER BY ts \
         ON CONFLICT DO NOTHING RETURNING event_id, ts, ingested_at) \
         SELECT i.event_id, i.ingested_at FROM incoming_events i \
         WHERE NOT EXISTS (SELECT 1 FROM inserted n \
                           WHERE n.event_id = i.event_id AND n.ts = i.ts AND n.ingested_at = i.ingested_at) \
           AND NOT EXISTS (SELECT 1 FROM events e \
                           WHERE e.event_id = i.event_id AND e.ts = i.ts AND e.ingested_at = i.ingested_at)",
        cols = copy::COLUMNS
    );
    let skipped: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as(AssertSqlSafe(insert)).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let index: HashMap<(Uuid, i64), usize> =
        rows.iter().enumerate().map(|(i, r)| ((r.event_id, r.ingested_micros), i)).collect();
    Ok(skipped.iter().filter_map(|(id, at)| index.get(&(*id, at.timestamp_micros())).copied()).collect())
}

async fn copy_into(conn: &mut PgConnection, table: &str, rows: &[&EventRow]) -> Result<(), sqlx::Error> {
    let statement = format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", copy::COLUMNS);
    let mut copy_in = conn.copy_in_raw(&statement).await?;
    copy_in.send(copy::encode(rows.iter().copied())).await?;
    copy_in.finish().await?;
    Ok(())
}

fn database_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => {
            format!("PostgreSQL refused the row ({}): {}", db.code().unwrap_or_default(), db.message())
        }
        other => other.to_string(),
    }
}
