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
local function waiting_score(key, order_key, front, priority)
  priority = tonumber(priority or redis.call('HGET', key, 'priority') or '0') or 0
  if front then return priority * 4294967296 end
  return priority * 4294967296 + redis.call('INCR', order_key) % 4294967296
end

-- The waiting line (docs/jobs.md, "Memory per waiting job"): unprioritised jobs wait in the LIST
-- `<waiting>:fifo` (claimed from its head: ~10 bytes a job, where a sorted set entry costs ~100),
-- prioritised ones in the sorted set `<waiting>` (score: `waiting_score`). Unprioritised jobs run
-- first, as priority 0 always did. Every script goes through these four: none touches the two keys
-- itself. `waiting` is the queue's waiting key; the LIST's name is built from it (same hash tag).
-- `push_waiting`: job `id` (hash `key`) joins the line, first among its priority with `front`;
-- `priority` if the caller knows it (else read from the hash; missing = 0).
local function push_waiting(waiting, key, id, order_key, front, priority)
  priority = tonumber(priority or redis.call('HGET', key, 'priority') or '0') or 0
  if priority > 0 then
    redis.call('ZADD', waiting, waiting_score(key, order_key, front, priority), id)
  elseif front then
    redis.call('LPUSH', waiting .. ':fifo', id)
  else
    redis.call('RPUSH', waiting .. ':fifo', id)
  end
end

-- Takes up to `n` ids off the head of the line (unprioritised first, then by priority).
local function pop_waiting(waiting, n)
  local ids = {}
  if n <= 0 then return ids end
  local fifo = redis.call('LPOP', waiting .. ':fifo', n)
  if fifo then ids = fifo end
  if #ids < n then
    local popped = redis.call('ZPOPMIN', waiting, n - #ids)
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  end
  return ids
end

-- How many jobs wait.
local function waiting_count(waiting)
  return redis.call('LLEN', waiting .. ':fifo') + redis.call('ZCARD', waiting)
end

-- Takes job `id` (hash `key`) out of the line; 1 if it was there. The LIST is searched (LREM,
-- O(n)) only for a job whose hash says it waits (no `state`: waiting).
local function remove_waiting(waiting, key, id)
  if redis.call('ZREM', waiting, id) > 0 then return 1 end
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'waiting' then return 0 end
  return redis.call('LREM', waiting .. ':fifo', 1, id)
end

-- Ids of the line from position `start` (0-based), at most `n`, in claim order.
local function waiting_range(waiting, start, n)
  local ids = {}
  if n <= 0 then return ids end
  local len = redis.call('LLEN', waiting .. ':fifo')
  if start < len then ids = redis.call('LRANGE', waiting .. ':fifo', start, math.min(start + n, len) - 1) end
  if #ids < n then
    local from = math.max(start - len, 0)
    for _, id in ipairs(redis.call('ZRANGE', waiting, from, from + n - #ids - 1)) do ids[#ids + 1] = id end
  end
  return ids
end

local function push_error(key, attempt, now, message, worker)
  local errors = cjson.decode(redis.call('HGET', key, 'errors') or '[]')
  errors[#errors + 1] = {attempt = attempt, at = now, error = message, worker = worker}
  redis.call('HSET', key, 'errors', cjson.encode(errors), 'last_error', message)
end

-- A flow's parent leaves `waiting-children` for its queue's waiting set (`k`: the queue keys its
-- hash keeps: waiting-children, waiting, order, marker).
local function run_parent(pkey, parent, k, now)
  redis.call('ZREM', k[1], parent)
  redis.call('HSET', pkey, 'state', 'waiting', 'run_at', now, 'progress_message', '')
  push_waiting(k[2], pkey, parent, k[3], false)
  redis.call('ZADD', k[4], 0, '0')
end

-- A flow's child `id` ended (ok: completed, `message` is its result JSON; else failed for good,
-- cancelled or removed, `message` is why), in the same script that recorded it. The parent (still
-- waiting for its children) keeps the result as `result:<id>` and counts the child; it runs once
-- none is pending. A failed child follows its policy, kept in the parent as `on_failure:<id>`
-- (none: fail_parent): fail_parent fails the parent with the child's error; ignore_dependency
-- keeps the error as `failure:<id>` and counts the child as done; remove_dependency drops the
-- child from the parent's `children` and counts it as done; continue_parent keeps the error and
-- runs the parent now. The parent's queue keys are in its hash (a child may live on another queue).
local function child_ended(prefix, parent, id, ok, message, now)
  if not parent or parent == '' then return end
  local pkey = prefix .. parent
  if redis.call('HGET', pkey, 'state') ~= 'waiting-children' then return end
  local k = redis.call('HMGET', pkey, 'k_children', 'k_waiting', 'k_order', 'k_marker', 'k_failed')
  if ok then
    redis.call('HSET', pkey, 'result:' .. id, message)
  else
    local policy = redis.call('HGET', pkey, 'on_failure:' .. id) or 'fail_parent'
    if policy == 'remove_dependency' then
      local kept = {}
      for _, child in ipairs(cjson.decode(redis.call('HGET', pkey, 'children') or '[]')) do
        if child ~= id then kept[#kept + 1] = child end
      end
      redis.call('HSET', pkey, 'children', #kept > 0 and cjson.encode(kept) or '[]')
    elseif policy == 'ignore_dependency' or policy == 'continue_parent' then
      redis.call('HSET', pkey, 'failure:' .. id, message)
      if policy == 'continue_parent' then return run_parent(pkey, parent, k, now) end
    else
      redis.call('ZREM', k[1], parent)
      push_error(pkey, 0, now, 'child job ' .. id .. ' failed: ' .. message, '')
      redis.call('HSET', pkey, 'state', 'failed', 'finished_at', now, 'progress_message', 'child job ' .. id .. ' failed')
      redis.call('ZADD', k[5], now, parent)
      return
    end
  end
  if redis.call('HINCRBY', pkey, 'pending', -1) > 0 then return end
  run_parent(pkey, parent, k, now)
end

-- The board's history (docs/jobs.md, "Throughput and latency history"): a finished attempt of job
-- `key` (`status`: completed, retry or failed; anything else is not counted) is counted, and
-- `flush_finished` adds the counts to its queue's minute `<queue>:stats:m:<unix minute>` and hour
-- `<queue>:stats:h:<unix hour>` hashes, beside `active` (the queue's active key). Fields: `<kind>:c|r|f` (completed, retried, failed)
-- and latency histograms `<kind>:w|x|e:<bucket>` (wait: due -> started, run: started -> finished,
-- end to end: created -> finished, the last only for completed and failed jobs). Bucket 0 holds
-- under 1 ms, bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms: four per doubling. HINCRBY only, so
-- several processes add into the same figures. A minute lives 1 day and 10 min, an hour 14 days.
-- A finished attempt's buckets come measured from its worker (`Histogram::bucket_of` in Rust);
-- `latency_bucket`, the same arithmetic, serves the lease-expired path, where no worker reports.
local log, floor, four_per_doubling = math.log, math.floor, 4 / math.log(2)
local function latency_bucket(ms)
  if ms < 1 then return 0 end
  return floor(four_per_doubling * log(ms) + 1e-9) + 1
end

-- This script call's counts, written by `flush_finished` once the batch is recorded: one HMGET and
-- one HSET per period per call instead of eight HINCRBY per job (eight per job halved the no-op rate
-- at concurrency 50). Kept as kind -> series -> bucket -> count (series `c`, `r`, `f`: bucket 0; `w`,
-- `x`, `e`: a latency bucket), so a job costs table increments, not strings: the field names
-- (`<kind>:<series>` and `<kind>:<series>:<bucket>`) are built once per call in `flush_finished`.
local finished_counts = {}
local status_letters = {completed = 'c', retry = 'r', failed = 'f'}

-- The counts of `kind` (created at its first finished attempt in this call).
local function counts_of(kind)
  local of_kind = finished_counts[kind]
  if not of_kind then
    of_kind = {c = {}, r = {}, f = {}, w = {}, x = {}, e = {}}
    finished_counts[kind] = of_kind
  end
  return of_kind
end

local function count(of_series, bucket)
  of_series[bucket] = (of_series[bucket] or 0) + 1
end

-- A finished attempt (`status`) of a job of `kind`, with the latency buckets its worker measured
-- (`wait`, `run`, `end_to_end`: ARGV strings, see `Latency` in claim.rs; the worker knows when the
-- attempt really started and ended, and computing them there keeps logarithms out of Redis's one
-- thread). Table increments only: this runs per job.
local function note_finished(kind, wait, run, end_to_end, status)
  local letter = status_letters[status]
  if not letter then return end
  local of_kind = counts_of(kind or '?')
  count(of_kind[letter], 0)
  count(of_kind.w, wait)
  count(of_kind.x, run)
  if letter ~= 'r' then count(of_kind.e, end_to_end) end
end

-- Adds what `note_finished` counted into the minute and hour hashes of the queue whose active key
-- is `active`: one HMGET and one HSET per hash, whatever the number of fields (a batch of jobs
-- waiting from 1 ms to 1 s spreads over a dozen wait buckets; a HINCRBY each cost more than the
-- jobs' own commands). The script runs alone, so read-then-write adds like HINCRBY would. A hash
-- gets its expiry when it is new.
local function flush_finished(active, now)
  if next(finished_counts) == nil then return end
  local fields, increments = {}, {}
  for kind, of_kind in pairs(finished_counts) do
    for series, buckets in pairs(of_kind) do
      for bucket, n in pairs(buckets) do
        local field = kind .. ':' .. series
        if series == 'w' or series == 'x' or series == 'e' then field = field .. ':' .. bucket end
        fields[#fields + 1], increments[#increments + 1] = field, n
      end
    end
  end
  local base = string.sub(active, 1, -7) .. 'stats:'
  local minute, hour = math.floor(now / 60000), math.floor(now / 3600000)
  for _, period in ipairs({{base .. 'm:' .. minute, minute * 60 + 87000}, {base .. 'h:' .. hour, hour * 3600 + 1209600}}) do
    local old = redis.call('HMGET', period[1], unpack(fields))
    local fresh, args = false, {}
    for i, field in ipairs(fields) do
      if not old[i] then fresh = true end
      args[#args + 1], args[#args + 2] = field, (tonumber(old[i]) or 0) + increments[i]
    end
    redis.call('HSET', period[1], unpack(args))
    if fresh then redis.call('EXPIREAT', period[1], period[2]) end
  end
  finished_counts = {}
end

-- An attempt whose worker stopped responding (its lease expired), seen by the claim that takes the
-- job back: `<kind>:l` in the same minute and hour hashes (no wait or run time: the attempt's end is
-- unknown). `final`: that was its last attempt, so it also counts as failed for good (`<kind>:f`)
-- with its end-to-end time. Called only for an expired lease: nothing on the normal finish path.
local function note_lease_expired(active, key, now, final)
  local job = redis.call('HMGET', key, 'kind', 'created_at')
  local kind, created = job[1] or '?', tonumber(job[2]) or now
  local base = string.sub(active, 1, -7) .. 'stats:'
  local minute, hour = math.floor(now / 60000), math.floor(now / 3600000)
  for _, period in ipairs({{base .. 'm:' .. minute, minute * 60 + 87000}, {base .. 'h:' .. hour, hour * 3600 + 1209600}}) do
    local stats = period[1]
    if redis.call('HINCRBY', stats, kind .. ':l', 1) == 1 then redis.call('EXPIREAT', stats, period[2]) end
    if final then
      redis.call('HINCRBY', stats, kind .. ':f', 1)
      redis.call('HINCRBY', stats, kind .. ':e:' .. latency_bucket(now - created), 1)
    end
  end
end

-- A job whose processor asked to wait, its attempt given back: `d` delayed until `value` (ms),
-- `l` first in line while its queue takes no job for `value` ms (a longer pause in force is kept).
local function postpone(key, id, kind, value, waiting, delayed, order, limited)
  redis.call('HINCRBY', key, 'attempts', -1)
  if kind == 'd' then
    redis.call('HSET', key, 'state', 'delayed', 'run_at', value, 'progress_message', 'delayed by its processor')
    redis.call('ZADD', delayed, value, id)
    return 'delayed'
  end
  if redis.call('PTTL', limited) < tonumber(value) then redis.call('SET', limited, value, 'PX', value) end
  redis.call('HSET', key, 'state', 'waiting', 'progress_message', 'its queue is rate limited by its processor')
  push_waiting(waiting, key, id, order, true)
  return 'rate-limited'
end

-- How many of `want` jobs a worker may claim now, and the queue's rate limit in force, from one
-- read of the meta hash. None while a processor's rate limit holds the queue (`limited`), at most
-- the room left under its global concurrency (`global_concurrency` of the meta hash, against the
-- active set: every process's running and held jobs). Returns the allowance; when to look again
-- (unix ms) if held back, else -1; and the rate limit (jobs per window, window ms; 0 jobs: none):
-- the meta hash's `rate` (`<jobs>:<ms>`, declared when a worker starts, changed from the board),
-- else the worker's own (`max`, `ms`: a queue whose meta hash has none yet).
local function claim_allowance(want, now, active, meta, limited, max, ms)
  local config = redis.call('HMGET', meta, 'global_concurrency', 'rate')
  local rate_max, rate_ms = tonumber(max), tonumber(ms)
  if config[2] then
    local jobs, window = string.match(config[2], '^(%d+):(%d+)$')
    if jobs then rate_max, rate_ms = tonumber(jobs), math.max(tonumber(window), 1) end
  end
  if want <= 0 then return want, -1, rate_max, rate_ms end
  local pause = redis.call('PTTL', limited)
  if pause > 0 then return 0, now + pause, rate_max, rate_ms end
  local global = tonumber(config[1] or '0') or 0
  if global > 0 then
    local room = global - redis.call('ZCARD', active)
    if room < want then return math.max(room, 0), now + 1000, rate_max, rate_ms end
  end
  return want, -1, rate_max, rate_ms
end

-- A limit declared in code or the environment: written when the declared value changed since the
-- last start, so a value set from the board holds until a deploy declares another one.
local function declare_limit(meta, field, value)
  if redis.call('HGET', meta, field .. '_declared') ~= value then
    redis.call('HSET', meta, field, value, field .. '_declared', value)
  end
end

-- A job's trace context (W3C traceparent of the span that enqueued it), written only when the
-- enqueue ran under a trace: untraced jobs carry no field.
local function set_trace(key, trace)
  if trace and trace ~= '' then redis.call('HSET', key, 'trace', trace) end
end

-- An enqueue met deduplication key naming job `id` (docs/jobs.md, "Deduplication modes"); `mode`:
-- `t`hrottle (the key's window holds: a duplicate), `s`imple (a duplicate while the job is not
-- finished; a gone hash is finished), `d`ebounce (a job still delayed before its first run takes
-- the new payload and run-at; one that started or ended gives way to a new job). Answers the
-- enqueue's reply ({0, id} duplicate, {2, id} replaced), or nil: enqueue a new job. A missing
-- `state` field is `waiting`.
local function dedup_hit(prefix, id, mode, payload, run_at, delayed)
  if mode ~= 's' and mode ~= 'd' then return {0, id} end
  -- `kind` tells the hash exists (a waiting job's hash has no `id`: "Memory per waiting job").
  local job = redis.call('HMGET', prefix .. id, 'kind', 'state', 'attempts')
  local state = job[2] or 'waiting'
  if not job[1] or state == 'completed' or state == 'failed' or state == 'cancelled' then return nil end
  if mode == 's' then return {0, id} end
  if state ~= 'delayed' or (tonumber(job[3]) or 0) > 0 then return nil end
  redis.call('HSET', prefix .. id, 'payload', payload, 'run_at', run_at)
  redis.call('ZADD', delayed, run_at, id)
  return {2, id}
end

-- Job `id` (hash `key`, still there) lets go of its simple or debounce deduplication key
-- (`dedup_key` in its hash; such a key has no TTL), if the key still names it. Called when the job
-- ends (`release_dedup`) and before it is cancelled or deleted (cancel, remove, clean, empty): an
-- enqueue would take a gone or cancelled job as finished anyway (`dedup_hit`), but the key itself
-- would stay in Redis for good.
local function drop_dedup(key, id)
  local dedup = redis.call('HGET', key, 'dedup_key')
  if dedup and redis.call('GET', dedup) == id then redis.call('DEL', dedup) end
end

-- A job that completed or failed for good (`status`) lets go of its deduplication key `dedup` (its
-- hash's `dedup_key`, read by the caller; false when it has none).
local function release_dedup(dedup, id, status)
  if not dedup or (status ~= 'completed' and status ~= 'failed') then return end
  if redis.call('GET', dedup) == id then redis.call('DEL', dedup) end
end
