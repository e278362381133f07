//! The registry: declared queues and registered kinds, the one place a job kind is known. The
//! worker's dispatch, job files, the CLI, `scheduler.toml` checks, per-kind settings and the
//! board's enqueue form all ask it, so an unknown kind is the same clear error everywhere.
//!
//! A [`Registry<S>`] is built once with the processors of state `S`; what does not run jobs (job
//! files, the CLI, schedules, the board) only needs its [`Catalog`] of queues and kinds, which
//! does not depend on `S`.

use std::{marker::PhantomData, ops::Deref, sync::Arc};

use futures_util::{FutureExt, future::BoxFuture};
use serde_json::{Map, Value};

use super::{
    JobContext, JobError, JobHandler, RateLimit, RunningJob,
    processor::{Kind, Processor, Registered, Run},
};
use crate::{
    job::Job,
    settings::{JobSettings, RetryPolicy},
};

/// A declared queue: its name, how many jobs one worker process runs from it at once, whether
/// it starts paused the first time it is seen (an operator's later pause or resume wins), and its
/// rate limit (`EVENTMILL_QUEUE_RATE_LIMIT_<QUEUE>` overrides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue's name (any text; `analytics:reports`).
    pub name: &'static str,
    /// `None`: `<PREFIX>_JOB_CONCURRENCY`.
    pub concurrency: Option<usize>,
    /// Starts paused the first time it is seen.
    pub paused: bool,
    /// At most this many jobs start per window, across every worker process.
    pub rate_limit: Option<RateLimit>,
    /// At most this many jobs run at once, across every worker process
    /// (`<PREFIX>_QUEUE_GLOBAL_CONCURRENCY_<QUEUE>` overrides it).
    pub global_concurrency: Option<u32>,
    /// Targets every kind of the queue is held to (a kind's own `Processor::SLOS` and
    /// `<PREFIX>_JOB_SLO_*_<KIND>` win per objective); see [`slo`](super::slo).
    pub slos: &'static [super::Slo],
}

impl QueueSpec {
    /// A queue called `name`, unpaused, without a rate limit, at the default concurrency.
    pub const fn new(name: &'static str) -> Self {
        Self { name, concurrency: None, paused: false, rate_limit: None, global_concurrency: None, slos: &[] }
    }

    /// Jobs one worker process runs from it at once.
    pub const fn concurrency(self, concurrency: usize) -> Self {
        Self { concurrency: Some(concurrency), ..self }
    }

    /// Whether it starts paused.
    pub const fn paused(self, paused: bool) -> Self {
        Self { paused, ..self }
    }

    /// At most `n` jobs of this queue run at once across every worker process (BullMQ's global
    /// concurrency), beside each process's own `concurrency`. Enforced in the claim script on the
    /// queue's active set, so jobs claimed by any process count.
    pub const fn global_concurrency(self, n: u32) -> Self {
        Self { global_concurrency: Some(n), ..self }
    }

    /// Targets (wait p95, run p95, failure rate, each over a window) for every kind of this
    /// queue; see [`slo`](super::slo) for the example.
    pub const fn slos(self, slos: &'static [super::Slo]) -> Self {
        Self { slos, ..self }
    }

    /// At most `max` jobs of this queue start per `per`, whatever the number of workers.
    pub const fn rate_limit(self, max: u32, per: std::time::Duration) -> Self {
        Self { rate_limit: Some(RateLimit::new(max, per)), ..self }
    }
}

/// A kind nobody registered: names it and lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job kind {kind:?}: known kinds are {known}")]
pub struct UnknownKind {
    /// The name asked for.
    pub kind: String,
    /// The registered names, comma-separated.
    pub known: String,
}

/// Queues and kinds with their processors, for the application state `S`. Build it once and
/// share it:
///
/// ```
/// # use eventmill_jobs::{JobContext, JobError, Processor, QueueSpec, Registry};
/// # use serde_json::Value;
/// # struct Resize;
/// # impl Processor<()> for Resize {
/// #     type Payload = String;
/// #     const NAME: &'static str = "RESIZE";
/// #     const QUEUE: &'static str = "images";
/// #     async fn process(&self, _: &JobContext<()>, _: String) -> Result<Value, JobError> { Ok(Value::Null) }
/// # }
/// let registry = Registry::new().queue(QueueSpec::new("images").concurrency(8)).register(Resize);
/// assert_eq!(registry.kind_names(), ["RESIZE"]);
/// ```
pub struct Registry<S> {
    catalog: Catalog,
    runners: Vec<(&'static str, Arc<dyn Run<S>>)>,
}

impl<S> Clone for Registry<S> {
    fn clone(&self) -> Self {
        Self { catalog: self.catalog.clone(), runners: self.runners.clone() }
    }
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self { catalog: Catalog::default(), runners: Vec::new() }
    }
}

impl<S: Send + Sync + 'static> Registry<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a queue. Panics on a second declaration of the same name (a programming error).
    pub fn queue(mut self, spec: QueueSpec) -> Self {
        assert!(self.catalog.queue_spec(spec.name).is_none(), "queue {} is declared twice", spec.name);
        self.catalog.queues.push(spec);
        self
    }

    /// Registers a kind. Panics when the name is taken or its queue is not declared (programming
    /// errors, caught by any test that builds the registry).
    pub fn register<P: Processor<S>>(mut self, processor: P) -> Self {
        assert!(self.catalog.kind(P::NAME).is_err(), "job kind {} is registered twice", P::NAME);
        assert!(
            self.catalog.queue_spec(P::QUEUE).is_some(),
            "job kind {} names undeclared queue {}",
            P::NAME,
            P::QUEUE
        );
        let registered = Arc::new(Registered::<P, S>(Arc::new(processor), PhantomData));
        self.catalog.kinds.push(registered.clone());
        self.runners.push((P::NAME, registered));
        self
    }

    /// The queues and kinds, without the processors (what job files, the CLI and the board use).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs a stored payload of `kind` with `ctx` (a worker's dispatch, or a direct call).
    pub fn run(&self, kind: &str, ctx: JobContext<S>, payload: &str) -> BoxFuture<'static, Result<Value, JobError>> {
        match self.runners.iter().find(|(name, _)| *name == kind) {
            Some((_, runner)) => runner.run(ctx, payload),
            None => {
                let unknown = UnknownKind { kind: kind.to_owned(), known: self.catalog.kind_names().join(", ") };
                async move { Err(JobError::permanent(unknown)) }.boxed()
            }
        }
    }
}

impl<S> Deref for Registry<S> {
    type Target = Catalog;

    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

/// The declared queues and registered kinds of a [`Registry`], whatever its state type.
#[derive(Clone, Default)]
pub struct Catalog {
    queues: Vec<QueueSpec>,
    kinds: Vec<Arc<dyn Kind>>,
}

impl Catalog {
    /// The kind called `name`.
    pub fn kind(&self, name: &str) -> Result<&Arc<dyn Kind>, UnknownKind> {
        self.kinds
            .iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownKind { kind: name.to_owned(), known: self.kind_names().join(", ") })
    }

    /// Every registered kind, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &dyn Kind> {
        self.kinds.iter().map(|k| k.as_ref())
    }

    /// Every registered kind's name.
    pub fn kind_names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    /// Every declared queue.
    pub fn queues(&self) -> &[QueueSpec] {
        &self.queues
    }

    /// Every declared queue's name.
    pub fn queue_names(&self) -> Vec<&'static str> {
        self.queues.iter().map(|q| q.name).collect()
    }

    /// The queue called `name`, if declared.
    pub fn queue_spec(&self, name: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// A job from its object (`job_type` plus the kind's fields, relative values already
    /// resolved): the kind must be registered and the payload must parse.
    pub fn job(&self, fields: Map<String, Value>) -> Result<Job, String> {
        checked_job(self.kind_of(&fields)?.as_ref(), fields)
    }

    /// The registered kind a job object's `job_type` names.
    pub fn kind_of(&self, fields: &Map<String, Value>) -> Result<&Arc<dyn Kind>, String> {
        match fields.get("job_type") {
            Some(Value::String(kind)) => self.kind(kind).map_err(|e| e.to_string()),
            Some(other) => Err(format!("job_type must be a string, not {other}")),
            None => Err(format!("a job needs a job_type: one of {}", self.kind_names().join(", "))),
        }
    }

    /// The policy in force for `kind`: its `EVENTMILL_JOB_*_<KIND>` overrides, else the
    /// processor's defaults, else the global settings.
    pub fn policy(&self, kind: &str, jobs: &JobSettings) -> RetryPolicy {
        let declared = self.kind(kind).map(|k| k.policy()).unwrap_or_default();
        jobs.override_for(kind).apply(declared.apply(jobs.default_policy))
    }

    /// Every kind's policy, for the queues.
    pub fn policies(&self, jobs: &JobSettings) -> Vec<(&'static str, RetryPolicy)> {
        self.kinds.iter().map(|k| (k.name(), self.policy(k.name(), jobs))).collect()
    }

    /// One line per kind (name, queue, the fields that may be relative) for help texts.
    pub fn describe(&self) -> String {
        self.kinds
            .iter()
            .map(|k| {
                let relative: Vec<&str> = k.date_fields().iter().chain(k.time_fields()).copied().collect();
                let relative =
                    if relative.is_empty() { String::new() } else { format!(" (relative: {})", relative.join(", ")) };
                format!("  {:<18} on {}{relative}", k.name(), k.queue())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A job of `kind` from its object (`job_type` is put back in front of the checked payload).
pub fn checked_job(kind: &dyn Kind, mut fields: Map<String, Value>) -> Result<Job, String> {
    fields.remove("job_type");
    let Value::Object(mut payload) = kind.check(fields)? else {
        return Err(format!("a {} payload must be an object", kind.name()));
    };
    payload.insert("job_type".into(), Value::String(kind.name().to_owned()));
    Ok(Job { kind: kind.name(), payload: Value::Object(payload) })
}

/// The worker's handler for registered kinds: builds the job's context with the application's
/// state and runs its processor.
pub struct Dispatch<S> {
    /// The kinds and their processors.
    pub registry: Arc<Registry<S>>,
    /// What every job's context carries.
    pub state: Arc<S>,
}

impl<S> Clone for Dispatch<S> {
    fn clone(&self) -> Self {
        Self { registry: self.registry.clone(), state: self.state.clone() }
    }
}

impl<S: Send + Sync + 'static> JobHandler for Dispatch<S> {
    fn handle(&self, job: RunningJob) -> BoxFuture<'static, Result<Value, JobError>> {
        let ctx = JobContext::for_job(self.state.clone(), &job);
        self.registry.run(&job.kind, ctx, &job.payload)
    }
}
