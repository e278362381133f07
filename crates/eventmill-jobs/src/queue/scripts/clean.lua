-- KEYS[1]: a finished set (completed or failed), ids by finish time. ARGV[2]: the cutoff (unix
-- ms; jobs that finished before it go), ARGV[3]: at most this many per call.
local cutoff = '(' .. ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  -- A finished job let go of its key when it ended; one cancelled, or ended before keys were
  -- let go, may still hold it.
  drop_dedup(ARGV[1] .. id, id)
  redis.call('DEL', ARGV[1] .. id, ARGV[1] .. id .. ':log')
  redis.call('ZREM', KEYS[1], id)
end
local more = 0
if redis.call('ZCOUNT', KEYS[1], '-inf', cutoff) > 0 then more = 1 end
return {#ids, more}
