//! Job handlers (SPEC section 7): the queue worker hands each claimed job to `Processors`, which
//! parses its payload into a `JobSpec` (a bad one is a permanent error) and dispatches it here:
//! rollups (`rollup`), reports and exports (their issue plugs into `dispatch`).

pub mod rollup;

use std::sync::Arc;

use futures_util::{FutureExt, future::BoxFuture};
use sqlx::PgPool;

use crate::{
    domain::job::JobSpec,
    queue::{JobError, JobHandler, Progress, RunningJob},
    settings::Settings,
};

/// What a processor gets besides its payload: the database, the settings, and a progress reporter.
#[derive(Clone)]
pub struct JobContext {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub job_id: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    progress: Option<Progress>,
}

impl JobContext {
    pub fn new(
        pool: PgPool,
        settings: Arc<Settings>,
        job_id: String,
        attempt: u32,
        progress: Option<Progress>,
    ) -> Self {
        Self { pool, settings, job_id, attempt, progress }
    }

    /// Reports progress (0-100 and a message): shown by `jobs show`, `enqueue --wait` and admin.
    pub async fn report(&self, percent: u8, message: &str) {
        tracing::debug!(percent, message, "job progress");
        if let Some(progress) = &self.progress {
            progress.report(percent, message).await;
        }
    }
}

/// Runs one job to its result (a JSON value stored with the completed job).
pub async fn dispatch(spec: JobSpec, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    match spec {
        JobSpec::HourlyRollup(window) => rollup::hourly(&window, ctx).await,
        JobSpec::DailyRollup(day) => rollup::daily(&day, ctx).await,
        // Reports and exports: their issue replaces these two arms with
        // `report::generate(&job, ctx).await` and `export::export(&job, ctx).await`.
        JobSpec::GenerateReport(_) => Err(JobError::permanent("GENERATE_REPORT is not implemented yet")),
        JobSpec::ExportData(_) => Err(JobError::permanent("EXPORT_DATA is not implemented yet")),
    }
}

/// eventmill's `JobHandler`: every job kind of SPEC section 7.
#[derive(Clone)]
pub struct Processors {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}

impl JobHandler for Processors {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<serde_json::Value, JobError>> {
        let ctx = JobContext::new(self.pool.clone(), self.settings.clone(), job.id, job.attempt, Some(job.progress));
        async move {
            let spec: JobSpec = serde_json::from_str(&job.payload)
                .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", job.kind)))?;
            dispatch(spec, &ctx).await
        }
        .boxed()
    }
}
