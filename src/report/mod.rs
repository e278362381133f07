//! rollups -> **report** -> deliver: each report type is computed from the rollup tables into a
//! format-neutral [`Report`] (title, period, KPIs, chart series, tables), then written as CSV, JSON
//! or PDF by `csv.rs`, `json.rs` and `pdf/`.
//!
//! Building a report reads only rollup tables, except for the few figures a rollup cannot answer
//! (distinct users over a whole period, revenue by source for a profile subset), which read raw
//! `events` with bound parameters. The same `Report` feeds every format, so CSV, JSON and PDF can
//! never disagree.

pub mod value;
pub mod freshness;
mod revenue;
mod engagement;
mod profile;
mod cost;
pub mod csv;
pub mod json;
pub mod pdf;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::job::{Format, GenerateReport, ReportType};
pub use value::Value;

/// A report, ready for any format.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub report_type: ReportType,
    pub title: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The profile filter the report was built with (none = all profiles).
    pub profile_ids: Option<Vec<String>>,
    pub generated_at: DateTime<Utc>,
    /// Every event stored before this instant is counted (set once the period's rollups were
    /// checked fresh, `freshness`); stated by every format and the e-mail.
    pub complete_to: Option<DateTime<Utc>>,
    pub kpis: Vec<Kpi>,
    pub charts: Vec<ChartSpec>,
    /// `tables[0]` is the per-day detail table; it alone makes the CSV file.
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
}

/// One headline figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    /// Stable machine name (JSON key), e.g. `revenue`.
    pub key: &'static str,
    pub label: &'static str,
    pub value: Value,
}

/// A named table of typed cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Stable machine name (JSON key), e.g. `revenue_by_day`.
    pub key: &'static str,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// A table column: machine name and human header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub key: &'static str,
    pub header: &'static str,
}

/// Data for one chart; the PDF draws it as vector graphics.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub bars: bool,
    pub labels: Vec<String>,
    pub series: Vec<(String, Vec<f64>)>,
}

/// What a report is asked for, checked at the boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    pub report_type: ReportType,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub profile_ids: Option<Vec<String>>,
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("invalid report request: {0}")]
    Invalid(String),
    #[error("database error while building the report: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error("cannot encode the report: {0}")]
    Encode(String),
}

/// Longest period one report may cover.
pub const MAX_REPORT_DAYS: i64 = 800;

impl ReportQuery {
    /// Checks the payload: `start <= end`, a bounded period, no empty profile ids.
    pub fn from_job(job: &GenerateReport) -> Result<Self, ReportError> {
        if job.start_date > job.end_date {
            return Err(ReportError::Invalid(format!(
                "start_date {} is after end_date {}",
                job.start_date, job.end_date
            )));
        }
        if (job.end_date - job.start_date).num_days() >= MAX_REPORT_DAYS {
            return Err(ReportError::Invalid(format!("a report covers at most {MAX_REPORT_DAYS} days")));
        }
        let profile_ids = match &job.profile_ids {
            Some(ids) if ids.iter().any(|id| id.trim().is_empty()) => {
                return Err(ReportError::Invalid("profile_ids holds an empty id".into()));
            }
            Some(ids) if ids.is_empty() => None,
            other => other.clone(),
        };
        Ok(Self { report_type: job.report_type, start: job.start_date, end: job.end_date, profile_ids })
    }
}

/// Human title of a report type.
pub fn title(report_type: ReportType) -> &'static str {
    match report_type {
        ReportType::RevenueSummary => "Revenue summary",
        ReportType::EngagementMetrics => "Engagement metrics",
        ReportType::ProfilePerformance => "Profile performance",
        ReportType::CostAnalysis => "Cost analysis",
    }
}

/// File-name slug of a report type, e.g. `revenue-summary`.
pub fn slug(report_type: ReportType) -> &'static str {
    match report_type {
        ReportType::RevenueSummary => "revenue-summary",
        ReportType::EngagementMetrics => "engagement-metrics",
        ReportType::ProfilePerformance => "profile-performance",
        ReportType::CostAnalysis => "cost-analysis",
    }
}

/// Computes the report from the rollup tables.
#[tracing::instrument(skip_all, fields(report_type = ?query.report_type, start = %query.start, end = %query.end))]
pub async fn build(pool: &PgPool, query: &ReportQuery) -> Result<Report, ReportError> {
    let mut report = match query.report_type {
        ReportType::RevenueSummary => revenue::build(pool, query).await?,
        ReportType::EngagementMetrics => engagement::build(pool, query).await?,
        ReportType::ProfilePerformance => profile::build(pool, query).await?,
        ReportType::CostAnalysis => cost::build(pool, query).await?,
    };
    let profile_filter_applies =
        matches!(query.report_type, ReportType::RevenueSummary | ReportType::ProfilePerformance);
    if query.profile_ids.is_some() && !profile_filter_applies {
        report.notes.push("The profile filter does not apply to this report type and was ignored.".into());
    }
    Ok(report)
}

/// Encodes the report in `format`.
pub fn render(report: &Report, format: Format) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Csv => csv::to_csv(report),
        Format::Json => json::to_json(report),
        Format::Pdf => Ok(pdf::render_pdf(&pdf::report_document(report))?),
    }
}

impl Report {
    /// An empty report of `query`'s type, stamped now; the builders fill it.
    fn new(query: &ReportQuery) -> Self {
        Self {
            report_type: query.report_type,
            title: title(query.report_type).to_owned(),
            start: query.start,
            end: query.end,
            profile_ids: query.profile_ids.clone(),
            generated_at: Utc::now(),
            complete_to: None,
            kpis: Vec::new(),
            charts: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// "2026-03-07 to 2026-03-09 (UTC)".
    pub fn period(&self) -> String {
        format!("{} to {} (UTC)", self.start, self.end)
    }

    /// "Data complete to 2026-12-01 21:49:58 UTC: ..." when known.
    pub fn completeness(&self) -> Option<String> {
        self.complete_to.map(|at| {
            format!(
                "Data complete to {}: every event stored before then is counted.",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            )
        })
    }

    fn kpi(&mut self, key: &'static str, label: &'static str, value: Value) {
        self.kpis.push(Kpi { key, label, value });
    }
}

/// Shorthand for building column lists.
fn columns(list: &[(&'static str, &'static str)]) -> Vec<Column> {
    list.iter().map(|&(key, header)| Column { key, header }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(start: u32, end: u32) -> GenerateReport {
        GenerateReport {
            report_type: ReportType::CostAnalysis,
            format: Format::Csv,
            start_date: NaiveDate::from_ymd_opt(2026, 3, start).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, end).unwrap(),
            profile_ids: Some(Vec::new()),
            recipient_email: Vec::new(),
            output_path: None,
        }
    }

    #[test]
    fn a_period_that_ends_before_it_starts_is_refused() {
        let err = ReportQuery::from_job(&job(9, 7)).unwrap_err();
        assert!(err.to_string().contains("after end_date"), "{err}");
    }

    #[test]
    fn an_empty_profile_list_means_every_profile() {
        assert_eq!(ReportQuery::from_job(&job(7, 9)).unwrap().profile_ids, None);
    }
}
