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
-- Only what a waiting job needs (docs/jobs.md, "Memory per waiting job"): readers take a missing
-- field as its default (no `state`: waiting; no `attempts`/`progress`: 0; no `errors`: none; no
-- `timeout_ms`: the kind's policy; no `id`: the key's). The rest is written as the job moves.
local fields = {'queue', ARGV[2], 'kind', ARGV[3], 'payload', ARGV[4], 'max_attempts', ARGV[5], 'created_at', ARGV[7]}
local function add(field, value) fields[#fields + 1] = field; fields[#fields + 1] = value end
if ARGV[10] ~= '' then add('origin', ARGV[10]) end
if ARGV[11] ~= '0' then add('priority', ARGV[11]) end
if ARGV[12] ~= '' then add('key', ARGV[12]) end
if run_at > now then
  add('state', 'delayed')
  add('run_at', ARGV[8])
end
redis.call('HSET', key, unpack(fields))
set_trace(key, ARGV[14])
if run_at > now then
  redis.call('ZADD', KEYS[3], run_at, id)
else
  push_waiting(KEYS[2], key, id, KEYS[6], false, ARGV[11])
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
