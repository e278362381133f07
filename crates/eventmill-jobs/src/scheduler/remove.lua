-- Removes one run-time schedule: KEYS[1] the definitions hash, KEYS[2] the version counter,
-- KEYS[3] its run count, KEYS[4] its ledger, KEYS[5] the paused set; ARGV[1] the name.
-- Returns 1 when it existed, 0 otherwise.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
