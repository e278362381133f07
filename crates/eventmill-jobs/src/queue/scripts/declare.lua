local first = redis.call('HSETNX', KEYS[1], 'declared_at', ARGV[1])
redis.call('HSET', KEYS[1], 'concurrency', ARGV[3], 'rate_limit', ARGV[5])
declare_limit(KEYS[1], 'global_concurrency', ARGV[6])
declare_limit(KEYS[1], 'rate', ARGV[7])
if first == 1 and ARGV[2] == '1' then redis.call('SET', KEYS[2], 1) end
if redis.call('TYPE', KEYS[4]).ok == 'list' then
  local ids = redis.call('LRANGE', KEYS[4], 0, -1)
  redis.call('DEL', KEYS[4])
  for i = #ids, 1, -1 do redis.call('ZADD', KEYS[4], waiting_score(ARGV[4] .. ids[i], KEYS[5], false), ids[i]) end
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return first
