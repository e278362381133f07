//! Job files (`jobs/*.toml` or `.json`, SPEC section 7): one object, `job_type` (or `jobType`) plus
//! that kind's fields, snake_case or camelCase. Dates and times may be relative, resolved when the
//! job is enqueued (by the CLI, or by the scheduler at its tick, in the schedule's timezone):
//! - dates (`date`, `start_date`, `end_date`): `"today"`, `"yesterday"`, `"-7d"`, `"+1d"`;
//! - times (`start_time`, `end_time`): `"now"` (the start of the current hour), `"-1h"`, `"-2d"`,
//!   counted in whole hours from the start of the current hour, so `start_time = "-1h"`,
//!   `end_time = "now"` is exactly the previous hour.

use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde_json::{Map, Value};

use super::job::JobSpec;

/// A job as written in a file: relative values not yet resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTemplate {
    fields: Map<String, Value>,
}

/// Largest job file read: real ones are a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Deepest nesting of arrays and objects accepted in a job (real ones nest two levels).
pub const MAX_DEPTH: usize = 8;

const DATE_FIELDS: [&str; 5] = ["date", "start_date", "end_date", "startDate", "endDate"];
const TIME_FIELDS: [&str; 4] = ["start_time", "end_time", "startTime", "endTime"];

impl JobTemplate {
    /// Reads a `.toml` or `.json` job file and checks it resolves to a valid job.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let size = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
        if size > MAX_FILE_BYTES {
            return Err(format!("{} is {size} bytes; a job file may be at most {MAX_FILE_BYTES}", path.display()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: Value = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            _ => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        };
        Self::from_value(value).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Builds a template from one object (an inline `[schedule.job]` table, a parsed file).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut fields) = value else { return Err("a job must be one object".into()) };
        check_hostile(&fields)?;
        if let Some(kind) = fields.remove("jobType") {
            if fields.contains_key("job_type") {
                return Err("give job_type or jobType, not both".into());
            }
            fields.insert("job_type".into(), kind);
        }
        let template = Self { fields };
        template.resolve(Utc::now())?; // a bad file is an error now, not at 02:00
        Ok(template)
    }

    /// The job this template means at `now` (in `now`'s timezone).
    pub fn resolve<Tz: TimeZone>(&self, now: DateTime<Tz>) -> Result<JobSpec, String> {
        let mut fields = self.fields.clone();
        for (key, value) in fields.iter_mut() {
            let Value::String(text) = value else { continue };
            if DATE_FIELDS.contains(&key.as_str()) {
                if let Some(date) = relative_date(text, &now)? {
                    *value = Value::String(date);
                }
            } else if TIME_FIELDS.contains(&key.as_str())
                && let Some(time) = relative_time(text, &now)?
            {
                *value = Value::String(time);
            }
        }
        serde_json::from_value(Value::Object(fields)).map_err(|e| format!("not a valid job: {e}"))
    }

    /// The `job_type` written in the file.
    pub fn kind(&self) -> &str {
        self.fields.get("job_type").and_then(Value::as_str).unwrap_or("?")
    }
}

/// Refuses what would be accepted now and fail (or do harm) later: nesting past [`MAX_DEPTH`], NUL
/// characters (PostgreSQL cannot bind them), and recipient strings that are not one address
/// (CR/LF could inject mail headers; a comma or semicolon hides several addresses in one entry).
fn check_hostile(fields: &Map<String, Value>) -> Result<(), String> {
    fn walk(value: &Value, path: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{path} nests deeper than {MAX_DEPTH} levels"));
        }
        match value {
            Value::String(s) if s.contains('\0') => Err(format!("{path} contains a NUL character")),
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, path, depth + 1)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                if k.contains('\0') {
                    return Err(format!("a key in {path} contains a NUL character"));
                }
                walk(v, &format!("{path}.{k}"), depth + 1)
            }),
            _ => Ok(()),
        }
    }
    for (key, value) in fields {
        walk(value, key, 1)?;
    }
    let output = fields.get("output_path").or_else(|| fields.get("outputPath")).and_then(Value::as_str);
    if let Some(path) = output.filter(|p| leaves_folder(p)) {
        // Symlinks are checked again when the file is written: only then is the folder's state known.
        return Err(format!(
            "output_path {path:?} leaves the reports folder: give a path relative to it, without `..`"
        ));
    }
    let recipients = fields.get("recipient_email").or_else(|| fields.get("recipientEmail"));
    let addresses: Vec<&str> = match recipients {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(bad) = addresses.iter().find(|a| a.contains(['\r', '\n', ',', ';'])) {
        return Err(format!(
            "recipient_email {bad:?} is not one address: give each address as its own list entry, \
             without line breaks, commas or semicolons"
        ));
    }
    Ok(())
}

fn leaves_folder(path: &str) -> bool {
    Path::new(path).components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
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
    use crate::domain::job::JobSpec;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn relative_dates_resolve_at_enqueue_time() {
        let t = JobTemplate::from_value(serde_json::json!({"jobType": "DAILY_ROLLUP", "date": "yesterday"})).unwrap();
        let JobSpec::DailyRollup(job) = t.resolve(at("2026-03-09T02:00:00Z")).unwrap() else { panic!() };
        assert_eq!(job.date.to_string(), "2026-03-08");
        let t = JobTemplate::from_value(serde_json::json!({"job_type": "EXPORT_DATA", "data_type": "COSTS",
            "format": "CSV", "start_date": "-7d", "end_date": "today"}))
        .unwrap();
        let JobSpec::ExportData(job) = t.resolve(at("2026-03-09T02:00:00Z")).unwrap() else { panic!() };
        assert_eq!((job.start_date.to_string(), job.end_date.to_string()), ("2026-03-02".into(), "2026-03-09".into()));
    }

    #[test]
    fn the_previous_hour_is_minus_one_hour_to_now() {
        let t = JobTemplate::from_value(
            serde_json::json!({"job_type": "HOURLY_ROLLUP", "start_time": "-1h", "end_time": "now"}),
        )
        .unwrap();
        let JobSpec::HourlyRollup(job) = t.resolve(at("2026-03-09T14:05:00Z")).unwrap() else { panic!() };
        assert_eq!((job.start_time, job.end_time), (at("2026-03-09T13:00:00Z"), at("2026-03-09T14:00:00Z")));
    }

    #[test]
    fn a_bad_job_is_an_error_naming_the_problem() {
        let err = JobTemplate::from_value(serde_json::json!({"job_type": "DAILY_ROLLUP", "date": "-xd"})).unwrap_err();
        assert!(err.contains("-xd"), "{err}");
        assert!(JobTemplate::from_value(serde_json::json!({"job_type": "NOPE"})).is_err());
    }

    #[test]
    fn hostile_values_are_refused_before_anything_runs() {
        let report = |recipient: &str| {
            serde_json::json!({"job_type": "GENERATE_REPORT", "report_type": "REVENUE_SUMMARY", "format": "CSV",
                "start_date": "-7d", "end_date": "today", "recipient_email": recipient})
        };
        for bad in ["a@example.com\r\nBcc: b@example.com", "a@example.com, b@example.com", "a@x.io;b@x.io"] {
            let err = JobTemplate::from_value(report(bad)).unwrap_err();
            assert!(err.contains("not one address"), "{err}");
        }
        assert!(JobTemplate::from_value(report("Ann <ann@example.com>")).is_ok());
        let mut deep = serde_json::json!("x");
        for _ in 0..20 {
            deep = serde_json::json!([deep]);
        }
        let err = JobTemplate::from_value(serde_json::json!({"job_type": "DAILY_ROLLUP", "date": "today",
            "profile_ids": deep}))
        .unwrap_err();
        assert!(err.contains("nests deeper"), "{err}");
        let nul = serde_json::json!({"job_type": "DAILY_ROLLUP", "date": "today", "profile_ids": ["a\u{0}b"]});
        assert!(JobTemplate::from_value(nul).unwrap_err().contains("NUL"));
    }
}
