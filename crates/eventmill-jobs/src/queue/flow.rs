//! Flows: a parent job that runs once all its children completed (SPEC section 7; BullMQ's
//! `FlowProducer`). The parent waits in its queue's `waiting-children` set with a count of pending
//! children; the script that completes a child decrements it and, at zero, moves the parent to
//! `waiting`, so a parent runs exactly once whatever crashes around it. A child out of attempts
//! (or cancelled, or removed) fails the parent with the child's error. One level: children are
//! plain jobs, on any declared queue.

use super::{EnqueueOptions, Enqueued, QueueError, Queues, now_ms, scripts};
use crate::job::{Job, PlannedJob};

/// A job to enqueue and how.
pub struct Planned<'a> {
    pub job: &'a Job,
    pub options: EnqueueOptions,
}

/// What `enqueue_flow` did: the parent's id, its children's, and whether it is new (false: the
/// parent's idempotency key already named a flow, whose parent id is answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEnqueued {
    pub id: String,
    pub created: bool,
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
        let now = now_ms();
        let head = self.queue_for(parent.job)?;
        let key = parent.options.idempotency_key.as_deref().unwrap_or("");
        let idempotency = format!("{}{key}", head.idempotency_prefix);
        let ttl = parent.options.idempotency_ttl.unwrap_or(std::time::Duration::from_secs(86_400)).as_millis() as u64;
        let mut script = scripts::ENQUEUE_FLOW.prepare_invoke();
        script.key(&head.seq).key(&head.waiting_children).key(idempotency);
        script
            .arg(&head.job_prefix)
            .arg(now)
            .arg(ttl.max(1))
            .arg(head.name)
            .arg(parent.job.kind)
            .arg(parent.job.payload.to_string())
            .arg(self.attempts(head, parent.job, &parent.options))
            .arg(head.policy(parent.job.kind).timeout.as_millis() as u64)
            .arg(&parent.options.origin)
            .arg(parent.options.priority.unwrap_or(0))
            .arg(key)
            .arg(&head.waiting)
            .arg(&head.order)
            .arg(&head.marker)
            .arg(&head.failed);
        for child in children {
            let queue = self.queue_for(child.job)?;
            script.key(&queue.waiting).key(&queue.delayed).key(&queue.marker).key(&queue.order);
            script
                .arg(queue.name)
                .arg(child.job.kind)
                .arg(child.job.payload.to_string())
                .arg(self.attempts(queue, child.job, &child.options))
                .arg(queue.policy(child.job.kind).timeout.as_millis() as u64)
                .arg(child.options.priority.unwrap_or(0))
                .arg(now + child.options.delay.map_or(0, |d| d.as_millis() as i64));
        }
        let (created, id, children): (i64, String, Vec<String>) = script.invoke_async(&mut self.connection()).await?;
        Ok(FlowEnqueued { id, created: created == 1, children })
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
        Ok(Enqueued { id: flow.id, created: flow.created })
    }

    fn queue_for(&self, job: &Job) -> Result<&super::Queue, QueueError> {
        let kind = self.catalog().kind(job.kind).map_err(|e| QueueError::Invalid(e.to_string()))?;
        self.named(kind.queue())
    }

    fn attempts(&self, queue: &super::Queue, job: &Job, options: &EnqueueOptions) -> u32 {
        options.max_attempts.unwrap_or(queue.policy(job.kind).attempts).max(1)
    }
}
