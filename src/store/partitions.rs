//! Day partitions of `events`: created a few days ahead and on demand for late or backfilled days
//! inside the retention window, dropped once older than retention. Timestamps outside the window
//! land in `events_default`, whose size `/healthz/detailed` reports.

use std::{collections::HashSet, sync::Mutex};

use chrono::{DateTime, Days, NaiveDate, Utc};
// DDL cannot take bound parameters; every name and date below is formatted from a NaiveDate.
use sqlx::{AssertSqlSafe, PgPool};

use crate::settings::StorageSettings;

/// Remembers which partitions exist so the hot path asks PostgreSQL only about new days.
pub struct Partitions {
    pool: PgPool,
    retention_days: u64,
    ahead_days: u64,
    known: Mutex<HashSet<NaiveDate>>,
}

/// What one maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
}

/// The partition holding one UTC day, e.g. `events_p20260307`.
pub fn partition_name(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

impl Partitions {
    pub fn new(pool: PgPool, settings: &StorageSettings) -> Self {
        Self {
            pool,
            retention_days: settings.retention_days.into(),
            ahead_days: settings.partitions_ahead_days.into(),
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Whether a day gets its own partition (else the default partition holds it).
    pub fn in_window(&self, day: NaiveDate, today: NaiveDate) -> bool {
        let first = today.checked_sub_days(Days::new(self.retention_days)).unwrap_or(NaiveDate::MIN);
        let last = today.checked_add_days(Days::new(self.ahead_days)).unwrap_or(NaiveDate::MAX);
        (first..=last).contains(&day)
    }

    /// Creates the partitions the given event times (unix microseconds) need.
    pub async fn ensure_for(&self, times: impl Iterator<Item = i64>) -> Result<(), sqlx::Error> {
        let today = Utc::now().date_naive();
        let mut missing: Vec<NaiveDate> = {
            let known = self.known.lock().expect("partition cache lock");
            times
                .filter_map(|micros| DateTime::from_timestamp_micros(micros).map(|t| t.date_naive()))
                .filter(|day| !known.contains(day) && self.in_window(*day, today))
                .collect()
        };
        missing.sort_unstable();
        missing.dedup();
        for day in missing {
            self.create(day).await?;
        }
        Ok(())
    }

    /// Creates today's and the coming days' partitions and drops expired ones.
    #[tracing::instrument(skip_all)]
    pub async fn maintain(&self) -> Result<Maintenance, sqlx::Error> {
        let today = Utc::now().date_naive();
        let mut done = Maintenance::default();
        for ahead in 0..=self.ahead_days {
            let day = today + Days::new(ahead);
            if self.create(day).await? {
                done.created.push(partition_name(day));
            }
        }
        for (name, day) in self.existing().await? {
            if day < today && !self.in_window(day, today) {
                // Names come from our own pattern, never from input.
                sqlx::query(AssertSqlSafe(format!("ALTER TABLE events DETACH PARTITION {name}")))
                    .execute(&self.pool)
                    .await?;
                sqlx::query(AssertSqlSafe(format!("DROP TABLE {name}"))).execute(&self.pool).await?;
                self.known.lock().expect("partition cache lock").remove(&day);
                done.dropped.push(name);
            }
        }
        if !done.created.is_empty() || !done.dropped.is_empty() {
            tracing::info!(created = ?done.created, dropped = ?done.dropped, "partitions maintained");
        }
        Ok(done)
    }

    /// Day partitions that exist now.
    pub async fn existing(&self) -> Result<Vec<(String, NaiveDate)>, sqlx::Error> {
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = 'events' ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names
            .into_iter()
            .filter_map(|(name,)| {
                let day = NaiveDate::parse_from_str(name.strip_prefix("events_p")?, "%Y%m%d").ok()?;
                Some((name, day))
            })
            .collect())
    }

    /// Creates one day's partition unless it exists, moving rows of that day out of the default
    /// partition first (PostgreSQL refuses the partition while the default holds its rows).
    /// Returns whether it was created now.
    async fn create(&self, day: NaiveDate) -> Result<bool, sqlx::Error> {
        let name = partition_name(day);
        let next = day + Days::new(1);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('eventmill.partitions'))").execute(&mut *tx).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass($1)::text").bind(&name).fetch_one(&mut *tx).await?;
        if exists.is_none() {
            sqlx::query("CREATE TEMP TABLE moved_events (LIKE events) ON COMMIT DROP").execute(&mut *tx).await?;
            sqlx::query(AssertSqlSafe(format!(
                "WITH m AS (DELETE FROM events_default WHERE ts >= '{day} 00:00+00' AND ts < '{next} 00:00+00' RETURNING *) \
                 INSERT INTO moved_events SELECT * FROM m"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{day} 00:00+00') TO ('{next} 00:00+00')"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO events SELECT * FROM moved_events").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.known.lock().expect("partition cache lock").insert(day);
        Ok(exists.is_none())
    }
}
