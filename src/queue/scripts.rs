//! The queue's state transitions as Lua scripts: each runs atomically inside Redis, so a job is
//! always in exactly one of `waiting`, `delayed`, `active`, `completed` or `failed`, whatever
//! crashes around it.
//!
//! Conventions: `ARGV[1]` is the job-hash prefix (`{prefix}:queue:job:`); times are unix ms;
//! loops over many ids are bounded per call (`promote` moves at most `limit` due jobs, so a backlog
//! of any size is drained in chunks: apalis-redis defect 1 unpacked the whole backlog at once).

use std::sync::LazyLock;

use redis::Script;

/// Shared helpers, prepended to the scripts that need them.
const HELPERS: &str = r#"
local function trim(zset, prefix, keep, max_age_ms, now)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', now - max_age_ms, 'LIMIT', 0, 1000)
  for _, id in ipairs(old) do
    redis.call('DEL', prefix .. id)
    redis.call('ZREM', zset, id)
  end
  local extra = redis.call('ZCARD', zset) - keep
  if extra > 0 then
    local ids = redis.call('ZRANGE', zset, 0, math.min(extra, 1000) - 1)
    for _, id in ipairs(ids) do
      redis.call('DEL', prefix .. id)
      redis.call('ZREM', zset, id)
    end
  end
end

local function push_error(key, attempt, now, message, worker)
  local errors = cjson.decode(redis.call('HGET', key, 'errors') or '[]')
  errors[#errors + 1] = {attempt = attempt, at = now, error = message, worker = worker}
  redis.call('HSET', key, 'errors', cjson.encode(errors), 'last_error', message)
end
"#;

/// KEYS: seq, waiting, delayed, idempotency key ('' = none).
/// ARGV: prefix, queue, kind, payload, max_attempts, timeout_ms, now, run_at, idempotency_ttl_ms, origin.
/// Returns {created (1|0), id}.
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if KEYS[4] ~= '' then
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
  'state', state, 'attempts', 0, 'progress', 0, 'progress_message', '', 'errors', '[]', 'origin', ARGV[10])
if state == 'delayed' then
  redis.call('ZADD', KEYS[3], run_at, id)
else
  redis.call('LPUSH', KEYS[2], id)
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], id, 'PX', ARGV[9]) end
return {1, id}
"#,
    )
});

/// Moves due delayed jobs to `waiting` (at most `limit`) and hands expired leases back (a worker
/// that died mid-job: the attempt counts; out of attempts, the job fails).
/// KEYS: waiting, delayed, active, failed. ARGV: prefix, now, limit, keep_failed, keep_failed_age_ms.
/// Returns {promoted, reclaimed}.
pub static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('LPUSH', KEYS[1], id)
  redis.call('HSET', ARGV[1] .. id, 'state', 'waiting')
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  local key = ARGV[1] .. id
  redis.call('ZREM', KEYS[3], id)
  local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
  local worker = redis.call('HGET', key, 'worker') or ''
  push_error(key, attempts, now, 'worker ' .. worker .. ' stopped responding (lease expired)', worker)
  if attempts >= tonumber(redis.call('HGET', key, 'max_attempts') or '1') then
    redis.call('HSET', key, 'state', 'failed', 'finished_at', now)
    redis.call('ZADD', KEYS[4], now, id)
    trim(KEYS[4], ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), now)
  else
    redis.call('HSET', key, 'state', 'waiting')
    redis.call('RPUSH', KEYS[1], id)
  end
end
return {#due, #expired}
"#
    ))
});

/// Claims the oldest waiting job with a lease (unless the queue is paused) and counts the attempt.
/// KEYS: waiting, active, paused. ARGV: prefix, now, lease_ms, worker.
/// Returns {id, kind, payload, attempts, max_attempts, timeout_ms} or nil.
pub static FETCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
local id = redis.call('RPOP', KEYS[1])
if not id then return false end
local key = ARGV[1] .. id
local now = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), id)
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'state', 'active', 'started_at', now, 'worker', ARGV[4], 'progress', 0, 'progress_message', '')
return redis.call('HMGET', key, 'id', 'kind', 'payload', 'attempts', 'max_attempts', 'timeout_ms')
"#,
    )
});

/// KEYS: active, completed. ARGV: prefix, id, now, result, keep, keep_age_ms.
/// Returns 1, or 0 when the job was no longer this worker's (lease lost, or removed).
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local id, now = ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HSET', ARGV[1] .. id, 'state', 'completed', 'finished_at', now, 'result', ARGV[4], 'progress', 100)
redis.call('ZADD', KEYS[2], now, id)
trim(KEYS[2], ARGV[1], tonumber(ARGV[5]), tonumber(ARGV[6]), now)
return 1
"#
    ))
});

/// Records a failed attempt; retries later (in `delayed`, so the wait survives any worker) while
/// attempts are left and the error is retryable, else fails the job with every attempt's error.
/// KEYS: active, delayed, failed. ARGV: prefix, id, now, error, retryable (1|0), retry_at, worker,
/// keep, keep_age_ms. Returns 'retry', 'failed' or 'lost'.
pub static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local id, now = ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], id) then return 'lost' end
redis.call('ZREM', KEYS[1], id)
local key = ARGV[1] .. id
local attempts = tonumber(redis.call('HGET', key, 'attempts'))
push_error(key, attempts, now, ARGV[4], ARGV[7])
if ARGV[5] == '1' and attempts < tonumber(redis.call('HGET', key, 'max_attempts')) then
  redis.call('HSET', key, 'state', 'delayed', 'run_at', ARGV[6],
    'progress_message', 'attempt ' .. attempts .. ' failed; retry scheduled')
  redis.call('ZADD', KEYS[2], ARGV[6], id)
  return 'retry'
end
redis.call('HSET', key, 'state', 'failed', 'finished_at', now, 'progress_message', 'failed after ' .. attempts .. ' attempt(s)')
redis.call('ZADD', KEYS[3], now, id)
trim(KEYS[3], ARGV[1], tonumber(ARGV[8]), tonumber(ARGV[9]), now)
return 'failed'
"#
    ))
});

/// Hands a running job back untouched (shutdown): front of `waiting`, attempt not counted.
/// KEYS: active, waiting. ARGV: prefix, id. Returns 1 or 0.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HINCRBY', ARGV[1] .. ARGV[2], 'attempts', -1)
redis.call('HSET', ARGV[1] .. ARGV[2], 'state', 'waiting')
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"#,
    )
});

/// Heartbeat of a running job: extends its lease and stores its progress.
/// KEYS: active. ARGV: prefix, id, lease_until, progress ('' = unchanged), message.
/// Returns 1, or 0 when the job is no longer active.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HSET', ARGV[1] .. ARGV[2], 'progress', ARGV[4], 'progress_message', ARGV[5])
end
return 1
"#,
    )
});

/// Puts failed jobs back in `waiting` with a fresh set of attempts (their error history is kept).
/// KEYS: failed, waiting. ARGV: prefix, now, id ('' = the oldest `limit` failed jobs), limit.
/// Returns how many were re-queued.
pub static RETRY_FAILED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids
if ARGV[3] ~= '' then
  if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
  ids = {ARGV[3]}
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
end
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', ARGV[1] .. id, 'state', 'waiting', 'attempts', 0, 'run_at', ARGV[2])
  redis.call('HDEL', ARGV[1] .. id, 'finished_at')
  redis.call('LPUSH', KEYS[2], id)
end
return #ids
"#,
    )
});

/// Deletes a job whatever its state. KEYS: waiting, delayed, active, completed, failed.
/// ARGV: prefix, id. Returns 1 or 0 (no such job).
pub static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('DEL', ARGV[1] .. ARGV[2]) == 0 then return 0 end
redis.call('LREM', KEYS[1], 0, ARGV[2])
for i = 2, 5 do redis.call('ZREM', KEYS[i], ARGV[2]) end
return 1
"#,
    )
});

/// Scans the ids of one state from position ARGV[4] (0-based, in display order) and returns those
/// whose payload contains ARGV[3] (lower-cased; plain find, no patterns), at most ARGV[5] of them,
/// looking at no more than ARGV[6] ids. KEYS: the state's list or zset. ARGV: prefix, order
/// ('list' = from the tail, 'z' = ascending, 'zrev' = descending), needle, from, limit, budget.
/// Returns {matching ids, next position or -1 at the end}.
pub static SEARCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local order, needle = ARGV[2], ARGV[3]
local from, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local found, pos, chunk = {}, from, 200
while pos < from + budget do
  local n = math.min(chunk, from + budget - pos)
  local ids
  if order == 'list' then
    ids = redis.call('LRANGE', KEYS[1], -(pos + n), -(pos + 1))
    local r = {}
    for i = #ids, 1, -1 do r[#r + 1] = ids[i] end
    ids = r
  elseif order == 'zrev' then
    ids = redis.call('ZREVRANGE', KEYS[1], pos, pos + n - 1)
  else
    ids = redis.call('ZRANGE', KEYS[1], pos, pos + n - 1)
  end
  if #ids == 0 then return {found, -1} end
  for i, id in ipairs(ids) do
    local payload = redis.call('HGET', ARGV[1] .. id, 'payload')
    if payload and string.find(string.lower(payload), needle, 1, true) then
      found[#found + 1] = id
      if #found >= limit then return {found, pos + i} end
    end
  end
  pos = pos + #ids
  if #ids < n then return {found, -1} end
end
return {found, pos}
"#,
    )
});

/// Moves one delayed job to `waiting`, next in line. KEYS: delayed, waiting. ARGV: prefix, id, now.
/// Returns 1, or 0 when the job is not delayed.
pub static PROMOTE_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HSET', ARGV[1] .. ARGV[2], 'state', 'waiting', 'run_at', ARGV[3])
return 1
"#,
    )
});
