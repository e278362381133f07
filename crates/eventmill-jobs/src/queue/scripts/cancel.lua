local id = ARGV[2]
local key = ARGV[1] .. id
if redis.call('EXISTS', key) == 0 then return 'missing' end
local parent, now = redis.call('HGET', key, 'parent'), tonumber(ARGV[3])
drop_dedup(key, id)
if remove_waiting(KEYS[1], key, id) > 0 or redis.call('ZREM', KEYS[2], id) > 0 or redis.call('ZREM', KEYS[5], id) > 0 then
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
