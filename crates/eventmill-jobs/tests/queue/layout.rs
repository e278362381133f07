//! The Redis layout of a waiting job (docs/jobs.md, "Memory per waiting job"): a hash of only the
//! fields it needs, unprioritised jobs in the waiting line's LIST, and every reader taking a
//! missing field as its default.

use std::{collections::HashMap, time::Duration};

use eventmill_jobs::{EnqueueOptions, JobState};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, start_worker, wait_for_state};

#[tokio::test]
async fn a_waiting_job_is_five_hash_fields_and_one_list_entry_and_reads_with_its_defaults() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let id = queue.enqueue("DAILY_ROLLUP", r#"{"date":"2026-01-01"}"#, EnqueueOptions::default()).await.unwrap().id;
    let base = eventmill_jobs::queue::key_base(&env.prefix);
    let mut redis = env.redis();
    let hash: HashMap<String, String> = redis.hgetall(format!("{base}job:{id}")).await.unwrap();
    let mut fields: Vec<&str> = hash.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["created_at", "kind", "max_attempts", "payload", "queue"], "{hash:?}");
    let line: Vec<String> = redis.lrange(format!("{base}{}:waiting:fifo", queue.name), 0, -1).await.unwrap();
    assert_eq!(line, std::slice::from_ref(&id));
    let ranked: u64 = redis.zcard(format!("{base}{}:waiting", queue.name)).await.unwrap();
    assert_eq!(ranked, 0, "no sorted-set entry for an unprioritised job");

    let job = env.queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.id.as_str(), job.state, job.attempts, job.progress), (id.as_str(), JobState::Waiting, 0, 0));
    assert!(job.errors.is_empty() && job.key.is_none() && job.origin.is_empty() && job.priority == 0);
    assert_eq!(queue.counts().await.unwrap().waiting, 1);
    assert_eq!(queue.ids_page(JobState::Waiting, 0, 10).await.unwrap(), (vec![id.clone()], 1));

    // Set options are written; a delayed job has its state and run-at.
    let options = EnqueueOptions {
        priority: Some(3),
        idempotency_key: Some("k1".into()),
        origin: "cli".into(),
        delay: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let delayed = queue.enqueue("DAILY_ROLLUP", "{}", options).await.unwrap().id;
    let hash: HashMap<String, String> = redis.hgetall(format!("{base}job:{delayed}")).await.unwrap();
    for field in ["priority", "key", "origin", "state", "run_at"] {
        assert!(hash.contains_key(field), "{field} missing: {hash:?}");
    }
    assert_eq!(hash["state"], "delayed");

    // It runs with the kind's timeout, its attempt counted, and reads back complete.
    let handler = Scripted::new(Behaviour::Succeed);
    let worker = start_worker(queue, handler.clone(), 1);
    let done = wait_for_state(&env.queues, &id, JobState::Completed, Duration::from_secs(10)).await;
    assert_eq!((done.attempts, done.progress), (1, 100));
    worker.shutdown.cancel();
}

#[tokio::test]
async fn the_waiting_line_lists_searches_cancels_and_empties_across_its_list_and_sorted_set() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup();
    let mut ids = Vec::new();
    for (i, priority) in [None, Some(2), None, Some(1), None].into_iter().enumerate() {
        let options = EnqueueOptions { priority, ..Default::default() };
        ids.push(queue.enqueue("DAILY_ROLLUP", &format!(r#"{{"n":"needle{i}"}}"#), options).await.unwrap().id);
    }
    // Claim order: unprioritised in line, then priority 1, then 2.
    let order = [&ids[0], &ids[2], &ids[4], &ids[3], &ids[1]].map(|s| s.clone()).to_vec();
    assert_eq!(queue.ids(JobState::Waiting, 10).await.unwrap(), order);
    assert_eq!(queue.ids_page(JobState::Waiting, 2, 2).await.unwrap(), (order[2..4].to_vec(), 5));
    assert_eq!(queue.ids_page(JobState::Waiting, 4, 5).await.unwrap(), (order[4..].to_vec(), 5));
    let (found, next) = queue.search(JobState::Waiting, "NEEDLE", 0, 10, 100).await.unwrap();
    assert_eq!((found, next), (order.clone(), None));
    let (found, _) = queue.search(JobState::Waiting, "needle3", 0, 10, 100).await.unwrap();
    assert_eq!(found, [ids[3].clone()]);

    // Cancel and remove take a job out of the list or the sorted set.
    assert!(queue.remove(&ids[2]).await.unwrap());
    queue.cancel(&ids[1]).await.unwrap();
    assert_eq!(queue.ids(JobState::Waiting, 10).await.unwrap(), [ids[0].clone(), ids[4].clone(), ids[3].clone()]);
    assert_eq!(queue.counts().await.unwrap().waiting, 3);

    assert_eq!(queue.empty().await.unwrap(), 3);
    assert_eq!(queue.counts().await.unwrap().waiting, 0);
    assert!(env.queues.job(&ids[0]).await.unwrap().is_none(), "its hash is deleted too");
}
