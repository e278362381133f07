-- KEYS: waiting, delayed. ARGV[2]: now, ARGV[3]: at most this many per call. Deletes waiting,
-- then delayed jobs with their logs (a flow's child counts as failed for its parent, as `remove`).
local prefix, now, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local done = 0
for k = 1, 2 do
  if done < limit then
    local ids
    if k == 1 then
      ids = pop_waiting(KEYS[1], limit - done)
    else
      ids = redis.call('ZRANGE', KEYS[2], 0, limit - done - 1)
    end
    for _, id in ipairs(ids) do
      local key = prefix .. id
      local parent = redis.call('HGET', key, 'parent')
      drop_dedup(key, id)
      redis.call('DEL', key, key .. ':log')
      if k == 2 then redis.call('ZREM', KEYS[2], id) end
      child_ended(prefix, parent, id, false, 'removed', now)
    end
    done = done + #ids
  end
end
local more = 0
if waiting_count(KEYS[1]) + redis.call('ZCARD', KEYS[2]) > 0 then more = 1 end
return {done, more}
