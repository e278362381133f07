-- Pauses (ARGV[2] = 1) or resumes (0) schedule ARGV[1]: KEYS[1] the paused set, KEYS[2] the
-- version counter. Returns 1 if that changed anything.
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
if changed == 1 then redis.call('INCR', KEYS[2]) end
return changed
