local first = redis.call('HSETNX', KEYS[1], 'declared_at', ARGV[1])
redis.call('HSET', KEYS[1], 'concurrency', ARGV[3], 'rate_limit', ARGV[5])
declare_limit(KEYS[1], 'global_concurrency', ARGV[6])
declare_limit(KEYS[1], 'rate', ARGV[7])
if first == 1 and ARGV[2] == '1' then redis.call('SET', KEYS[2], 1) end
-- Waiting lines of older eventmills join the line's head (they are older), in their order: a
-- `waiting` LIST from before priorities (LPUSH to enqueue, RPOP to claim), and unprioritised jobs
-- in the sorted set (score below 2^32) from before the LIST (`push_waiting`).
if redis.call('TYPE', KEYS[4]).ok == 'list' then
  local ids = redis.call('LRANGE', KEYS[4], 0, -1)
  redis.call('DEL', KEYS[4])
  for i = 1, #ids do redis.call('LPUSH', KEYS[4] .. ':fifo', ids[i]) end
end
local unprioritised = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(4294967296')
for i = #unprioritised, 1, -1 do
  redis.call('ZREM', KEYS[4], unprioritised[i])
  redis.call('LPUSH', KEYS[4] .. ':fifo', unprioritised[i])
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return first
