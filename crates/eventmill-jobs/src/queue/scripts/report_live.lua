local lost = {}
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  if not redis.call('ZSCORE', KEYS[1], id) then
    lost[#lost + 1] = id
  else
    if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
    if ARGV[i + 1] ~= '' then
      redis.call('HSET', key, 'progress', ARGV[i + 1], 'progress_message', ARGV[i + 2])
    end
  end
  -- Lines written just before the job ended still belong to it.
  if ARGV[i + 3] ~= '' and redis.call('EXISTS', key) == 1 then append_log(key, ARGV[i + 3]) end
end
return lost
