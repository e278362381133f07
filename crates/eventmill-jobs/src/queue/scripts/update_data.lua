-- KEYS[1]: the job's hash. ARGV[1]: the new payload JSON, ARGV[2]: the attempt writing it.
-- Written only while that attempt holds the job (active, its attempt number; a held job's attempt
-- is counted one round trip after it started); a payload object without `job_type` gets the
-- kind's. Answers 1 when written, 0 when the attempt no longer holds the job.
local job = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'prefetched', 'kind')
if job[1] ~= 'active' then return 0 end
local attempts = tonumber(job[2] or '0') or 0
if job[3] == '1' then attempts = attempts + 1 end
if attempts ~= tonumber(ARGV[2]) then return 0 end
local payload = ARGV[1]
if string.sub(payload, 1, 1) == '{' and not string.find(payload, '"job_type"', 1, true) then
  local rest = string.sub(payload, 2)
  if string.match(rest, '^%s*}') then rest = '}' else rest = ',' .. rest end
  payload = '{"job_type":' .. cjson.encode(job[4] or '') .. rest
end
redis.call('HSET', KEYS[1], 'payload', payload)
return 1
