//! `eventmill enqueue rollup|report|export ...`: eventmill's shortcuts for its own kinds. Each
//! builds its job's object from typed flags; the framework's `enqueue` does the rest (the kind's
//! checks, relative dates, `--priority`/`--delay`/`--key`, `--wait`), as for `--file` and
//! `enqueue KIND field=value ...`.

use chrono::NaiveDate;
use eventmill_jobs::{
    cli::Shortcuts,
    job::{JobOptions, MAX_CHILDREN, PlannedJob},
};
use serde_json::{Value, json};

use crate::{
    cli::{ExportArgs, FileArgs, ReportArgs, RollupArgs, Shortcut},
    domain::job::Job,
    processors::{Analytics, DailyRollups, Exports, HourlyRollups, Reports},
    queue::{Catalog, Processor},
};

/// The name of eventmill's kind `P`.
const fn kind<P: Processor<Analytics>>() -> &'static str {
    P::NAME
}

impl Shortcuts for Shortcut {
    fn fields(&self) -> Result<Value, String> {
        match self {
            Shortcut::Rollup(rollup) => rollup_fields(rollup),
            Shortcut::Report(report) => Ok(report_fields(report)),
            Shortcut::Export(export) => export_fields(export),
        }
    }

    /// `enqueue report --after-rollups`: one daily rollup per day of the report's period first.
    fn children(&self, job: &Job, catalog: &Catalog) -> Result<Vec<PlannedJob>, String> {
        match self {
            Shortcut::Report(report) if report.after_rollups => daily_rollups(job, catalog),
            _ => Ok(Vec::new()),
        }
    }
}

fn missing(flag: &str) -> String {
    format!("{flag} is required")
}

fn rollup_fields(r: &RollupArgs) -> Result<Value, String> {
    if r.hourly {
        return Ok(json!({
            "job_type": kind::<HourlyRollups>(),
            "start_time": r.start.as_deref().ok_or_else(|| missing("--start"))?,
            "end_time": r.end.as_deref().ok_or_else(|| missing("--end"))?,
        }));
    }
    let mut job =
        json!({ "job_type": kind::<DailyRollups>(), "date": r.date.as_deref().ok_or_else(|| missing("--date"))? });
    if !r.profiles.is_empty() {
        job["profile_ids"] = json!(r.profiles);
    }
    Ok(job)
}

fn report_fields(r: &ReportArgs) -> Value {
    let mut job = json!({ "job_type": kind::<Reports>(), "report_type": r.report_type });
    r.file.fill(&mut job);
    if !r.profiles.is_empty() {
        job["profile_ids"] = json!(r.profiles);
    }
    if !r.emails.is_empty() {
        job["recipient_email"] = json!(r.emails);
    }
    job
}

fn export_fields(e: &ExportArgs) -> Result<Value, String> {
    let mut filters = serde_json::Map::new();
    let mut properties = serde_json::Map::new();
    for filter in &e.filters {
        let (key, value) = filter.split_once('=').ok_or_else(|| format!("--filter {filter:?}: expected key=value"))?;
        match key {
            "event_type" | "source" | "user_id" => filters.insert(key.into(), json!(value)),
            _ => properties.insert(key.into(), serde_json::from_str(value).unwrap_or_else(|_| json!(value))),
        };
    }
    if !properties.is_empty() {
        filters.insert("properties".into(), Value::Object(properties));
    }
    let mut job = json!({ "job_type": kind::<Exports>(), "data_type": e.data, "filters": filters });
    e.file.fill(&mut job);
    Ok(job)
}

/// One daily rollup child per day of the report's period (at most `MAX_CHILDREN`).
fn daily_rollups(report: &Job, catalog: &Catalog) -> Result<Vec<PlannedJob>, String> {
    let day = |field: &str| {
        report.payload[field]
            .as_str()
            .and_then(|d| d.parse::<NaiveDate>().ok())
            .ok_or_else(|| format!("--after-rollups needs the report's {field} as a date"))
    };
    let (from, to) = (day("start_date")?, day("end_date")?);
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).take(MAX_CHILDREN + 1).collect();
    if days.len() > MAX_CHILDREN {
        return Err(format!("--after-rollups covers at most {MAX_CHILDREN} days"));
    }
    days.into_iter()
        .map(|d| {
            let fields = json!({ "job_type": kind::<DailyRollups>(), "date": d.to_string() });
            let Value::Object(fields) = fields else { unreachable!("an object") };
            Ok(PlannedJob { job: catalog.job(fields)?, options: JobOptions::default(), children: Vec::new() })
        })
        .collect()
}

impl FileArgs {
    /// Sets the job's format, period and (when given) output path.
    fn fill(&self, job: &mut Value) {
        job["format"] = json!(self.format);
        job["start_date"] = json!(self.from);
        job["end_date"] = json!(self.to);
        if let Some(output) = &self.output {
            job["output_path"] = json!(output);
        }
    }
}
