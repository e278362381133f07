//! eventmill's job kinds (SPEC section 7), registered in [`registry`]: rollups (`rollup`) fill the
//! rollup tables; reports (`report`) and exports (`export`) write a file under the reports folder
//! and optionally e-mail it. `kinds` holds the four `Processor` registrations; each calls into its
//! handler module.

pub mod context;
pub mod export;
pub mod kinds;
pub mod report;
pub mod rollup;

pub use context::{Analytics, JobContext, JobError, JobOutput};
pub use export::export_data;
pub use kinds::{DailyRollups, Exports, HourlyRollups, Reports};
pub use report::generate_report;

pub use crate::queue::Progress;
use crate::{
    domain::job::Job,
    queue::{QueueSpec, Registry},
};

/// The queue of rollup jobs.
pub const ROLLUP_QUEUE: &str = "analytics:rollup";
/// The queue of report and export jobs.
pub const REPORTS_QUEUE: &str = "analytics:reports";

/// Every kind of either queue: at most 5 % of jobs fail for good over a day (rollups) or an hour
/// (reports); each kind adds its wait and run targets (`kinds.rs`, `SLOS`).
const ROLLUP_SLOS: &[eventmill_jobs::queue::Slo] =
    &[eventmill_jobs::queue::Slo::failure_rate(5.0, std::time::Duration::from_secs(86_400))];
const REPORTS_SLOS: &[eventmill_jobs::queue::Slo] =
    &[eventmill_jobs::queue::Slo::failure_rate(5.0, std::time::Duration::from_secs(3600))];

/// eventmill's queues and job kinds: a new kind is one `Processor` plus one line here.
pub fn registry() -> Registry<Analytics> {
    Registry::new()
        .queue(QueueSpec::new(ROLLUP_QUEUE).slos(ROLLUP_SLOS))
        .queue(QueueSpec::new(REPORTS_QUEUE).slos(REPORTS_SLOS))
        .register(HourlyRollups)
        .register(DailyRollups)
        .register(Reports)
        .register(Exports)
}

/// Runs `job` right here, outside any queue (tests, tools): its processor with `ctx`.
pub async fn dispatch(job: Job, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    registry().run(job.kind, ctx.clone(), &job.payload.to_string()).await
}
