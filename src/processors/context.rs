//! What the file-writing processors add to the job context (their output path) and what they
//! return: a [`JobOutput`] or a [`JobError`] that says whether a retry can help.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};

pub use crate::queue::{JobContext, JobError};
use crate::{
    deliver::{OutputPath, default_file_name},
    domain::job::Format,
};

/// Analytics helpers on the job context.
impl JobContext {
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
