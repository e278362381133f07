//! A job kind is one type implementing [`Processor`]: its name, its queue, its payload type (serde,
//! parsed at the boundary), its default policy and the code that runs it. The registry keeps each
//! behind the object-safe [`Kind`], which is what the worker, job files, the CLI, `scheduler.toml`
//! checks, per-kind settings and the admin form use.

use std::{future::Future, marker::PhantomData, sync::Arc};

use futures_util::{FutureExt, future::BoxFuture};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use super::{JobContext, JobError};
use crate::settings::PolicyOverride;

/// One kind of job, run with the application's state `S`. Implement it, then
/// [`Registry::register`](super::Registry::register) it: that is the whole of a new kind.
///
/// ```
/// use eventmill_jobs::{JobContext, JobError, Processor};
/// use serde::{Deserialize, Serialize};
/// use serde_json::{Value, json};
///
/// struct Greeter { greeting: String }
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Greet { name: String }
///
/// struct SayHello;
///
/// impl Processor<Greeter> for SayHello {
///     type Payload = Greet;
///     const NAME: &'static str = "SAY_HELLO";
///     const QUEUE: &'static str = "greetings";
///
///     async fn process(&self, ctx: &JobContext<Greeter>, job: Greet) -> Result<Value, JobError> {
///         Ok(json!({ "said": format!("{} {}", ctx.state().greeting, job.name) }))
///     }
/// }
/// ```
pub trait Processor<S>: Send + Sync + 'static {
    /// What the job asks for; unknown fields should be refused (`#[serde(deny_unknown_fields)]`).
    type Payload: Serialize + DeserializeOwned + Send + 'static;
    /// The kind's name, the `job_type` of job files (SCREAMING_SNAKE_CASE by convention).
    const NAME: &'static str;
    /// The declared queue it runs on.
    const QUEUE: &'static str;
    /// Payload fields holding a date (`YYYY-MM-DD`) that job files may write as `today`,
    /// `yesterday`, `-7d`..., resolved at enqueue time (camelCase spellings match too).
    const DATE_FIELDS: &'static [&'static str] = &[];
    /// Payload fields holding a time (RFC 3339) that job files may write as `now`, `-1h`, `-2d`.
    const TIME_FIELDS: &'static [&'static str] = &[];
    /// This kind's targets (wait p95, run p95, failure rate, each over a window), over its
    /// queue's (`QueueSpec::slos`) per objective; `<PREFIX>_JOB_SLO_*_<KIND>` overrides both.
    const SLOS: &'static [super::Slo] = &[];

    /// This kind's defaults (attempts, backoff, jitter, timeout); unset ones follow the global
    /// `EVENTMILL_JOB_*` settings, and `EVENTMILL_JOB_*_<KIND>` overrides both.
    fn policy(&self) -> PolicyOverride {
        PolicyOverride::default()
    }

    /// Checks a parsed payload before it is enqueued, beyond what its type says (a path that
    /// leaves a folder, a field that must be one address...); the message is shown to whoever
    /// enqueued it, and nothing is enqueued.
    fn check(&self, _payload: &Self::Payload) -> Result<(), String> {
        Ok(())
    }

    /// Runs one attempt; the value is stored as the job's result. A permanent [`JobError`] fails
    /// the job at once, a retryable one retries it with backoff while attempts are left.
    fn process(
        &self,
        ctx: &JobContext<S>,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<Value, JobError>> + Send;
}

/// A registered kind, without its payload type or state: what everything around the processor
/// needs (job files, the CLI, schedules, per-kind settings, the board).
pub trait Kind: Send + Sync {
    /// The kind's name (`Processor::NAME`).
    fn name(&self) -> &'static str;
    /// Its queue.
    fn queue(&self) -> &'static str;
    /// Payload fields that may be relative dates.
    fn date_fields(&self) -> &'static [&'static str];
    /// Payload fields that may be relative times.
    fn time_fields(&self) -> &'static [&'static str];
    /// Its declared policy.
    fn policy(&self) -> PolicyOverride;
    /// Its declared SLOs (`Processor::SLOS`).
    fn slos(&self) -> &'static [super::Slo];
    /// Checks a payload (without `job_type`) and answers its canonical JSON (aliases resolved).
    fn check(&self, payload: Map<String, Value>) -> Result<Value, String>;
}

/// What a worker needs of a registered kind: run one attempt on a stored payload (a payload that
/// does not parse fails permanently).
pub(super) trait Run<S>: Send + Sync {
    fn run(&self, ctx: JobContext<S>, payload: &str) -> BoxFuture<'static, Result<Value, JobError>>;
}

/// A `Processor` behind `Kind` and `Run`.
pub(super) struct Registered<P, S>(pub(super) Arc<P>, pub(super) PhantomData<fn(S)>);

impl<S: Send + Sync + 'static, P: Processor<S>> Kind for Registered<P, S> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn queue(&self) -> &'static str {
        P::QUEUE
    }

    fn date_fields(&self) -> &'static [&'static str] {
        P::DATE_FIELDS
    }

    fn time_fields(&self) -> &'static [&'static str] {
        P::TIME_FIELDS
    }

    fn policy(&self) -> PolicyOverride {
        self.0.policy()
    }

    fn slos(&self) -> &'static [super::Slo] {
        P::SLOS
    }

    fn check(&self, payload: Map<String, Value>) -> Result<Value, String> {
        let parsed: P::Payload =
            serde_json::from_value(Value::Object(payload)).map_err(|e| format!("not a valid {} job: {e}", P::NAME))?;
        self.0.check(&parsed)?;
        serde_json::to_value(&parsed).map_err(|e| format!("{} payload does not serialize: {e}", P::NAME))
    }
}

impl<S: Send + Sync + 'static, P: Processor<S>> Run<S> for Registered<P, S> {
    fn run(&self, ctx: JobContext<S>, payload: &str) -> BoxFuture<'static, Result<Value, JobError>> {
        let parsed = parse_stored::<P::Payload>(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", P::NAME)));
        let processor = self.0.clone();
        async move { processor.process(&ctx, parsed?).await }.boxed()
    }
}

/// A stored payload is the job's object with its `job_type` (so it reads as a job file): the
/// typed payload is the rest.
fn parse_stored<T: DeserializeOwned>(payload: &str) -> Result<T, serde_json::Error> {
    let mut value: Value = serde_json::from_str(payload)?;
    if let Value::Object(fields) = &mut value {
        fields.remove("job_type");
        fields.remove("jobType");
    }
    serde_json::from_value(value)
}
