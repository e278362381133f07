//! Rollups over the golden events equal the fixture's independent computation, row for row; re-runs
//! and concurrent runs agree; late events are picked up; profile-scoped runs touch only their rows.

use std::time::Duration;

use eventmill::{
    domain::job::{DailyRollup, HourlyRollup, Job},
    processors::{self, DailyRollups, HourlyRollups, JobContext},
    queue::{EnqueueOptions, JobState},
    store::{self, EventRow},
};
use sqlx::PgPool;

use crate::{
    golden::{self, cents, expected, n, s, ten_thousandths},
    helpers::TestEnv,
    jobs_support::AnalyticsQueues,
    jobs_support::{start_worker, wait_for_state},
};

const DAYS: [&str; 3] = ["2026-03-07", "2026-03-08", "2026-03-09"];

fn ctx(env: &TestEnv) -> JobContext {
    JobContext::new(env.resources.analytics.clone(), "test".into(), 1, None)
}

fn daily(day: &str, profiles: Option<&[&str]>) -> Job {
    Job::of::<DailyRollups, _>(&DailyRollup {
        date: day.parse().unwrap(),
        profile_ids: profiles.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
    })
}

type DayRow = (String, String, String, i64, i64, i64, i64);
/// day, events, users, sessions, errors, error rate (1/10,000), orders, revenue and AOV (cents).
type SummaryRow = (String, i64, i64, i64, i64, i64, i64, i64, i64);

async fn daily_rows(pool: &PgPool) -> Vec<DayRow> {
    sqlx::query_as(
        "SELECT day::text, event_type, source, events, unique_users, (revenue * 100)::bigint, errors
         FROM rollup_daily ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn expected_daily() -> Vec<DayRow> {
    expected("by_day", |r| {
        let errors = if r["event_type"] == "error" { n(&r["count"]) } else { 0 };
        (
            s(&r["bucket"]),
            s(&r["event_type"]),
            s(&r["source"]),
            n(&r["count"]),
            n(&r["unique_users"]),
            cents(&r["revenue"]),
            errors,
        )
    })
}

async fn assert_daily_tables_match_the_fixture(pool: &PgPool) {
    assert_eq!(daily_rows(pool).await, expected_daily(), "rollup_daily");

    let profiles: Vec<(String, String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT profile_id, day::text, impressions, clicks, (ctr * 10000)::bigint, purchases, (revenue * 100)::bigint
         FROM rollup_profile_daily ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let want = expected("profile_by_day", |r| {
        let (pid, day) = (s(&r["profile_id"]), s(&r["day"]));
        (
            pid,
            day,
            n(&r["impressions"]),
            n(&r["clicks"]),
            ten_thousandths(&r["ctr"]),
            n(&r["purchases"]),
            cents(&r["revenue"]),
        )
    });
    assert_eq!(profiles, want, "rollup_profile_daily (impressions, clicks, CTR, purchases, revenue)");

    let costs: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT day::text, category, feature, (amount * 100)::bigint FROM rollup_cost_daily ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let want = expected("cost_by_day", |r| (s(&r["day"]), s(&r["category"]), s(&r["feature"]), cents(&r["amount"])));
    assert_eq!(costs, want, "rollup_cost_daily");

    let summary: Vec<SummaryRow> = sqlx::query_as(
        "SELECT day::text, events, unique_users, sessions, errors, (round(errors::numeric / events, 4) * 10000)::bigint,
                orders, (revenue * 100)::bigint, (round(revenue / orders, 2) * 100)::bigint
         FROM rollup_daily_summary ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let engagement = expected("engagement_by_day", |r| {
        (
            s(&r["day"]),
            n(&r["events"]),
            n(&r["unique_users"]),
            n(&r["sessions"]),
            n(&r["errors"]),
            ten_thousandths(&r["error_rate"]),
        )
    });
    let revenue = expected("revenue_by_day", |r| (n(&r["orders"]), cents(&r["revenue"]), cents(&r["aov"])));
    let want: Vec<_> = engagement
        .into_iter()
        .zip(revenue)
        .map(|((d, e, u, ss, er, rate), (o, rev, aov))| (d, e, u, ss, er, rate, o, rev, aov))
        .collect();
    assert_eq!(summary, want, "rollup_daily_summary (engagement and revenue figures)");
}

#[tokio::test]
async fn daily_rollups_of_the_golden_days_run_by_the_worker_equal_the_independent_computation() {
    let env = TestEnv::new().await;
    golden::load(&env).await;
    let queues = env.resources.queues.clone();
    let handler = env.resources.dispatch();
    let worker = start_worker(queues.rollup(), handler, 2);
    for day in DAYS {
        let id = queues.enqueue(&daily(day, None), EnqueueOptions::default()).await.unwrap().id;
        let job = wait_for_state(&queues, &id, JobState::Completed, Duration::from_secs(30)).await;
        assert_eq!(job.progress, 100);
        assert!(job.result.unwrap()["rollup_daily_rows"].as_u64().unwrap() > 0);
    }
    assert_daily_tables_match_the_fixture(env.pool()).await;
    worker.shutdown.cancel();
}

#[tokio::test]
async fn an_hourly_rollup_equals_the_independent_computation_for_every_hour() {
    let env = TestEnv::new().await;
    golden::load(&env).await;
    let window = HourlyRollup {
        start_time: "2026-03-07T00:00:00Z".parse().unwrap(),
        end_time: "2026-03-10T00:00:00Z".parse().unwrap(),
    };
    processors::dispatch(Job::of::<HourlyRollups, _>(&window), &ctx(&env)).await.unwrap();
    let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), event_type, source, events, unique_users,
                (revenue * 100)::bigint
         FROM rollup_hourly ORDER BY 1, 2, 3",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    let want = expected("by_hour", |r| {
        (
            s(&r["bucket"]),
            s(&r["event_type"]),
            s(&r["source"]),
            n(&r["count"]),
            n(&r["unique_users"]),
            cents(&r["revenue"]),
        )
    });
    assert_eq!(rows.len(), 1696);
    assert_eq!(rows, want);
}

#[tokio::test]
async fn rollups_run_twice_or_concurrently_never_double_count() {
    let env = TestEnv::new().await;
    golden::load(&env).await;
    let ctx = ctx(&env);
    for day in DAYS {
        processors::dispatch(daily(day, None), &ctx).await.unwrap();
    }
    // Four concurrent runs of each day, then a fifth after them.
    let runs = DAYS.iter().flat_map(|day| (0..4).map(|_| processors::dispatch(daily(day, None), &ctx)));
    for result in futures_util::future::join_all(runs).await {
        result.unwrap();
    }
    processors::dispatch(daily("2026-03-08", None), &ctx).await.unwrap();
    assert_daily_tables_match_the_fixture(env.pool()).await;

    // Overlapping hourly windows at once.
    let hourly = |a: &str, b: &str| {
        Job::of::<HourlyRollups, _>(&HourlyRollup { start_time: a.parse().unwrap(), end_time: b.parse().unwrap() })
    };
    let (a, b, c) = tokio::join!(
        processors::dispatch(hourly("2026-03-08T00:00:00Z", "2026-03-08T12:00:00Z"), &ctx),
        processors::dispatch(hourly("2026-03-08T06:00:00Z", "2026-03-09T00:00:00Z"), &ctx),
        processors::dispatch(hourly("2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"), &ctx),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let total: i64 =
        sqlx::query_scalar("SELECT sum(events)::bigint FROM rollup_hourly").fetch_one(env.pool()).await.unwrap();
    assert_eq!(total, golden::EXPECTED["engagement_by_day"][1]["events"].as_i64().unwrap());
}

#[tokio::test]
async fn a_rerun_picks_up_late_events_and_a_profile_run_replaces_only_its_profiles() {
    let env = TestEnv::new().await;
    golden::load(&env).await;
    let ctx = ctx(&env);
    processors::dispatch(daily("2026-03-08", None), &ctx).await.unwrap();

    // A late purchase for profile_01 on 2026-03-08, and a tampered profile_02 row.
    let late: EventRow = serde_json::from_str(&format!(
        r#"{{"id":"{}","t":"purchase","ts":{},"u":"late_user","src":"web","p":{{"amount":10.05,"profile_id":"profile_01"}},"at":0}}"#,
        uuid::Uuid::new_v4(),
        "2026-03-08T12:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp_micros()
    ))
    .unwrap();
    assert!(store::write_rows(env.pool(), &[&late]).await.unwrap().refused.is_empty());
    sqlx::query("UPDATE rollup_profile_daily SET impressions = 999 WHERE profile_id = 'profile_02'")
        .execute(env.pool())
        .await
        .unwrap();

    processors::dispatch(daily("2026-03-08", Some(&["profile_01"])), &ctx).await.unwrap();
    let row = |p: &'static str| {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT impressions, purchases, (revenue * 100)::bigint FROM rollup_profile_daily WHERE day = '2026-03-08' AND profile_id = $1",
        )
        .bind(p)
        .fetch_one(env.pool())
    };
    let want = golden::EXPECTED["profile_by_day"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["profile_id"] == "profile_01" && r["day"] == "2026-03-08")
        .unwrap()
        .clone();
    assert_eq!(
        row("profile_01").await.unwrap(),
        (n(&want["impressions"]), n(&want["purchases"]) + 1, cents(&want["revenue"]) + 1005)
    );
    assert_eq!(row("profile_02").await.unwrap().0, 999, "other profiles untouched");

    // A full re-run recomputes everything, the late event included.
    processors::dispatch(daily("2026-03-08", None), &ctx).await.unwrap();
    let (orders, revenue): (i64, i64) =
        sqlx::query_as("SELECT orders, (revenue * 100)::bigint FROM rollup_daily_summary WHERE day = '2026-03-08'")
            .fetch_one(env.pool())
            .await
            .unwrap();
    let day = &golden::EXPECTED["revenue_by_day"][1];
    assert_eq!((orders, revenue), (n(&day["orders"]) + 1, cents(&day["revenue"]) + 1005));
    assert_ne!(row("profile_02").await.unwrap().0, 999);
}

#[tokio::test]
async fn a_bad_payload_and_a_report_escaping_the_reports_folder_fail_permanently_after_one_attempt() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_BACKOFF_MS", "100")]).await;
    let queues = env.resources.queues.clone();
    let handler = env.resources.dispatch();
    let workers = [start_worker(queues.rollup(), handler.clone(), 1), start_worker(queues.reports(), handler, 1)];
    let bad = queues
        .rollup()
        .enqueue("DAILY_ROLLUP", r#"{"job_type":"DAILY_ROLLUP","date":"someday"}"#, EnqueueOptions::default())
        .await
        .unwrap();
    let job = wait_for_state(&queues, &bad.id, JobState::Failed, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 1);
    assert!(job.last_error().unwrap().contains("bad DAILY_ROLLUP payload"), "{:?}", job.errors);

    // Built past the checks (as a job queued by an older eventmill, or by hand in Redis): the
    // processor refuses the path again when it runs.
    let report = eventmill::domain::job::Job {
        kind: "GENERATE_REPORT",
        payload: serde_json::from_str(
            r#"{"job_type":"GENERATE_REPORT","report_type":"REVENUE_SUMMARY","format":"PDF","start_date":"2026-03-07","end_date":"2026-03-09","output_path":"../x.pdf"}"#,
        )
        .unwrap(),
    };
    let id = queues.enqueue(&report, EnqueueOptions::default()).await.unwrap().id;
    let job = wait_for_state(&queues, &id, JobState::Failed, Duration::from_secs(5)).await;
    assert_eq!((job.queue.as_str(), job.attempts), ("analytics:reports", 1));
    assert!(job.last_error().unwrap().contains("leaves the reports folder"), "{:?}", job.errors);
    for worker in workers {
        worker.shutdown.cancel();
    }
}
