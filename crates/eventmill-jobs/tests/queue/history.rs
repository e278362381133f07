//! The queue's history (throughput and latency per minute and hour, counted by the finish script):
//! two processes' figures add up exactly in the same hashes, nothing is kept longer than its
//! retention (1 day for minutes, 14 days for hours), and its memory stays bounded.

use std::{sync::atomic::Ordering, time::Duration};

use eventmill_jobs::{JobState, queue::history::Window};
use redis::AsyncCommands;

use crate::support::{AnalyticsQueues, Behaviour, Scripted, TestEnv, enqueue, eventually, start_worker};

#[tokio::test]
async fn two_processes_minutes_add_up_exactly_and_latency_is_counted_per_attempt() {
    let env = TestEnv::new().await;
    // A second process: its own connection and queues on the same prefix.
    let other = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &env.prefix)]).await;
    let (a, b) = (Scripted::new(Behaviour::Succeed), Scripted::new(Behaviour::Succeed));
    let queue = env.queues.reports();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(enqueue(queue, "GENERATE_REPORT").await);
    }
    let worker_a = start_worker(queue, a.clone(), 2);
    let worker_b = start_worker(other.queues.reports(), b.clone(), 2);
    let all_done =
        eventually(Duration::from_secs(20), || async { queue.counts().await.unwrap().completed == 40 }).await;
    assert!(all_done, "40 jobs did not complete: {:?}", queue.counts().await.unwrap());
    // One permanent failure and one retried attempt, counted apart.
    a.set(Behaviour::FailPermanent);
    b.set(Behaviour::FailPermanent);
    let failed = enqueue(queue, "GENERATE_REPORT").await;
    crate::support::wait_for_state(&env.queues, &failed, JobState::Failed, Duration::from_secs(10)).await;
    worker_a.shutdown.cancel();
    worker_b.shutdown.cancel();
    let _ = worker_a.handle.await;
    let _ = worker_b.handle.await;

    let ran = a.done.load(Ordering::SeqCst) + b.done.load(Ordering::SeqCst);
    assert_eq!(ran, 41, "both processes' attempts");
    // Read from either process: the same figures.
    for queues in [&env.queues, &other.queues] {
        let history = queues.reports().history(Window::Hour).await.unwrap();
        assert_eq!(history.points.len(), 60);
        assert_eq!(history.step_seconds, 60);
        assert_eq!((history.total.completed, history.total.failed, history.total.retried), (40, 1, 0));
        let summed: u64 = history.points.iter().map(|p| p.total.completed).sum();
        assert_eq!(summed, 40, "the points add up to the total");
        let kind = history.kinds.iter().find(|k| k.kind == "GENERATE_REPORT").expect("the kind's row");
        assert_eq!(kind.wait.count, 41, "one wait per attempt");
        assert_eq!(kind.run.count, 41, "one run time per attempt");
        assert_eq!(kind.end_to_end.count, 41, "one end-to-end time per finished job");
        assert!(kind.wait.p50_ms.unwrap() <= kind.wait.p99_ms.unwrap());
        let rate = kind.failure_rate.unwrap();
        assert!((rate - 100.0 / 41.0).abs() < 1e-9, "{rate}");
        // The hours hold the same counts as the minutes.
        let two_weeks = queues.reports().history(Window::TwoWeeks).await.unwrap();
        assert_eq!(two_weeks.points.len(), 336);
        assert_eq!((two_weeks.total.completed, two_weeks.total.failed), (40, 1));
        assert_eq!(two_weeks.wait.count, 41);
    }
    // The other queue saw nothing.
    assert_eq!(env.queues.rollup().history(Window::Day).await.unwrap().total.completed, 0);
}

// A retried attempt's wait runs from its own due time: the finish script reads the job's times
// before it sets the retry's run-at (measured from the next retry's run-at, in the future, the
// first attempt's 600 ms wait was counted as under 1 ms).
#[tokio::test]
async fn a_retried_attempts_wait_is_measured_from_its_own_due_time() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_BACKOFF_MS", "200")]).await;
    let queue = env.queues.rollup();
    let id = enqueue(queue, "DAILY_ROLLUP").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let worker = start_worker(queue, Scripted::first_then(Behaviour::FailRetryable, Behaviour::Succeed), 1);
    crate::support::wait_for_state(&env.queues, &id, JobState::Completed, Duration::from_secs(10)).await;
    worker.shutdown.cancel();
    let _ = worker.handle.await;

    let history = queue.history(Window::Hour).await.unwrap();
    assert_eq!((history.total.retried, history.total.completed), (1, 1));
    let kind = history.kinds.iter().find(|k| k.kind == "DAILY_ROLLUP").expect("the kind's row");
    assert_eq!(kind.wait.count, 2, "one wait per attempt");
    // The first attempt waited ~600 ms (the worker started late); the second ~its retry's lateness.
    let longest = kind.wait.p99_ms.unwrap();
    assert!(longest >= 500.0, "the first attempt's wait is counted from its enqueue: p99 {longest} ms");
}

#[tokio::test]
async fn history_hashes_expire_within_their_retention_and_stay_small() {
    let env = TestEnv::new().await;
    let handler = Scripted::first_then(Behaviour::FailRetryable, Behaviour::Succeed);
    let queue = env.queues.reports();
    for _ in 0..200 {
        enqueue(queue, "GENERATE_REPORT").await;
    }
    let worker = start_worker(queue, handler.clone(), 8);
    let done = eventually(Duration::from_secs(60), || async { queue.counts().await.unwrap().completed == 200 }).await;
    worker.shutdown.cancel();
    let _ = worker.handle.await;
    assert!(done, "{:?}", queue.counts().await.unwrap());
    let history = queue.history(Window::Hour).await.unwrap();
    assert_eq!((history.total.completed, history.total.retried), (200, 200));

    let mut redis = env.redis();
    let pattern = format!("{{{}:queue}}:{}:stats:*", env.prefix, queue.name);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await.unwrap();
    assert!(!keys.is_empty(), "no history hash under {pattern}");
    let mut bytes = 0u64;
    for key in &keys {
        let ttl: i64 = redis.ttl(key).await.unwrap();
        let limit = if key.contains(":stats:m:") { 86_400 + 600 } else { 14 * 86_400 };
        assert!(ttl > 0 && ttl <= limit, "{key} lives {ttl} s: more than its retention ({limit} s)");
        let used: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(&mut redis).await.unwrap();
        bytes += used.unwrap_or(0);
    }
    // One minute and one hour hash (two if the run crossed a minute): a few hundred bytes each.
    assert!(keys.len() <= 4, "{keys:?}");
    assert!(bytes < 4 * 1024, "history of one busy minute takes {bytes} bytes");
    println!("history: {} hash(es), {bytes} bytes (MEMORY USAGE) for 400 attempts of one kind", keys.len());
}

// A worker killed mid-run (as kill -9: its task aborted, its lease no longer renewed): the claim
// that takes the job back counts the attempt as `lease_expired` in the minute and the hour; on its
// last attempt it also counts as failed for good.
#[tokio::test]
async fn an_attempt_whose_lease_expired_is_counted_in_the_history() {
    let env = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "400"), ("EVENTMILL_JOB_BACKOFF_MS", "100")]).await;
    let queue = env.queues.rollup();
    let handler = Scripted::first_then(Behaviour::Hang, Behaviour::Succeed);
    let doomed = start_worker(queue, handler.clone(), 1);
    let id = enqueue(queue, "DAILY_ROLLUP").await;
    crate::support::wait_for_state(&env.queues, &id, JobState::Active, Duration::from_secs(5)).await;
    doomed.handle.abort();
    assert!(doomed.handle.await.unwrap_err().is_cancelled());
    let survivor = start_worker(queue, handler.clone(), 1);
    let job = crate::support::wait_for_state(&env.queues, &id, JobState::Completed, Duration::from_secs(5)).await;
    survivor.shutdown.cancel();
    let _ = survivor.handle.await;
    assert!(job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
    for window in [Window::Hour, Window::TwoWeeks] {
        let history = queue.history(window).await.unwrap();
        let t = history.total;
        assert_eq!((t.completed, t.retried, t.failed, t.lease_expired), (1, 0, 0, 1), "{window:?}");
        let kind = history.kinds.iter().find(|k| k.kind == "DAILY_ROLLUP").unwrap();
        assert_eq!(kind.total.lease_expired, 1);
        // The expired attempt has no run time: only the completed one is timed.
        assert_eq!((kind.run.count, kind.end_to_end.count), (1, 1), "{window:?}");
        assert_eq!(history.points.iter().map(|p| p.total.lease_expired).sum::<u64>(), 1);
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(json["lease_expired"], 1, "the JSON API carries it");
    }

    // On its last attempt: lease expired and failed for good, with its end-to-end time.
    let last = TestEnv::with(&[("EVENTMILL_JOB_LEASE_MS", "400"), ("EVENTMILL_JOB_ATTEMPTS", "1")]).await;
    let queue = last.queues.rollup();
    let doomed = start_worker(queue, Scripted::new(Behaviour::Hang), 1);
    let id = enqueue(queue, "DAILY_ROLLUP").await;
    crate::support::wait_for_state(&last.queues, &id, JobState::Active, Duration::from_secs(5)).await;
    doomed.handle.abort();
    let survivor = start_worker(queue, Scripted::new(Behaviour::Succeed), 1);
    crate::support::wait_for_state(&last.queues, &id, JobState::Failed, Duration::from_secs(5)).await;
    survivor.shutdown.cancel();
    let _ = survivor.handle.await;
    let history = queue.history(Window::Hour).await.unwrap();
    let t = history.total;
    assert_eq!((t.completed, t.retried, t.failed, t.lease_expired), (0, 0, 1, 1));
    let kind = history.kinds.iter().find(|k| k.kind == "DAILY_ROLLUP").unwrap();
    assert_eq!(kind.failure_rate, Some(100.0));
    assert_eq!((kind.wait.count, kind.run.count, kind.end_to_end.count), (0, 0, 1));
}

/// `note_finished` from the real `helpers.lua`, called once per attempt as `finish_and_fetch.lua`
/// calls it, with the buckets a worker sends (as strings, like ARGV), then `flush_finished`
/// (KEYS: the queue's active key; ARGV: now, then per attempt kind, status, wait ms, run ms).
const FILL_MINUTE: &str = r"
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 4 do
  local wait, run = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  note_finished(ARGV[i], tostring(latency_bucket(wait)), tostring(latency_bucket(run)),
    tostring(latency_bucket(wait + run)), ARGV[i + 1])
end
flush_finished(KEYS[1], now)
return 1
";

type Range = (f64, f64);

/// Fills the last 1440 minutes of `base`'s history through `script` (FILL_MINUTE): per minute and
/// kind 60 attempts (54 completed, 4 retried, 2 failed for good), wait and run log-uniform over the
/// kind's ranges (ms). Returns the first minute.
async fn fill_a_day(
    redis: &mut eventmill_jobs::redis_conn::RedisConn,
    script: &redis::Script,
    base: &str,
    kinds: &[(&str, Range, Range)],
) -> i64 {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut spread = |(lo, hi): Range| (lo.ln() + uniform() * (hi.ln() - lo.ln())).exp().round() as i64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let first = now.div_euclid(60_000) - 1439;
    let _: i64 = script.key(format!("{base}:active")).arg(0).invoke_async(redis).await.unwrap();
    for chunk in (first..first + 1440).collect::<Vec<_>>().chunks(60) {
        let mut pipe = redis::pipe();
        for minute in chunk {
            let mut call = script.prepare_invoke();
            call.key(format!("{base}:active")).arg(minute * 60_000 + 30_000);
            for &(kind, wait, run) in kinds {
                for i in 0..60 {
                    let status = match i {
                        0..54 => "completed",
                        54..58 => "retry",
                        _ => "failed",
                    };
                    call.arg(kind).arg(status).arg(spread(wait)).arg(spread(run));
                }
            }
            pipe.invoke_script(&call).ignore();
        }
        let () = pipe.query_async(redis).await.unwrap();
    }
    first
}

/// (minute hashes' bytes, one hour hash's bytes on average): MEMORY USAGE (SAMPLES 0), printed
/// with the field counts and encodings.
async fn day_bytes(
    redis: &mut eventmill_jobs::redis_conn::RedisConn,
    base: &str,
    first: i64,
    profile: &str,
) -> (u64, u64) {
    let minutes = first..first + 1440;
    let hours: std::collections::BTreeSet<i64> = minutes.clone().map(|m| m / 60).collect();
    let mut sizes = Vec::new();
    for (what, keys) in [
        ("minute", minutes.map(|m| format!("{base}:stats:m:{m}")).collect::<Vec<_>>()),
        ("hour", hours.iter().map(|h| format!("{base}:stats:h:{h}")).collect()),
    ] {
        let (mut bytes, mut fields, mut encodings) = (0u64, 0u64, std::collections::BTreeSet::new());
        for key in &keys {
            let used: Option<u64> =
                redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query_async(redis).await.unwrap();
            bytes += used.expect("every hash of the day lives");
            fields += redis.hlen::<_, u64>(key).await.unwrap();
            encodings.insert(redis::cmd("OBJECT").arg("ENCODING").arg(key).query_async::<String>(redis).await.unwrap());
        }
        println!(
            "history ({profile}) {what} hashes: {}, {:.0} fields and {:.0} bytes each (MEMORY USAGE), {bytes} bytes in all, encoding {encodings:?}",
            keys.len(),
            fields as f64 / keys.len() as f64,
            bytes as f64 / keys.len() as f64
        );
        sizes.push(bytes / keys.len() as u64);
    }
    (sizes[0] * 1440, sizes[1])
}

// The Redis bytes of one queue's history per day, measured through the real counting code
// (`note_finished` of helpers.lua, as finish_and_fetch.lua calls it): a whole day of minutes (the
// last 1440, so every hash lives) for one queue with three kinds, each 60 attempts a minute (54
// completed, 4 retried, 2 failed for good: 259,200 attempts a day), wait and run times log-uniform
// over each kind's range; two profiles: "typical" (each kind's times within about 3-4 doublings)
// and "wide" (up to 13 doublings: more buckets per minute). Sums MEMORY USAGE (SAMPLES 0) of every
// minute and hour hash; on one node also prints the `used_memory` delta (exact when this test runs
// alone). The figures are in docs/jobs.md ("Throughput and latency history").
//
// About a second of Lua per profile since a worker sends its measured buckets (3-4 s when the
// script took logarithms, 25 s with a HINCRBY per field): cheap enough to run in the suite, where
// it keeps the per-day memory bound checked. Its figures: scripts/test.sh -p eventmill-jobs --test
// queue history::a_day -- --nocapture
#[tokio::test]
async fn a_day_of_history_for_one_queue_with_three_kinds_costs_a_bounded_number_of_bytes() {
    let env = TestEnv::new().await;
    let mut redis = env.redis();
    let script = redis::Script::new(&format!("{}\n{FILL_MINUTE}", include_str!("../../src/queue/scripts/helpers.lua")));
    let typical: [(&str, Range, Range); 3] = [
        ("HOURLY_ROLLUP", (1.0, 20.0), (20.0, 200.0)),
        ("DAILY_ROLLUP", (5.0, 50.0), (200.0, 2000.0)),
        ("GENERATE_REPORT", (5.0, 100.0), (1000.0, 10_000.0)),
    ];
    let wide: [(&str, Range, Range); 3] = [
        ("HOURLY_ROLLUP", (1.0, 50.0), (5.0, 200.0)),
        ("DAILY_ROLLUP", (10.0, 1000.0), (100.0, 10_000.0)),
        ("GENERATE_REPORT", (1.0, 10_000.0), (1000.0, 60_000.0)),
    ];
    let used_memory = |info: String| -> u64 {
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    let one_node = !crate::support::redis_url().contains(',');
    for (profile, queue, kinds) in [("typical", env.queues.rollup(), typical), ("wide", env.queues.reports(), wide)] {
        let base = format!("{{{}:queue}}:{}", env.prefix, queue.name);
        let before = if one_node {
            used_memory(redis::cmd("INFO").arg("memory").query_async(&mut redis).await.unwrap())
        } else {
            0
        };
        let started = std::time::Instant::now();
        let first = fill_a_day(&mut redis, &script, &base, &kinds).await;
        let filled_in = started.elapsed();
        let after = if one_node {
            used_memory(redis::cmd("INFO").arg("memory").query_async(&mut redis).await.unwrap())
        } else {
            0
        };
        let (minute_bytes, hour_bytes) = day_bytes(&mut redis, &base, first, profile).await;
        let steady = minute_bytes + hour_bytes * 24 * 14;
        println!(
            "history ({profile}) of one queue, 3 kinds, 259200 attempts a day: minutes {minute_bytes} B a day (kept 1 day), hours {} B a day (kept 14 days); held at any time: {steady} B = {:.2} MiB; used_memory delta of the fill {}; filled in {filled_in:?}",
            hour_bytes * 24,
            steady as f64 / (1024.0 * 1024.0),
            if one_node { format!("{} B", after.saturating_sub(before)) } else { "not measured on a cluster".into() },
        );

        // What was written reads back exactly (the minute may have turned meanwhile: read more).
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let stats = queue.recent_stats((now.div_euclid(60_000) - first + 1) as usize).await.unwrap();
        for (kind, _, _) in kinds {
            let t = stats[kind].throughput;
            assert_eq!((t.completed, t.retried, t.failed), (1440 * 54, 1440 * 4, 1440 * 2), "{profile} {kind}");
            assert_eq!(stats[kind].wait.count(), 1440 * 60);
        }
        // Bounded: every hash stays a listpack (under Redis's 512 fields), a few KB each.
        assert!(minute_bytes / 1440 < 8 * 1024, "{profile}: a minute hash takes {} bytes", minute_bytes / 1440);
        assert!(hour_bytes < 16 * 1024, "{profile}: an hour hash takes {hour_bytes} bytes");
    }
}
