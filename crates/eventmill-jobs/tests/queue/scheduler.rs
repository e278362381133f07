//! The scheduler against real Redis: one job per tick with two schedulers running, misfire
//! catch-up after downtime, DST-correct weekly ticks in Europe/Berlin.

use std::{path::Path, sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, Timelike, Utc};
use eventmill_jobs::{
    JobState,
    scheduler::{self, Scheduler, config},
    shutdown::Shutdown,
};

use crate::support::{AnalyticsQueues, TestEnv};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn scheduler(env: &TestEnv, toml: &str) -> Scheduler {
    let schedules =
        config::parse(toml, &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/queue"), env.queues.catalog()).unwrap();
    Scheduler::new(schedules, env.queues.clone(), env.redis(), &env.prefix)
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
    let queues = &env.queues;
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
    let job = env.queues.job(&created[0].1.id).await.unwrap().unwrap();
    assert_eq!(job.origin, "schedule:hourly-rollup@2026-03-09T15:05:00Z", "the latest missed tick");
    assert_eq!(job.payload["start_time"], "2026-03-09T14:00:00Z");
    assert_eq!(job.payload["end_time"], "2026-03-09T15:00:00Z");
    assert_eq!(env.queues.rollup().counts().await.unwrap().waiting, 1);
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
    let queues = &env.queues;
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
    assert_eq!(env.queues.job(&first.id).await.unwrap().unwrap().kind, "HOURLY_ROLLUP");
    assert!(s.run_now("nope").await.unwrap_err().to_string().contains("hourly-rollup"));
}

mod runtime {
    //! Run-time schedules (`jobs.schedules()`): upserted at once by several processes, run by
    //! several schedulers, paused, limited, bounded by start and end, removed.

    use std::{sync::Arc, time::Duration};

    use chrono::Utc;
    use eventmill_jobs::{
        JobState,
        scheduler::{self, ScheduleSpec, Scheduler, TickReason, Upserted},
        shutdown::Shutdown,
    };
    use serde_json::json;

    use crate::support::{AnalyticsQueues, TestEnv, eventually};

    fn every_second() -> ScheduleSpec {
        ScheduleSpec::every(Duration::from_secs(1)).job(json!({ "job_type": "DAILY_ROLLUP", "date": "today" }))
    }

    /// `n` schedulers without file schedules, as `n` processes run them.
    fn start(env: &TestEnv, n: usize) -> (Shutdown, Vec<tokio::task::JoinHandle<anyhow::Result<()>>>) {
        let shutdown = Shutdown::new();
        let runs = (0..n)
            .map(|_| {
                let s = Scheduler::new(Vec::new(), env.queues.clone(), env.redis(), &env.prefix);
                tokio::spawn(scheduler::run(Arc::new(s), shutdown.clone()))
            })
            .collect();
        (shutdown, runs)
    }

    async fn stop(shutdown: Shutdown, runs: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>) {
        shutdown.cancel();
        for run in runs {
            tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap();
        }
    }

    async fn ticks(env: &TestEnv, name: &str) -> Vec<String> {
        let queues = &env.queues;
        let jobs = queues.list(queues.rollup(), JobState::Waiting, 100).await.unwrap();
        let mut ticks: Vec<String> = jobs
            .iter()
            .filter(|j| j.origin.starts_with(&format!("schedule:{name}@")))
            .map(|j| j.origin.clone())
            .collect();
        ticks.sort();
        ticks
    }

    #[tokio::test]
    async fn a_schedule_upserted_by_three_processes_at_once_enqueues_one_job_per_tick_and_stops_at_its_limit() {
        let env = TestEnv::new().await;
        let spec = every_second().limit(3);
        let upserts: Vec<_> = (0..3)
            .map(|_| {
                let (store, spec) = (env.jobs.schedules(), spec.clone());
                tokio::spawn(async move { store.upsert("pinger", &spec).await.unwrap() })
            })
            .collect();
        let mut done = Vec::new();
        for upsert in upserts {
            done.push(upsert.await.unwrap());
        }
        assert_eq!(done.iter().filter(|d| **d == Upserted::Created).count(), 1, "{done:?}");
        assert_eq!(done.iter().filter(|d| **d == Upserted::Unchanged).count(), 2, "{done:?}");
        assert_eq!(env.jobs.schedules().list().await.unwrap().len(), 1);

        let (shutdown, runs) = start(&env, 3);
        assert!(eventually(Duration::from_secs(10), || async { ticks(&env, "pinger").await.len() >= 3 }).await);
        tokio::time::sleep(Duration::from_millis(2500)).await; // ticks past the limit
        stop(shutdown, runs).await;
        let ticks = ticks(&env, "pinger").await;
        assert_eq!(ticks.len(), 3, "one job per tick, three ticks (the limit): {ticks:?}");
        let seconds: Vec<i64> = ticks.iter().map(|t| super::at(t.rsplit('@').next().unwrap()).timestamp()).collect();
        assert!(seconds.windows(2).all(|w| w[1] - w[0] == 1), "consecutive ticks: {ticks:?}");
        assert_eq!(env.jobs.schedules().runs("pinger").await.unwrap(), 3);
        let ledger = env.jobs.schedules().ledger("pinger").await.unwrap();
        assert_eq!(ledger.len(), 3, "one ledger entry per enqueued tick: {ledger:?}");
        assert!(ledger.iter().all(|e| e.enqueued && e.job.is_some() && e.late_ms.unwrap() < 2000), "{ledger:?}");
    }

    #[tokio::test]
    async fn a_removed_schedule_stops_and_a_paused_one_ledgers_its_skipped_ticks() {
        let env = TestEnv::new().await;
        let store = env.jobs.schedules();
        store.upsert("paused-pinger", &every_second()).await.unwrap();
        store.set_paused("paused-pinger", true).await.unwrap();
        store.upsert("removed-pinger", &every_second()).await.unwrap();
        let (shutdown, runs) = start(&env, 2);
        assert!(
            eventually(Duration::from_secs(10), || async { !ticks(&env, "removed-pinger").await.is_empty() }).await
        );
        assert!(store.remove("removed-pinger").await.unwrap());
        let removed_at = Utc::now();
        tokio::time::sleep(scheduler_poll()).await; // every scheduler has seen the removal
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Not even in the ~2 s before the schedulers' poll sees the removal: each tick of a
        // run-time schedule checks its definition is still the one it runs. (A tick due before
        // the removal, past that check when the removal came, may still land its job: its due
        // time says so.)
        let after = ticks(&env, "removed-pinger").await;
        let dues: Vec<_> = after.iter().map(|t| super::at(t.rsplit('@').next().unwrap())).collect();
        assert!(dues.iter().all(|due| *due <= removed_at), "no tick due after the removal ({removed_at}): {after:?}");
        // Nor its ledger or run count, written after the job by such a tick.
        assert!(store.ledger("removed-pinger").await.unwrap().is_empty(), "no ledger brought back");
        assert_eq!(store.runs("removed-pinger").await.unwrap(), 0, "no run count brought back");

        assert!(ticks(&env, "paused-pinger").await.is_empty(), "a paused schedule enqueues nothing");
        let ledger = store.ledger("paused-pinger").await.unwrap();
        assert!(ledger.len() >= 3, "{ledger:?}");
        assert!(ledger.iter().all(|e| !e.enqueued && e.reason == Some(TickReason::Paused)), "{ledger:?}");
        let mut dues: Vec<_> = ledger.iter().map(|e| e.due).collect();
        dues.dedup();
        assert_eq!(dues.len(), ledger.len(), "two schedulers, one entry per tick: {ledger:?}");

        store.set_paused("paused-pinger", false).await.unwrap();
        assert!(eventually(Duration::from_secs(5), || async { !ticks(&env, "paused-pinger").await.is_empty() }).await);
        stop(shutdown, runs).await;
    }

    // The race behind "no ledger brought back": a tick past its definition check when the
    // schedule is removed still enqueues its job, then records it. The record (run count and
    // ledger, one script) sees the definition gone and writes nothing.
    #[tokio::test]
    async fn a_tick_finishing_after_its_schedule_was_removed_brings_back_no_ledger_or_run_count() {
        let env = TestEnv::new().await;
        let store = env.jobs.schedules();
        store.upsert("gone", &every_second()).await.unwrap();
        let entry = store.entries().await.unwrap().into_iter().find(|e| e.name == "gone").unwrap();
        let scheduler = Scheduler::new(Vec::new(), env.queues.clone(), env.redis(), &env.prefix);
        let tick = Utc::now();
        scheduler.fire(&entry, tick).await.unwrap();
        assert_eq!((store.ledger("gone").await.unwrap().len(), store.runs("gone").await.unwrap()), (1, 1));

        assert!(store.remove("gone").await.unwrap());
        let late = scheduler.fire(&entry, tick + chrono::Duration::seconds(1)).await.unwrap();
        assert!(late.created, "the tick's job itself was already on its way");
        assert!(store.ledger("gone").await.unwrap().is_empty(), "no ledger brought back");
        assert_eq!(store.runs("gone").await.unwrap(), 0, "no run count brought back");
    }

    #[tokio::test]
    async fn an_interval_schedule_runs_only_between_its_start_and_end() {
        let env = TestEnv::new().await;
        let start_at = Utc::now() + chrono::Duration::seconds(2);
        let spec = every_second().start(start_at).end(start_at + chrono::Duration::milliseconds(2500));
        env.jobs.schedules().upsert("windowed", &spec).await.unwrap();
        let (shutdown, runs) = start(&env, 1);
        tokio::time::sleep(Duration::from_millis(6000)).await;
        stop(shutdown, runs).await;
        let ticks = ticks(&env, "windowed").await;
        let expected: Vec<String> = (0..3)
            .map(|i| {
                let t = start_at + chrono::Duration::seconds(i);
                format!("schedule:windowed@{}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            })
            .collect();
        // The tick text is whole seconds: compare the instants, not the sub-second start.
        assert_eq!(ticks.len(), 3, "start, +1 s, +2 s, then the end: {ticks:?}");
        assert_eq!(ticks, expected);
    }

    #[tokio::test]
    async fn a_bad_run_time_schedule_is_refused_with_its_cause() {
        let env = TestEnv::new().await;
        let store = env.jobs.schedules();
        let err = store.upsert("x", &ScheduleSpec::cron("61 * * * *").job(json!({"job_type": "DAILY_ROLLUP"}))).await;
        assert!(err.unwrap_err().to_string().contains("cron"));
        let err = store.upsert("x", &every_second().timezone("Mars/Base")).await.unwrap_err().to_string();
        assert!(err.contains("Mars/Base"), "{err}");
        let err = store.upsert("x", &ScheduleSpec::every(Duration::from_secs(5))).await.unwrap_err().to_string();
        assert!(err.contains("needs a job"), "{err}");
        let file = super::scheduler(&env, super::HOURLY);
        let err = file.remove("hourly-rollup").await.unwrap_err().to_string();
        assert!(err.contains("defined in scheduler.toml; edit the file"), "{err}");
    }

    fn scheduler_poll() -> Duration {
        Duration::from_millis(2300)
    }
}
