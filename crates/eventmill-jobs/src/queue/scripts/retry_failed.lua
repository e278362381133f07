local ids
if ARGV[3] ~= '' then
  if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
  ids = {ARGV[3]}
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
end
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', ARGV[1] .. id, 'state', 'waiting', 'attempts', 0, 'run_at', ARGV[2])
  redis.call('HDEL', ARGV[1] .. id, 'finished_at')
  push_waiting(KEYS[2], ARGV[1] .. id, id, KEYS[4], false)
end
if #ids > 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return #ids
