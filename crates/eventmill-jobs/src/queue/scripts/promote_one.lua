if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
push_waiting(KEYS[2], ARGV[1] .. ARGV[2], ARGV[2], '', true)
redis.call('HSET', ARGV[1] .. ARGV[2], 'state', 'waiting', 'run_at', ARGV[3])
redis.call('ZADD', KEYS[3], 0, '0')
return 1
