//! Keys written by older eventmill versions are adopted in place: the waiting list that became a
//! sorted set, and queue keys from before the cluster hash tags.

use eventmill_jobs::{EnqueueOptions, JobState};

use crate::support::{AnalyticsQueues, TestEnv};

#[tokio::test]
async fn a_waiting_list_of_an_older_eventmill_joins_the_waiting_line_in_the_same_order_at_declare() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup().clone();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(queue.enqueue("DAILY_ROLLUP", r#"{"test":true}"#, EnqueueOptions::default()).await.unwrap().id);
    }
    // Before priorities, `waiting` was a list: LPUSH on enqueue, RPOP to claim.
    let key = format!("{}{}:waiting", eventmill_jobs::queue::key_base(&env.prefix), queue.name);
    let mut redis = env.redis();
    let _: () = redis::AsyncCommands::del(&mut redis, &[&key, &format!("{key}:fifo")]).await.unwrap();
    for id in &ids {
        let _: () = redis::AsyncCommands::lpush(&mut redis, &key, id).await.unwrap();
    }
    queue.declare(false, 1).await.unwrap();
    assert_eq!(queue.ids(JobState::Waiting, 10).await.unwrap(), ids, "the next to run first, as before");
    assert_eq!(queue.counts().await.unwrap().waiting, 4);
}

#[tokio::test]
async fn unprioritised_jobs_in_the_sorted_set_of_an_older_eventmill_join_the_head_of_the_line_at_declare() {
    let env = TestEnv::new().await;
    let queue = env.queues.rollup().clone();
    let enqueue = |priority| {
        let options = EnqueueOptions { priority, ..Default::default() };
        let queue = queue.clone();
        async move { queue.enqueue("DAILY_ROLLUP", r#"{"test":true}"#, options).await.unwrap().id }
    };
    let old: Vec<String> = vec![enqueue(None).await, enqueue(None).await];
    let urgent = enqueue(Some(1)).await;
    let new = enqueue(None).await;
    // Before the LIST, unprioritised jobs waited in the sorted set with their place in line as score.
    let key = format!("{}{}:waiting", eventmill_jobs::queue::key_base(&env.prefix), queue.name);
    let mut redis = env.redis();
    for (score, id) in old.iter().enumerate() {
        let _: () = redis::AsyncCommands::lrem(&mut redis, format!("{key}:fifo"), 1, id).await.unwrap();
        let _: () = redis::AsyncCommands::zadd(&mut redis, &key, id, score + 1).await.unwrap();
    }
    queue.declare(false, 1).await.unwrap();
    let line = queue.ids(JobState::Waiting, 10).await.unwrap();
    assert_eq!(line, [old[0].clone(), old[1].clone(), new, urgent], "older first, then newer, then by priority");
    assert_eq!(queue.counts().await.unwrap().waiting, 4);
}

#[tokio::test]
async fn queue_keys_of_an_eventmill_before_hash_tags_are_adopted_at_start_with_every_job() {
    let env = TestEnv::new().await;
    let mut redis = env.redis();
    if redis.is_cluster() {
        return; // a cluster never held the untagged names (they would span slots)
    }
    let queues = env.queues.clone();
    let plain =
        queues.rollup().enqueue("DAILY_ROLLUP", r#"{"test":true}"#, EnqueueOptions::default()).await.unwrap().id;
    // A flow: a report (reports queue) after a rollup (rollup queue).
    let parent = eventmill_jobs::Job { kind: "GENERATE_REPORT", payload: serde_json::json!({ "test": "parent" }) };
    let child = eventmill_jobs::Job { kind: "DAILY_ROLLUP", payload: serde_json::json!({ "test": "child" }) };
    let flow = queues
        .enqueue_flow(
            eventmill_jobs::queue::Planned { job: &parent, options: EnqueueOptions::default() },
            &[eventmill_jobs::queue::Planned { job: &child, options: EnqueueOptions::default() }],
        )
        .await
        .unwrap();
    // Back to the old layout: every key untagged, the parent's queue keys too.
    let base = eventmill_jobs::queue::key_base(&env.prefix);
    let legacy = format!("{}:queue:", env.prefix);
    let keys = redis.keys_in_slot_of(&base, &format!("{base}*")).await.unwrap();
    for key in &keys {
        let old = format!("{legacy}{}", &key[base.len()..]);
        let _: () = redis::cmd("RENAME").arg(key).arg(&old).query_async(&mut redis).await.unwrap();
    }
    let parent_key = format!("{legacy}job:{}", flow.id);
    let waiting: String = redis::cmd("HGET").arg(&parent_key).arg("k_waiting").query_async(&mut redis).await.unwrap();
    let old_waiting = waiting.replace(&base, &legacy);
    let _: () =
        redis::cmd("HSET").arg(&parent_key).arg("k_waiting").arg(&old_waiting).query_async(&mut redis).await.unwrap();
    assert!(queues.job(&plain).await.unwrap().is_none(), "the new names are empty before the adoption");

    eventmill_jobs::queue::upgrade::adopt_legacy_keys(&mut redis, &env.prefix).await.unwrap();
    assert_eq!(queues.job(&plain).await.unwrap().unwrap().state, JobState::Waiting);
    assert_eq!(queues.job(&flow.id).await.unwrap().unwrap().state, JobState::WaitingChildren);
    assert_eq!(queues.job(&flow.children[0]).await.unwrap().unwrap().state, JobState::Waiting);
    assert_eq!(queues.rollup().counts().await.unwrap().waiting, 2);
    let moved: String = redis::cmd("HGET")
        .arg(format!("{base}job:{}", flow.id))
        .arg("k_waiting")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(moved, waiting, "the parent points at its queue's new keys");
    let left = redis.keys_in_slot_of(&legacy, &format!("{legacy}*")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let next = queues.rollup().enqueue("DAILY_ROLLUP", r#"{"test":true}"#, EnqueueOptions::default()).await.unwrap().id;
    assert!(next.parse::<u64>().unwrap() > flow.children[0].parse::<u64>().unwrap(), "ids go on from the old counter");
}
