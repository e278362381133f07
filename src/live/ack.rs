//! The one hook between storage and the live counters: XACK a batch's entries and add its tally
//! in one Lua call, so counts move exactly when entries leave the pending list.

use super::{LiveKeys, Tally};

/// Keys the script always takes before the counter keys.
const FIXED_KEYS: usize = 2;

/// KEYS: stream, dirty set, then every counter key the tally touches (all in the stream's hash
/// slot, see `LiveKeys`). ARGV: group, tally JSON (`Tally::script_args`, keys by KEYS position),
/// ids... Counts are applied only if every id was still pending (XACK acknowledged them all):
/// otherwise another consumer took some over and counts them, so this batch's minutes go to the
/// dirty set and the reconciler rewrites them from PostgreSQL.
const SCRIPT: &str = r#"
local acked = 0
for i = 3, #ARGV, 1000 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #KEYS == 2 then return acked end
local tally = cjson.decode(ARGV[2])
if acked < #ARGV - 2 then
  for _, m in ipairs(tally.d) do redis.call('SADD', KEYS[2], m) end
  return acked
end
for _, c in ipairs(tally.h) do
  redis.call('HINCRBY', KEYS[c[1]], 'c|' .. c[2], c[3])
  if c[4] ~= 0 then redis.call('HINCRBY', KEYS[c[1]], 'r|' .. c[2], c[4]) end
end
for _, u in ipairs(tally.u) do
  for i = 1, #u[2], 1000 do redis.call('PFADD', KEYS[u[1]], unpack(u[2], i, math.min(i + 999, #u[2]))) end
end
for _, e in ipairs(tally.e) do redis.call('EXPIRE', KEYS[e[1]], e[2]) end
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
    let args = tally.script_args(live, FIXED_KEYS + 1);
    pipe.cmd("EVAL")
        .arg(SCRIPT)
        .arg(FIXED_KEYS + args.keys.len())
        .arg(stream)
        .arg(live.dirty())
        .arg(&args.keys)
        .arg(group)
        .arg(args.json)
        .arg(ids)
        .ignore();
}
