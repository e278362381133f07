local prefix, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local lease, want, chunk = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local hold, started = tonumber(ARGV[13]), tonumber(ARGV[14])
local statuses, finished, failed = {}, 0, 0
-- Held (prefetched) jobs the worker started since its last round trip: their attempt counts now.
for i = 15, 14 + started do
  if redis.call('ZSCORE', KEYS[3], ARGV[i]) and redis.call('HDEL', prefix .. ARGV[i], 'prefetched') == 1 then
    redis.call('HINCRBY', prefix .. ARGV[i], 'attempts', 1)
    redis.call('HSET', prefix .. ARGV[i], 'started_at', now)
  end
end
-- What a finished job's recording reads, in one HMGET before it changes any of them: 1 worker,
-- 2 attempts, 3 max_attempts, 4 parent, 5 dedup_key, 6 kind (for `note_finished`, with the
-- latency buckets the worker measured: ARGV i + 5..7).
for i = 15 + started, #ARGV, 8 do
  local id, kind, a, b, logs = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = prefix .. id
  -- Recorded only while this worker still holds the job: after its lease expired and another
  -- worker took the job over, a late result of the stale attempt is `lost`, not the new attempt's.
  local holder = redis.call('ZSCORE', KEYS[3], id) and redis.call('HMGET', key, 'worker', 'attempts', 'max_attempts',
    'parent', 'dedup_key', 'kind')
  if not holder or holder[1] ~= worker then
    statuses[#statuses + 1] = 'lost'
  else
    redis.call('ZREM', KEYS[3], id)
    if logs ~= '' then append_log(key, logs) end
    local attempts = tonumber(holder[2])
    if kind == 'c' then
      redis.call('HSET', key, 'state', 'completed', 'finished_at', now, 'result', a, 'progress', 100)
      redis.call('ZADD', KEYS[4], now, id)
      child_ended(prefix, holder[4], id, true, a, now)
      finished = finished + 1
      statuses[#statuses + 1] = 'completed'
    elseif kind == 'h' then
      -- A held job never started: its attempt was never counted.
      if redis.call('HDEL', key, 'prefetched') == 0 then redis.call('HINCRBY', key, 'attempts', -1) end
      redis.call('HSET', key, 'state', 'waiting')
      push_waiting(KEYS[1], key, id, KEYS[8], true)
      statuses[#statuses + 1] = 'released'
    elseif kind == 'd' or kind == 'l' then
      statuses[#statuses + 1] = postpone(key, id, kind, b, KEYS[1], KEYS[2], KEYS[8], KEYS[11])
    else
      push_error(key, attempts, now, a, worker)
      if kind == 'r' and attempts < tonumber(holder[3]) then
        redis.call('HSET', key, 'state', 'delayed', 'run_at', b,
          'progress_message', 'attempt ' .. attempts .. ' failed; retry scheduled')
        redis.call('ZADD', KEYS[2], b, id)
        statuses[#statuses + 1] = 'retry'
      else
        redis.call('HSET', key, 'state', 'failed', 'finished_at', now,
          'progress_message', 'failed after ' .. attempts .. ' attempt(s)')
        redis.call('ZADD', KEYS[5], now, id)
        child_ended(prefix, holder[4], id, false, a, now)
        failed = failed + 1
        statuses[#statuses + 1] = 'failed'
      end
    end
    note_finished(holder[6], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], statuses[#statuses])
    release_dedup(holder[5], id, statuses[#statuses])
  end
end
flush_finished(KEYS[3], now)
if finished > 0 then trim(KEYS[4], prefix, tonumber(ARGV[7]), tonumber(ARGV[8]), now) end
local claimed, next_due = {}, -1
-- Nothing in this script pauses or resumes the queue: one look serves the claim and the reply.
local paused = redis.call('EXISTS', KEYS[6])
if paused == 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, chunk)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[2], id)
    push_waiting(KEYS[1], prefix .. id, id, KEYS[8], false)
    redis.call('HSET', prefix .. id, 'state', 'waiting')
  end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, chunk)
  for _, id in ipairs(expired) do
    local key = prefix .. id
    redis.call('ZREM', KEYS[3], id)
    if redis.call('HDEL', key, 'prefetched') == 1 then
      -- Held by a worker that died before starting it: back in line, no attempt spent.
      redis.call('HSET', key, 'state', 'waiting')
      push_waiting(KEYS[1], key, id, KEYS[8], true)
    else
      local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
      local owner = redis.call('HGET', key, 'worker') or ''
      push_error(key, attempts, now, 'worker ' .. owner .. ' stopped responding (lease expired)', owner)
      local final = attempts >= tonumber(redis.call('HGET', key, 'max_attempts') or '1')
      note_lease_expired(KEYS[3], key, now, final)
      if final then
        redis.call('HSET', key, 'state', 'failed', 'finished_at', now)
        redis.call('ZADD', KEYS[5], now, id)
        child_ended(prefix, redis.call('HGET', key, 'parent'), id, false, 'its worker stopped responding', now)
        failed = failed + 1
      else
        redis.call('HSET', key, 'state', 'waiting')
        push_waiting(KEYS[1], key, id, KEYS[8], true)
      end
    end
  end
  local held, rate_max, rate_ms
  want, held, rate_max, rate_ms = claim_allowance(want, now, KEYS[3], KEYS[10], KEYS[11], ARGV[11], ARGV[12])
  local limited = false
  -- A rate-limited queue, or one under a global concurrency, holds nothing ahead (they count
  -- what starts).
  if rate_max > 0 or held >= 0 then hold = 0 end
  local take = want + hold
  if take > 0 and rate_max > 0 then
    local left = rate_max - tonumber(redis.call('GET', KEYS[9]) or '0')
    if left < take then take, limited = math.max(left, 0), true end
  end
  if take > 0 then
    for _, id in ipairs(pop_waiting(KEYS[1], take)) do
      local key = prefix .. id
      redis.call('ZADD', KEYS[3], now + lease, id)
      local job = redis.call('HMGET', key, 'kind', 'payload', 'attempts', 'max_attempts', 'timeout_ms', 'trace',
        'created_at', 'run_at')
      -- The attempt this claim starts (or, held ahead, will start).
      job[3] = tostring((tonumber(job[3]) or 0) + 1)
      table.insert(job, 1, id)
      claimed[#claimed + 1] = job
      if #claimed <= want then
        redis.call('HSET', key, 'attempts', job[4], 'state', 'active', 'started_at', now, 'worker', worker,
          'progress', 0, 'progress_message', '')
      else
        -- Held ahead: leased to this worker, its attempt counted when it starts (the reply
        -- carries the attempt number it will have).
        redis.call('HSET', key, 'state', 'active', 'worker', worker, 'progress', 0, 'progress_message', '',
          'prefetched', 1)
      end
    end
    if rate_max > 0 and #claimed > 0 and redis.call('INCRBY', KEYS[9], #claimed) == #claimed then
      redis.call('PEXPIRE', KEYS[9], rate_ms)
    end
    if not limited and held < 0 and #claimed == take and waiting_count(KEYS[1]) > 0 then redis.call('ZADD', KEYS[7], 0, '0') end
  end
  if held > 0 and (next_due < 0 or held < next_due) and waiting_count(KEYS[1]) > 0 then next_due = held end
  if limited and waiting_count(KEYS[1]) > 0 then
    local window_end = now + math.max(redis.call('PTTL', KEYS[9]), 1)
    if next_due < 0 or window_end < next_due then next_due = window_end end
  end
end
if failed > 0 then trim(KEYS[5], prefix, tonumber(ARGV[9]), tonumber(ARGV[10]), now) end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] and (next_due < 0 or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
local lease_end = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if lease_end[2] and (next_due < 0 or tonumber(lease_end[2]) < next_due) then next_due = tonumber(lease_end[2]) end
return {statuses, claimed, next_due, paused}
