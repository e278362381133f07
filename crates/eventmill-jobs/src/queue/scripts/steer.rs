//! The scripts that steer jobs from outside a worker: retry failed ones, remove, search, cancel,
//! promote one, and enqueue a flow (its parent and children at once). Helpers: `super::HELPERS`.

use std::sync::LazyLock;

use redis::Script;

use super::HELPERS;

/// Puts failed jobs back in `waiting` with a fresh set of attempts (their error history is kept).
/// KEYS: failed, waiting, marker, order. ARGV: prefix, now, id ('' = the oldest `limit` failed jobs), limit.
/// Returns how many were re-queued.
pub static RETRY_FAILED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
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
  redis.call('ZADD', KEYS[2], waiting_score(ARGV[1] .. id, KEYS[4], false), id)
end
if #ids > 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return #ids
"#
    ))
});

/// Deletes a job whatever its state (a flow's child counts as failed for its parent).
/// KEYS: waiting, delayed, active, completed, failed, waiting-children. ARGV: prefix, id, now.
/// Returns 1 or 0 (no such job).
pub static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local key = ARGV[1] .. ARGV[2]
local parent, state = unpack(redis.call('HMGET', key, 'parent', 'state'))
if redis.call('DEL', key, key .. ':log') == 0 then return 0 end
for i = 1, 6 do redis.call('ZREM', KEYS[i], ARGV[2]) end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
  child_ended(ARGV[1], parent, ARGV[2], false, 'removed', tonumber(ARGV[3]))
end
return 1
"#
    ))
});

/// Scans the ids of one state from position ARGV[4] (0-based, in display order) and returns those
/// whose payload contains ARGV[3] (lower-cased; plain find, no patterns), at most ARGV[5] of them,
/// looking at no more than ARGV[6] ids. KEYS: the state's zset. ARGV: prefix, order
/// ('z' = ascending, 'zrev' = descending), needle, from, limit, budget.
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
  if order == 'zrev' then
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

/// Cancels one job (a flow's child counts as failed for its parent; a parent waiting for its
/// children is removed). KEYS: waiting, delayed, active, failed, waiting-children. ARGV: prefix, id, now.
/// Returns 'removed' (it was waiting or delayed: deleted), 'stopping' (it was running: now in
/// `failed` with state `cancelled`; its worker learns the claim is gone), 'missing', or
/// 'ended:<state>' for a job that had already ended.
pub static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
local id = ARGV[2]
local key = ARGV[1] .. id
if redis.call('EXISTS', key) == 0 then return 'missing' end
local parent, now = redis.call('HGET', key, 'parent'), tonumber(ARGV[3])
if redis.call('ZREM', KEYS[1], id) > 0 or redis.call('ZREM', KEYS[2], id) > 0 or redis.call('ZREM', KEYS[5], id) > 0 then
  redis.call('DEL', key, key .. ':log')
  child_ended(ARGV[1], parent, id, false, 'cancelled', now)
  return 'removed'
end
if redis.call('ZREM', KEYS[3], id) > 0 then
  child_ended(ARGV[1], parent, id, false, 'cancelled while running', now)
  local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
  push_error(key, attempts, tonumber(ARGV[3]), 'cancelled while running', redis.call('HGET', key, 'worker') or '')
  redis.call('HSET', key, 'state', 'cancelled', 'finished_at', ARGV[3], 'progress_message', 'cancelled')
  redis.call('ZADD', KEYS[4], ARGV[3], id)
  return 'stopping'
end
return 'ended:' .. (redis.call('HGET', key, 'state') or '?')
"#
    ))
});

/// Moves one delayed job to `waiting`, next in line. KEYS: delayed, waiting, marker. ARGV: prefix, id, now.
/// Returns 1, or 0 when the job is not delayed.
pub static PROMOTE_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], waiting_score(ARGV[1] .. ARGV[2], '', true), ARGV[2])
redis.call('HSET', ARGV[1] .. ARGV[2], 'state', 'waiting', 'run_at', ARGV[3])
redis.call('ZADD', KEYS[3], 0, '0')
return 1
"#
    ))
});

/// Enqueues a flow in one script: the parent waits in `waiting-children` with its count of pending
/// children (and its queue's keys, for the scripts that finish a child), each child is enqueued
/// like any job with `parent` set. Deduplicated by the parent's idempotency key.
/// KEYS: seq, parent's waiting-children, idempotency key (unused when the key text is ''), then per child its queue's
/// waiting, delayed, marker, order.
/// ARGV: prefix, now, idempotency_ttl_ms, the parent's queue, kind, payload, max_attempts,
/// timeout_ms, origin, priority, key text, and its queue's waiting, order, marker, failed keys;
/// then per child: queue, kind, payload, max_attempts, timeout_ms, priority, run_at.
/// Returns {created (1|0), parent id, child ids}.
pub static ENQUEUE_FLOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}{}",
        r#"
if ARGV[11] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing, {}} end
end
local prefix, now = ARGV[1], tonumber(ARGV[2])
local n = (#KEYS - 3) / 4
local parent = tostring(redis.call('INCR', KEYS[1]))
local pkey = prefix .. parent
redis.call('HSET', pkey, 'id', parent, 'queue', ARGV[4], 'kind', ARGV[5], 'payload', ARGV[6],
  'max_attempts', ARGV[7], 'timeout_ms', ARGV[8], 'created_at', now, 'run_at', now,
  'state', 'waiting-children', 'attempts', 0, 'progress', 0,
  'progress_message', 'waiting for ' .. n .. ' child job(s)', 'errors', '[]', 'origin', ARGV[9],
  'priority', ARGV[10], 'key', ARGV[11], 'pending', n, 'k_children', KEYS[2], 'k_waiting', ARGV[12],
  'k_order', ARGV[13], 'k_marker', ARGV[14], 'k_failed', ARGV[15])
redis.call('ZADD', KEYS[2], now, parent)
local ids = {}
for i = 0, n - 1 do
  local a, k = 16 + 7 * i, 4 + 4 * i
  local id = tostring(redis.call('INCR', KEYS[1]))
  local key = prefix .. id
  local run_at = tonumber(ARGV[a + 6])
  local state = 'waiting'
  if run_at > now then state = 'delayed' end
  redis.call('HSET', key, 'id', id, 'queue', ARGV[a], 'kind', ARGV[a + 1], 'payload', ARGV[a + 2],
    'max_attempts', ARGV[a + 3], 'timeout_ms', ARGV[a + 4], 'created_at', now, 'run_at', run_at,
    'state', state, 'attempts', 0, 'progress', 0, 'progress_message', '', 'errors', '[]',
    'origin', ARGV[9], 'priority', ARGV[a + 5], 'parent', parent)
  if state == 'delayed' then
    redis.call('ZADD', KEYS[k + 1], run_at, id)
  else
    redis.call('ZADD', KEYS[k], waiting_score(key, KEYS[k + 3], false), id)
  end
  redis.call('ZADD', KEYS[k + 2], 0, '0')
  ids[#ids + 1] = id
end
redis.call('HSET', pkey, 'children', cjson.encode(ids))
if ARGV[11] ~= '' then redis.call('SET', KEYS[3], parent, 'PX', ARGV[3]) end
return {1, parent, ids}
"#
    ))
});
