//! The Redis names of one queue (docs/jobs.md's key table), built once with the queue, and the
//! `KEYS` each Lua script of `scripts` is called with: the one place that knows which key is
//! `KEYS[n]` of which script.

use super::JobState;

/// Every key of one queue, `{<prefix>:queue}:<name>:<what>`, and the names its queue shares with
/// every other (`{<prefix>:queue}:job:<id>`, `:seq`, `:idempotency:<key>`).
///
/// All of them carry the one hash tag `{<prefix>:queue}` (see `Queue`): on Redis Cluster every
/// script's keys live in one slot, whichever queues they belong to.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    /// `{<prefix>:queue}:job:`: a job's hash is this and its id (`ARGV[1]` of most scripts).
    pub(crate) job_prefix: String,
    /// The job id counter (ids are unique across queues).
    pub(crate) seq: String,
    /// Followed by a deduplication key: the id of the job enqueued under it.
    pub(crate) idempotency_prefix: String,
    /// Ready ids with a priority, scored by priority and place in line.
    pub(crate) waiting: String,
    /// `<waiting>:fifo`: ready ids without a priority, in line (a LIST, claimed from the head,
    /// before any prioritised one). Scripts build its name from `waiting` (`push_waiting` and the
    /// other waiting-line helpers of `helpers.lua`); Rust reads it for counts and listings.
    pub(crate) waiting_line: String,
    /// Ids by run-at ms: delayed jobs and retries waiting out their backoff.
    pub(crate) delayed: String,
    /// Claimed ids by lease expiry ms.
    pub(crate) active: String,
    pub(crate) completed: String,
    /// Failed and cancelled ids by finish time.
    pub(crate) failed: String,
    /// Flow parents waiting for their children, by enqueue time.
    pub(crate) waiting_children: String,
    /// Present: workers claim nothing.
    pub(crate) paused: String,
    /// The waiting line's counter (the low bits of a waiting job's score).
    pub(crate) order: String,
    /// The rate limit's window counter (shared by every process's workers).
    pub(crate) limiter: String,
    /// A sorted set a blocked worker waits on (BZPOPMIN): every script that makes a job
    /// runnable adds to it.
    pub(crate) marker: String,
    /// declared_at, concurrency, rate_limit, global_concurrency.
    pub(crate) meta: String,
    /// Present (with a TTL): a processor rate limited the queue (`JobError::rate_limited`);
    /// workers claim nothing until it expires.
    pub(crate) rate_limited: String,
    /// Worker names by last beat (admin's "workers alive").
    pub(crate) workers: String,
    /// `<queue>:stats:`, followed by `m:<unix minute>` or `h:<unix hour>`: the history hashes
    /// (`note_finished` in `helpers.lua` builds the same names from the active key).
    pub(crate) stats_prefix: String,
}

/// The start of every queue key: `{<prefix>:queue}:` (one hash tag, see `Queue`).
pub fn key_base(prefix: &str) -> String {
    format!("{{{prefix}:queue}}:")
}

impl QueueKeys {
    /// The keys of queue `name` under `prefix`.
    pub(crate) fn new(prefix: &str, name: &str) -> Self {
        let tag = key_base(prefix);
        let base = format!("{tag}{name}");
        Self {
            job_prefix: format!("{tag}job:"),
            seq: format!("{tag}seq"),
            idempotency_prefix: format!("{tag}idempotency:"),
            waiting: format!("{base}:waiting"),
            waiting_line: format!("{base}:waiting:fifo"),
            delayed: format!("{base}:delayed"),
            active: format!("{base}:active"),
            completed: format!("{base}:completed"),
            failed: format!("{base}:failed"),
            waiting_children: format!("{base}:waiting-children"),
            paused: format!("{base}:paused"),
            order: format!("{base}:order"),
            limiter: format!("{base}:limiter"),
            marker: format!("{base}:marker"),
            meta: format!("{base}:meta"),
            rate_limited: format!("{base}:rate-limited"),
            workers: format!("{base}:workers"),
            stats_prefix: format!("{base}:stats:"),
        }
    }

    /// The history hash of resolution `step_ms` (60 000: a minute, else an hour) holding unix ms `at`.
    pub(crate) fn stats(&self, step_ms: i64, at: i64) -> String {
        let letter = if step_ms == 60_000 { 'm' } else { 'h' };
        format!("{}{letter}:{}", self.stats_prefix, at.div_euclid(step_ms))
    }

    /// Job `id`'s hash.
    pub(crate) fn job(&self, id: &str) -> String {
        format!("{}{id}", self.job_prefix)
    }

    /// The name under which deduplication key `key` lives. Without a key (`""`) the bare prefix
    /// stands in (never written): every key of a script must be a real key of the queue's hash
    /// tag on Redis Cluster, even an unused one.
    pub(crate) fn idempotency(&self, key: &str) -> String {
        format!("{}{key}", self.idempotency_prefix)
    }

    /// The sorted set holding the jobs of `state` (cancelled jobs are kept with the failed ones).
    pub(crate) fn state(&self, state: JobState) -> &str {
        match state {
            JobState::Waiting => &self.waiting,
            JobState::Delayed => &self.delayed,
            JobState::Active => &self.active,
            JobState::WaitingChildren => &self.waiting_children,
            JobState::Completed => &self.completed,
            JobState::Failed | JobState::Cancelled => &self.failed,
        }
    }

    /// `enqueue.lua`: seq, waiting, delayed, idempotency, marker, order.
    pub(crate) fn for_enqueue<'a>(&'a self, idempotency: &'a str) -> [&'a str; 6] {
        [&self.seq, &self.waiting, &self.delayed, idempotency, &self.marker, &self.order]
    }

    /// `finish_and_fetch.lua`: waiting, delayed, active, completed, failed, paused, marker, order,
    /// limiter, meta, rate-limited.
    pub(crate) fn for_finish_and_fetch(&self) -> [&str; 11] {
        [
            &self.waiting,
            &self.delayed,
            &self.active,
            &self.completed,
            &self.failed,
            &self.paused,
            &self.marker,
            &self.order,
            &self.limiter,
            &self.meta,
            &self.rate_limited,
        ]
    }

    /// `report_live.lua`: active.
    pub(crate) fn for_report_live(&self) -> [&str; 1] {
        [&self.active]
    }

    /// `declare.lua`: meta, paused, marker, waiting, order.
    pub(crate) fn for_declare(&self) -> [&str; 5] {
        [&self.meta, &self.paused, &self.marker, &self.waiting, &self.order]
    }

    /// `retry_failed.lua`: failed, waiting, marker, order.
    pub(crate) fn for_retry_failed(&self) -> [&str; 4] {
        [&self.failed, &self.waiting, &self.marker, &self.order]
    }

    /// `remove.lua`: every state's set (waiting, delayed, active, completed, failed,
    /// waiting-children).
    pub(crate) fn for_remove(&self) -> [&str; 6] {
        [&self.waiting, &self.delayed, &self.active, &self.completed, &self.failed, &self.waiting_children]
    }

    /// `cancel.lua`: waiting, delayed, active, failed, waiting-children.
    pub(crate) fn for_cancel(&self) -> [&str; 5] {
        [&self.waiting, &self.delayed, &self.active, &self.failed, &self.waiting_children]
    }

    /// `promote_one.lua`: delayed, waiting, marker.
    pub(crate) fn for_promote_one(&self) -> [&str; 3] {
        [&self.delayed, &self.waiting, &self.marker]
    }

    /// `search.lua`: the set of `state`.
    pub(crate) fn for_search(&self, state: JobState) -> [&str; 1] {
        [self.state(state)]
    }

    /// `clean.lua`: the finished set of `state` (completed, or failed with the cancelled jobs).
    pub(crate) fn for_clean(&self, state: JobState) -> [&str; 1] {
        [self.state(state)]
    }

    /// `promote_all.lua`: delayed, waiting, marker, order.
    pub(crate) fn for_promote_all(&self) -> [&str; 4] {
        [&self.delayed, &self.waiting, &self.marker, &self.order]
    }

    /// `empty.lua`: waiting, delayed.
    pub(crate) fn for_empty(&self) -> [&str; 2] {
        [&self.waiting, &self.delayed]
    }

    /// `enqueue_flow.lua`, the parent's queue: seq, waiting-children, idempotency.
    pub(crate) fn for_flow_parent<'a>(&'a self, idempotency: &'a str) -> [&'a str; 3] {
        [&self.seq, &self.waiting_children, idempotency]
    }

    /// `enqueue_flow.lua`, a child's queue: waiting, delayed, marker, order.
    pub(crate) fn for_flow_child(&self) -> [&str; 4] {
        [&self.waiting, &self.delayed, &self.marker, &self.order]
    }

    /// The keys a flow parent's hash keeps (`k_waiting`, `k_order`, `k_marker`, `k_failed`), for
    /// the script that finishes its last child: waiting, order, marker, failed. Passed as ARGV, as
    /// the parent's hash stores them (`KEYS` name what a script touches itself).
    pub(crate) fn flow_parent_fields(&self) -> [&str; 4] {
        [&self.waiting, &self.order, &self.marker, &self.failed]
    }
}
