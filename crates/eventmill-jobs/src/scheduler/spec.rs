//! A run-time schedule's definition ([`ScheduleSpec`]): what `jobs.schedules().upsert(..)`, the
//! CLI's `schedules add` and the board's form store in Redis, checked into a [`ScheduleEntry`]
//! like a `scheduler.toml` entry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DefinedIn, Misfire, ScheduleEntry, cron_expr::CronSchedule};
use crate::{job::JobTemplate, queue::Catalog};

/// A schedule defined at run time: a cron expression or a fixed interval, an optional timezone,
/// start and end time and limit on the number of runs, a misfire policy and a job template (the
/// object of a job file: `job_type`, its fields, relative dates, an optional `options` table).
///
/// ```
/// use std::time::Duration;
/// use eventmill_jobs::scheduler::{Misfire, ScheduleSpec};
/// use serde_json::json;
///
/// let nightly = ScheduleSpec::cron("0 2 * * *")
///     .timezone("Europe/Berlin")
///     .misfire(Misfire::Skip)
///     .job(json!({ "job_type": "DAILY_ROLLUP", "date": "yesterday", "options": { "priority": 1 } }));
/// let ping = ScheduleSpec::every(Duration::from_secs(30)).limit(10).job(json!({ "job_type": "PING" }));
/// assert_eq!(ping.every_secs, Some(30));
/// # let _ = nightly;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// A 5- or 6-field cron expression (or `every_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed interval in seconds (or `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u64>,
    /// IANA timezone of the cron expression (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// No tick before this time; an interval counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// No tick after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// At most this many ticks enqueue a job; then the schedule stays, ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What a tick missed while no scheduler ran becomes (default `run_once`).
    pub misfire: Misfire,
    /// The job each tick enqueues, as a job file's object.
    pub job: Value,
}

impl ScheduleSpec {
    /// Ticks on a cron expression (`"0 2 * * *"`, or 6 fields with seconds first).
    pub fn cron(expression: &str) -> Self {
        Self::new(Some(expression.to_owned()), None)
    }

    /// Ticks every `interval` (whole seconds), counted from the start time if any, else from
    /// the Unix epoch.
    pub fn every(interval: Duration) -> Self {
        // A sub-second interval is kept as 0 s, refused by `check` with its cause.
        Self::new(None, Some(if interval.subsec_nanos() == 0 { interval.as_secs() } else { 0 }))
    }

    fn new(cron: Option<String>, every_secs: Option<u64>) -> Self {
        Self {
            cron,
            every_secs,
            timezone: None,
            start: None,
            end: None,
            limit: None,
            misfire: Misfire::RunOnce,
            job: Value::Null,
        }
    }

    /// The IANA timezone its cron ticks follow.
    pub fn timezone(mut self, timezone: &str) -> Self {
        self.timezone = Some(timezone.to_owned());
        self
    }

    /// No tick before `start`.
    pub fn start(mut self, start: DateTime<Utc>) -> Self {
        self.start = Some(start);
        self
    }

    /// No tick after `end`.
    pub fn end(mut self, end: DateTime<Utc>) -> Self {
        self.end = Some(end);
        self
    }

    /// At most `runs` ticks enqueue a job.
    pub fn limit(mut self, runs: u64) -> Self {
        self.limit = Some(runs);
        self
    }

    /// What a missed tick becomes.
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// The job template: `{"job_type": KIND, field: value, ..., "options": {...}}`.
    pub fn job(mut self, job: Value) -> Self {
        self.job = job;
        self
    }

    /// The checked schedule `name` (an error names what is wrong and how to write it).
    pub fn check(&self, name: &str, catalog: &Catalog) -> Result<ScheduleEntry, String> {
        check_name(name)?;
        let tz_name = self.timezone.as_deref().unwrap_or("UTC");
        let timezone = tz_name.parse().map_err(|_| format!("unknown timezone {tz_name:?} (expected an IANA name)"))?;
        let timing = match (&self.cron, self.every_secs) {
            (Some(cron), None) => CronSchedule::parse(cron, timezone)?,
            (None, Some(secs)) => CronSchedule::every(Duration::from_secs(secs), timezone)?,
            _ => return Err("give exactly one of a cron expression or an interval (every 30s)".into()),
        };
        let cron = timing.between(self.start, self.end)?;
        if self.limit == Some(0) {
            return Err("a limit of 0 runs would never run: give at least 1, or no limit".into());
        }
        if self.job.is_null() {
            return Err("a schedule needs a job: {\"job_type\": KIND, field: value, ...}".into());
        }
        let job = JobTemplate::from_value(self.job.clone(), catalog).map_err(|e| format!("job: {e}"))?;
        Ok(ScheduleEntry {
            name: name.to_owned(),
            cron,
            job,
            misfire: self.misfire,
            limit: self.limit,
            defined_in: DefinedIn::Redis,
        })
    }
}

/// A schedule name: letters, digits, `-`, `_` or `.` (it is part of Redis keys and job keys).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("schedule name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}
