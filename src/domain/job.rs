//! Jobs (SPEC section 7): the analytics kinds' payloads as small serde structs (a checked [`Job`]
//! of any kind is the framework's). Field names are snake_case; the camelCase names of the seed's
//! BullMQ payloads are accepted as aliases. These are the resolved forms: relative dates of job
//! files ("today", "-7d") are resolved before a payload is built.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

pub use eventmill_jobs::Job;

/// Recompute the hourly rollup rows of every hour in `[start_time, end_time)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlyRollup {
    #[serde(alias = "startTime")]
    pub start_time: DateTime<Utc>,
    #[serde(alias = "endTime")]
    pub end_time: DateTime<Utc>,
}

/// Recompute one UTC day's daily rollups; with `profile_ids`, only those profiles' profile rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyRollup {
    pub date: NaiveDate,
    #[serde(default, alias = "profileIds", skip_serializing_if = "Option::is_none")]
    pub profile_ids: Option<Vec<String>>,
}

/// Build one report file (and optionally e-mail it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateReport {
    #[serde(alias = "reportType")]
    pub report_type: ReportType,
    pub format: Format,
    #[serde(alias = "startDate")]
    pub start_date: NaiveDate,
    #[serde(alias = "endDate")]
    pub end_date: NaiveDate,
    #[serde(default, alias = "profileIds", skip_serializing_if = "Option::is_none")]
    pub profile_ids: Option<Vec<String>>,
    /// One address or a list; empty means no e-mail.
    #[serde(
        default,
        alias = "recipientEmail",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub recipient_email: Vec<String>,
    /// Relative to the reports folder; must stay inside it.
    #[serde(default, alias = "outputPath", skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
}

/// Export raw events of a date range to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportData {
    #[serde(alias = "dataType")]
    pub data_type: ExportDataType,
    pub format: Format,
    #[serde(alias = "startDate")]
    pub start_date: NaiveDate,
    #[serde(alias = "endDate")]
    pub end_date: NaiveDate,
    #[serde(default, skip_serializing_if = "ExportFilters::is_empty")]
    pub filters: ExportFilters,
    #[serde(default, alias = "outputPath", skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
}

/// Filters of an export: all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFilters {
    /// An event type name (checked as such: a value no event can have is a mistake, not a filter).
    #[serde(default, alias = "eventType", deserialize_with = "optional_name", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, deserialize_with = "optional_name", skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, alias = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `properties.<key>` must equal the value (compared as JSON).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl ExportFilters {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportType {
    RevenueSummary,
    EngagementMetrics,
    ProfilePerformance,
    CostAnalysis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportDataType {
    Engagement,
    Transactions,
    Costs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum Format {
    Csv,
    Json,
    Pdf,
}

impl Format {
    /// File extension for this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Pdf => "pdf",
        }
    }
}

fn optional_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(value) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    super::Name::parse(value.clone())
        .map_err(|reason| serde::de::Error::custom(format!("filter {value:?} {reason}")))?;
    Ok(Some(value))
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(value: serde_json::Value) -> Result<Job, String> {
        let serde_json::Value::Object(fields) = value else { unreachable!() };
        crate::processors::registry().job(fields)
    }

    #[test]
    fn the_seed_camel_case_payloads_are_accepted() {
        let job = job(json!({"job_type":"GENERATE_REPORT","reportType":"PROFILE_PERFORMANCE","format":"PDF",
            "startDate":"2026-01-01","endDate":"2026-01-31","recipientEmail":"a@example.com"}))
        .unwrap();
        let report: GenerateReport = serde_json::from_value(json!({
            "report_type": job.payload["report_type"], "format": job.payload["format"],
            "start_date": job.payload["start_date"], "end_date": job.payload["end_date"],
            "recipient_email": job.payload["recipient_email"]}))
        .unwrap();
        assert_eq!(report.recipient_email, vec!["a@example.com"]);
        assert_eq!(report.report_type, ReportType::ProfilePerformance);
        assert_eq!(job.payload["job_type"], "GENERATE_REPORT");
    }

    #[test]
    fn unknown_fields_and_kinds_are_errors() {
        assert!(job(json!({"job_type":"DAILY_ROLLUP","date":"2026-01-01","x":1})).is_err());
        let err = job(json!({"job_type":"NOPE"})).unwrap_err();
        assert!(err.contains("\"NOPE\"") && err.contains("DAILY_ROLLUP"), "{err}");
    }
}
