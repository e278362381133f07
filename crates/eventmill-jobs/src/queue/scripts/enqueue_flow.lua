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
set_trace(pkey, ARGV[16])
redis.call('ZADD', KEYS[2], now, parent)
local ids = {}
for i = 0, n - 1 do
  local a, k = 17 + 9 * i, 4 + 4 * i
  local id = tostring(redis.call('INCR', KEYS[1]))
  local key = prefix .. id
  local run_at = tonumber(ARGV[a + 6])
  local state = 'waiting'
  if run_at > now then state = 'delayed' end
  redis.call('HSET', key, 'id', id, 'queue', ARGV[a], 'kind', ARGV[a + 1], 'payload', ARGV[a + 2],
    'max_attempts', ARGV[a + 3], 'timeout_ms', ARGV[a + 4], 'created_at', now, 'run_at', run_at,
    'state', state, 'attempts', 0, 'progress', 0, 'progress_message', '', 'errors', '[]',
    'origin', ARGV[9], 'priority', ARGV[a + 5], 'parent', parent)
  set_trace(key, ARGV[a + 8])
  if ARGV[a + 7] ~= 'fail_parent' then
    redis.call('HSET', key, 'on_failure', ARGV[a + 7])
    redis.call('HSET', pkey, 'on_failure:' .. id, ARGV[a + 7])
  end
  if state == 'delayed' then
    redis.call('ZADD', KEYS[k + 1], run_at, id)
  else
    push_waiting(KEYS[k], key, id, KEYS[k + 3], false)
  end
  redis.call('ZADD', KEYS[k + 2], 0, '0')
  ids[#ids + 1] = id
end
redis.call('HSET', pkey, 'children', cjson.encode(ids))
if ARGV[11] ~= '' then redis.call('SET', KEYS[3], parent, 'PX', ARGV[3]) end
return {1, parent, ids}
