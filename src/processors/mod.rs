//! **processors**: the job handlers the queue workers call, one per job kind. Each is a plain async
//! function `(ctx, payload) -> Result<JobOutput, JobError>`; the error says whether the queue
//! should retry. Reports and exports live here; rollups come from the jobs branch.

pub mod context;
pub mod report;
pub mod export;

pub use context::{JobError, JobOutput, ProcessorContext};
pub use export::export_data;
pub use report::generate_report;
