//! Jobs before they are queued: a checked [`Job`] of a registered kind, job files (`file`: TOML or
//! JSON, relative dates, flows), their `[options]` table (`options`) and the checks every job
//! passes (`checks`).

pub mod checks;
pub mod file;
pub mod options;

pub use file::{JobTemplate, MAX_CHILDREN, PlannedJob};
pub use options::JobOptions;

use crate::queue::Processor;

/// A job ready to enqueue: a registered kind and its checked payload (the JSON object with its
/// `job_type`, as stored and shown). Built by `Registry::job` from a job file, the CLI, a
/// schedule or the board's form, or from a typed payload with [`Job::of`].
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The kind's name.
    pub kind: &'static str,
    /// The payload object, `job_type` included.
    pub payload: serde_json::Value,
}

impl Job {
    /// The job of processor `P` with `payload`.
    pub fn of<P: Processor<S>, S>(payload: &P::Payload) -> Self {
        let mut value = serde_json::to_value(payload).expect("a payload serializes to JSON");
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert("job_type".into(), P::NAME.into());
        }
        Self { kind: P::NAME, payload: value }
    }
}
