local key = ARGV[1] .. ARGV[2]
local parent, state = unpack(redis.call('HMGET', key, 'parent', 'state'))
if redis.call('EXISTS', key) == 0 then return 0 end
drop_dedup(key, ARGV[2])
remove_waiting(KEYS[1], key, ARGV[2])
redis.call('DEL', key, key .. ':log')
for i = 2, 6 do redis.call('ZREM', KEYS[i], ARGV[2]) end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
  child_ended(ARGV[1], parent, ARGV[2], false, 'removed', tonumber(ARGV[3]))
end
return 1
