//! Bulk enqueue (`Queue::enqueue_bulk`, `Queues::enqueue_bulk`, `Jobs::enqueue_bulk`) against the
//! test Redis only: a batch lands whole or not at all.
//!
//! `cargo test -p eventmill-jobs --test bulk` (EVENTMILL_REDIS_URL: `scripts/services.sh env`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use eventmill_jobs::{
    BulkJob, EnqueueOptions, Job, JobContext, JobError, Jobs, JobsSettings, Processor, Queue, QueueError, QueueSpec,
    Registry, queue::MAX_PRIORITY,
};
use redis::AsyncCommands;
use serde_json::{Map, Value, json};

const QUEUE: &str = "bulk";

/// A kind whose payload is any object.
struct Echo;

impl Processor<()> for Echo {
    type Payload = Map<String, Value>;
    const NAME: &'static str = "ECHO";
    const QUEUE: &'static str = QUEUE;

    async fn process(&self, _: &JobContext<()>, payload: Self::Payload) -> Result<Value, JobError> {
        Ok(Value::Object(payload))
    }
}

/// The framework on a fresh key prefix of the test Redis.
fn connect() -> Jobs<()> {
    let registry = Registry::new().queue(QueueSpec::new(QUEUE)).register(Echo);
    let values = [
        (
            "EVENTMILL_REDIS_URL",
            std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        ),
        ("EVENTMILL_REDIS_PREFIX", format!("emjobs-bulk:{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)),
    ];
    let get = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let settings =
        JobsSettings::from_lookup("EVENTMILL", &registry.kind_names(), &registry.queue_names(), get).unwrap();
    Jobs::connect(settings, registry).unwrap()
}

fn queue(jobs: &Jobs<()>) -> Queue {
    jobs.queues().named(QUEUE).unwrap().clone()
}

fn batch(from: usize, n: usize) -> Vec<BulkJob> {
    (from..from + n).map(|i| BulkJob::new("ECHO", format!(r#"{{"i":{i}}}"#))).collect()
}

#[tokio::test]
async fn a_batch_with_one_refused_job_enqueues_none_of_its_jobs() {
    let jobs = connect();
    let queue = queue(&jobs);
    let mut jobs_of_batch = batch(0, 999);
    let refused = EnqueueOptions { priority: Some(MAX_PRIORITY + 1), ..EnqueueOptions::default() };
    jobs_of_batch.insert(500, BulkJob::new("ECHO", r#"{"i":"refused"}"#).with_options(refused));

    let error = queue.enqueue_bulk(&jobs_of_batch).await.unwrap_err();
    assert!(matches!(&error, QueueError::Invalid(m) if m.contains("job 501 of the batch")), "{error}");
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (0, 0), "nothing of the batch was enqueued");

    // Through the registry: a job of a kind nobody registered refuses its whole batch too.
    let mut checked: Vec<(Job, EnqueueOptions)> =
        (0..10).map(|i| (Job { kind: "ECHO", payload: json!({ "i": i }) }, EnqueueOptions::default())).collect();
    checked.push((Job { kind: "NOBODY_REGISTERED_THIS", payload: json!({}) }, EnqueueOptions::default()));
    assert!(matches!(jobs.queues().enqueue_bulk(&checked).await, Err(QueueError::Invalid(_))));
    assert_eq!(queue.counts().await.unwrap().waiting, 0);

    // The same batch without the refused job lands whole.
    jobs_of_batch.remove(500);
    assert_eq!(queue.enqueue_bulk(&jobs_of_batch).await.unwrap().len(), 999);
    assert_eq!(queue.counts().await.unwrap().waiting, 999);
}

#[tokio::test]
async fn another_client_never_sees_part_of_a_batch() {
    let jobs = connect();
    let queue = queue(&jobs);
    // Unprioritised waiting jobs are in the waiting line's LIST (docs/jobs.md, "Memory per waiting job").
    let waiting = format!("{}{QUEUE}:waiting:fifo", eventmill_jobs::queue::key_base(&jobs.settings().redis.prefix));
    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let (mut redis, done) = (jobs.redis().clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) {
                seen.push(redis.llen::<_, u64>(&waiting).await.unwrap());
            }
            seen
        })
    };
    let mut ids = Vec::new();
    for b in 0..20 {
        let enqueued = queue.enqueue_bulk(&batch(b * 500, 500)).await.unwrap();
        assert!(enqueued.iter().all(|e| e.created));
        ids.extend(enqueued.into_iter().map(|e| e.id.parse::<u64>().unwrap()));
    }
    done.store(true, Ordering::SeqCst);
    let seen = observer.await.unwrap();
    assert!(
        seen.iter().all(|n| n % 500 == 0),
        "a partial batch was visible: {:?}",
        seen.iter().find(|n| *n % 500 != 0)
    );
    // One id per job, in the order given.
    assert_eq!(ids.len(), 10_000);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(queue.counts().await.unwrap().waiting, 10_000);
    // FIFO: the first job of the first batch runs first.
    let first = queue.ids(eventmill_jobs::JobState::Waiting, 1).await.unwrap();
    assert_eq!(first, vec![ids[0].to_string()]);
}

#[tokio::test]
async fn each_job_of_a_batch_keeps_its_own_options() {
    let jobs = connect();
    let queue = queue(&jobs);
    let key = |k: &str| EnqueueOptions { idempotency_key: Some(k.into()), ..EnqueueOptions::default() };
    let first = queue.enqueue(Echo::NAME, "{}", key("once")).await.unwrap();
    let delayed = EnqueueOptions { delay: Some(Duration::from_secs(60)), ..EnqueueOptions::default() };
    let enqueued = queue
        .enqueue_bulk(&[
            BulkJob::new("ECHO", "{}").with_options(key("once")),
            BulkJob::new("ECHO", "{}").with_options(delayed),
            BulkJob::new("ECHO", "{}"),
        ])
        .await
        .unwrap();
    assert_eq!((enqueued[0].id.as_str(), enqueued[0].created), (first.id.as_str(), false), "idempotent duplicate");
    assert!(enqueued[1].created && enqueued[2].created);
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (2, 1));

    // The typed form checks every payload, then enqueues them on the kind's queue.
    let payloads: Vec<Map<String, Value>> = (0..3).map(|i| json!({ "n": i }).as_object().unwrap().clone()).collect();
    assert_eq!(jobs.enqueue_bulk::<Echo>(&payloads).await.unwrap().len(), 3);
    assert_eq!(queue.counts().await.unwrap().waiting, 5);
    assert!(queue.enqueue_bulk(&[]).await.unwrap().is_empty());
}
