#!/usr/bin/env bash
# What this machine can do at all, in the same run as the ingestion figures:
# - ceiling.copy: a raw binary COPY (psql \copy, one transaction) of 1,000,000 rows shaped like
#   loadgen's events into the same `events` table (an empty day partition, truncated after);
# - ceiling.xadd: redis-benchmark pipelining XADD of packed entries like the API writes
#   (100 events each), in events/s; ceiling.xadd_entries: the same with one event per entry.
# --quick: 100,000 rows and fewer entries.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
rows=$([[ $QUICK == 1 ]] && echo 100000 || echo 1000000)
entries=$([[ $QUICK == 1 ]] && echo 2000 || echo 20000)

day=$(date -u -d '60 days ago' +%F)
part="events_p${day//-/}"
psql_q -c "CREATE TABLE IF NOT EXISTS $part PARTITION OF events FOR VALUES FROM ('$day 00:00+00') TO ('$(date -u -d "$day + 1 day" +%F) 00:00+00')"
psql_q -c "TRUNCATE $part"
# Named by its day: the rows carry it, and the file outlives the run (a day later it would land
# in another partition than the one truncated here).
file="$BENCH_TMP/ceiling.$day.$rows.copy"
cols="event_id, event_type, ts, user_id, session_id, source, properties, ingested_at"
if [[ ! -s "$file" ]]; then
    psql_q -c "\\copy (SELECT gen_random_uuid(), (ARRAY['page_view','impression','click','purchase','add_to_cart'])[1 + i % 5],
        timestamptz '$day 10:00+00' + i * interval '1 millisecond', 'user_' || lpad((i % 5000)::text, 6, '0'),
        'sess_' || lpad((i / 20)::text, 8, '0'), (ARRAY['web','ios','android'])[1 + i % 3],
        jsonb_build_object('loadgen_run', 'abcdef12', 'path', '/pricing', 'profile_id', 'profile_' || (i % 40)),
        now() FROM generate_series(1, $rows) AS i ORDER BY 3) TO '$file' WITH (FORMAT binary)"
fi
before=$(cpu_snap)
start=$(now)
psql_q -c "\\copy events ($cols) FROM '$file' WITH (FORMAT binary)"
end=$(now)
after=$(cpu_snap)
psql_q -c "TRUNCATE $part"
echo "RESULT ceiling.copy $(calc "round($rows / ($end - $start))") rows/s"
cpu_line ceiling.copy "$rows" "$before" "$after"

# One packed entry as the producer writes it: 100 events of loadgen's shape.
payload=$(python3 -c '
import json, uuid
ev = [{"id": str(uuid.uuid4()), "t": "page_view", "ts": 1764590000000000 + i, "u": "user_%06d" % i,
       "s": "sess_%08d" % i, "src": "web", "p": {"loadgen_run": "abcdef12", "path": "/pricing"},
       "at": 1764590000000000 + i} for i in range(100)]
print(json.dumps(ev, separators=(",", ":")))')
one=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])[0], separators=(",", ":")))' "$payload")
port=$(sed -E 's#.*:([0-9]+).*#\1#' <<<"$EVENTMILL_REDIS_URL")
bench_xadd() { # COUNT PAYLOAD -> requests/s
    redis-benchmark -p "$port" -n "$1" -c 4 -P 20 --csv XADD bench:ceiling '*' e "$2" r bench-request 2>/dev/null |
        tail -1 | awk -F, '{ print $(NF - 6) }' | tr -d '"' # rps: 7th field from the end (the command text has commas)
    redis_q DEL bench:ceiling >/dev/null
}
before=$(cpu_snap)
packed=$(bench_xadd "$entries" "$payload")
after=$(cpu_snap)
echo "RESULT ceiling.xadd $(calc "round($packed * 100)") events/s"
cpu_line ceiling.xadd "$((entries * 100))" "$before" "$after"
single=$(bench_xadd "$((entries * 10))" "$one")
echo "RESULT ceiling.xadd_entries $(calc "round($single)") entries/s"
