//! The one hook between storage and the live counters: XACK a batch's entries and add its tally
//! in one Lua call, so counts move exactly when entries leave the pending list.

use super::{LiveKeys, MINUTE_TTL, SECOND_TTL, Tally};

/// KEYS: stream, dirty set. ARGV: group, live prefix, second TTL, minute TTL, tally JSON, ids...
/// Counts are applied only if every id was still pending (XACK acknowledged them all): otherwise
/// another consumer took some over and counts them, so this batch's minutes go to the dirty set
/// and the reconciler rewrites them from PostgreSQL.
const SCRIPT: &str = r#"
local acked = 0
for i = 6, #ARGV, 1000 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local tally = cjson.decode(ARGV[5])
if #tally.s == 0 then return acked end
local p, sttl, mttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if acked < #ARGV - 5 then
  for _, c in ipairs(tally.s) do redis.call('SADD', KEYS[2], math.floor(c[1] / 60)) end
  return acked
end
local touched = {}
for _, c in ipairs(tally.s) do
  local s, m = p .. ':s:' .. c[1], p .. ':m:' .. math.floor(c[1] / 60)
  redis.call('HINCRBY', s, 'c|' .. c[2], c[3])
  redis.call('HINCRBY', m, 'c|' .. c[2], c[3])
  if c[4] ~= 0 then
    redis.call('HINCRBY', s, 'r|' .. c[2], c[4])
    redis.call('HINCRBY', m, 'r|' .. c[2], c[4])
  end
  touched[s] = sttl
  touched[m] = mttl
end
for _, u in ipairs(tally.u) do
  local k = p .. ':u:' .. u[1]
  for i = 1, #u[2], 1000 do redis.call('PFADD', k, unpack(u[2], i, math.min(i + 999, #u[2]))) end
  touched[k] = mttl
end
for k, ttl in pairs(touched) do redis.call('EXPIRE', k, ttl) end
return acked
"#;

/// Adds "acknowledge `ids` and count `tally`" to an atomic pipeline (the consumer's acknowledge
/// step, beside its dead-letter moves).
pub fn queue_ack_and_count(
    pipe: &mut redis::Pipeline,
    stream: &str,
    group: &str,
    live: &LiveKeys,
    ids: &[&str],
    tally: &Tally,
) {
    if ids.is_empty() {
        return;
    }
    pipe.cmd("EVAL")
        .arg(SCRIPT)
        .arg(2)
        .arg(stream)
        .arg(live.dirty())
        .arg(group)
        .arg(&live.prefix)
        .arg(SECOND_TTL)
        .arg(MINUTE_TTL)
        .arg(tally.to_json())
        .arg(ids)
        .ignore();
}
