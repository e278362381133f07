-- Records one due tick in a schedule's ledger, once across every scheduler: KEYS[1] the ledger
-- list (newest first), KEYS[2] the run-time definitions hash, KEYS[3] the schedule's run count;
-- ARGV[1] the tick's due time as written in the entry, ARGV[2] the entry (JSON), ARGV[3] how many
-- entries to keep, ARGV[4] the schedule's name if it is a run-time one ('' for a file one), ARGV[5]
-- '1' when the tick enqueued a job (counted as a run, for its limit). A run-time schedule removed
-- meanwhile (a tick already past its definition check) gets nothing back: no entry, no run count
-- (-1). A tick already among the recent entries is not recorded again (three schedulers skipping
-- one paused tick write one entry). Returns 1 if added.
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then return -1 end
if ARGV[5] == '1' then redis.call('INCR', KEYS[3]) end
local recent = redis.call('LRANGE', KEYS[1], 0, 19)
for _, entry in ipairs(recent) do
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and decoded['due'] == ARGV[1] then return 0 end
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
