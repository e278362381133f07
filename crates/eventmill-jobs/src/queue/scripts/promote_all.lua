-- KEYS: delayed, waiting, marker, order. ARGV[2]: now, ARGV[3]: at most this many per call.
-- The delayed jobs due first join the waiting line first, in that order.
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  push_waiting(KEYS[2], ARGV[1] .. id, id, KEYS[4], false)
  redis.call('HSET', ARGV[1] .. id, 'state', 'waiting', 'run_at', ARGV[2])
end
if #ids > 0 then redis.call('ZADD', KEYS[3], 0, '0') end
local more = 0
if redis.call('ZCARD', KEYS[1]) > 0 then more = 1 end
return {#ids, more}
