//! The scheduler against real Redis: one job per tick with two schedulers running, misfire
//! catch-up after downtime, DST-correct weekly ticks in Europe/Berlin.

use std::{path::Path, sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, Timelike, Utc};
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

#[tokio::test]
async fn two_scheduler_processes_enqueue_exactly_one_job_per_tick() {
    let env = TestEnv::new().await;
    let shutdown = Shutdown::new();
    let runs: Vec<_> = (0..2)
        .map(|_| tokio::spawn(scheduler::run(Arc::new(scheduler(&env, EVERY_SECOND)), shutdown.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    shutdown.cancel();
    for run in runs {
        tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap();
    }
    let queues = &env.resources.queues;
    let jobs = queues.list(queues.rollup(), JobState::Waiting, 100).await.unwrap();
    let mut ticks: Vec<String> = jobs.iter().map(|j| j.origin.clone()).collect();
    ticks.sort();
    let total = ticks.len();
    ticks.dedup();
    assert!(total >= 3, "ticks seen: {ticks:?}");
    assert_eq!(ticks.len(), total, "one job per tick, never two");
    let seconds: Vec<i64> = ticks.iter().map(|t| at(t.rsplit('@').next().unwrap()).timestamp()).collect();
    assert!(seconds.windows(2).all(|w| w[1] - w[0] == 1), "no tick skipped: {ticks:?}");
}

const HOURLY: &str = r#"
[[schedule]]
name = "hourly-rollup"
cron = "5 * * * *"
job_file = "jobs/hourly-rollup.toml"

[[schedule]]
name = "skipped-when-down"
cron = "5 * * * *"
misfire = "skip"
job_file = "jobs/daily-rollup.toml"
"#;

#[tokio::test]
async fn a_run_missed_during_downtime_is_enqueued_once_and_only_where_the_policy_says_so() {
    let env = TestEnv::new().await;
    let (a, b) = (scheduler(&env, HOURLY), scheduler(&env, HOURLY));
    assert!(a.catch_up(at("2026-03-09T10:30:00Z")).await.unwrap().is_empty(), "first start: nothing missed");

    // Down for five hours; two schedulers start at once.
    let later = at("2026-03-09T15:30:00Z");
    let (ra, rb) = tokio::join!(a.catch_up(later), b.catch_up(later));
    let created: Vec<_> = ra.unwrap().into_iter().chain(rb.unwrap()).filter(|(_, e)| e.created).collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].0, "hourly-rollup");
    let job = env.resources.queues.job(&created[0].1.id).await.unwrap().unwrap();
    assert_eq!(job.origin, "schedule:hourly-rollup@2026-03-09T15:05:00Z", "the latest missed tick");
    assert_eq!(job.payload["start_time"], "2026-03-09T14:00:00Z");
    assert_eq!(job.payload["end_time"], "2026-03-09T15:00:00Z");
    assert_eq!(env.resources.queues.rollup().counts().await.unwrap().waiting, 1);
    assert_eq!(a.last_run("skipped-when-down").await.unwrap(), Some(at("2026-03-09T15:05:00Z")));

    // A restart right after enqueues nothing more.
    assert!(a.catch_up(at("2026-03-09T15:40:00Z")).await.unwrap().is_empty());
}

const WEEKLY_BERLIN: &str = r#"
[[schedule]]
name = "weekly-profile-report"
cron = "0 8 * * 1"
timezone = "Europe/Berlin"
job_file = "jobs/weekly-profile-performance-report.toml"
"#;

#[tokio::test]
async fn a_monday_0800_berlin_schedule_fires_at_0800_local_across_the_dst_change() {
    let env = TestEnv::new().await;
    let s = scheduler(&env, WEEKLY_BERLIN);
    let weekly = &s.schedules[0];
    // Europe/Berlin moves from CET (+01) to CEST (+02) on Sunday 2026-03-29.
    let ticks = weekly.cron.ticks_between(at("2026-03-10T00:00:00Z"), at("2026-04-10T00:00:00Z"), 10);
    assert_eq!(
        ticks,
        [
            at("2026-03-16T07:00:00Z"),
            at("2026-03-23T07:00:00Z"),
            at("2026-03-30T06:00:00Z"),
            at("2026-04-06T06:00:00Z")
        ]
    );
    for tick in &ticks {
        let local = tick.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!((local.weekday(), local.hour(), local.minute()), (chrono::Weekday::Mon, 8, 0));
        s.fire(weekly, *tick).await.unwrap();
        s.fire(weekly, *tick).await.unwrap(); // a second scheduler on the same tick
    }
    let queues = &env.resources.queues;
    // The weekly report is a flow: each waits for the daily rollups of its week.
    let jobs = queues.list(queues.reports(), JobState::WaitingChildren, 10).await.unwrap();
    assert_eq!(jobs.len(), 4, "one job per Monday");
    assert!(jobs.iter().all(|j| j.children.len() == 7), "seven daily rollups each");
    assert_eq!(queues.rollup().counts().await.unwrap().waiting, 28);
    let after_change = jobs.iter().find(|j| j.origin.ends_with("2026-03-30T06:00:00Z")).unwrap();
    assert_eq!(after_change.payload["start_date"], "2026-03-23");
    assert_eq!(after_change.payload["end_date"], "2026-03-29");

    // Down over the change: the one missed Monday run is enqueued once.
    let s2 = scheduler(&env, WEEKLY_BERLIN);
    let mut redis = env.redis();
    let _: () = redis::AsyncCommands::set(
        &mut redis,
        format!("{}:schedule:weekly-profile-report:last", env.prefix),
        at("2026-04-06T06:00:00Z").timestamp_millis(),
    )
    .await
    .unwrap();
    let caught = s2.catch_up(at("2026-04-14T12:00:00Z")).await.unwrap();
    assert_eq!(caught.len(), 1);
    let job = queues.job(&caught[0].1.id).await.unwrap().unwrap();
    assert_eq!(job.origin, "schedule:weekly-profile-report@2026-04-13T06:00:00Z");
}

#[tokio::test]
async fn run_now_enqueues_the_schedule_job_immediately() {
    let env = TestEnv::new().await;
    let s = scheduler(&env, HOURLY);
    let first = s.run_now("hourly-rollup").await.unwrap();
    let second = s.run_now("hourly-rollup").await.unwrap();
    assert!(first.created && second.created && first.id != second.id, "run now is never deduplicated");
    assert_eq!(env.resources.queues.job(&first.id).await.unwrap().unwrap().kind, "HOURLY_ROLLUP");
    assert!(s.run_now("nope").await.unwrap_err().to_string().contains("hourly-rollup"));
}

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
