//! `GENERATE_REPORT` handler: rollups -> report -> file (atomic, inside the reports folder) ->
//! optional e-mail.
//!
//! Everything that can make the job fail for good is checked before any work: the period, the
//! output path, the recipients and whether SMTP is configured. When e-mail is asked for, a
//! delivery-pending marker is written with the file; if sending fails the job is retryable and the
//! next attempt (same job id) finds the marker and only re-sends the already written file.

use serde_json::json;

use super::{
    context::{JobContext, JobError, JobOutput},
    rollup,
};
use crate::{
    deliver::{Mail, Mailer, PendingDelivery, email, write_atomic},
    domain::job::GenerateReport,
    report::{self, Report, ReportError, ReportQuery, freshness::Freshness},
};

/// Builds the report of `job`, writes it and e-mails it when recipients are given.
#[tracing::instrument(skip_all, fields(job_id = %ctx.job_id, attempt = ctx.attempt, report_type = ?job.report_type))]
pub async fn generate_report(ctx: &JobContext, job: &GenerateReport) -> Result<JobOutput, JobError> {
    let query = ReportQuery::from_job(job).map_err(JobError::permanent)?;
    let mailer = mailer_for(ctx, &job.recipient_email)?;
    let output = ctx.state().output_path(
        report::slug(job.report_type),
        (job.start_date, job.end_date),
        job.format,
        job.output_path.as_deref(),
    )?;
    let pending = PendingDelivery::for_job(&ctx.state().reports_dir, &ctx.job_id);

    if let (Some(mailer), Some(mail)) = (&mailer, pending.load()) {
        ctx.progress(90, format!("report already written ({}); sending the e-mail again", mail.attachment.display()));
        deliver(mailer, &mail, &pending).await?;
        ctx.progress(100, "e-mail delivered");
        let summary = json!({
            "report_type": job.report_type,
            "format": job.format,
            "path": mail.attachment,
            "recomputed": false,
            "emailed_to": mail.recipients,
        });
        return Ok(JobOutput { path: Some(mail.attachment), summary });
    }

    ctx.progress(5, "checking that every day of the period is rolled up and fresh");
    let fresh = ensure_fresh_rollups(ctx, job).await?;
    ctx.progress(50, "computing the report from the rollup tables");
    let mut report = report::build(&ctx.state().pool, &query).await.map_err(job_error)?;
    report.complete_to = Some(fresh.complete_to);
    if let Some(completeness) = report.completeness() {
        ctx.log(completeness);
    }
    ctx.progress(60, format!("rendering {:?}", job.format));
    let bytes = report::render(&report, job.format).map_err(job_error)?;
    let size = write_atomic(&output, &bytes)
        .map_err(|e| JobError::retryable(format!("cannot write {}: {e}", output.path().display())))?;
    let path = output.path().to_owned();
    ctx.progress(80, format!("written to {}", path.display()));

    let mut summary = json!({
        "report_type": job.report_type,
        "format": job.format,
        "path": path,
        "bytes": size,
        "period": { "start_date": job.start_date, "end_date": job.end_date },
        "kpis": report::json::to_value(&report)["kpis"],
        "days_rolled_up_first": fresh.stale,
        "data_complete_to": fresh.complete_to,
        "recomputed": true,
    });
    if let Some(mailer) = mailer {
        let mail = mail_for(&report, job, &path);
        pending.save(&mail).map_err(|e| JobError::retryable(format!("cannot record the pending e-mail: {e}")))?;
        ctx.progress(90, format!("e-mailing {} recipient(s)", mail.recipients.len()));
        deliver(mailer, &mail, &pending).await?;
        summary["emailed_to"] = json!(mail.recipients);
    }
    ctx.progress(100, "done");
    Ok(JobOutput { path: Some(path), summary })
}

/// The mailer when recipients are given; fails for good on bad addresses or missing SMTP settings.
fn mailer_for<'a>(ctx: &'a JobContext, recipients: &[String]) -> Result<Option<&'a Mailer>, JobError> {
    if recipients.is_empty() {
        return Ok(None);
    }
    email::parse_recipients(recipients).map_err(JobError::permanent)?;
    ctx.state().mailer.as_ref().map(Some).map_err(JobError::permanent)
}

/// Sends and clears the marker; keeps it (and asks for a retry) when the server may come back.
async fn deliver(mailer: &Mailer, mail: &Mail, pending: &PendingDelivery) -> Result<(), JobError> {
    match mailer.send(mail).await {
        Ok(()) => {
            pending.clear();
            Ok(())
        }
        Err(e) if e.is_retryable() => {
            Err(JobError::retryable(format!("{e} (the report is written; a retry only re-sends it)")))
        }
        Err(e) => {
            pending.clear();
            Err(JobError::permanent(e))
        }
    }
}

fn mail_for(report: &Report, job: &GenerateReport, path: &std::path::Path) -> Mail {
    let kpis: Vec<(String, String)> = report.kpis.iter().map(|k| (k.label.to_owned(), k.value.display())).collect();
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let note = report.completeness();
    let (text, html) = email::bodies(&report.title, &report.period(), note.as_deref(), &kpis, &file_name);
    Mail {
        recipients: job.recipient_email.iter().map(|r| r.trim().to_owned()).collect(),
        subject: format!("eventmill: {} {} to {}", report.title, report.start, report.end),
        text,
        html,
        attachment: path.to_owned(),
        content_type: email::content_type_for(job.format.extension()).to_owned(),
    }
}

/// Days of the period whose daily rollup misses stored events are rolled up first (reports read
/// rollups); progress moves from 5 to 50% with the days done.
async fn ensure_fresh_rollups(ctx: &JobContext, job: &GenerateReport) -> Result<Freshness, JobError> {
    let on_day = |done: usize, total: usize, day: chrono::NaiveDate| {
        let percent = 5 + (45 * done / total.max(1)) as u8;
        ctx.progress(percent, format!("rolling up {day} first: day {} of {total} with new events", done + 1));
        ctx.log(format!("{day}: stored events changed since its daily rollup; rolling it up again"));
    };
    rollup::roll_up_stale_days(&ctx.without_progress(), job.start_date, job.end_date, &on_day).await
}

fn job_error(error: ReportError) -> JobError {
    match error {
        ReportError::Database(e) => JobError::retryable(format!("database error while building the report: {e}")),
        other => JobError::permanent(other),
    }
}
