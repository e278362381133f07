//! Flows: a parent job that runs once all its children completed (SPEC section 7; BullMQ's
//! `FlowProducer`). The parent waits in its queue's `waiting-children` set with a count of pending
//! children; the script that completes a child decrements it and, at zero, moves the parent to
//! `waiting`, so a parent runs exactly once whatever crashes around it. A child out of attempts
//! (or cancelled, or removed) follows its [`FailurePolicy`] (BullMQ's names): by default it fails
//! the parent with the child's error. A completed child's result is kept in the parent's hash
//! (`result:<id>`), so the parent reads its children's results from its context even after the
//! children themselves were trimmed. One level: children are plain jobs, on any declared queue.

use std::time::Duration;

use tracing::Instrument;

use super::{EnqueueOptions, Enqueued, QueueError, Queues, now_ms, scripts, trace};
use crate::job::{Job, PlannedJob};

/// What a flow's child failing for good (out of attempts, a permanent error, cancelled or
/// removed) does to its parent: BullMQ's child options, by the same names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// The parent fails at once with the child's error, without running (BullMQ's
    /// `failParentOnFailure`). The default.
    #[default]
    FailParent,
    /// The failure counts as done: the parent runs once its other children completed, and sees
    /// the error in `ctx.children()` (BullMQ's `ignoreDependencyOnFailure`).
    IgnoreDependency,
    /// The child is dropped from the parent's dependencies: the parent runs once its other
    /// children completed and does not list it (BullMQ's `removeDependencyOnFailure`).
    RemoveDependency,
    /// The parent runs at once, while its other children may still run; it sees the error in
    /// `ctx.children()` (BullMQ's `continueParentOnFailure`).
    ContinueParent,
}

impl FailurePolicy {
    /// Every policy, the default first.
    pub const ALL: [FailurePolicy; 4] =
        [Self::FailParent, Self::IgnoreDependency, Self::RemoveDependency, Self::ContinueParent];

    /// Its name in job files, the job hash and the board (`fail_parent`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailParent => "fail_parent",
            Self::IgnoreDependency => "ignore_dependency",
            Self::RemoveDependency => "remove_dependency",
            Self::ContinueParent => "continue_parent",
        }
    }
}

impl std::fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FailurePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('-', "_");
        Self::ALL.into_iter().find(|p| p.as_str() == wanted).ok_or_else(|| {
            format!(
                "unknown on_failure {s:?}: expected fail_parent (the default), ignore_dependency, remove_dependency \
                 or continue_parent"
            )
        })
    }
}

/// A job to enqueue and how.
pub struct Planned<'a> {
    /// The checked job (it runs on its kind's queue).
    pub job: &'a Job,
    /// How to enqueue it (a flow's parent ignores its delay).
    pub options: EnqueueOptions,
}

/// What `enqueue_flow` did: the parent's id, its children's, and whether it is new (false: the
/// parent's idempotency key already named a flow, whose parent id is answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEnqueued {
    /// The parent's id.
    pub id: String,
    /// False: an idempotent duplicate (no job was added).
    pub created: bool,
    /// The children's ids, in the order given (none for a duplicate).
    pub children: Vec<String>,
}

impl Queues {
    /// Enqueues `parent` to run after every one of `children` completed, in one script.
    /// The parent's delay is ignored (it runs when its children are done); children keep theirs.
    pub async fn enqueue_flow(
        &self,
        parent: Planned<'_>,
        children: &[Planned<'_>],
    ) -> Result<FlowEnqueued, QueueError> {
        if children.is_empty() {
            return Err(QueueError::Invalid("a flow needs at least one child job".into()));
        }
        if parent.options.dedup != super::DedupMode::Throttle {
            return Err(QueueError::Invalid(format!(
                "a flow's key throttles (a window from its first enqueue); dedup {} is for single jobs",
                parent.options.dedup
            )));
        }
        let now = now_ms();
        let mut flow = scripts::NewFlow {
            now,
            origin: &parent.options.origin,
            key: parent.options.idempotency_key.as_deref().unwrap_or(""),
            key_ttl: parent.options.idempotency_ttl.unwrap_or(Duration::from_secs(86_400)),
            parent: self.flow_job(&parent, now)?,
            children: children.iter().map(|child| self.flow_job(child, now)).collect::<Result<_, _>>()?,
        };
        if trace::current().is_none() {
            return Ok(scripts::enqueue_flow(&mut self.connection(), &flow).await?);
        }
        // Under a trace: the parent's enqueue is a span, each child's enqueue a span under it.
        let span = tracing::info_span!("enqueue", queue = flow.parent.queue, kind = flow.parent.kind, flow = true);
        flow.parent.trace = trace::of(&span);
        let child_spans: Vec<tracing::Span> = flow
            .children
            .iter_mut()
            .map(|child| {
                let child_span = tracing::info_span!(parent: &span, "enqueue", queue = child.queue, kind = child.kind);
                child.trace = trace::of(&child_span);
                child_span
            })
            .collect();
        let enqueued = scripts::enqueue_flow(&mut self.connection(), &flow).instrument(span).await?;
        drop(child_spans);
        Ok(enqueued)
    }

    /// Enqueues a planned job with `options` (its own, with the caller's origin and overrides): a
    /// flow when it has children (each enqueued with its own options and the same origin).
    pub async fn enqueue_planned(&self, plan: &PlannedJob, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        if plan.children.is_empty() {
            return self.enqueue(&plan.job, options).await;
        }
        let children: Vec<Planned<'_>> = plan
            .children
            .iter()
            .map(|c| Planned { job: &c.job, options: c.options.enqueue_options(&options.origin) })
            .collect();
        let flow = self.enqueue_flow(Planned { job: &plan.job, options }, &children).await?;
        Ok(Enqueued { id: flow.id, created: flow.created, replaced: false, watch: None }
            .watched(&self.connection(), self.job_prefix()))
    }

    /// `planned` as the flow script reads it (on its kind's queue); a parent's delay is ignored.
    fn flow_job<'a>(&'a self, planned: &'a Planned<'_>, now: i64) -> Result<scripts::FlowJob<'a>, QueueError> {
        let (job, options) = (planned.job, &planned.options);
        let queue = self.queue_for(job)?;
        Ok(scripts::FlowJob {
            keys: &queue.keys,
            queue: queue.name,
            kind: job.kind,
            payload: &job.payload,
            max_attempts: self.attempts(queue, job, options),
            timeout: queue.policy(job.kind).timeout,
            priority: options.priority.unwrap_or(0),
            run_at: now + options.delay.map_or(0, |d| d.as_millis() as i64),
            on_failure: options.on_failure,
            trace: None,
        })
    }

    fn queue_for(&self, job: &Job) -> Result<&super::Queue, QueueError> {
        let kind = self.catalog().kind(job.kind).map_err(|e| QueueError::Invalid(e.to_string()))?;
        self.named(kind.queue())
    }

    fn attempts(&self, queue: &super::Queue, job: &Job, options: &EnqueueOptions) -> u32 {
        options.max_attempts.unwrap_or(queue.policy(job.kind).attempts).max(1)
    }
}

/// Most children a flow tree lists (the rest are counted in `more`).
pub const FLOW_TREE_CHILDREN: usize = 500;

/// One job of a flow as `Queues::flow` shows it: the parent with its children (flows are one
/// level deep, so a child's `children` is empty).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowNode {
    /// The job's id.
    pub id: String,
    /// Its kind (empty when the job is no longer stored).
    pub kind: String,
    /// Its state (`None`: no longer stored, e.g. trimmed after it completed).
    pub state: Option<super::JobState>,
    /// A child's failure policy (`None` for the parent).
    pub on_failure: Option<FailurePolicy>,
    /// A child's error, kept by its parent when its policy let the parent run.
    pub failure: Option<String>,
    /// The parent's children, in the order they were enqueued (at most `FLOW_TREE_CHILDREN`).
    pub children: Vec<FlowNode>,
    /// Children beyond those listed.
    pub more: usize,
}

impl Queues {
    /// The flow job `id` belongs to (as its parent or one of its children), from its parent down:
    /// `None` when the job is not part of a flow, or does not exist. Two reads from Redis.
    pub async fn flow(&self, id: &str) -> Result<Option<FlowNode>, QueueError> {
        let Some(job) = self.job(id).await? else { return Ok(None) };
        let root = match &job.parent {
            Some(parent) => match self.job(parent).await? {
                Some(parent) => parent,
                None => return Ok(None),
            },
            None if job.children.is_empty() => return Ok(None),
            None => job,
        };
        let fields: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.job_key(&root.id)).query_async(&mut self.connection()).await?;
        let listed = &root.children[..root.children.len().min(FLOW_TREE_CHILDREN)];
        let mut pipe = redis::pipe();
        for child in listed {
            pipe.cmd("HMGET").arg(self.job_key(child)).arg("kind").arg("state");
        }
        let states: Vec<(Option<String>, Option<String>)> =
            if listed.is_empty() { Vec::new() } else { pipe.query_async(&mut self.connection()).await? };
        let children = listed
            .iter()
            .zip(states)
            .map(|(child, (kind, state))| FlowNode {
                id: child.clone(),
                kind: kind.unwrap_or_default(),
                state: state.and_then(|s| s.parse().ok()),
                on_failure: Some(
                    fields.get(&format!("on_failure:{child}")).and_then(|p| p.parse().ok()).unwrap_or_default(),
                ),
                failure: fields.get(&format!("failure:{child}")).cloned(),
                children: Vec::new(),
                more: 0,
            })
            .collect();
        Ok(Some(FlowNode {
            id: root.id.clone(),
            kind: root.kind.clone(),
            state: Some(root.state),
            on_failure: None,
            failure: None,
            children,
            more: root.children.len().saturating_sub(FLOW_TREE_CHILDREN),
        }))
    }
}
