//! Redis Cluster under load (SPEC section 15), on a private 3-master cluster of its own: a master
//! killed and restarted, and the stream's and the queue's slots moved to another master, while a
//! client sends events (re-sending the same ids until a 202) and jobs are enqueued (with one
//! idempotency key each, re-sent until accepted). Every accepted event is stored exactly once and
//! every job completes, once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use eventmill::{
    queue::{EnqueueOptions, JobState, Queue},
    shutdown::Shutdown,
};
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    cluster_support::PrivateCluster,
    faults_support::{Load, random_pause, tally},
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

/// The whole flow on the cluster: the API with a client sending events, the stream consumers, a
/// job worker and a client enqueuing jobs.
struct Flow {
    load: Load,
    enqueuer: Enqueuer,
    consumers: (Shutdown, Vec<JoinHandle<anyhow::Result<()>>>),
    worker: RunningWorker,
    handler: Arc<Scripted>,
}

impl Flow {
    async fn start(app: &TestApp) -> Self {
        let stop = Shutdown::new();
        let mut consumers = Vec::new();
        // At least one consumer per stream shard, as `worker` starts them.
        let shards = &app.env.resources.shards;
        for index in 0..shards.len().max(2) {
            let consumer = app.env.shard_consumer(shards[index % shards.len()].clone()).await;
            consumers.push(tokio::spawn(consumer.run(stop.clone())));
        }
        let handler = Scripted::new(Behaviour::Succeed);
        let worker = start_worker(app.env.resources.queues.rollup(), handler.clone(), 4);
        let enqueuer = Enqueuer::start(app.env.resources.queues.rollup().clone());
        let load = Load::start(app.url("/v1/events/bulk"), 100);
        Self { load, enqueuer, consumers: (stop, consumers), worker, handler }
    }

    /// Stops the clients, waits until everything they got accepted is done, stops the rest and
    /// prints the counts; panics on any event lost or duplicated and any job not completed once.
    async fn finish(self, app: &TestApp, what: &str) {
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
        for (id, ..) in self.handler.attempts() {
            *runs.entry(id).or_default() += 1;
        }
        self.worker.shutdown.cancel();
        self.consumers.0.cancel();
        self.worker.handle.await.unwrap().unwrap();
        for consumer in self.consumers.1 {
            consumer.await.unwrap().unwrap();
        }
        let statuses = statuses.lock().unwrap().clone();
        let answers: u64 = statuses.values().sum();
        let rerun = jobs.iter().filter(|id| runs.get(*id).copied().unwrap_or(0) > 1).count();
        eprintln!(
            "cluster tally ({what}): events accepted {}, stored {}, duplicates {}, lost {}; answers {statuses:?} \
             (503s {}, retries {}); jobs enqueued {} (enqueue errors retried {enqueue_errors}), completed {done}, \
             runs {}, run twice {rerun}",
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
    }
}

async fn env_on(cluster: &PrivateCluster, shards: &str) -> TestEnv {
    let settings = [&SETTINGS[..], &[("EVENTMILL_STREAM_SHARDS", shards)]].concat();
    TestEnv::on(&cluster.url(), &base_urls().1, &settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_and_restarted_under_load_loses_and_duplicates_nothing() {
    use tokio::task::block_in_place;
    let mut cluster = block_in_place(PrivateCluster::start);
    // Three stream shards, spread over the three masters.
    let app = TestApp::api(env_on(&cluster, "3").await).await;
    let flow = Flow::start(&app).await;
    random_pause(500, 1000).await;
    // The master of the first shard's slot; down for longer than the node timeout, so the other
    // masters declare the cluster down too (no replicas), then back from its AOF.
    let (port, _) = cluster.master_of(&app.env.resources.keys.events);
    block_in_place(|| cluster.kill(port));
    random_pause(2000, 3000).await;
    block_in_place(|| cluster.restart(port));
    tokio::time::sleep(Duration::from_secs(1)).await;
    flow.finish(&app, "a master killed and restarted").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_and_the_queues_slots_moved_to_another_master_under_load_lose_and_duplicate_nothing() {
    let cluster = tokio::task::block_in_place(PrivateCluster::start);
    let app = TestApp::api(env_on(&cluster, "1").await).await;
    let flow = Flow::start(&app).await;
    random_pause(500, 1000).await;
    let queue_key = format!("{}x", eventmill::queue::key_base(&app.env.prefix));
    for key in [app.env.resources.keys.events.as_str(), &queue_key] {
        let (from, slot) = cluster.master_of(key);
        let to = cluster.other_master(from);
        let moved = cluster.migrate_slot(slot, to, 10, Duration::from_millis(20)).await;
        eprintln!("slot {slot} of {key}: {moved} keys moved from {from} to {to}");
        assert_eq!(cluster.master_of(key).0, to);
        random_pause(300, 800).await;
    }
    flow.finish(&app, "the stream's and the queue's slots moved").await;
    app.stop().await;
}
