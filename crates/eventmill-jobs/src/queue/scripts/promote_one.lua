if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], waiting_score(ARGV[1] .. ARGV[2], '', true), ARGV[2])
redis.call('HSET', ARGV[1] .. ARGV[2], 'state', 'waiting', 'run_at', ARGV[3])
redis.call('ZADD', KEYS[3], 0, '0')
return 1
