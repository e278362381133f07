-- Upserts one run-time schedule: KEYS[1] the definitions hash, KEYS[2] the version counter;
-- ARGV[1] the name, ARGV[2] its checked definition (JSON). The same definition again changes
-- nothing (several processes starting with the same schedule at once leave one schedule and do
-- not wake the schedulers); a new or changed one bumps the version the schedulers poll.
-- Returns 0 unchanged, 1 created, 2 updated.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
if current then return 2 end
return 1
