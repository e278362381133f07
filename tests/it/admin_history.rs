//! The board over time in real Chromium (issue 21): under a stream of jobs the queue page's
//! throughput chart gains points; a kind made slow turns its SLO card to breached and back when it
//! recovers; a SIGKILLed worker process leaves the workers page when its lease runs out.

use std::time::Duration;

use eventmill::queue::Objective;

use crate::{
    admin_stream::admin_env,
    browser::{READONLY_TOKEN, run_scenario},
    fleet,
    helpers::{TestApp, TestEnv, eventually},
    jobs_support::{AnalyticsQueues, Behaviour, Scripted, enqueue, start_worker},
};

#[tokio::test]
async fn the_throughput_chart_gains_points_under_a_stream_of_jobs() {
    let app = TestApp::api(admin_env().await).await;
    let queues = app.env.resources.queues.clone();
    let worker = start_worker(queues.rollup(), Scripted::new(Behaviour::Succeed), 4);

    // The scenario enqueues the stream itself (a job every 250 ms through the admin API).
    run_scenario(&app, "throughput", &[]).await;

    let history = queues.rollup().history(eventmill::queue::Window::Hour).await.unwrap();
    assert!(history.total.completed >= 2, "{:?}", history.total);
    worker.shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_kind_made_slow_turns_its_slo_card_to_breached_and_back_when_it_recovers() {
    let env = TestEnv::with(&[
        ("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN),
        // A short target and window for the test: DAILY_ROLLUP runs in at most 700 ms (p95, 5 min).
        ("EVENTMILL_JOB_SLO_RUN_P95_DAILY_ROLLUP", "700ms/5m"),
    ])
    .await;
    let app = TestApp::api(env).await;
    let queues = app.env.resources.queues.clone();
    let handler = Scripted::new(Behaviour::Sleep(Duration::from_millis(1500)));
    let worker = start_worker(queues.rollup(), handler.clone(), 4);

    // The kind turns slow and stays slow until the page has shown "breached" (the scenario writes
    // `seen` then), only then fast again: however long Chromium takes to start, the page sees both.
    let seen = std::env::temp_dir().join(format!("eventmill-slo-breached-{:016x}", rand::random::<u64>()));
    let driver = {
        let (queues, handler, seen) = (queues.clone(), handler.clone(), seen.clone());
        tokio::spawn(async move {
            for _ in 0..4 {
                enqueue(queues.rollup(), "DAILY_ROLLUP").await;
            }
            let breached = eventually(Duration::from_secs(20), || async {
                let slos = queues.evaluate_slos().await.unwrap();
                slos.iter().any(|s| s.slo.kind == "DAILY_ROLLUP" && s.slo.objective == Objective::RunP95 && s.breached)
            })
            .await;
            assert!(breached, "4 attempts of 1.5 s breach a 700 ms run p95");
            let page_saw_it = eventually(Duration::from_secs(100), || async { seen.exists() }).await;
            assert!(page_saw_it, "the page never showed the breach ({} not written)", seen.display());
            handler.set(Behaviour::Succeed);
            for _ in 0..96 {
                enqueue(queues.rollup(), "DAILY_ROLLUP").await;
            }
            let recovered = eventually(Duration::from_secs(30), || async {
                let slos = queues.evaluate_slos().await.unwrap();
                let run = slos.iter().find(|s| s.slo.kind == "DAILY_ROLLUP" && s.slo.objective == Objective::RunP95);
                !run.unwrap().breached
            })
            .await;
            let slos = queues.evaluate_slos().await.unwrap();
            assert!(recovered, "96 fast attempts bring the p95 back: {slos:?} {:?}", queues.rollup().counts().await);
        })
    };
    run_scenario(&app, "slos", &[("KIND", "DAILY_ROLLUP"), ("BREACHED_FILE", &seen.display().to_string())]).await;
    driver.await.unwrap();
    let _ = std::fs::remove_file(&seen);

    let slos = queues.evaluate_slos().await.unwrap();
    let run = slos.iter().find(|s| s.slo.kind == "DAILY_ROLLUP" && s.slo.objective == Objective::RunP95).unwrap();
    assert!(!run.breached && run.breached_since.is_none(), "{run:?}");
    worker.shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_sigkilled_worker_process_leaves_the_workers_page_when_its_lease_runs_out() {
    let app = TestApp::api(admin_env().await).await;
    let lease = [("EVENTMILL_JOB_WORKER_LEASE_MS", "3000")];
    let victim = fleet::start(&app.env, "worker", &lease).await;
    let survivor = fleet::start(&app.env, "worker", &lease).await;
    let (victim_pid, survivor_pid) = (victim.pid().to_string(), survivor.pid().to_string());
    // A job running while the page is looked at: the test holds the advisory lock the 1999-12-31
    // daily rollup takes (as another rollup of that day would), so it stays running. A day no other
    // test rolls up: the tests beside it (the throughput stream, the board's) run 2026 rollups in
    // the same database, which the lock would hold up.
    let mut holder = app.env.pool().acquire().await.unwrap();
    let (class, day) = (0x726f_6c02_i32, 946_598_400 / 86_400); // DAILY_LOCK, 1999-12-31
    sqlx::query("SELECT pg_advisory_lock($1, $2)").bind(class).bind(day).execute(&mut *holder).await.unwrap();
    let payload = r#"{"job_type":"DAILY_ROLLUP","date":"1999-12-31"}"#;
    let queue = app.env.resources.queues.rollup();
    let running = queue.enqueue("DAILY_ROLLUP", payload, Default::default()).await.unwrap().id;

    // The scenario SIGKILLs the victim itself once the page lists both (and the running job).
    run_scenario(&app, "workers", &[("KILL_PID", &victim_pid), ("KEEP_PID", &survivor_pid), ("RUNNING_JOB", &running)])
        .await;
    sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *holder).await.unwrap();
    drop(holder);

    let listed = app.env.resources.queues.processes().list().await.unwrap();
    let pids: Vec<u32> = listed.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [survivor.pid()], "only the survivor is left: {listed:?}");
    assert!(listed[0].version.starts_with("eventmill "), "{listed:?}");
    drop((victim, survivor));
    app.stop().await;
}
