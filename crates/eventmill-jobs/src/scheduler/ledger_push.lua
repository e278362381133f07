-- Records one due tick in a schedule's ledger, once across every scheduler: KEYS[1] the ledger
-- list (newest first); ARGV[1] the tick's due time as written in the entry, ARGV[2] the entry
-- (JSON), ARGV[3] how many entries to keep. A tick already among the recent entries is not
-- recorded again (three schedulers skipping one paused tick write one entry). Returns 1 if added.
local recent = redis.call('LRANGE', KEYS[1], 0, 19)
for _, entry in ipairs(recent) do
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and decoded['due'] == ARGV[1] then return 0 end
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
