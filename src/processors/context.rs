//! What eventmill's job kinds run with: the [`Analytics`] state every job's context carries (the
//! database, the reports folder, the mailer, built once per process), and what the file-writing
//! kinds return: a [`JobOutput`] or a [`JobError`] that says whether a retry can help.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use sqlx::PgPool;

pub use crate::queue::JobError;
use crate::{
    deliver::{Mailer, OutputPath, default_file_name, email::EmailError},
    domain::job::Format,
    settings::Settings,
};

/// The job context of eventmill's kinds.
pub type JobContext = crate::queue::JobContext<Analytics>;

/// The state of eventmill's job kinds (the `S` of `Processor<S>`), built once per process.
pub struct Analytics {
    /// PostgreSQL: events, rollups.
    pub pool: PgPool,
    /// Where reports and exports are written (nothing outside it).
    pub reports_dir: PathBuf,
    /// Rows a PDF export shows at most.
    pub export_pdf_max_rows: usize,
    /// The SMTP mailer, or why there is none (`EVENTMILL_SMTP_URL` unset or wrong): a job that
    /// asks for e-mail fails for good with that reason.
    pub mailer: Result<Mailer, EmailError>,
}

impl Analytics {
    /// The state from the settings (the mailer is built here, once, not per job).
    pub fn new(pool: PgPool, settings: &Settings) -> Self {
        Self {
            pool,
            reports_dir: settings.reports_dir.clone(),
            export_pdf_max_rows: settings.export_pdf_max_rows,
            mailer: Mailer::from_settings(settings),
        }
    }

    /// Where a job's file goes: the payload's `output_path` (refused if it leaves the reports
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
        OutputPath::resolve(&self.reports_dir, requested, &default_name).map_err(JobError::permanent)
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
