-- A job's payload replaced before it runs again (the board's "edit data"): only while the job is
-- waiting (no `state` field reads as waiting), delayed, failed or cancelled, and only if its payload
-- is still the one the edit was made against; the edit's line goes to the job's log.
-- KEYS[1]: the job's hash. ARGV[1] job prefix, [2] new payload, [3] the payload edited,
-- [4] the log line (a JSON array of one line). Answers ok, missing, changed or the state.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 'missing' end
local state, payload = unpack(redis.call('HMGET', key, 'state', 'payload'))
state = state or 'waiting'
if state ~= 'waiting' and state ~= 'delayed' and state ~= 'failed' and state ~= 'cancelled' then return state end
if payload ~= ARGV[3] then return 'changed' end
redis.call('HSET', key, 'payload', ARGV[2])
append_log(key, ARGV[4])
return 'ok'
