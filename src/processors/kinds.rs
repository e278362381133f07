//! The four analytics job kinds as `Processor` registrations: name, queue, payload, the fields
//! job files may write as relative dates, and the handler each runs.

use std::time::Duration;

use eventmill_jobs::queue::Slo;
use serde_json::Value;

use super::{Analytics, JobContext, JobError, JobOutput, REPORTS_QUEUE, ROLLUP_QUEUE, export, report, rollup};
use crate::{
    domain::{
        job::{DailyRollup, ExportData, GenerateReport, HourlyRollup},
        job_checks::{check_output_path, check_recipients},
    },
    queue::Processor,
};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// HOURLY_ROLLUP: recompute `rollup_hourly` for a window.
pub struct HourlyRollups;

impl Processor<Analytics> for HourlyRollups {
    type Payload = HourlyRollup;
    const NAME: &'static str = "HOURLY_ROLLUP";
    const QUEUE: &'static str = ROLLUP_QUEUE;
    const SLOS: &'static [Slo] = &[Slo::wait_p95(secs(10), HOUR), Slo::run_p95(secs(60), HOUR)];
    const TIME_FIELDS: &'static [&'static str] = &["start_time", "end_time"];

    async fn process(&self, ctx: &JobContext, payload: HourlyRollup) -> Result<Value, JobError> {
        rollup::hourly(&payload, ctx).await
    }
}

/// DAILY_ROLLUP: recompute one UTC day's daily, summary, profile and cost rollups.
pub struct DailyRollups;

impl Processor<Analytics> for DailyRollups {
    type Payload = DailyRollup;
    const NAME: &'static str = "DAILY_ROLLUP";
    const QUEUE: &'static str = ROLLUP_QUEUE;
    const SLOS: &'static [Slo] = &[Slo::wait_p95(secs(60), DAY), Slo::run_p95(secs(600), DAY)];
    const DATE_FIELDS: &'static [&'static str] = &["date"];

    async fn process(&self, ctx: &JobContext, payload: DailyRollup) -> Result<Value, JobError> {
        rollup::daily(&payload, ctx).await
    }
}

/// GENERATE_REPORT: a report file (CSV, JSON, PDF), optionally e-mailed.
pub struct Reports;

impl Processor<Analytics> for Reports {
    type Payload = GenerateReport;
    const NAME: &'static str = "GENERATE_REPORT";
    const QUEUE: &'static str = REPORTS_QUEUE;
    const SLOS: &'static [Slo] = &[Slo::wait_p95(secs(120), HOUR), Slo::run_p95(secs(300), HOUR)];
    const DATE_FIELDS: &'static [&'static str] = &["start_date", "end_date"];

    fn check(&self, job: &GenerateReport) -> Result<(), String> {
        check_output_path(job.output_path.as_deref())?;
        check_recipients(&job.recipient_email)
    }

    async fn process(&self, ctx: &JobContext, payload: GenerateReport) -> Result<Value, JobError> {
        report::generate_report(ctx, &payload).await.map(JobOutput::into_result)
    }
}

/// EXPORT_DATA: raw events of a period streamed to a file.
pub struct Exports;

impl Processor<Analytics> for Exports {
    type Payload = ExportData;
    const NAME: &'static str = "EXPORT_DATA";
    const QUEUE: &'static str = REPORTS_QUEUE;
    const SLOS: &'static [Slo] = &[Slo::wait_p95(secs(300), HOUR), Slo::run_p95(secs(900), HOUR)];
    const DATE_FIELDS: &'static [&'static str] = &["start_date", "end_date"];

    fn check(&self, job: &ExportData) -> Result<(), String> {
        check_output_path(job.output_path.as_deref())
    }

    async fn process(&self, ctx: &JobContext, payload: ExportData) -> Result<Value, JobError> {
        export::export_data(ctx, &payload).await.map(JobOutput::into_result)
    }
}
