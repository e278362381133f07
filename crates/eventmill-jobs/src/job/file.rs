//! Job files (`jobs/*.toml` or `.json`, SPEC section 7): one object, `job_type` (or `jobType`) plus
//! that kind's fields, snake_case or camelCase. The kind must be registered; the fields its
//! processor declares as dates or times may be relative, resolved when the job is enqueued (by the
//! CLI, or by the scheduler at its tick, in the schedule's timezone):
//! - dates (e.g. `date`, `start_date`, `end_date`): `"today"`, `"yesterday"`, `"-7d"`, `"+1d"`;
//! - times (e.g. `start_time`, `end_time`): `"now"` (the start of the current hour), `"-1h"`, `"-2d"`,
//!   counted in whole hours from the start of the current hour, so `start_time = "-1h"`,
//!   `end_time = "now"` is exactly the previous hour.

use std::{fmt, path::Path, sync::Arc};

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde_json::{Map, Value};

use super::{
    Job,
    checks::{MAX_FILE_BYTES, check_hostile},
    options::JobOptions,
};
use crate::queue::{Catalog, Kind, registry::checked_job};

/// A job as written in a file: its registered kind, relative values not yet resolved, and how to
/// enqueue it (the file's `options` table).
#[derive(Clone)]
pub struct JobTemplate {
    fields: Map<String, Value>,
    kind: Arc<dyn Kind>,
    options: JobOptions,
    /// A flow's children (`[[children]]`): this job runs once they all completed.
    children: Vec<JobTemplate>,
}

/// A job resolved for one enqueue: the job, how to enqueue it, and its flow children (each
/// resolved the same way; empty for a plain job).
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// The job, relative values resolved.
    pub job: Job,
    /// How to enqueue it.
    pub options: JobOptions,
    /// A flow's children (empty for a plain job).
    pub children: Vec<PlannedJob>,
}

/// Most children one flow may have (a year of daily rollups fits).
pub const MAX_CHILDREN: usize = 400;

impl fmt::Debug for JobTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobTemplate").field("fields", &self.fields).finish()
    }
}

impl JobTemplate {
    /// Reads a `.toml` or `.json` job file and checks it resolves to a valid job.
    pub fn from_file(path: &Path, registry: &Catalog) -> Result<Self, String> {
        let size = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
        if size > MAX_FILE_BYTES {
            return Err(format!("{} is {size} bytes; a job file may be at most {MAX_FILE_BYTES}", path.display()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: Value = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            _ => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        };
        Self::from_value(value, registry).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Builds a template from one object (an inline `[schedule.job]` table, a parsed file).
    pub fn from_value(value: Value, registry: &Catalog) -> Result<Self, String> {
        let Value::Object(mut fields) = value else { return Err("a job must be one object".into()) };
        check_hostile(&fields)?;
        if let Some(kind) = fields.remove("jobType") {
            if fields.contains_key("job_type") {
                return Err("give job_type or jobType, not both".into());
            }
            fields.insert("job_type".into(), kind);
        }
        let options = fields.remove("options").map(JobOptions::from_value).transpose()?.unwrap_or_default();
        let children = match fields.remove("children") {
            None => Vec::new(),
            Some(Value::Array(children)) => children_of(children, registry)?,
            Some(_) => return Err("children must be a list of jobs ([[children]] tables)".into()),
        };
        let kind = registry.kind_of(&fields)?.clone();
        let template = Self { fields, kind, options, children };
        template.resolve(Utc::now())?; // a bad file is an error now, not at 02:00
        Ok(template)
    }

    /// The job this template means at `now` (in `now`'s timezone).
    pub fn resolve<Tz: TimeZone>(&self, now: DateTime<Tz>) -> Result<Job, String> {
        let mut fields = self.fields.clone();
        let is = |names: &[&str], key: &str| names.iter().any(|n| *n == key || camel(n) == key);
        for (key, value) in fields.iter_mut() {
            let Value::String(text) = value else { continue };
            if is(self.kind.date_fields(), key) {
                if let Some(date) = relative_date(text, &now)? {
                    *value = Value::String(date);
                }
            } else if is(self.kind.time_fields(), key)
                && let Some(time) = relative_time(text, &now)?
            {
                *value = Value::String(time);
            }
        }
        checked_job(self.kind.as_ref(), fields)
    }

    /// The job's kind.
    pub fn kind(&self) -> &'static str {
        self.kind.name()
    }

    /// The job, its options and its flow children, as meant at `now`.
    pub fn plan<Tz: TimeZone>(&self, now: DateTime<Tz>) -> Result<PlannedJob, String> {
        let children = self.children.iter().map(|c| c.plan(now.clone())).collect::<Result<_, _>>()?;
        Ok(PlannedJob { job: self.resolve(now)?, options: self.options.clone(), children })
    }

    /// How the file asks for the job to be enqueued.
    pub fn options(&self) -> &JobOptions {
        &self.options
    }
}

/// A flow's children: jobs without children of their own (flows are one level deep).
fn children_of(children: Vec<Value>, registry: &Catalog) -> Result<Vec<JobTemplate>, String> {
    if children.is_empty() || children.len() > MAX_CHILDREN {
        return Err(format!("a flow needs 1 to {MAX_CHILDREN} children, not {}", children.len()));
    }
    let mut templates = Vec::with_capacity(children.len());
    for (i, child) in children.into_iter().enumerate() {
        let template = JobTemplate::from_value(child, registry).map_err(|e| format!("children[{i}]: {e}"))?;
        if !template.children.is_empty() {
            return Err(format!("children[{i}]: a child cannot have children of its own (flows are one level deep)"));
        }
        templates.push(template);
    }
    Ok(templates)
}

/// `start_date` -> `startDate`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        match (c, upper) {
            ('_', _) => upper = true,
            (c, true) => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            (c, false) => out.push(c),
        }
    }
    out
}

/// `today`, `yesterday`, `tomorrow`, `-7d`, `+1d` -> `YYYY-MM-DD`; `None` for an absolute date.
fn relative_date<Tz: TimeZone>(text: &str, now: &DateTime<Tz>) -> Result<Option<String>, String> {
    let days = match text.trim() {
        "today" => 0,
        "yesterday" => -1,
        "tomorrow" => 1,
        other => match offset(other, 'd') {
            Some(days) => days?,
            None => return Ok(None),
        },
    };
    Ok(Some((now.date_naive() + Duration::days(days)).to_string()))
}

/// `now`, `-1h`, `-2d` -> RFC 3339, from the start of the current hour; `None` for an absolute time.
fn relative_time<Tz: TimeZone>(text: &str, now: &DateTime<Tz>) -> Result<Option<String>, String> {
    let hour = now.with_timezone(&Utc).duration_trunc(Duration::hours(1)).map_err(|e| e.to_string())?;
    let shift = match text.trim() {
        "now" => Duration::zero(),
        other => match (offset(other, 'h'), offset(other, 'd')) {
            (Some(hours), _) => Duration::hours(hours?),
            (_, Some(days)) => Duration::days(days?),
            _ => return Ok(None),
        },
    };
    Ok(Some((hour + shift).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// `-7d` / `+2h` -> Some(Ok(-7)) for unit `d` / `h`; `None` when it is not that form.
fn offset(text: &str, unit: char) -> Option<Result<i64, String>> {
    let body = text.strip_suffix(unit)?;
    let (sign, digits) = match body.as_bytes().first()? {
        b'-' => (-1, &body[1..]),
        b'+' => (1, &body[1..]),
        _ => return None,
    };
    Some(digits.parse::<i64>().map(|n| sign * n).map_err(|_| format!("bad relative value {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn template(value: Value) -> Result<JobTemplate, String> {
        JobTemplate::from_value(value, &crate::test_kinds::registry())
    }

    #[test]
    fn relative_dates_resolve_at_enqueue_time() {
        let t = template(serde_json::json!({"jobType": "DAILY_ROLLUP", "date": "yesterday"})).unwrap();
        let job = t.resolve(at("2026-03-09T02:00:00Z")).unwrap();
        assert_eq!(job.payload["date"], "2026-03-08");
        let t = template(serde_json::json!({"job_type": "EXPORT_DATA", "data_type": "COSTS",
            "format": "CSV", "startDate": "-7d", "end_date": "today"}))
        .unwrap();
        let job = t.resolve(at("2026-03-09T02:00:00Z")).unwrap();
        assert_eq!(
            (job.kind, &job.payload["startDate"], &job.payload["end_date"]),
            ("EXPORT_DATA", &"2026-03-02".into(), &"2026-03-09".into())
        );
    }

    #[test]
    fn the_previous_hour_is_minus_one_hour_to_now() {
        let t =
            template(serde_json::json!({"job_type": "HOURLY_ROLLUP", "start_time": "-1h", "end_time": "now"})).unwrap();
        let job = t.resolve(at("2026-03-09T14:05:00Z")).unwrap();
        assert_eq!(
            (&job.payload["start_time"], &job.payload["end_time"]),
            (&"2026-03-09T13:00:00Z".into(), &"2026-03-09T14:00:00Z".into())
        );
    }

    #[test]
    fn a_bad_job_is_an_error_naming_the_problem() {
        let err = template(serde_json::json!({"job_type": "DAILY_ROLLUP", "date": "-xd"})).unwrap_err();
        assert!(err.contains("-xd"), "{err}");
        let err = template(serde_json::json!({"job_type": "NOPE"})).unwrap_err();
        assert!(err.contains("unknown job kind \"NOPE\""), "{err}");
    }

    #[test]
    fn camel_case_spellings_of_declared_fields_match() {
        assert_eq!(camel("start_date"), "startDate");
        assert_eq!(camel("date"), "date");
    }
}
