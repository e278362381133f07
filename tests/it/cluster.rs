//! Redis Cluster under load (SPEC section 15), on a private 3-master cluster of its own: a master
//! killed and restarted; a master killed for good and replaced by its replica (also while that
//! replica lags behind, with `EVENTMILL_REDIS_WAIT_REPLICAS`); the stream's and the queue's slots
//! moved to another master. Meanwhile a client sends events (re-sending the same ids until a 202)
//! and jobs are enqueued (one idempotency key each, re-sent until accepted): every accepted event
//! is stored exactly once and every job completes, once (`cluster_flow`).

use std::time::Duration;

use crate::{
    cluster_flow::{Flow, env_on},
    cluster_support::PrivateCluster,
    faults_support::random_pause,
    helpers::TestApp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_and_restarted_under_load_loses_and_duplicates_nothing() {
    use tokio::task::block_in_place;
    let mut cluster = block_in_place(PrivateCluster::start);
    // Three stream shards, spread over the three masters.
    let app = TestApp::api(env_on(&cluster, "3", &[]).await).await;
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
    let app = TestApp::api(env_on(&cluster, "1", &[]).await).await;
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

/// The port of the master of the first stream shard, after moving the queues' slot to it (so that
/// one failover hits both the stream and the queues), and the two keys.
async fn stream_and_queues_on_one_master(cluster: &PrivateCluster, app: &TestApp) -> (u16, String, String) {
    let stream_key = app.env.resources.keys.events.clone();
    let (port, _) = cluster.master_of(&stream_key);
    let queue_key = format!("{}x", eventmill::queue::key_base(&app.env.prefix));
    let (queue_master, queue_slot) = cluster.master_of(&queue_key);
    if queue_master != port {
        cluster.migrate_slot(queue_slot, port, 100, Duration::ZERO).await;
    }
    (port, stream_key, queue_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_and_replaced_by_its_replica_under_load_loses_and_duplicates_nothing() {
    use tokio::task::block_in_place;
    let mut cluster = block_in_place(|| PrivateCluster::with_replicas(1));
    let app = TestApp::api(env_on(&cluster, "3", &[]).await).await;
    let (port, stream_key, queue_key) = stream_and_queues_on_one_master(&cluster, &app).await;
    let flow = Flow::start(&app).await;
    random_pause(1000, 1500).await;
    // SIGKILL, never restarted: the other masters mark it failed after the node timeout (1 s)
    // and its replica is elected in its place.
    block_in_place(|| cluster.kill(port));
    let promoted = block_in_place(|| cluster.wait_failover(port, &stream_key));
    assert_eq!(cluster.master_of(&queue_key).0, promoted, "the queues' slot moved with the stream's");
    eprintln!("master {port} killed; its replica {promoted} serves the stream's and the queues' slots");
    tokio::time::sleep(Duration::from_secs(4)).await;
    flow.finish(&app, "a master replaced by its replica").await;
    app.stop().await;
}

/// Replication is asynchronous: a master acknowledges a write before its replica has it. Here the
/// replica lags (SIGSTOP) while events and jobs wait unprocessed in the stream and the queue (a
/// backlog, as during a PostgreSQL outage), then the master dies and the lagging replica takes its
/// place. Without `EVENTMILL_REDIS_WAIT_REPLICAS` what was accepted during the lag is gone; with
/// it those requests were answered 503 and re-sent. The dead master comes back as the new master's
/// replica (until then, with WAIT, that slot refuses writes: it has no replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_promoted_under_load_loses_nothing_when_acknowledgements_wait_for_it() {
    use tokio::task::block_in_place;
    let mut cluster = block_in_place(|| PrivateCluster::with_replicas(1));
    let app = TestApp::api(env_on(&cluster, "3", &[("EVENTMILL_REDIS_WAIT_REPLICAS", WAIT_REPLICAS)]).await).await;
    let (port, stream_key, _) = stream_and_queues_on_one_master(&cluster, &app).await;
    let replica = cluster.replica_of(port);
    let mut flow = Flow::clients(&app);
    random_pause(800, 1200).await;
    block_in_place(|| cluster.freeze(replica));
    random_pause(1500, 2000).await;
    block_in_place(|| {
        cluster.kill(port);
        cluster.thaw(replica);
    });
    let promoted = block_in_place(|| cluster.wait_failover(port, &stream_key));
    assert_eq!(promoted, replica);
    block_in_place(|| cluster.restart(port));
    eprintln!("replica {replica} lagged, master {port} killed; {replica} took over, {port} is its replica");
    flow.process(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    flow.finish(&app, "a lagging replica promoted").await;
    app.stop().await;
}

/// `EVENTMILL_REDIS_WAIT_REPLICAS` of the lagging-replica test (0 shows what it prevents).
const WAIT_REPLICAS: &str = "1";
