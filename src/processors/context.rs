//! What every processor gets (pool, settings, the job's id and attempt, a progress callback) and
//! what it returns: a [`JobOutput`] or a [`JobError`] that says whether a retry can help.

use std::{fmt, path::PathBuf, sync::Arc};

use chrono::{NaiveDate, Utc};
use sqlx::PgPool;

pub use crate::queue::JobError;
use crate::{
    deliver::{OutputPath, default_file_name},
    domain::job::Format,
    settings::Settings,
};

/// Reports progress: percent (0-100) and a short message.
pub type Progress = Arc<dyn Fn(u8, String) + Send + Sync>;

/// The resources and identity of one job attempt.
#[derive(Clone)]
pub struct ProcessorContext {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// The queue's job id: stable across attempts, so a retry finds what an earlier attempt left.
    pub job_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub progress: Progress,
}

impl ProcessorContext {
    /// Where this job's file goes: the payload's `output_path` (refused if it leaves the reports
    /// folder, before any work) or a name saying what and when, e.g.
    /// `revenue-summary_2026-03-07_2026-03-09_20261123T170500Z.pdf`.
    pub fn output_path(
        &self,
        what: &str,
        (start, end): (NaiveDate, NaiveDate),
        format: Format,
        requested: Option<&str>,
    ) -> Result<OutputPath, JobError> {
        let default_name = default_file_name(what, start, end, Utc::now(), format.extension());
        OutputPath::resolve(&self.settings.reports_dir, requested, &default_name)
            .map_err(|e| JobError::Permanent(e.to_string()))
    }

    /// Reports progress, clamped to 100.
    pub fn progress(&self, percent: u8, message: impl Into<String>) {
        (self.progress)(percent.min(100), message.into());
    }
}

impl fmt::Debug for ProcessorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessorContext").field("job_id", &self.job_id).field("attempt", &self.attempt).finish()
    }
}

/// What a finished job produced: the output file (for `--wait` to print) and a JSON summary.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    pub path: Option<PathBuf>,
    pub summary: serde_json::Value,
}

impl JobOutput {
    /// The value stored as the job's result: the summary with the file's `path` (which
    /// `enqueue --wait` prints alone on its last line).
    pub fn into_result(self) -> serde_json::Value {
        let mut result = match self.summary {
            serde_json::Value::Object(map) => map,
            other => serde_json::Map::from_iter([("summary".to_owned(), other)]),
        };
        if let Some(path) = self.path {
            result.insert("path".to_owned(), serde_json::Value::String(path.display().to_string()));
        }
        serde_json::Value::Object(result)
    }
}
