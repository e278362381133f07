//! `EXPORT_DATA` handler: events -> export stream -> file (atomic, inside the reports folder).
//! The payload and output path are checked before any work; a failure mid-way removes the temp
//! file, so no partial export is ever visible.

use serde_json::json;

use super::context::{JobContext, JobError, JobOutput};
use crate::{
    deliver::AtomicFile,
    domain::job::ExportData,
    export::{self, ExportError, ExportQuery},
};

/// Streams the events `job` asks for into its output file.
#[tracing::instrument(skip_all, fields(job_id = %ctx.job_id, attempt = ctx.attempt, data_type = ?job.data_type))]
pub async fn export_data(ctx: &JobContext, job: &ExportData) -> Result<JobOutput, JobError> {
    let query = ExportQuery::from_job(job).map_err(JobError::permanent)?;
    let output = ctx.state().output_path(
        export::slug(job.data_type),
        (job.start_date, job.end_date),
        job.format,
        job.output_path.as_deref(),
    )?;
    let file = AtomicFile::create(&output)
        .map_err(|e| JobError::retryable(format!("cannot create {}: {e}", output.path().display())))?;

    ctx.progress(5, "streaming events");
    let report_progress = |done: f64, rows: u64| {
        let percent = (5.0 + done.clamp(0.0, 1.0) * 90.0) as u8;
        ctx.progress(percent, format!("{rows} rows written"));
    };
    let outcome = export::run(&ctx.state().pool, &query, file, ctx.state().export_pdf_max_rows, &report_progress)
        .await
        .map_err(job_error)?;
    let path = output.path().to_owned();
    ctx.progress(100, format!("{} rows written to {}", outcome.rows_written, path.display()));
    Ok(JobOutput {
        summary: json!({
            "data_type": job.data_type,
            "format": job.format,
            "path": path,
            "rows": outcome.rows,
            "rows_written": outcome.rows_written,
            "capped": outcome.rows_written < outcome.rows,
            "bytes": outcome.bytes,
        }),
        path: Some(path),
    })
}

fn job_error(error: ExportError) -> JobError {
    match error {
        ExportError::Invalid(_) | ExportError::Pdf(_) => JobError::permanent(error),
        ExportError::Database(_) | ExportError::Write(_) => JobError::retryable(error),
    }
}
