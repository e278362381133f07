//! The queue's state transitions as Lua scripts: each runs atomically inside Redis, so a job is
//! always in exactly one of `waiting`, `delayed`, `active`, `completed` or `failed`, whatever
//! crashes around it.
//!
//! Conventions: `ARGV[1]` is the job-hash prefix (`{<prefix>:queue}:job:`); times are unix ms;
//! loops over many ids are bounded per call (`promote` moves at most `limit` due jobs, so a backlog
//! of any size is drained in chunks: apalis-redis defect 1 unpacked the whole backlog at once).

mod steer;

use std::sync::LazyLock;

use redis::Script;
pub use steer::{CANCEL, ENQUEUE_FLOW, PROMOTE_ONE, REMOVE, RETRY_FAILED, SEARCH};

/// Shared helpers, prepended to the scripts that need them.
const HELPERS: &str = r#"
local function trim(zset, prefix, keep, max_age_ms, now)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', now - max_age_ms, 'LIMIT', 0, 1000)
  for _, id in ipairs(old) do
    redis.call('DEL', prefix .. id, prefix .. id .. ':log')
    redis.call('ZREM', zset, id)
  end
  local extra = redis.call('ZCARD', zset) - keep
  if extra > 0 then
    local ids = redis.call('ZRANGE', zset, 0, math.min(extra, 1000) - 1)
    for _, id in ipairs(ids) do
      redis.call('DEL', prefix .. id, prefix .. id .. ':log')
      redis.call('ZREM', zset, id)
    end
  end
end

local function append_log(key, lines)
  for _, line in ipairs(cjson.decode(lines)) do redis.call('RPUSH', key .. ':log', line) end
  redis.call('LTRIM', key .. ':log', -1000, -1)
end

-- A waiting job's score: its priority (0 = none, runs first; then 1, 2, ... like BullMQ) in the
-- high bits, its place in line in the low 32 bits, so ZPOPMIN claims by priority, then FIFO.
-- `front` puts it first among its priority (handed back, lease expired, promoted by hand).
local function waiting_score(key, order_key, front)
  local priority = tonumber(redis.call('HGET', key, 'priority') or '0') or 0
  if front then return priority * 4294967296 end
  return priority * 4294967296 + redis.call('INCR', order_key) % 4294967296
end

local function push_error(key, attempt, now, message, worker)
  local errors = cjson.decode(redis.call('HGET', key, 'errors') or '[]')
  errors[#errors + 1] = {attempt = attempt, at = now, error = message, worker = worker}
  redis.call('HSET', key, 'errors', cjson.encode(errors), 'last_error', message)
end

-- A flow's child `id` ended (ok: completed; else failed for good, cancelled or removed), in the
-- same script that recorded it: the parent (still waiting for its children) counts it, and runs
-- once none is pending; a failed child fails the parent with the child's error. The parent's
-- queue keys are in its hash (a child may live on another queue).
local function child_ended(prefix, parent, id, ok, message, now)
  if not parent or parent == '' then return end
  local pkey = prefix .. parent
  if redis.call('HGET', pkey, 'state') ~= 'waiting-children' then return end
  local k = redis.call('HMGET', pkey, 'k_children', 'k_waiting', 'k_order', 'k_marker', 'k_failed')
  if ok then
    if redis.call('HINCRBY', pkey, 'pending', -1) > 0 then return end
    redis.call('ZREM', k[1], parent)
    redis.call('HSET', pkey, 'state', 'waiting', 'run_at', now, 'progress_message', '')
    redis.call('ZADD', k[2], waiting_score(pkey, k[3], false), parent)
    redis.call('ZADD', k[4], 0, '0')
  else
    redis.call('ZREM', k[1], parent)
    push_error(pkey, 0, now, 'child job ' .. id .. ' failed: ' .. message, '')
    redis.call('HSET', pkey, 'state', 'failed', 'finished_at', now, 'progress_message', 'child job ' .. id .. ' failed')
    redis.call('ZADD', k[5], now, parent)
  end
end
"#;

/// KEYS: seq, waiting, delayed, idempotency key (unused when ARGV[12] is ''), marker, order (the waiting line's counter).
/// ARGV: prefix, queue, kind, payload, max_attempts, timeout_ms, now, run_at, idempotency_ttl_ms, origin,
/// priority (0 = none), the idempotency key as given ('' = none).
/// Returns {created (1|0), id}. Wakes a blocked worker (the marker) either way it lands.
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
if ARGV[12] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {0, existing} end
end
local id = tostring(redis.call('INCR', KEYS[1]))
local key = ARGV[1] .. id
local now, run_at = tonumber(ARGV[7]), tonumber(ARGV[8])
local state = 'waiting'
if run_at > now then state = 'delayed' end
redis.call('HSET', key, 'id', id, 'queue', ARGV[2], 'kind', ARGV[3], 'payload', ARGV[4],
  'max_attempts', ARGV[5], 'timeout_ms', ARGV[6], 'created_at', ARGV[7], 'run_at', ARGV[8],
  'state', state, 'attempts', 0, 'progress', 0, 'progress_message', '', 'errors', '[]', 'origin', ARGV[10],
  'priority', ARGV[11], 'key', ARGV[12])
if state == 'delayed' then
  redis.call('ZADD', KEYS[3], run_at, id)
else
  redis.call('ZADD', KEYS[2], waiting_score(key, KEYS[6], false), id)
end
redis.call('ZADD', KEYS[5], 0, '0')
if ARGV[12] ~= '' then redis.call('SET', KEYS[4], id, 'PX', ARGV[9]) end
return {1, id}
"#
    ))
});

/// The worker's one round trip: records the outcomes of finished attempts, then (unless the queue
/// is paused) promotes due delayed jobs, hands expired leases back (a worker that died mid-job:
/// the attempt counts; out of attempts, the job fails) and claims up to `want` waiting jobs with a
/// lease, counting their attempt.
///
/// A rate limit (`rate_max` jobs per `rate_ms`, 0 = none) is a fixed window shared by every worker
/// of the queue, in any process: the limiter key counts the window's claims and expires with it;
/// a worker held back is answered the window's end as its next due time.
///
/// KEYS: waiting (zset by `waiting_score`), delayed, active, completed, failed, paused, marker, order,
/// limiter.
/// ARGV: prefix, now, worker, lease_ms, want, chunk, keep_completed, keep_completed_age_ms,
/// keep_failed, keep_failed_age_ms, rate_max, rate_ms, then 5 values per outcome: id, type, a, b, logs (a JSON list of
/// log lines, '' = none). Types: 'c' completed (a = result JSON), 'r' retry or fail (a = error,
/// b = retry_at ms), 'f' fail now (a = error), 'h' handed back (shutdown; attempt not counted).
/// Returns {statuses ('completed' | 'retry' | 'failed' | 'released' | 'lost' per outcome),
/// claimed jobs ({id, kind, payload, attempts, max_attempts, timeout_ms} each), the next time
/// something becomes due (first delayed job or lease expiry, ms; -1 = nothing)}.
pub static FINISH_AND_FETCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local prefix, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local lease, want, chunk = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local statuses, finished, failed = {}, 0, 0
for i = 13, #ARGV, 5 do
  local id, kind, a, b, logs = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = prefix .. id
  if not redis.call('ZSCORE', KEYS[3], id) then
    statuses[#statuses + 1] = 'lost'
  else
    redis.call('ZREM', KEYS[3], id)
    if logs ~= '' then append_log(key, logs) end
    local attempts = tonumber(redis.call('HGET', key, 'attempts'))
    if kind == 'c' then
      redis.call('HSET', key, 'state', 'completed', 'finished_at', now, 'result', a, 'progress', 100)
      redis.call('ZADD', KEYS[4], now, id)
      child_ended(prefix, redis.call('HGET', key, 'parent'), id, true, '', now)
      finished = finished + 1
      statuses[#statuses + 1] = 'completed'
    elseif kind == 'h' then
      redis.call('HINCRBY', key, 'attempts', -1)
      redis.call('HSET', key, 'state', 'waiting')
      redis.call('ZADD', KEYS[1], waiting_score(key, KEYS[8], true), id)
      statuses[#statuses + 1] = 'released'
    else
      push_error(key, attempts, now, a, worker)
      if kind == 'r' and attempts < tonumber(redis.call('HGET', key, 'max_attempts')) then
        redis.call('HSET', key, 'state', 'delayed', 'run_at', b,
          'progress_message', 'attempt ' .. attempts .. ' failed; retry scheduled')
        redis.call('ZADD', KEYS[2], b, id)
        statuses[#statuses + 1] = 'retry'
      else
        redis.call('HSET', key, 'state', 'failed', 'finished_at', now,
          'progress_message', 'failed after ' .. attempts .. ' attempt(s)')
        redis.call('ZADD', KEYS[5], now, id)
        child_ended(prefix, redis.call('HGET', key, 'parent'), id, false, a, now)
        failed = failed + 1
        statuses[#statuses + 1] = 'failed'
      end
    end
  end
end
if finished > 0 then trim(KEYS[4], prefix, tonumber(ARGV[7]), tonumber(ARGV[8]), now) end
local claimed, next_due = {}, -1
if redis.call('EXISTS', KEYS[6]) == 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, chunk)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], waiting_score(prefix .. id, KEYS[8], false), id)
    redis.call('HSET', prefix .. id, 'state', 'waiting')
  end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, chunk)
  for _, id in ipairs(expired) do
    local key = prefix .. id
    redis.call('ZREM', KEYS[3], id)
    local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
    local owner = redis.call('HGET', key, 'worker') or ''
    push_error(key, attempts, now, 'worker ' .. owner .. ' stopped responding (lease expired)', owner)
    if attempts >= tonumber(redis.call('HGET', key, 'max_attempts') or '1') then
      redis.call('HSET', key, 'state', 'failed', 'finished_at', now)
      redis.call('ZADD', KEYS[5], now, id)
      child_ended(prefix, redis.call('HGET', key, 'parent'), id, false, 'its worker stopped responding', now)
      failed = failed + 1
    else
      redis.call('HSET', key, 'state', 'waiting')
      redis.call('ZADD', KEYS[1], waiting_score(key, KEYS[8], true), id)
    end
  end
  local rate_max, limited = tonumber(ARGV[11]), false
  if want > 0 and rate_max > 0 then
    local left = rate_max - tonumber(redis.call('GET', KEYS[9]) or '0')
    if left < want then want, limited = math.max(left, 0), true end
  end
  if want > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[1], want)
    if popped then
      for i = 1, #popped, 2 do
        local id = popped[i]
        local key = prefix .. id
        redis.call('ZADD', KEYS[3], now + lease, id)
        redis.call('HINCRBY', key, 'attempts', 1)
        redis.call('HSET', key, 'state', 'active', 'started_at', now, 'worker', worker, 'progress', 0,
          'progress_message', '')
        claimed[#claimed + 1] = redis.call('HMGET', key, 'id', 'kind', 'payload', 'attempts', 'max_attempts', 'timeout_ms')
      end
    end
    if rate_max > 0 and #claimed > 0 and redis.call('INCRBY', KEYS[9], #claimed) == #claimed then
      redis.call('PEXPIRE', KEYS[9], ARGV[12])
    end
    if not limited and #claimed == want and redis.call('ZCARD', KEYS[1]) > 0 then redis.call('ZADD', KEYS[7], 0, '0') end
  end
  if limited and redis.call('ZCARD', KEYS[1]) > 0 then
    local window_end = now + math.max(redis.call('PTTL', KEYS[9]), 1)
    if next_due < 0 or window_end < next_due then next_due = window_end end
  end
end
if failed > 0 then trim(KEYS[5], prefix, tonumber(ARGV[9]), tonumber(ARGV[10]), now) end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] and (next_due < 0 or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
local lease_end = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if lease_end[2] and (next_due < 0 or tonumber(lease_end[2]) < next_due) then next_due = tonumber(lease_end[2]) end
return {statuses, claimed, next_due}
"#
    ))
});

/// What a worker tells Redis about its running jobs, for all of them in one call: extends their
/// leases (when `lease_until` is given) and stores progress and log lines. Jobs no longer active
/// (lease lost, removed) are answered, so their processors can be asked to stop; log lines of a job
/// that ended meanwhile are still kept.
/// KEYS: active. ARGV: prefix, lease_until ('' = keep), then 4 values per job: id, percent
/// ('' = unchanged), message, logs (JSON list, '' = none). Returns the ids that are not active.
pub static REPORT_LIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local lost = {}
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  if not redis.call('ZSCORE', KEYS[1], id) then
    lost[#lost + 1] = id
  else
    if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
    if ARGV[i + 1] ~= '' then
      redis.call('HSET', key, 'progress', ARGV[i + 1], 'progress_message', ARGV[i + 2])
    end
  end
  -- Lines written just before the job ended still belong to it.
  if ARGV[i + 3] ~= '' and redis.call('EXISTS', key) == 1 then append_log(key, ARGV[i + 3]) end
end
return lost
"#
    ))
});

/// A declared queue's first start: `paused` applies only if the queue was never started before
/// (later pauses and resumes belong to the operator). A `waiting` list of an older eventmill
/// (before priorities) becomes the sorted set, in the same order.
/// KEYS: meta, paused, marker, waiting, order. ARGV: now, paused (1|0), concurrency, prefix,
/// rate limit (`max/ms`, '' = none). Returns 1 on the first declaration.
pub static DECLARE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local first = redis.call('HSETNX', KEYS[1], 'declared_at', ARGV[1])
redis.call('HSET', KEYS[1], 'concurrency', ARGV[3], 'rate_limit', ARGV[5])
if first == 1 and ARGV[2] == '1' then redis.call('SET', KEYS[2], 1) end
if redis.call('TYPE', KEYS[4]).ok == 'list' then
  local ids = redis.call('LRANGE', KEYS[4], 0, -1)
  redis.call('DEL', KEYS[4])
  for i = #ids, 1, -1 do redis.call('ZADD', KEYS[4], waiting_score(ARGV[4] .. ids[i], KEYS[5], false), ids[i]) end
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return first
"#
    ))
});
