//! The queue's state transitions as Lua scripts, and the typed boundary around them: each runs
//! atomically inside Redis, so a job is always in exactly one of `waiting`, `delayed`, `active`,
//! `completed` or `failed`, whatever crashes around it.
//!
//! The Lua lives in the `.lua` files beside this one (`helpers.lua` is put before the scripts that
//! call its functions). The Rust side never writes a `KEYS` or `ARGV` position itself: a script's
//! keys come from [`QueueKeys`] (`for_<script>`), its arguments from a builder in `args` and its
//! reply is decoded in `reply` into the queue's types; the functions below tie the three together.
//!
//! Conventions of the Lua: `ARGV[1]` is the job-hash prefix (`{<prefix>:queue}:job:`); times are
//! unix ms; loops over many ids are bounded per call (due jobs and expired leases are handled
//! `PROMOTE_CHUNK` at a time, so a backlog of any size is drained in chunks: apalis-redis defect 1
//! unpacked the whole backlog at once).

mod args;
mod reply;

use std::sync::LazyLock;

use redis::{FromRedisValue, RedisResult, Script, ToRedisArgs};

pub(crate) use args::{BulkLimit, Clean, FinishAndFetch, FlowJob, NewFlow, NewJob, Search};
pub(crate) use reply::{CancelReply, SearchPage};

use super::{BulkStep, Enqueued, FlowEnqueued, JobState, Live, RateLimit, Round, keys::QueueKeys};
use crate::redis_conn::RedisConn;

/// A script whose text is `helpers.lua`, then `$file`. Each part follows a blank line, so the
/// text (and the SHA1 Redis caches it under) is the one eventmill sent when the Lua was inline.
macro_rules! with_helpers {
    ($file:literal) => {
        LazyLock::new(|| Script::new(concat!("\n", include_str!("helpers.lua"), "\n", include_str!($file))))
    };
}

/// Adds a job (waiting, or delayed until its run-at), deduplicated by its key while the key lives;
/// wakes a blocked worker either way it lands.
static ENQUEUE: LazyLock<Script> = with_helpers!("enqueue.lua");

/// The worker's one round trip: records the outcomes of finished attempts, then (unless the queue
/// is paused) promotes due delayed jobs, hands expired leases back (a worker that died mid-job:
/// the attempt counts; out of attempts, the job fails) and claims waiting jobs with a lease,
/// counting their attempt.
///
/// A rate limit is a fixed window shared by every worker of the queue, in any process: the
/// limiter key counts the window's claims and expires with it; a worker held back is answered the
/// window's end as its next due time.
static FINISH_AND_FETCH: LazyLock<Script> = with_helpers!("finish_and_fetch.lua");

/// What a worker tells Redis about its running jobs, for all of them in one call: extends their
/// leases and stores progress and log lines. Jobs no longer active (lease lost, removed) are
/// answered, so their processors can be asked to stop; log lines of a job that ended meanwhile are
/// still kept.
static REPORT_LIVE: LazyLock<Script> = with_helpers!("report_live.lua");

/// A declared queue's start: `paused` applies only if the queue was never started before (later
/// pauses and resumes belong to the operator). A `waiting` list of an older eventmill (before
/// priorities) becomes the sorted set, in the same order.
static DECLARE: LazyLock<Script> = with_helpers!("declare.lua");

/// Puts failed jobs back in `waiting` with a fresh set of attempts (their error history is kept).
static RETRY_FAILED: LazyLock<Script> = with_helpers!("retry_failed.lua");

/// Deletes a job whatever its state (a flow's child counts as failed for its parent).
static REMOVE: LazyLock<Script> = with_helpers!("remove.lua");

/// Scans the ids of one state and answers those whose payload contains a needle (plain find, no
/// patterns), within a budget of ids looked at.
static SEARCH: LazyLock<Script> = with_helpers!("search.lua");

/// Cancels one job (a flow's child counts as failed for its parent; a parent waiting for its
/// children is removed): a waiting or delayed job is deleted, a running one ends `cancelled` in
/// `failed` (its worker learns its claim is gone).
static CANCEL: LazyLock<Script> = with_helpers!("cancel.lua");

/// Moves one delayed job to `waiting`, next in line.
static PROMOTE_ONE: LazyLock<Script> = with_helpers!("promote_one.lua");

/// Enqueues a flow in one script: the parent waits in `waiting-children` with its count of pending
/// children (and its queue's keys, for the scripts that finish a child), each child is enqueued
/// like any job with `parent` set. Deduplicated by the parent's key.
static ENQUEUE_FLOW: LazyLock<Script> = with_helpers!("enqueue_flow.lua");

/// Deletes the jobs of one finished set (completed or failed) that finished before a cutoff, with
/// their logs, at most a limit per call; answers how many and whether older ones are left.
static CLEAN: LazyLock<Script> = with_helpers!("clean.lua");

/// Moves delayed jobs to `waiting` now, the soonest due first, at most a limit per call.
static PROMOTE_ALL: LazyLock<Script> = with_helpers!("promote_all.lua");

/// Deletes waiting, then delayed jobs with their logs, at most a limit per call.
static EMPTY: LazyLock<Script> = with_helpers!("empty.lua");

/// Replaces the payload of a waiting, delayed, failed or cancelled job, with a log line.
static EDIT_DATA: LazyLock<Script> = with_helpers!("edit_data.lua");

/// A running attempt's new payload (`ctx.update_data`): written only while that attempt holds
/// the job.
static UPDATE_DATA: LazyLock<Script> = LazyLock::new(|| Script::new(concat!("\n", include_str!("update_data.lua"))));

/// Writes `payload` as job `job_key`'s payload if `attempt` still holds it; false when not.
pub(crate) async fn update_data(conn: &mut RedisConn, job_key: &str, payload: &str, attempt: u32) -> RedisResult<bool> {
    let mut invocation = UPDATE_DATA.prepare_invoke();
    invocation.key(job_key).arg(payload).arg(attempt);
    invocation.invoke_async(conn).await
}

/// Runs `script` with `keys` and `args` (the job prefix first), decoding its reply as `R`.
async fn invoke<R: FromRedisValue>(
    conn: &mut RedisConn,
    script: &Script,
    keys: &[&str],
    job_prefix: &str,
    args: impl ToRedisArgs,
) -> RedisResult<R> {
    let mut invocation = script.prepare_invoke();
    invocation.key(keys).arg(job_prefix).arg(args);
    invocation.invoke_async(conn).await
}

/// Adds `job` to the queue of `keys`.
pub(crate) async fn enqueue(conn: &mut RedisConn, keys: &QueueKeys, job: &NewJob<'_>) -> RedisResult<Enqueued> {
    let idempotency = keys.idempotency(job.key);
    invoke(conn, &ENQUEUE, &keys.for_enqueue(&idempotency), &keys.job_prefix, job).await
}

/// Loads the enqueue script inside `pipe` (a bulk enqueue's transaction), so the invocations
/// after it never meet a Redis that lost its script cache.
pub(crate) fn load_enqueue(pipe: &mut redis::Pipeline) {
    pipe.load_script(&ENQUEUE).ignore();
}

/// Adds the enqueue of `job` to the queue of `keys` to `pipe`; its reply decodes as [`Enqueued`].
pub(crate) fn enqueue_into(pipe: &mut redis::Pipeline, keys: &QueueKeys, job: &NewJob<'_>) {
    let idempotency = keys.idempotency(job.key);
    let mut invocation = ENQUEUE.prepare_invoke();
    invocation.key(&keys.for_enqueue(&idempotency)).arg(&keys.job_prefix).arg(job);
    pipe.invoke_script(&invocation);
}

/// Records `round.finished` and claims up to `round.want` jobs.
pub(crate) async fn finish_and_fetch(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    round: &FinishAndFetch<'_>,
) -> RedisResult<Round> {
    invoke(conn, &FINISH_AND_FETCH, &keys.for_finish_and_fetch(), &keys.job_prefix, round).await
}

/// Writes running jobs' progress and log lines, extending their leases to `lease_until` (unix ms)
/// when given; answers the ids that are no longer active.
pub(crate) async fn report_live(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    lease_until: Option<i64>,
    jobs: &[Live<'_>],
) -> RedisResult<Vec<String>> {
    let report = args::LiveReport { lease_until, jobs };
    invoke(conn, &REPORT_LIVE, &keys.for_report_live(), &keys.job_prefix, report).await
}

/// Declares the queue as a worker starts on it (`paused` applies on its very first start, with
/// `concurrency` and `rate_limit` shown by admin, `global_concurrency` obeyed by every worker's
/// claim); true on its very first start.
pub(crate) async fn declare(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    now: i64,
    paused: bool,
    concurrency: usize,
    rate_limit: Option<RateLimit>,
    global_concurrency: Option<u32>,
) -> RedisResult<bool> {
    // ARGV: now, paused (1|0), concurrency, prefix, rate limit (`max/duration`, '' = none),
    // global concurrency (0 = none), the rate limit as workers read it (`<jobs>:<ms>`, `0:0` = none).
    let rate = super::limits_in_force::rate_field(rate_limit);
    let rate_limit = rate_limit.map_or(String::new(), |r| r.to_string());
    let mut invocation = DECLARE.prepare_invoke();
    invocation.key(&keys.for_declare()).arg(now).arg(if paused { "1" } else { "0" }).arg(concurrency);
    invocation.arg(&keys.job_prefix).arg(rate_limit).arg(global_concurrency.unwrap_or(0)).arg(rate);
    invocation.invoke_async(conn).await
}

/// Re-queues failed job `id`, or the oldest `limit` failed jobs (at least one: the script reads
/// a limit of 0 as "all"); answers how many.
pub(crate) async fn retry_failed(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    now: i64,
    id: Option<&str>,
    limit: usize,
) -> RedisResult<usize> {
    let args = (now, id.unwrap_or(""), limit.max(1));
    invoke(conn, &RETRY_FAILED, &keys.for_retry_failed(), &keys.job_prefix, args).await
}

/// Deletes job `id` whatever its state; false when there was none.
pub(crate) async fn remove(conn: &mut RedisConn, keys: &QueueKeys, id: &str, now: i64) -> RedisResult<bool> {
    invoke(conn, &REMOVE, &keys.for_remove(), &keys.job_prefix, (id, now)).await
}

/// Cancels job `id`.
pub(crate) async fn cancel(conn: &mut RedisConn, keys: &QueueKeys, id: &str, now: i64) -> RedisResult<CancelReply> {
    invoke(conn, &CANCEL, &keys.for_cancel(), &keys.job_prefix, (id, now)).await
}

/// Replaces job `id`'s payload `was` by `payload`, logging `log_line`: `ok`, `missing`, `changed`
/// (its payload is no longer `was`) or the state that forbids it.
pub(crate) async fn edit_data(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    id: &str,
    edit: (&str, &str, &str),
) -> RedisResult<String> {
    let log = serde_json::json!([edit.2]).to_string();
    invoke(conn, &EDIT_DATA, &[keys.job(id).as_str()], &keys.job_prefix, (edit.0, edit.1, log)).await
}

/// Moves delayed job `id` to `waiting` now; false when it is not delayed.
pub(crate) async fn promote_one(conn: &mut RedisConn, keys: &QueueKeys, id: &str, now: i64) -> RedisResult<bool> {
    invoke(conn, &PROMOTE_ONE, &keys.for_promote_one(), &keys.job_prefix, (id, now)).await
}

/// The ids of `state` whose payload contains the needle of `search`.
pub(crate) async fn search(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    state: JobState,
    search: &Search<'_>,
) -> RedisResult<SearchPage> {
    invoke(conn, &SEARCH, &keys.for_search(state), &keys.job_prefix, search).await
}

/// One bounded step of cleaning the finished set of `state`.
pub(crate) async fn clean(
    conn: &mut RedisConn,
    keys: &QueueKeys,
    state: JobState,
    clean: &Clean,
) -> RedisResult<BulkStep> {
    invoke(conn, &CLEAN, &keys.for_clean(state), &keys.job_prefix, clean).await
}

/// One bounded step of promoting every delayed job.
pub(crate) async fn promote_all(conn: &mut RedisConn, keys: &QueueKeys, step: &BulkLimit) -> RedisResult<BulkStep> {
    invoke(conn, &PROMOTE_ALL, &keys.for_promote_all(), &keys.job_prefix, step).await
}

/// One bounded step of emptying the queue (waiting and delayed jobs).
pub(crate) async fn empty(conn: &mut RedisConn, keys: &QueueKeys, step: &BulkLimit) -> RedisResult<BulkStep> {
    invoke(conn, &EMPTY, &keys.for_empty(), &keys.job_prefix, step).await
}

/// Enqueues `flow`: its parent and children at once.
pub(crate) async fn enqueue_flow(conn: &mut RedisConn, flow: &NewFlow<'_>) -> RedisResult<FlowEnqueued> {
    let head = flow.parent.keys;
    let idempotency = head.idempotency(flow.key);
    let mut invocation = ENQUEUE_FLOW.prepare_invoke();
    invocation.key(&head.for_flow_parent(&idempotency));
    for child in &flow.children {
        invocation.key(&child.keys.for_flow_child());
    }
    invocation.arg(&head.job_prefix).arg(flow);
    invocation.invoke_async(conn).await
}
