local order, needle = ARGV[2], ARGV[3]
local from, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local found, pos, chunk = {}, from, 200
while pos < from + budget do
  local n = math.min(chunk, from + budget - pos)
  local ids
  if order == 'zrev' then
    ids = redis.call('ZREVRANGE', KEYS[1], pos, pos + n - 1)
  elseif order == 'line' then
    ids = waiting_range(KEYS[1], pos, n)
  else
    ids = redis.call('ZRANGE', KEYS[1], pos, pos + n - 1)
  end
  if #ids == 0 then return {found, -1} end
  for i, id in ipairs(ids) do
    local payload = redis.call('HGET', ARGV[1] .. id, 'payload')
    if payload and string.find(string.lower(payload), needle, 1, true) then
      found[#found + 1] = id
      if #found >= limit then return {found, pos + i} end
    end
  end
  pos = pos + #ids
  if #ids < n then return {found, -1} end
end
return {found, pos}
