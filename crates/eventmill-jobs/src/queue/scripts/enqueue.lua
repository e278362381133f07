local mode = ARGV[13]
if ARGV[12] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then
    local answer = dedup_hit(ARGV[1], existing, mode, ARGV[4], tonumber(ARGV[8]), KEYS[3])
    if answer then return answer end
  end
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
set_trace(key, ARGV[14])
if state == 'delayed' then
  redis.call('ZADD', KEYS[3], run_at, id)
else
  redis.call('ZADD', KEYS[2], waiting_score(key, KEYS[6], false), id)
end
redis.call('ZADD', KEYS[5], 0, '0')
if ARGV[12] ~= '' then
  if mode == 's' or mode == 'd' then
    -- Held while the job is pending, let go when it ends (`release_dedup`).
    redis.call('SET', KEYS[4], id)
    redis.call('HSET', key, 'dedup_key', KEYS[4], 'dedup', mode)
  else
    redis.call('SET', KEYS[4], id, 'PX', ARGV[9])
  end
end
return {1, id}
