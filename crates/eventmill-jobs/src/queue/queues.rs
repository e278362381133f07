//! `Queues`: every declared queue behind one handle, with the registry's catalog: routes a job to its
//! kind's queue, finds any job by id, reads a job's log.

use std::{collections::HashMap, sync::Arc};

use redis::AsyncCommands;

use crate::redis_conn::{RedisConn, RedisTarget};

use super::{BulkJob, Catalog, EnqueueOptions, Enqueued, Events, JobRecord, JobState, Queue, QueueError};
use crate::{job::Job, settings::JobSettings};

/// The declared queues, the catalog of kinds and the shared job hashes.
#[derive(Clone)]
pub struct Queues {
    queues: Vec<Queue>,
    catalog: Arc<Catalog>,
    redis: RedisConn,
    job_prefix: String,
    events: Events,
    processes: super::Processes,
    /// The SLOs in force (registry and environment).
    slos: Arc<Vec<super::slo::KindSlo>>,
    /// `{<prefix>:queue}:slo-breaches`: since when each breached SLO is breached.
    slo_breaches: String,
}

impl Queues {
    /// One `Queue` per queue the registry declares; `client` opens the workers' blocking
    /// connections.
    pub fn new(
        redis: RedisConn,
        client: RedisTarget,
        prefix: &str,
        settings: Arc<JobSettings>,
        catalog: Arc<Catalog>,
    ) -> Self {
        let policies = Arc::new(catalog.policies(&settings));
        let events = Events::default();
        let queues = catalog
            .queues()
            .iter()
            .map(|spec| {
                Queue::new(redis.clone(), client.clone(), prefix, spec.name, settings.clone(), policies.clone())
                    .with_rate_limit(settings.rate_limit(spec.name, spec.rate_limit))
                    .with_global_concurrency(settings.global_concurrency(spec.name, spec.global_concurrency))
                    .with_events(events.clone())
            })
            .collect();
        let processes = super::Processes::new(redis.clone(), &super::key_base(prefix), settings.worker_lease);
        let slos = Arc::new(super::slo::in_force(&catalog, &settings));
        let slo_breaches = format!("{}slo-breaches", super::key_base(prefix));
        Self {
            queues,
            catalog,
            redis,
            job_prefix: format!("{}job:", super::key_base(prefix)),
            events,
            processes,
            slos,
            slo_breaches,
        }
    }

    /// Every declared queue, in declaration order.
    pub fn all(&self) -> &[Queue] {
        &self.queues
    }

    /// This process's job lifecycle events: `queues.events().subscribe()` sees every job this
    /// process starts, finishes, cancels or hands back.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The worker processes registered in Redis (the board's workers page).
    pub fn processes(&self) -> &super::Processes {
        &self.processes
    }

    /// The SLOs in force, per kind and objective (see [`slo`](super::slo)).
    pub fn slos(&self) -> &[super::slo::KindSlo] {
        &self.slos
    }

    pub(super) fn slo_breaches_key(&self) -> &str {
        &self.slo_breaches
    }

    /// The declared queues and registered kinds.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The queue called `name`.
    pub fn named(&self, name: &str) -> Result<&Queue, QueueError> {
        self.queues.iter().find(|q| q.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.queues.iter().map(|q| q.name).collect();
            QueueError::Invalid(format!("unknown queue {name:?}: expected one of {}", names.join(", ")))
        })
    }

    /// Pauses (or resumes) every declared queue; answers their names.
    pub async fn set_all_paused(&self, paused: bool) -> Result<Vec<&'static str>, QueueError> {
        for queue in &self.queues {
            queue.set_paused(paused).await?;
        }
        Ok(self.queues.iter().map(|q| q.name).collect())
    }

    /// Enqueues a checked job on the queue of its kind.
    pub async fn enqueue(&self, job: &Job, options: EnqueueOptions) -> Result<Enqueued, QueueError> {
        let kind = self.catalog.kind(job.kind).map_err(|e| QueueError::Invalid(e.to_string()))?;
        self.named(kind.queue())?.enqueue(job.kind, &job.payload.to_string(), options).await
    }

    /// Enqueues checked jobs, each on the queue of its kind, in one round trip: all of them or
    /// none (see [`Queue::enqueue_bulk`]; the queues share one hash tag, so one transaction holds
    /// jobs of several queues). One refused job (an unknown kind, a bad option) refuses the batch.
    pub async fn enqueue_bulk(&self, jobs: &[(Job, EnqueueOptions)]) -> Result<Vec<Enqueued>, QueueError> {
        let mut routed = Vec::with_capacity(jobs.len());
        for (job, options) in jobs {
            let kind = self.catalog.kind(job.kind).map_err(|e| QueueError::Invalid(e.to_string()))?;
            let bulk = BulkJob::new(job.kind, job.payload.to_string()).with_options(options.clone());
            routed.push((self.named(kind.queue())?, bulk));
        }
        super::bulk::enqueue_all(routed.iter().map(|(queue, job)| (*queue, job)).collect()).await
    }

    pub(super) fn connection(&self) -> RedisConn {
        self.redis.clone()
    }

    /// The job hashes' prefix (`{<prefix>:queue}:job:`).
    pub(super) fn job_prefix(&self) -> &str {
        &self.job_prefix
    }

    /// Job `id`'s hash key.
    pub(super) fn job_key(&self, id: &str) -> String {
        format!("{}{id}", self.job_prefix)
    }

    /// A job by id, in any queue and state.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let hash: HashMap<String, String> = self.redis.clone().hgetall(format!("{}{id}", self.job_prefix)).await?;
        Ok(JobRecord::from_hash(id, hash))
    }

    /// The log lines job `id`'s processor wrote (the last 1,000), oldest first.
    pub async fn log(&self, id: &str) -> Result<Vec<String>, QueueError> {
        Ok(self.redis.clone().lrange(format!("{}{id}:log", self.job_prefix), 0, -1).await?)
    }

    /// The jobs of one queue and state (see `Queue::ids` for the order).
    pub async fn list(&self, queue: &Queue, state: JobState, limit: usize) -> Result<Vec<JobRecord>, QueueError> {
        let mut jobs = Vec::new();
        for id in queue.ids(state, limit).await? {
            if let Some(job) = self.job(&id).await? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// The queue holding job `id`.
    pub async fn queue_of(&self, id: &str) -> Result<&Queue, QueueError> {
        let name: Option<String> = self.redis.clone().hget(format!("{}{id}", self.job_prefix), "queue").await?;
        self.named(&name.ok_or_else(|| QueueError::NotFound(id.to_owned()))?)
    }
}
