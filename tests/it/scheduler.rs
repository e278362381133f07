//! The scheduler against real Redis: one job per tick with two schedulers running, misfire
//! catch-up after downtime, DST-correct weekly ticks in Europe/Berlin.

use std::{path::Path, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use eventmill::{
    queue::JobState,
    scheduler::{self, Scheduler, config},
    shutdown::Shutdown,
};

use crate::helpers::TestEnv;
use crate::jobs_support::AnalyticsQueues;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn scheduler(env: &TestEnv, toml: &str) -> Scheduler {
    let schedules = config::parse(toml, Path::new(env!("CARGO_MANIFEST_DIR")), env.resources.queues.catalog()).unwrap();
    Scheduler::new(schedules, env.resources.queues.clone(), env.redis(), &env.prefix)
}

const EVERY_SECOND: &str = r#"
[[schedule]]
name = "every-second"
cron = "* * * * * *"
[schedule.job]
job_type = "DAILY_ROLLUP"
date = "today"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_is_killed_and_restarted_the_schedulers_go_on_with_one_job_per_tick() {
    use tokio::task::block_in_place;
    let mut redis = block_in_place(crate::private::PrivateRedis::start);
    let env = TestEnv::on(&redis.url(), &crate::helpers::base_urls().1, &[("EVENTMILL_REDIS_TIMEOUT_MS", "500")]).await;
    let shutdown = Shutdown::new();
    let runs: Vec<_> = (0..2)
        .map(|_| tokio::spawn(scheduler::run(Arc::new(scheduler(&env, EVERY_SECOND)), shutdown.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // SIGKILL, down for 2 s, back from its AOF; eventmill is not restarted.
    block_in_place(|| redis.crash());
    let crashed = Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(2)).await;
    block_in_place(|| redis.restart());
    let restarted = Utc::now();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    shutdown.cancel();
    for run in runs {
        let stopped = tokio::time::timeout(Duration::from_secs(5), run).await.expect("stops within 5 s").unwrap();
        stopped.expect("the scheduler did not give up while Redis was down");
    }
    let queues = &env.resources.queues;
    let jobs = queues.list(queues.rollup(), JobState::Waiting, 100).await.unwrap();
    // (tick in unix seconds, how late its job was created in ms)
    let mut ticks: Vec<(i64, i64)> = jobs
        .iter()
        .map(|j| {
            let tick = at(j.origin.rsplit('@').next().unwrap()).timestamp();
            (tick, j.created_at - tick * 1000)
        })
        .collect();
    ticks.sort();
    let total = ticks.len();
    ticks.dedup_by_key(|(tick, _)| *tick);
    assert_eq!(ticks.len(), total, "one job per tick, never two: {ticks:?}");
    // From the first full second after the restart on, no tick is missing.
    let after: Vec<i64> = ticks.iter().map(|(t, _)| *t).filter(|t| *t > restarted.timestamp() + 1).collect();
    assert!(after.len() >= 2, "ticks after the restart: {after:?} (all: {ticks:?})");
    assert!(after.windows(2).all(|w| w[1] - w[0] == 1), "no tick skipped after the restart: {ticks:?}");
    // misfire = run_once (the default): the latest tick lost while Redis was down is enqueued once,
    // late, at the first tick after it is back; the ticks from it on are contiguous.
    // (A tick is caught up at the next one, a second later; a busy machine may delay others too.)
    let caught_up: Vec<&(i64, i64)> = ticks.iter().filter(|(t, late)| *t >= crashed && *late >= 900).collect();
    assert!(!caught_up.is_empty(), "a missed tick caught up (tick, ms late; crash at {crashed}): {ticks:?}");
    let from = caught_up[0].0;
    let rest: Vec<i64> = ticks.iter().map(|(t, _)| *t).filter(|t| *t >= from).collect();
    assert!(rest.windows(2).all(|w| w[1] - w[0] == 1), "contiguous from the caught-up tick: {ticks:?}");
    let first = ticks[0].0;
    let offsets: Vec<(i64, i64)> = ticks.iter().map(|(t, late)| (t - first, *late)).collect();
    eprintln!("(tick s after the first, ms late): {offsets:?}; Redis down from ~2.5 s to ~4.5 s");
}
