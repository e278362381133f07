//! What the scripts are sent: one builder per script with named fields, written as `ARGV` (after
//! the job prefix, `ARGV[1]`) in the order its `.lua` reads them. Values go straight into the
//! command's buffer (a result or payload JSON is serialized there), with no string built first.

use std::time::Duration;

use redis::{RedisWrite, ToRedisArgs};

use crate::{
    queue::{FailurePolicy, Finished, Live, Outcome, RateLimit, claim::PROMOTE_CHUNK, keys::QueueKeys},
    settings::JobSettings,
};

/// A new job for `enqueue.lua`.
pub(crate) struct NewJob<'a> {
    pub(crate) queue: &'a str,
    pub(crate) kind: &'a str,
    /// The payload JSON as given.
    pub(crate) payload: &'a str,
    pub(crate) max_attempts: u32,
    pub(crate) timeout: Duration,
    pub(crate) now: i64,
    /// When it may run (unix ms): later than `now` is delayed.
    pub(crate) run_at: i64,
    /// How long the deduplication key lives.
    pub(crate) key_ttl: Duration,
    /// What enqueued it.
    pub(crate) origin: &'a str,
    /// 0: none.
    pub(crate) priority: u32,
    /// The deduplication key, `""` for none.
    pub(crate) key: &'a str,
    /// How the key deduplicates.
    pub(crate) dedup: crate::queue::DedupMode,
    /// The enqueue's W3C `traceparent` (`queue::trace`), `None` outside a trace.
    pub(crate) trace: Option<&'a str>,
}

/// ARGV 2-14: queue, kind, payload, max_attempts, timeout_ms, now, run_at, idempotency_ttl_ms,
/// origin, priority, the idempotency key ('' = none), the dedup mode (`t`hrottle, `s`imple,
/// `d`ebounce), the trace context ('' = none).
impl ToRedisArgs for NewJob<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        out.write_arg(self.queue.as_bytes());
        out.write_arg(self.kind.as_bytes());
        out.write_arg(self.payload.as_bytes());
        self.max_attempts.write_redis_args(out);
        millis(self.timeout).write_redis_args(out);
        self.now.write_redis_args(out);
        self.run_at.write_redis_args(out);
        millis(self.key_ttl).max(1).write_redis_args(out);
        out.write_arg(self.origin.as_bytes());
        self.priority.write_redis_args(out);
        out.write_arg(self.key.as_bytes());
        out.write_arg(self.dedup.letter().as_bytes());
        out.write_arg(self.trace.unwrap_or("").as_bytes());
    }
}

/// One worker round trip for `finish_and_fetch.lua`.
pub(crate) struct FinishAndFetch<'a> {
    pub(crate) now: i64,
    pub(crate) worker: &'a str,
    /// How many jobs to claim and start now (their attempt counts).
    pub(crate) want: usize,
    /// How many more to claim and hold ahead (prefetch; their attempt counts when they start).
    pub(crate) hold: usize,
    /// Held jobs started since the last round trip.
    pub(crate) started: &'a [String],
    /// The lease and the retention of finished jobs.
    pub(crate) settings: &'a JobSettings,
    pub(crate) rate_limit: Option<RateLimit>,
    /// The attempts to record.
    pub(crate) finished: &'a [Finished],
}

/// ARGV 2-12: now, worker, lease_ms, want, chunk, keep_completed, keep_completed_age_ms,
/// keep_failed, keep_failed_age_ms, rate_max, rate_ms (0 = no limit); 13-14: hold, the number of
/// started held jobs; their ids; then 8 values per finished attempt (see `write_finished`).
impl ToRedisArgs for FinishAndFetch<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let s = self.settings;
        self.now.write_redis_args(out);
        out.write_arg(self.worker.as_bytes());
        millis(s.lease).write_redis_args(out);
        self.want.write_redis_args(out);
        PROMOTE_CHUNK.write_redis_args(out);
        s.keep_completed.write_redis_args(out);
        millis(s.keep_completed_age).write_redis_args(out);
        s.keep_failed.write_redis_args(out);
        millis(s.keep_failed_age).write_redis_args(out);
        self.rate_limit.map_or(0, |r| r.max).write_redis_args(out);
        self.rate_limit.map_or(0, |r| millis(r.per).max(1)).write_redis_args(out);
        self.hold.write_redis_args(out);
        self.started.len().write_redis_args(out);
        for id in self.started {
            out.write_arg(id.as_bytes());
        }
        for done in self.finished {
            write_finished(done, out);
        }
    }
}

/// A finished attempt as `finish_and_fetch.lua` reads it: id, how it ended, two values that
/// depend on it, its log lines, then its wait, run and end-to-end latency buckets (`Latency`).
/// The only place the script's letters are written:
/// - `c` completed: the result JSON, '';
/// - `r` failed, retry if attempts are left: the error, the retry time (ms);
/// - `f` failed for good: the error, '';
/// - `h` handed back (shutdown; the attempt does not count): '', '';
/// - `d` delayed by its processor (the attempt does not count): '', until (ms);
/// - `l` rate limited by its processor (the attempt does not count): '', the queue's pause (ms).
fn write_finished<W: ?Sized + RedisWrite>(done: &Finished, out: &mut W) {
    out.write_arg(done.id.as_bytes());
    match &done.outcome {
        Outcome::Completed(result) => {
            out.write_arg(b"c");
            write_json(result, out);
            out.write_arg(b"");
        }
        Outcome::Failed { error, retry_at } if error.is_retryable() => {
            out.write_arg(b"r");
            out.write_arg(error.message().as_bytes());
            retry_at.write_redis_args(out);
        }
        Outcome::Failed { error, .. } => {
            out.write_arg(b"f");
            out.write_arg(error.message().as_bytes());
            out.write_arg(b"");
        }
        Outcome::Released => {
            out.write_arg(b"h");
            out.write_arg(b"");
            out.write_arg(b"");
        }
        Outcome::Postponed(until) => {
            out.write_arg(b"d");
            out.write_arg(b"");
            until.write_redis_args(out);
        }
        Outcome::RateLimited(pause) => {
            out.write_arg(b"l");
            out.write_arg(b"");
            millis(*pause).max(1).write_redis_args(out);
        }
    }
    write_logs(&done.logs, out);
    let latency = done.latency;
    for bucket in [latency.wait, latency.run, latency.end_to_end] {
        bucket.write_redis_args(out);
    }
}

/// Running jobs' news for `report_live.lua`.
pub(crate) struct LiveReport<'a> {
    /// The new lease expiry (unix ms); `None` keeps the leases.
    pub(crate) lease_until: Option<i64>,
    pub(crate) jobs: &'a [Live<'a>],
}

/// ARGV 2: lease_until ('' = keep); then per job: id, percent ('' = unchanged), message, log lines
/// (JSON list, '' = none).
impl ToRedisArgs for LiveReport<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        match self.lease_until {
            Some(until) => until.write_redis_args(out),
            None => out.write_arg(b""),
        }
        for job in self.jobs {
            out.write_arg(job.id.as_bytes());
            match &job.progress {
                Some((percent, message)) => {
                    percent.write_redis_args(out);
                    out.write_arg(message.as_bytes());
                }
                None => {
                    out.write_arg(b"");
                    out.write_arg(b"");
                }
            }
            write_logs(&job.logs, out);
        }
    }
}

/// A bounded payload search for `search.lua`.
pub(crate) struct Search<'a> {
    /// Newest first (finished states) rather than next-to-run first.
    pub(crate) descending: bool,
    /// The waiting line (its LIST, then its sorted set: `waiting_range` in `helpers.lua`).
    pub(crate) waiting: bool,
    /// Lower-cased.
    pub(crate) needle: &'a str,
    /// The position to start from (0-based, in display order).
    pub(crate) from: usize,
    /// At most this many matches.
    pub(crate) limit: usize,
    /// At most this many ids looked at.
    pub(crate) budget: usize,
}

/// ARGV 2-6: order ('z' ascending, 'zrev' descending, 'line' the waiting line), needle, from,
/// limit, budget.
impl ToRedisArgs for Search<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let order: &[u8] = match (self.waiting, self.descending) {
            (true, _) => b"line",
            (false, true) => b"zrev",
            (false, false) => b"z",
        };
        out.write_arg(order);
        out.write_arg(self.needle.as_bytes());
        self.from.write_redis_args(out);
        self.limit.max(1).write_redis_args(out);
        self.budget.max(1).write_redis_args(out);
    }
}

/// One bounded step of a bulk clean for `clean.lua`.
pub(crate) struct Clean {
    /// Jobs that finished before this (unix ms) go.
    pub(crate) before: i64,
    /// At most this many in this call.
    pub(crate) limit: usize,
}

/// ARGV 2-3: the cutoff (unix ms, exclusive), the limit (at least 1).
impl ToRedisArgs for Clean {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        self.before.write_redis_args(out);
        self.limit.max(1).write_redis_args(out);
    }
}

/// One bounded step of a bulk move or removal for `promote_all.lua` and `empty.lua`.
pub(crate) struct BulkLimit {
    pub(crate) now: i64,
    /// At most this many jobs in this call.
    pub(crate) limit: usize,
}

/// ARGV 2-3: now, the limit (at least 1).
impl ToRedisArgs for BulkLimit {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        self.now.write_redis_args(out);
        self.limit.max(1).write_redis_args(out);
    }
}

/// One job of a flow for `enqueue_flow.lua`, with its queue's keys.
pub(crate) struct FlowJob<'a> {
    pub(crate) keys: &'a QueueKeys,
    pub(crate) queue: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) payload: &'a serde_json::Value,
    pub(crate) max_attempts: u32,
    pub(crate) timeout: Duration,
    /// 0: none.
    pub(crate) priority: u32,
    /// When it may run (unix ms); a parent runs when its children are done (ignored).
    pub(crate) run_at: i64,
    /// A child's: what its failure does to its parent (a parent's is not sent).
    pub(crate) on_failure: FailurePolicy,
    /// Its enqueue's W3C `traceparent` (`queue::trace`), `None` outside a trace.
    pub(crate) trace: Option<String>,
}

/// A flow: a parent run once every one of its children completed.
pub(crate) struct NewFlow<'a> {
    pub(crate) now: i64,
    /// What enqueued it (the parent's and the children's origin).
    pub(crate) origin: &'a str,
    /// The parent's deduplication key, `""` for none, and how long it lives.
    pub(crate) key: &'a str,
    pub(crate) key_ttl: Duration,
    pub(crate) parent: FlowJob<'a>,
    pub(crate) children: Vec<FlowJob<'a>>,
}

/// ARGV 2-15: now, idempotency_ttl_ms, the parent's queue, kind, payload, max_attempts,
/// timeout_ms, origin, priority, key text, and its queue's waiting, order, marker, failed keys;
/// 16: its trace context ('' = none); then per child: queue, kind, payload, max_attempts,
/// timeout_ms, priority, run_at, on_failure, trace context.
impl ToRedisArgs for NewFlow<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let parent = &self.parent;
        self.now.write_redis_args(out);
        millis(self.key_ttl).max(1).write_redis_args(out);
        out.write_arg(parent.queue.as_bytes());
        out.write_arg(parent.kind.as_bytes());
        write_json(parent.payload, out);
        parent.max_attempts.write_redis_args(out);
        millis(parent.timeout).write_redis_args(out);
        out.write_arg(self.origin.as_bytes());
        parent.priority.write_redis_args(out);
        out.write_arg(self.key.as_bytes());
        for key in parent.keys.flow_parent_fields() {
            out.write_arg(key.as_bytes());
        }
        out.write_arg(parent.trace.as_deref().unwrap_or("").as_bytes());
        for child in &self.children {
            out.write_arg(child.queue.as_bytes());
            out.write_arg(child.kind.as_bytes());
            write_json(child.payload, out);
            child.max_attempts.write_redis_args(out);
            millis(child.timeout).write_redis_args(out);
            child.priority.write_redis_args(out);
            child.run_at.write_redis_args(out);
            out.write_arg(child.on_failure.as_str().as_bytes());
            out.write_arg(child.trace.as_deref().unwrap_or("").as_bytes());
        }
    }
}

/// Whole milliseconds, as the scripts count time.
fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

/// `value` as one compact JSON argument.
fn write_json<W: ?Sized + RedisWrite>(value: &serde_json::Value, out: &mut W) {
    // Writing a JSON value into memory cannot fail.
    let _ = serde_json::to_writer(out.writer_for_next_arg(), value);
}

/// Log lines as one JSON list argument, '' for none.
fn write_logs<W: ?Sized + RedisWrite>(logs: &[String], out: &mut W) {
    if logs.is_empty() {
        out.write_arg(b"");
    } else {
        let _ = serde_json::to_writer(out.writer_for_next_arg(), logs);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        JobsSettings,
        queue::{JobError, Latency},
    };

    fn argv(args: impl ToRedisArgs) -> Vec<String> {
        args.to_redis_args().into_iter().map(|arg| String::from_utf8(arg).unwrap()).collect()
    }

    fn finished(id: &str, outcome: Outcome, logs: &[&str]) -> Finished {
        let logs = logs.iter().map(|l| (*l).to_owned()).collect();
        let latency = Latency { wait: 3, run: 0, end_to_end: 12 };
        Finished { id: id.into(), kind: "NOOP".into(), attempt: 1, outcome, logs, ran: Duration::ZERO, latency }
    }

    #[test]
    fn a_round_trip_sends_its_settings_then_eight_values_per_finished_attempt() {
        let mut settings = JobsSettings::from_lookup("T", &[], &[], |_| None).unwrap().jobs;
        settings.lease = Duration::from_secs(30);
        (settings.keep_completed, settings.keep_completed_age) = (100, Duration::from_secs(60));
        (settings.keep_failed, settings.keep_failed_age) = (50, Duration::from_millis(1500));
        let done = [
            finished("1", Outcome::Completed(json!({"rows": 2})), &["a line"]),
            finished("2", Outcome::Failed { error: JobError::retryable("down"), retry_at: 9000 }, &[]),
            finished("3", Outcome::Failed { error: JobError::permanent("bad payload"), retry_at: 9000 }, &[]),
            finished("4", Outcome::Released, &[]),
        ];
        let round = FinishAndFetch {
            now: 1000,
            worker: "w1",
            want: 8,
            hold: 4,
            started: &["5".into(), "6".into()],
            settings: &settings,
            rate_limit: Some(RateLimit::new(10, Duration::from_secs(1))),
            finished: &done,
        };
        let head = ["1000", "w1", "30000", "8", "500", "100", "60000", "50", "1500", "10", "1000", "4", "2", "5", "6"];
        let attempts = [
            ["1", "c", r#"{"rows":2}"#, "", r#"["a line"]"#, "3", "0", "12"],
            ["2", "r", "down", "9000", "", "3", "0", "12"],
            ["3", "f", "bad payload", "", "", "3", "0", "12"],
            ["4", "h", "", "", "", "3", "0", "12"],
        ];
        let expected: Vec<&str> = head.into_iter().chain(attempts.into_iter().flatten()).collect();
        assert_eq!(argv(&round), expected);
    }

    #[test]
    fn a_clean_step_sends_its_cutoff_and_a_limit_of_at_least_one() {
        assert_eq!(argv(Clean { before: 1_700_000_000_000, limit: 1000 }), ["1700000000000", "1000"]);
        assert_eq!(argv(Clean { before: 5, limit: 0 }), ["5", "1"]);
        assert_eq!(argv(BulkLimit { now: 7, limit: 0 }), ["7", "1"]);
    }

    #[test]
    fn no_rate_limit_is_sent_as_zeros_and_no_lease_renewal_as_empty() {
        let settings = JobsSettings::from_lookup("T", &[], &[], |_| None).unwrap().jobs;
        let round = FinishAndFetch {
            now: 1,
            worker: "w",
            want: 0,
            hold: 0,
            started: &[],
            settings: &settings,
            rate_limit: None,
            finished: &[],
        };
        assert_eq!(argv(&round)[9..], ["0", "0", "0", "0"]);
        let jobs = [Live { id: "7", progress: Some((40, "half".into())), logs: vec![] }];
        assert_eq!(argv(LiveReport { lease_until: None, jobs: &jobs }), ["", "7", "40", "half", ""]);
        let jobs = [Live { id: "7", progress: None, logs: vec!["x".into()] }];
        assert_eq!(argv(LiveReport { lease_until: Some(5), jobs: &jobs }), ["5", "7", "", "", r#"["x"]"#]);
    }
}
