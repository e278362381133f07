//! `scheduler.toml` (SPEC section 8): parsed and checked at start; a bad entry is an error naming
//! its schedule.
//!
//! ```toml
//! [[schedule]]
//! name = "daily-rollup"
//! cron = "0 2 * * *"            # 5-field crontab, or 6 fields with seconds first
//! timezone = "Europe/Berlin"    # IANA name, default UTC
//! job_file = "jobs/daily-rollup.toml"   # or an inline [schedule.job] table
//! misfire = "run_once"          # or "skip": what to do with runs missed while down
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cron_expr::CronSchedule;
use crate::{job::JobTemplate, queue::Catalog};

/// What to do, at start, with runs missed while no scheduler was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Enqueue the latest missed run, once.
    RunOnce,
    /// Enqueue nothing; wait for the next tick.
    Skip,
}

/// One checked schedule.
#[derive(Debug, Clone)]
pub struct ScheduleEntry {
    /// Unique name (shown in listings, part of each tick's job key).
    pub name: String,
    /// When it ticks, in its timezone.
    pub cron: CronSchedule,
    /// The job each tick enqueues (relative dates resolved at the tick).
    pub job: JobTemplate,
    /// What a tick missed while no scheduler ran becomes.
    pub misfire: Misfire,
    /// At most this many ticks enqueue a job (run-time schedules; `None` = no limit).
    pub limit: Option<u64>,
    /// Where it is defined: `scheduler.toml` (read-only at run time) or Redis.
    pub defined_in: DefinedIn,
}

/// Where a schedule is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefinedIn {
    /// `scheduler.toml`: changed by editing the file (read-only on the board and the CLI).
    File,
    /// Redis, at run time (`jobs.schedules().upsert`, `schedules add`, the board's form).
    Redis,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    schedule: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    cron: String,
    timezone: Option<String>,
    job_file: Option<PathBuf>,
    job: Option<serde_json::Value>,
    misfire: Option<Misfire>,
}

/// Reads and checks a scheduler file; `job_file` paths are relative to the file's folder, and
/// every job must be of a kind in `registry`.
pub fn load(path: &Path, registry: &Catalog) -> Result<Vec<ScheduleEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")), registry).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses scheduler TOML; `base` is the folder `job_file` paths are relative to.
pub fn parse(text: &str, base: &Path, registry: &Catalog) -> Result<Vec<ScheduleEntry>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut entries: Vec<ScheduleEntry> = Vec::new();
    for raw in file.schedule {
        let name = raw.name.clone();
        let entry = check(raw, base, registry).map_err(|e| format!("schedule {name:?}: {e}"))?;
        if entries.iter().any(|e| e.name == entry.name) {
            return Err(format!("schedule {name:?} is defined twice"));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn check(raw: RawEntry, base: &Path, registry: &Catalog) -> Result<ScheduleEntry, String> {
    if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("name must be letters, digits, '-', '_' or '.'".into());
    }
    let tz_name = raw.timezone.as_deref().unwrap_or("UTC");
    let timezone = tz_name.parse().map_err(|_| format!("unknown timezone {tz_name:?} (expected an IANA name)"))?;
    let cron = CronSchedule::parse(&raw.cron, timezone)?;
    let job = match (raw.job_file, raw.job) {
        (Some(file), None) => JobTemplate::from_file(&base.join(file), registry)?,
        (None, Some(job)) => JobTemplate::from_value(job, registry)?,
        _ => return Err("give exactly one of job_file or an inline [schedule.job]".into()),
    };
    Ok(ScheduleEntry {
        name: raw.name,
        cron,
        job,
        misfire: raw.misfire.unwrap_or(Misfire::RunOnce),
        limit: None,
        defined_in: DefinedIn::File,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_entry_is_an_error_naming_the_schedule() {
        let registry = crate::test_kinds::registry();
        let bad = |body: &str| {
            parse(&format!("[[schedule]]\nname = \"nightly\"\n{body}"), Path::new("."), &registry).unwrap_err()
        };
        let job = "[schedule.job]\njob_type = \"DAILY_ROLLUP\"\ndate = \"yesterday\"";
        assert!(bad(&format!("cron = \"0 2 * *\"\n{job}")).contains("schedule \"nightly\": cron"));
        assert!(bad(&format!("cron = \"0 2 * * *\"\ntimezone = \"Mars/Base\"\n{job}")).contains("Mars/Base"));
        let unknown = bad("cron = \"0 2 * * *\"\n[schedule.job]\njob_type = \"NOPE\"");
        assert!(unknown.contains("nightly") && unknown.contains("unknown job kind \"NOPE\""), "{unknown}");
        assert!(bad("cron = \"0 2 * * *\"").contains("job_file"));
    }
}
