//! Bulk enqueue (BullMQ's `addBulk`): many jobs in one round trip, all or nothing per batch. The
//! enqueue script of `Queue::enqueue`, once per job, inside one MULTI/EXEC transaction.

use std::time::Duration;

use tracing::Instrument;

use super::{EnqueueOptions, Enqueued, MAX_PRIORITY, Queue, QueueError, now_ms, scripts};

/// One job of a bulk enqueue: its kind, its JSON payload and its options.
///
/// ```
/// use std::time::Duration;
///
/// use eventmill_jobs::{BulkJob, EnqueueOptions};
///
/// let now = BulkJob::new("SEND_WELCOME", r#"{"user_id":"u1"}"#);
/// let later = BulkJob::new("SEND_WELCOME", r#"{"user_id":"u2"}"#)
///     .with_options(EnqueueOptions { delay: Some(Duration::from_secs(60)), ..EnqueueOptions::default() });
/// assert_eq!(later.kind, now.kind);
/// ```
#[derive(Debug, Clone)]
pub struct BulkJob {
    /// The kind's name (`Queue::enqueue_bulk` does not check it against a registry;
    /// `Queues::enqueue_bulk` and `Jobs::enqueue_bulk` do).
    pub kind: String,
    /// The payload, a JSON object as text.
    pub payload: String,
    /// Delay, priority, idempotency key... as for one enqueue.
    pub options: EnqueueOptions,
}

impl BulkJob {
    /// A job of `kind` with `payload` and default options.
    pub fn new(kind: impl Into<String>, payload: impl Into<String>) -> Self {
        Self { kind: kind.into(), payload: payload.into(), options: EnqueueOptions::default() }
    }

    /// The same job with `options`.
    pub fn with_options(self, options: EnqueueOptions) -> Self {
        Self { options, ..self }
    }
}

impl Queue {
    /// Adds `jobs` to this queue in one round trip: every job is enqueued, or none is. Answers
    /// one [`Enqueued`] per job, in order (an idempotent duplicate is `created: false`, as for
    /// [`Queue::enqueue`]).
    ///
    /// Every job is checked before anything is sent, so one refused job (a priority over
    /// [`MAX_PRIORITY`]) refuses the batch. The batch is one MULTI/EXEC transaction of the
    /// enqueue script, the script's text loaded in the same transaction (a Redis that lost its
    /// script cache still runs all of it): no other client sees part of a batch, and a
    /// connection lost before EXEC enqueues nothing. Batches of about 1,000 jobs keep each
    /// transaction short (Redis serves nobody else while it runs).
    ///
    /// ```no_run
    /// # async fn demo(queue: eventmill_jobs::Queue) -> Result<(), eventmill_jobs::QueueError> {
    /// use eventmill_jobs::BulkJob;
    ///
    /// let batch: Vec<BulkJob> =
    ///     (0..1000).map(|i| BulkJob::new("SEND_WELCOME", format!(r#"{{"user_id":"u{i}"}}"#))).collect();
    /// let enqueued = queue.enqueue_bulk(&batch).await?;
    /// assert_eq!(enqueued.len(), 1000);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_bulk(&self, jobs: &[BulkJob]) -> Result<Vec<Enqueued>, QueueError> {
        enqueue_all(jobs.iter().map(|job| (self, job)).collect()).await
    }
}

/// Enqueues every (queue, job) pair in one transaction (the queues share one hash tag, so on a
/// Redis Cluster too they are on one master). Used by `Queue::enqueue_bulk` and
/// `Queues::enqueue_bulk` (jobs routed to their kinds' queues).
pub(super) async fn enqueue_all(jobs: Vec<(&Queue, &BulkJob)>) -> Result<Vec<Enqueued>, QueueError> {
    let Some((first, _)) = jobs.first() else {
        return Ok(Vec::new());
    };
    for (i, (_, job)) in jobs.iter().enumerate() {
        if let Err(error) = job.options.check() {
            return Err(QueueError::Invalid(format!(
                "job {} of the batch ({}): {error}; nothing was enqueued",
                i + 1,
                job.kind
            )));
        }
        let priority = job.options.priority.unwrap_or(0);
        if priority > MAX_PRIORITY {
            return Err(QueueError::Invalid(format!(
                "job {} of the batch ({}): priority {priority} is too large: use 1 (first) to {MAX_PRIORITY}; nothing was enqueued",
                i + 1,
                job.kind
            )));
        }
    }
    // Under a trace: one `enqueue` span for the batch, whose context every job keeps.
    let span = super::trace::current().map(|_| tracing::info_span!("enqueue", jobs = jobs.len()));
    let trace = span.as_ref().and_then(super::trace::of);
    let now = now_ms();
    let mut pipe = redis::pipe();
    pipe.atomic();
    scripts::load_enqueue(&mut pipe);
    for (queue, job) in &jobs {
        let options = &job.options;
        let policy = queue.policy(&job.kind);
        let new_job = scripts::NewJob {
            queue: queue.name,
            kind: &job.kind,
            payload: &job.payload,
            max_attempts: options.max_attempts.unwrap_or(policy.attempts).max(1),
            timeout: policy.timeout,
            now,
            run_at: now + options.delay.map_or(0, |d| d.as_millis() as i64),
            key_ttl: options.idempotency_ttl.unwrap_or(Duration::from_secs(86_400)),
            origin: &options.origin,
            priority: options.priority.unwrap_or(0),
            key: options.idempotency_key.as_deref().unwrap_or(""),
            dedup: options.dedup,
            trace: trace.as_deref(),
        };
        scripts::enqueue_into(&mut pipe, &queue.keys, &new_job);
    }
    let mut redis = first.redis.clone();
    let replies: Vec<Enqueued> = match span {
        Some(span) => pipe.query_async(&mut redis).instrument(span).await?,
        None => pipe.query_async(&mut redis).await?,
    };
    if let Some(last) = replies.last() {
        // As `Queue::enqueue`: acknowledged once the replicas have it (the last job proves the
        // transaction, which replicates as one).
        let proof = first.keys.job(&last.id);
        redis.replicated(|| redis::cmd("EXISTS").arg(proof).clone()).await?;
    }
    Ok(replies.into_iter().map(|enqueued| enqueued.watched(&first.redis, &first.keys.job_prefix)).collect())
}
