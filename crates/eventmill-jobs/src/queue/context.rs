//! What a running job gets: one [`JobContext`] (the application's state, identity, progress, log
//! lines, cancellation). Progress and log lines are kept in memory and written by the worker in batches
//! (its periodic report and the job's final outcome), so a millisecond job costs no extra round trip.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::{JobError, JobState};
use crate::redis_conn::RedisConn;

/// Reports a running job's progress (0-100 and a message) and log lines; visible in `jobs show`,
/// `enqueue --wait` and admin. Cheap to call often: only the latest progress is written.
#[derive(Clone, Default)]
pub struct Progress {
    shared: Arc<Shared>,
}

/// Sees every report as it happens (tests, and callers outside a worker).
type Observer = Box<dyn Fn(u8, &str) + Send + Sync>;

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    observer: Option<Observer>,
}

/// What is not yet written to Redis.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) progress: Option<(u8, String)>,
    pub(crate) logs: Vec<String>,
}

/// Log lines one job keeps (the oldest are dropped beyond it, in memory and in Redis).
pub const MAX_LOG_LINES: usize = 1000;

impl Progress {
    /// A reporter whose reports only go to `observer` (nothing is written to a queue).
    pub fn observed(observer: impl Fn(u8, &str) + Send + Sync + 'static) -> Self {
        Self { shared: Arc::new(Shared { pending: Mutex::default(), observer: Some(Box::new(observer)) }) }
    }

    /// Sets the progress, clamped to 100.
    pub fn report(&self, percent: u8, message: impl Into<String>) {
        let (percent, message) = (percent.min(100), message.into());
        tracing::debug!(percent, message, "job progress");
        if let Some(observer) = &self.shared.observer {
            observer(percent, &message);
        }
        self.pending().progress = Some((percent, message));
    }

    /// Appends a line to the job's log.
    pub fn log(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(line, "job log");
        let mut pending = self.pending();
        if pending.logs.len() >= MAX_LOG_LINES {
            pending.logs.remove(0);
        }
        pending.logs.push(line);
    }

    /// Takes what is not yet written (the worker writes it).
    pub(crate) fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The one context every processor gets: the application's state `S` (its database pool, mailer,
/// folders..., built once and shared, like axum's `State<S>`), which job and attempt this is, and
/// progress, log lines and cancellation.
pub struct JobContext<S> {
    state: Arc<S>,
    /// The queue's job id: stable across attempts, so a retry finds what an earlier attempt left.
    pub job_id: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts the job has in total.
    pub max_attempts: u32,
    /// Cancelled when the job should stop: shutdown, or its claim was lost (removed, lease expired).
    pub cancel: CancellationToken,
    progress: Progress,
    /// Where the job's hash is read (a flow parent's children); `None` outside a worker.
    store: Option<Arc<JobStore>>,
}

/// Where a worker's jobs live in Redis (its queue's connection and job-hash prefix), so a context
/// can read its own job's hash.
pub(crate) struct JobStore {
    pub(crate) redis: RedisConn,
    pub(crate) job_prefix: String,
}

/// A flow's child as its parent sees it in [`JobContext::children`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChildJob {
    /// The child's id.
    pub id: String,
    /// Its kind (empty if the child was removed or trimmed since).
    pub kind: String,
    /// Where it is now (`None`: no longer stored; a completed child's result is still here).
    pub state: Option<JobState>,
    /// A completed child's result (kept with the parent, so it outlives the child's retention).
    pub result: Option<serde_json::Value>,
    /// A failed child's error, when its failure policy let the parent run
    /// (`ignore_dependency`, `continue_parent`).
    pub failure: Option<String>,
}

impl<S> Clone for JobContext<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            job_id: self.job_id.clone(),
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            cancel: self.cancel.clone(),
            progress: self.progress.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S> JobContext<S> {
    /// A context outside any worker (tests, direct calls): progress goes to `progress` or nowhere.
    pub fn new(state: Arc<S>, job_id: String, attempt: u32, progress: Option<Progress>) -> Self {
        Self {
            state,
            job_id,
            attempt,
            max_attempts: attempt,
            cancel: CancellationToken::new(),
            progress: progress.unwrap_or_default(),
            store: None,
        }
    }

    /// The context of a claimed job.
    pub(crate) fn for_job(state: Arc<S>, job: &super::RunningJob) -> Self {
        Self {
            state,
            job_id: job.id.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            cancel: job.cancel.clone(),
            progress: job.progress.clone(),
            store: job.store.clone(),
        }
    }

    /// The application's state, as given to the worker.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state's shared handle (to move into a task of the job's own).
    pub fn state_arc(&self) -> &Arc<S> {
        &self.state
    }

    /// Reports progress (0-100 and a message), clamped to 100.
    pub fn progress(&self, percent: u8, message: impl Into<String>) {
        self.progress.report(percent, message);
    }

    /// The same as [`progress`](Self::progress), for call sites that read better awaiting it.
    pub async fn report(&self, percent: u8, message: &str) {
        self.progress.report(percent, message);
    }

    /// Appends a line to the job's log (kept with the job, shown by `jobs show` and the board).
    pub fn log(&self, line: impl Into<String>) {
        self.progress.log(line);
    }

    /// True once the job is asked to stop; long processors check it between steps.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Replaces the job's payload with `data`, durably, before it returns: written to Redis (and
    /// acknowledged by the replicas when `<PREFIX>_REDIS_WAIT_REPLICAS` is set), so the next
    /// attempt (a retry, or a worker that took the job over after this one died) and a job
    /// postponed with [`JobError::delay_until`] get `data` as their payload. The step-job pattern:
    /// keep the steps done in the payload and skip them on the next run (docs/jobs.md, "Step
    /// jobs"; `examples/step_job.rs`).
    ///
    /// `data` is the kind's payload type (a `job_type` is added when it has none). Written only
    /// while this attempt holds the job: once its claim is lost (lease expired and taken over,
    /// cancelled, removed) nothing is written and the answer is an error.
    ///
    /// ```no_run
    /// # use eventmill_jobs::{JobContext, JobError};
    /// # #[derive(serde::Serialize, serde::Deserialize, Clone)]
    /// # struct Import { file: String, #[serde(default)] next_step: usize }
    /// # async fn run_step(_: usize) {}
    /// # async fn demo(ctx: &JobContext<()>, mut job: Import) -> Result<(), JobError> {
    /// for step in job.next_step..3 {
    ///     run_step(step).await;
    ///     job.next_step = step + 1;
    ///     ctx.update_data(&job).await?; // a crash from here on resumes at `step + 1`
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn update_data<T: serde::Serialize>(&self, data: &T) -> Result<(), JobError> {
        let Some(store) = &self.store else {
            return Err(JobError::permanent(
                "ctx.update_data() needs a job claimed by a worker (this context was built with JobContext::new)",
            ));
        };
        let payload = serde_json::to_string(data)
            .map_err(|e| JobError::permanent(format!("job {}: its new data does not serialize: {e}", self.job_id)))?;
        let key = format!("{}{}", store.job_prefix, self.job_id);
        let mut redis = store.redis.clone();
        let written = super::scripts::update_data(&mut redis, &key, &payload, self.attempt).await?;
        if !written {
            return Err(JobError::retryable(format!(
                "job {}: attempt {} no longer holds the job (its lease expired and another worker took it, or it \
                 was cancelled or removed): its data was not updated",
                self.job_id, self.attempt
            )));
        }
        redis.replicated(|| redis::cmd("HEXISTS").arg(&key).arg("payload").clone()).await?;
        Ok(())
    }

    /// A flow parent's children, in the order they were enqueued: each one's state, its result
    /// once completed, its error when it failed under `ignore_dependency` or `continue_parent`
    /// (children dropped by `remove_dependency` are not listed). Empty for a job without children.
    /// Two reads from Redis; an error reaching it is retryable.
    pub async fn children(&self) -> Result<Vec<ChildJob>, JobError> {
        let Some(store) = &self.store else {
            return Err(JobError::permanent(
                "ctx.children() needs a job claimed by a worker (this context was built with JobContext::new)",
            ));
        };
        let mut redis = store.redis.clone();
        let fields: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(format!("{}{}", store.job_prefix, self.job_id)).query_async(&mut redis).await?;
        let ids: Vec<String> = fields.get("children").and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET").arg(format!("{}{id}", store.job_prefix)).arg("kind").arg("state");
        }
        let states: Vec<(Option<String>, Option<String>)> = pipe.query_async(&mut redis).await?;
        let json = |v: &String| serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
        Ok(ids
            .into_iter()
            .zip(states)
            .map(|(id, (kind, state))| ChildJob {
                kind: kind.unwrap_or_default(),
                state: state.and_then(|s| s.parse().ok()),
                result: fields.get(&format!("result:{id}")).map(json),
                failure: fields.get(&format!("failure:{id}")).cloned(),
                id,
            })
            .collect())
    }

    /// A flow parent's completed children's results, by child id (see [`children`](Self::children)).
    pub async fn children_results(&self) -> Result<std::collections::BTreeMap<String, serde_json::Value>, JobError> {
        Ok(self.children().await?.into_iter().filter_map(|c| Some((c.id, c.result?))).collect())
    }

    /// The same, each result parsed as `T`; a result that does not parse is a permanent error
    /// naming the child.
    pub async fn children_results_as<T: DeserializeOwned>(
        &self,
    ) -> Result<std::collections::BTreeMap<String, T>, JobError> {
        self.children_results()
            .await?
            .into_iter()
            .map(|(id, value)| {
                let parsed = serde_json::from_value(value).map_err(|e| {
                    JobError::permanent(format!(
                        "the result of child job {id} is not a {}: {e}",
                        std::any::type_name::<T>()
                    ))
                })?;
                Ok((id, parsed))
            })
            .collect()
    }

    /// A flow parent's children that failed without failing it (`ignore_dependency`,
    /// `continue_parent`): their errors, by child id.
    pub async fn ignored_failures(&self) -> Result<std::collections::BTreeMap<String, String>, JobError> {
        Ok(self.children().await?.into_iter().filter_map(|c| Some((c.id, c.failure?))).collect())
    }

    /// The same job with progress reports dropped (a sub-step whose own percentages would
    /// confuse the job's, e.g. the rollups a report runs first).
    pub fn without_progress(&self) -> Self {
        Self { progress: Progress::default(), ..self.clone() }
    }
}

impl<S> fmt::Debug for JobContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext").field("job_id", &self.job_id).field("attempt", &self.attempt).finish()
    }
}
