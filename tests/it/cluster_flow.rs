//! The load of the cluster fault tests (`cluster.rs`): the API with a client sending events
//! (re-sending the same ids until a 202), a client enqueuing jobs (one idempotency key each,
//! re-sent until accepted), the stream consumers and a job worker; and the final check that every
//! accepted event is stored exactly once and every accepted job completed once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use eventmill::{
    queue::{EnqueueOptions, JobState, Queue},
    shutdown::Shutdown,
};
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    cluster_support::PrivateCluster,
    faults_support::{Load, tally},
    helpers::{TestApp, TestEnv, base_urls, eventually},
    jobs_support::{AnalyticsQueues, Behaviour, RunningWorker, Scripted, start_worker},
};

/// Short waits; a job lease longer than the outage (a job that finished while Redis was down has
/// its end recorded once Redis is back, within its lease: a lease that ran out would run it again).
const SETTINGS: [(&str, &str); 5] = [
    ("EVENTMILL_REDIS_TIMEOUT_MS", "500"),
    ("EVENTMILL_JOB_LEASE_MS", "15000"),
    ("EVENTMILL_JOB_BACKOFF_MS", "200"),
    ("EVENTMILL_JOB_IDLE_CHECK_MS", "500"),
    ("EVENTMILL_CONSUMERS", "2"),
];

/// A test environment on `cluster` with `shards` stream shards and `extra` settings.
pub async fn env_on(cluster: &PrivateCluster, shards: &str, extra: &[(&str, &str)]) -> TestEnv {
    let settings = [&SETTINGS[..], &[("EVENTMILL_STREAM_SHARDS", shards)], extra].concat();
    TestEnv::on(&cluster.url(), &base_urls().1, &settings).await
}

/// Enqueues a job every 20 ms, each with its own idempotency key and re-sent with the same key
/// after an error (a lost reply may hide an enqueue that happened: the key makes it one job).
struct Enqueuer {
    stop: watch::Sender<bool>,
    task: JoinHandle<(Vec<String>, u64)>,
}

impl Enqueuer {
    fn start(queue: Queue) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut ids, mut errors) = (Vec::new(), 0);
            while !*stopped.borrow() {
                let key = uuid::Uuid::new_v4().to_string();
                let options = || EnqueueOptions { idempotency_key: Some(key.clone()), ..EnqueueOptions::default() };
                loop {
                    match queue.enqueue("CLUSTER_TEST", r#"{"test":true}"#, options()).await {
                        Ok(enqueued) => break ids.push(enqueued.id),
                        Err(_) => errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ids, errors)
        });
        Self { stop, task }
    }

    async fn stop(self) -> (Vec<String>, u64) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("the enqueuer stops").unwrap()
    }
}

/// The stream consumers (at least one per shard, as `worker` starts them) and a job worker.
struct Processing {
    consumers: (Shutdown, Vec<JoinHandle<anyhow::Result<()>>>),
    worker: RunningWorker,
    handler: Arc<Scripted>,
}

impl Processing {
    async fn start(app: &TestApp) -> Self {
        let stop = Shutdown::new();
        let mut consumers = Vec::new();
        let shards = &app.env.resources.shards;
        for index in 0..shards.len().max(2) {
            let consumer = app.env.shard_consumer(shards[index % shards.len()].clone()).await;
            consumers.push(tokio::spawn(consumer.run(stop.clone())));
        }
        let handler = Scripted::new(Behaviour::Succeed);
        let worker = start_worker(app.env.resources.queues.rollup(), handler.clone(), 4);
        Self { consumers: (stop, consumers), worker, handler }
    }

    async fn stop(self) {
        self.worker.shutdown.cancel();
        self.consumers.0.cancel();
        self.worker.handle.await.unwrap().unwrap();
        for consumer in self.consumers.1 {
            consumer.await.unwrap().unwrap();
        }
    }
}

/// The whole flow on the cluster.
pub struct Flow {
    load: Load,
    enqueuer: Enqueuer,
    processing: Option<Processing>,
}

impl Flow {
    /// Clients, consumers and a worker.
    pub async fn start(app: &TestApp) -> Self {
        let processing = Processing::start(app).await;
        let mut flow = Self::clients(app);
        flow.processing = Some(processing);
        flow
    }

    /// The clients only: events and jobs wait in Redis (a backlog) until [`Flow::process`].
    pub fn clients(app: &TestApp) -> Self {
        let enqueuer = Enqueuer::start(app.env.resources.queues.rollup().clone());
        let load = Load::start(app.url("/v1/events/bulk"), 100);
        Self { load, enqueuer, processing: None }
    }

    /// Starts the consumers and the worker.
    pub async fn process(&mut self, app: &TestApp) {
        self.processing = Some(Processing::start(app).await);
    }

    /// Stops the clients, waits until everything they got accepted is done, stops the rest and
    /// prints the counts; panics on any event lost or duplicated and any job not completed once.
    pub async fn finish(self, app: &TestApp, what: &str) {
        let processing = self.processing.expect("the consumers and the worker were started");
        let statuses = self.load.statuses.clone();
        let accepted = self.load.stop().await;
        let (jobs, enqueue_errors) = self.enqueuer.stop().await;
        let events = tally(&app.env, &accepted).await;
        let queues = &app.env.resources.queues;
        let completed = || async {
            let mut done = 0;
            for id in &jobs {
                done += usize::from(queues.job(id).await.unwrap().is_some_and(|j| j.state == JobState::Completed));
            }
            done
        };
        eventually(Duration::from_secs(60), || async { completed().await == jobs.len() }).await;
        let done = completed().await;
        let mut runs: HashMap<String, usize> = HashMap::new();
        for (id, ..) in processing.handler.attempts() {
            *runs.entry(id).or_default() += 1;
        }
        processing.stop().await;
        let statuses = statuses.lock().unwrap().clone();
        let answers: u64 = statuses.values().sum();
        let rerun = jobs.iter().filter(|id| runs.get(*id).copied().unwrap_or(0) > 1).count();
        // Ids come from a counter in Redis: an id handed out twice means the first job (and the
        // counter's increment) was lost, and its successor completing hides it.
        let reused = jobs.len() - jobs.iter().collect::<std::collections::HashSet<_>>().len();
        eprintln!(
            "cluster tally ({what}): events accepted {}, stored {}, duplicates {}, lost {}; answers {statuses:?} \
             (503s {}, retries {}); jobs enqueued {} (enqueue errors retried {enqueue_errors}), completed {done}, \
             runs {}, run twice {rerun}, ids given twice (a job lost) {reused}",
            events.sent,
            events.stored,
            events.duplicates,
            events.lost,
            statuses.get(&503).copied().unwrap_or(0),
            answers - statuses.get(&202).copied().unwrap_or(0),
            jobs.len(),
            runs.values().sum::<usize>(),
        );
        assert!(events.sent > 0 && !jobs.is_empty(), "the clients got nothing accepted");
        assert_eq!((events.duplicates, events.lost), (0, 0), "{events:?}");
        assert_eq!(done, jobs.len(), "every enqueued job completes");
        assert_eq!(rerun, 0, "no job ran twice");
        assert_eq!(reused, 0, "no job lost (its id given again to a later job)");
    }
}
