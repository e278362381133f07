//! Run-time schedules and every schedule's run-time state in Redis, under the schedules' own hash
//! tag `{<prefix>:schedules}`: the definitions (a hash by name), a version counter the running
//! schedulers poll every 2 s, the paused set, each schedule's run count and its ledger of due
//! ticks (a list capped at [`LEDGER_LEN`] entries).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::{DefinedIn, ScheduleEntry, ScheduleSpec, spec::check_name};
use crate::{
    queue::{Catalog, QueueError},
    redis_conn::RedisConn,
};

/// How many due ticks each schedule's ledger keeps (about 1 KB of Redis per 5 entries).
pub const LEDGER_LEN: usize = 100;

macro_rules! script {
    ($name:ident, $file:literal) => {
        static $name: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(include_str!($file)));
    };
}
script!(UPSERT, "upsert.lua");
script!(REMOVE, "remove.lua");
script!(LEDGER_PUSH, "ledger_push.lua");
script!(SET_PAUSED, "set_paused.lua");

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    /// The name was new.
    Created,
    /// The definition changed (running schedulers pick it up within ~2 s).
    Updated,
    /// The same definition was already stored: nothing changed.
    Unchanged,
}

/// Why a due tick enqueued no job, or why its job came late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickReason {
    /// The schedule was paused.
    Paused,
    /// No scheduler ran at the tick (the misfire policy skipped it, or enqueued it at start).
    Downtime,
    /// Redis did not answer at the tick (skipped, or enqueued at a later tick).
    RedisUnreachable,
}

/// One due tick of a schedule, as its ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// When the tick was due (UTC).
    pub due: DateTime<Utc>,
    /// `true`: the tick's job was enqueued (see `job`); `false`: skipped (see `reason`).
    pub enqueued: bool,
    /// Why it was skipped, or why its job came late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<TickReason>,
    /// When its job was enqueued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// How late the enqueue was, in milliseconds after `due`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<i64>,
    /// The job it enqueued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// How that job went (read from the job when the ledger is read: `completed`, `failed:
    /// <error>`, `removed` once retention dropped it...); never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The run-time schedules in Redis (`jobs.schedules()`): upsert, remove, list, pause and resume,
/// the ledgers. Cheap to clone.
#[derive(Clone)]
pub struct Schedules {
    redis: RedisConn,
    catalog: Arc<Catalog>,
    /// `{<prefix>:schedules}:`
    base: String,
}

impl Schedules {
    /// The schedules of `prefix` on `redis`; jobs are checked against `catalog`.
    pub fn new(redis: RedisConn, prefix: &str, catalog: Arc<Catalog>) -> Self {
        Self { redis, catalog, base: format!("{{{prefix}:schedules}}:") }
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", self.base)
    }

    /// Creates or replaces schedule `name` (checked first: a bad cron, timezone or job is an
    /// error naming it). Idempotent: several processes upserting the same definition at once
    /// leave one schedule, and its ticks one job each. A changed definition keeps the run count.
    pub async fn upsert(&self, name: &str, spec: &ScheduleSpec) -> Result<Upserted, QueueError> {
        spec.check(name, &self.catalog).map_err(|e| QueueError::Invalid(format!("schedule {name:?}: {e}")))?;
        let json = serde_json::to_string(spec).map_err(|e| QueueError::Invalid(e.to_string()))?;
        let done: i64 = UPSERT
            .key(self.key("defs"))
            .key(self.key("version"))
            .arg(name)
            .arg(json)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match done {
            1 => Upserted::Created,
            2 => Upserted::Updated,
            _ => Upserted::Unchanged,
        })
    }

    /// Removes run-time schedule `name` with its run count, ledger and pause; running schedulers
    /// stop it within ~2 s. `false` if there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, QueueError> {
        let removed: i64 = REMOVE
            .key(self.key("defs"))
            .key(self.key("version"))
            .key(self.runs_key(name))
            .key(self.ledger_key(name))
            .key(self.key("paused"))
            .arg(name)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Run-time schedule `name`'s definition.
    pub async fn get(&self, name: &str) -> Result<Option<ScheduleSpec>, QueueError> {
        let json: Option<String> = self.redis.clone().hget(self.key("defs"), name).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| QueueError::Invalid(format!("schedule {name:?}: {e}"))))
            .transpose()
    }

    /// Every run-time schedule's definition, by name.
    pub async fn list(&self) -> Result<Vec<(String, ScheduleSpec)>, QueueError> {
        let all: HashMap<String, String> = self.redis.clone().hgetall(self.key("defs")).await?;
        let mut specs = Vec::with_capacity(all.len());
        for (name, json) in all {
            match serde_json::from_str(&json) {
                Ok(spec) => specs.push((name, spec)),
                Err(error) => tracing::warn!(schedule = %name, %error, "unreadable run-time schedule skipped"),
            }
        }
        specs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(specs)
    }

    /// The run-time schedules, checked (one that no longer checks, say its kind was removed from
    /// the registry, is logged and left out).
    pub async fn entries(&self) -> Result<Vec<ScheduleEntry>, QueueError> {
        let mut entries = Vec::new();
        for (name, spec) in self.list().await? {
            match spec.check(&name, &self.catalog) {
                Ok(entry) => entries.push(entry),
                Err(error) => tracing::warn!(schedule = %name, %error, "run-time schedule does not check; not run"),
            }
        }
        Ok(entries)
    }

    /// The counter every change (upsert, remove, pause, resume) bumps: one GET tells a scheduler
    /// whether to reload.
    pub async fn version(&self) -> Result<u64, QueueError> {
        Ok(self.redis.clone().get::<_, Option<u64>>(self.key("version")).await?.unwrap_or(0))
    }

    /// Pauses (or resumes) schedule `name`, file or run-time: its ticks are skipped (and
    /// ledgered as `paused`) by every scheduler until resumed; kept in Redis across restarts.
    /// `true` if that changed anything.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, QueueError> {
        check_name(name).map_err(QueueError::Invalid)?;
        let changed: i64 = SET_PAUSED
            .key(self.key("paused"))
            .key(self.key("version"))
            .arg(name)
            .arg(if paused { "1" } else { "0" })
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(changed == 1)
    }

    /// Whether schedule `name` is paused.
    pub async fn is_paused(&self, name: &str) -> Result<bool, QueueError> {
        Ok(self.redis.clone().sismember(self.key("paused"), name).await?)
    }

    /// How many ticks of schedule `name` enqueued a job (what its limit counts).
    pub async fn runs(&self, name: &str) -> Result<u64, QueueError> {
        Ok(self.redis.clone().get::<_, Option<u64>>(self.runs_key(name)).await?.unwrap_or(0))
    }

    /// Schedule `name`'s recorded ticks, newest due first (outcomes not filled in).
    pub async fn ledger(&self, name: &str) -> Result<Vec<LedgerEntry>, QueueError> {
        let raw: Vec<String> = self.redis.clone().lrange(self.ledger_key(name), 0, LEDGER_LEN as isize - 1).await?;
        let mut entries: Vec<LedgerEntry> = raw.iter().filter_map(|j| serde_json::from_str(j).ok()).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.due));
        Ok(entries)
    }

    /// Records one due tick of `schedule`, once across every scheduler; `enqueued` counts it as
    /// a run (what a limit counts) in the same script. Nothing is written for a run-time schedule
    /// removed meanwhile (its tick passed the definition check just before the removal).
    pub(crate) async fn record(
        &self,
        schedule: &ScheduleEntry,
        entry: &LedgerEntry,
        enqueued: bool,
    ) -> Result<(), QueueError> {
        let json = serde_json::to_value(entry).map_err(|e| QueueError::Invalid(e.to_string()))?;
        let due = json["due"].as_str().unwrap_or_default().to_owned();
        let runtime = if schedule.defined_in == DefinedIn::Redis { schedule.name.as_str() } else { "" };
        let _: i64 = LEDGER_PUSH
            .key(self.ledger_key(&schedule.name))
            .key(self.key("defs"))
            .key(self.runs_key(&schedule.name))
            .arg(due)
            .arg(json.to_string())
            .arg(LEDGER_LEN)
            .arg(runtime)
            .arg(if enqueued { "1" } else { "0" })
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    fn runs_key(&self, name: &str) -> String {
        self.key(&format!("runs:{name}"))
    }

    fn ledger_key(&self, name: &str) -> String {
        self.key(&format!("ledger:{name}"))
    }
}
