//! The worker process registry behind the board's workers page: every process running workers is
//! listed with its queues and running jobs, a process that shuts down leaves at once, and one that
//! dies (its beat task dropped without cleanup) leaves when its lease runs out.

use std::time::Duration;

use eventmill_jobs::shutdown::Shutdown;
use tokio::task::JoinSet;

use crate::support::{AnalyticsQueues, Behaviour, REPORTS_QUEUE, ROLLUP_QUEUE, Scripted, TestEnv, enqueue, eventually};

/// A worker process: its own connection and queues on the same prefix, all queues' workers.
struct Process {
    env: TestEnv,
    shutdown: Shutdown,
    parts: JoinSet<anyhow::Result<()>>,
}

async fn start(prefix: &str, version: &str, handler: std::sync::Arc<Scripted>) -> Process {
    let env = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", prefix), ("EVENTMILL_JOB_WORKER_LEASE_MS", "900")]).await;
    let jobs = env.jobs.clone().with_version(version);
    let (shutdown, mut parts) = (Shutdown::new(), JoinSet::new());
    jobs.spawn_workers(handler, &mut parts, &shutdown).unwrap();
    Process { env, shutdown, parts }
}

#[tokio::test]
async fn processes_are_listed_with_their_jobs_and_leave_on_shutdown_or_when_their_lease_runs_out() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_WORKER_LEASE_MS", "900")]).await;
    let processes = env.queues.processes().clone();
    assert_eq!(processes.lease(), Duration::from_millis(900));
    assert!(processes.list().await.unwrap().is_empty());

    let hang = Scripted::new(Behaviour::Hang);
    let mut a = start(&env.prefix, "app 1.0", hang.clone()).await;
    let mut b = start(&env.prefix, "app 2.0", Scripted::new(Behaviour::Succeed)).await;
    let job = enqueue(a.env.queues.reports(), "GENERATE_REPORT").await;
    // b may claim it first: then it completes; enqueue until a holds one.
    let listed = eventually(Duration::from_secs(10), || async {
        let list = processes.list().await.unwrap();
        list.len() == 2 && list.iter().any(|p| p.running.iter().any(|r| r.id == job))
            || (list.len() == 2 && !hang.attempts().iter().any(|(id, _, _)| *id == job))
    })
    .await;
    assert!(listed, "two processes: {:?}", processes.list().await.unwrap());
    let list = processes.list().await.unwrap();
    let versions: Vec<&str> = {
        let mut v: Vec<&str> = list.iter().map(|p| p.version.as_str()).collect();
        v.sort();
        v
    };
    assert_eq!(versions, ["app 1.0", "app 2.0"]);
    for process in &list {
        assert_eq!(process.pid, std::process::id());
        assert!(!process.host.is_empty());
        let queues: Vec<(&str, usize)> = process.queues.iter().map(|q| (q.queue.as_str(), q.concurrency)).collect();
        assert_eq!(queues, [(ROLLUP_QUEUE, 4), (REPORTS_QUEUE, 4)], "the settings' JOB_CONCURRENCY per queue");
        assert!(process.beat_at >= process.started_at && process.leaves_at() == process.beat_at + 900);
    }
    // The hanging job shows in its process's running list (with its kind and queue).
    if hang.attempts().iter().any(|(id, _, _)| *id == job) {
        let shown = eventually(Duration::from_secs(5), || async {
            processes.list().await.unwrap().iter().any(|p| {
                p.version == "app 1.0"
                    && p.running.iter().any(|r| r.id == job && r.kind == "GENERATE_REPORT" && r.queue == REPORTS_QUEUE)
            })
        })
        .await;
        assert!(shown, "the running job is listed: {:?}", processes.list().await.unwrap());
    }

    // b shuts down: it leaves the list at once (well before its lease would run out).
    b.shutdown.cancel();
    while let Some(done) = b.parts.join_next().await {
        done.unwrap().unwrap();
    }
    let list = processes.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].version, "app 1.0");

    // a dies: its tasks are dropped mid-flight, nothing cleans up; its record expires with the lease.
    a.parts.abort_all();
    while a.parts.join_next().await.is_some() {}
    assert_eq!(processes.list().await.unwrap().len(), 1, "still listed right after it died");
    let left = eventually(Duration::from_secs(3), || async { processes.list().await.unwrap().is_empty() }).await;
    assert!(left, "the dead process left when its lease ran out: {:?}", processes.list().await.unwrap());
    drop(a.shutdown);
}
