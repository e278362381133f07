//! Every schedule as an operator sees it (the CLI's `schedules list|show`, the board's schedules
//! page and `/api/schedules`): file and run-time ones together, each with where it is defined,
//! its timing, pause, runs against its limit, next and last run and its last job.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{DefinedIn, LedgerEntry, Misfire, ScheduleEntry, Scheduler};
use crate::queue::QueueError;

/// One schedule's definition and run-time state.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    /// Its name.
    pub name: String,
    /// `file` (`scheduler.toml`, read-only at run time) or `redis` (a run-time schedule).
    pub defined_in: DefinedIn,
    /// The cron expression, or `every 30s`.
    pub cron: String,
    /// The IANA timezone its ticks follow.
    pub timezone: String,
    /// What a missed tick becomes.
    pub misfire: Misfire,
    /// No tick before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// No tick after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// At most this many ticks enqueue a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// How many ticks enqueued a job so far (what the limit counts).
    pub runs: u64,
    /// Paused: its ticks are skipped (and ledgered as `paused`) until resumed.
    pub paused: bool,
    /// Ended: its limit is used up or its end time is past; it stays listed, enqueuing nothing.
    pub ended: bool,
    /// The kind of job it enqueues.
    pub job_type: String,
    /// The next due tick (none once ended).
    pub next_run: Option<DateTime<Utc>>,
    /// The last tick enqueued or skipped.
    pub last_run: Option<DateTime<Utc>>,
    /// The job it enqueued last (by a tick or "run now").
    pub last_job: Option<String>,
}

/// One schedule with its definition's job template (run-time ones) and its ledger.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleDetail {
    /// Its state.
    #[serde(flatten)]
    pub status: ScheduleStatus,
    /// A run-time schedule's job template as stored (`job_type`, fields, `options`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Value>,
    /// Its recorded ticks, newest due first, each job's outcome filled in.
    pub ledger: Vec<LedgerEntry>,
}

impl Scheduler {
    /// `schedule`'s state at `now`.
    pub async fn status(&self, schedule: &ScheduleEntry, now: DateTime<Utc>) -> Result<ScheduleStatus, QueueError> {
        let store = self.store();
        let runs = store.runs(&schedule.name).await?;
        let next = schedule.cron.next_after(now);
        let ended = schedule.limit.is_some_and(|limit| runs >= limit) || next.is_none();
        Ok(ScheduleStatus {
            name: schedule.name.clone(),
            defined_in: schedule.defined_in,
            cron: schedule.cron.expression.clone(),
            timezone: schedule.cron.timezone.name().to_owned(),
            misfire: schedule.misfire,
            start: schedule.cron.start,
            end: schedule.cron.end,
            limit: schedule.limit,
            runs,
            paused: store.is_paused(&schedule.name).await?,
            ended,
            job_type: schedule.job.kind().to_owned(),
            next_run: if ended { None } else { next },
            last_run: self.last_run(&schedule.name).await?,
            last_job: self.last_job(&schedule.name).await?,
        })
    }

    /// Every schedule's state, the file's first, then the run-time ones by name.
    pub async fn statuses(&self) -> Result<Vec<ScheduleStatus>, QueueError> {
        let now = Utc::now();
        let mut all = Vec::new();
        for schedule in self.all().await? {
            all.push(self.status(&schedule, now).await?);
        }
        Ok(all)
    }

    /// Schedule `name` (file or run-time) with its ledger; an unknown name is an error listing
    /// the known ones.
    pub async fn detail(&self, name: &str) -> Result<ScheduleDetail, QueueError> {
        let schedule = self.find(name).await?;
        let job = match schedule.defined_in {
            DefinedIn::Redis => self.store().get(name).await?.map(|spec| spec.job),
            DefinedIn::File => None,
        };
        Ok(ScheduleDetail { status: self.status(&schedule, Utc::now()).await?, job, ledger: self.ledger(name).await? })
    }
}

/// `t` for people, relative to `now`: "in 3 min", "2 h ago", "just now", "in 5 d".
pub fn human_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let n = secs.unsigned_abs();
    let amount = match n {
        0..5 => return "just now".to_owned(),
        5..60 => format!("{n} s"),
        60..3600 => format!("{} min", n / 60),
        3600..86400 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86400),
    };
    if secs > 0 { format!("in {amount}") } else { format!("{amount} ago") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_for_people() {
        let now: DateTime<Utc> = "2026-12-05T08:00:00Z".parse().unwrap();
        let at = |s: i64| now + chrono::Duration::seconds(s);
        assert_eq!(human_time(at(180), now), "in 3 min");
        assert_eq!(human_time(at(-7200), now), "2 h ago");
        assert_eq!(human_time(at(2), now), "just now");
        assert_eq!(human_time(at(-30), now), "30 s ago");
        assert_eq!(human_time(at(3 * 86400 + 5), now), "in 3 d");
    }
}
