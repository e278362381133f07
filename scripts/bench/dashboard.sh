#!/usr/bin/env bash
# Dashboard scenario (SPEC section 14): event-to-dashboard latency (from a POST's 202 to the first
# SSE message that counts the event, p50/p95) and query API p99 at 10 million stored events
# (summary, daily, hourly timeseries: pre-aggregated; raw 1-hour window).
#
#   scripts/bench/dashboard.sh [--quick]
#
# Uses EVENTMILL_REDIS_URL / EVENTMILL_DATABASE_URL (started and migrated) and $EVENTMILL_BIN
# (default target/release/eventmill). The rows are made by SQL (generate_series) over 30 days that
# end two days ago, then rolled up by eventmill's own rollup jobs (once: later runs reuse them).
# --quick: 200,000 rows, fewer samples.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
BIN="${EVENTMILL_BIN:-target/release/eventmill}"
DB="${EVENTMILL_DATABASE_URL:?set EVENTMILL_DATABASE_URL}"
ROWS=$([[ $QUICK == 1 ]] && echo 200000 || echo 10000000)
SAMPLES=$([[ $QUICK == 1 ]] && echo 15 || echo 60)
QUERIES=$([[ $QUICK == 1 ]] && echo 40 || echo 300)
tmp=$(mktemp -d)
export EVENTMILL_REDIS_PREFIX="bench-dash-$$"
export EVENTMILL_ADMIN_TOKEN="bench-dashboard-token"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export EVENTMILL_HTTP_ADDR="127.0.0.1:$port"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# 1. Stored events: ROWS rows over 30 days ending two days ago (older than the live counters'
#    23 hours, so the queries read the rollup tables), 8 event types, 3 sources, 50,000 users.
#    Loaded once: a later run (bench.sh --runs N) finds them, rolled up, and reuses them.
first_day=$(date -u -d '-32 days' +%F)
have=$(psql "$DB" -qtAX -c "SELECT (SELECT count(*) FROM events WHERE ts >= '$first_day' AND ts < date '$first_day' + 31)
  || ':' || (SELECT count(*) FROM rollup_daily WHERE day >= '$first_day' AND day < date '$first_day' + 30)" 2>/dev/null || echo "0:0")
load=1
[[ "${have%%:*}" == "$ROWS" && "${have##*:}" != "0" ]] && load=0
if [[ $load == 1 ]]; then
echo "dashboard: storing $ROWS events" >&2
psql "$DB" -qX -v ON_ERROR_STOP=1 >&2 <<SQL
TRUNCATE events, rollup_hourly, rollup_daily, rollup_daily_summary;
DO \$\$ BEGIN
  FOR d IN 0..31 LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
      'events_p' || to_char(date '$first_day' + d, 'YYYYMMDD'), date '$first_day' + d, date '$first_day' + d + 1);
  END LOOP;
END \$\$;
INSERT INTO events (event_id, event_type, ts, user_id, session_id, source, properties, ingested_at)
SELECT gen_random_uuid(), t.name,
       timestamptz '$first_day' + (i::float8 / $ROWS) * interval '30 days',
       'user_' || (i * 7919 % 50000), 'sess_' || (i / 20), (ARRAY['web', 'mobile', 'api'])[1 + i % 3],
       CASE WHEN t.name = 'purchase' THEN jsonb_build_object('amount', ((i % 49500) + 500) / 100.0) ELSE '{}'::jsonb END,
       now()
FROM generate_series(1::bigint, $ROWS) AS i
CROSS JOIN LATERAL (SELECT (ARRAY['page_view','page_view','page_view','impression','click','add_to_cart','purchase','error'])[1 + (i * 31 % 8)] AS name) t
ORDER BY 3;
ANALYZE events;
SQL
else
  echo "dashboard: reusing the $ROWS stored events of an earlier run" >&2
fi
# 2. eventmill run: rollups of the 30 days through its own job queue, then the measurements.
"$BIN" run >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
if [[ $load == 1 ]]; then
  echo "dashboard: rolling up 30 days" >&2
  start=$(date -u -d "$first_day" +%FT%TZ)
  end=$(date -u -d "$first_day + 31 days" +%FT%TZ)
  "$BIN" enqueue rollup --hourly --start "$start" --end "$end" --wait >&2
  for d in $(seq 0 30); do "$BIN" enqueue rollup --daily --date "$(date -u -d "$first_day + $d days" +%F)" --wait >/dev/null; done
fi

python3 - "$port" "$SAMPLES" "$QUERIES" "$first_day" <<'PY'
import http.client, json, statistics, sys, threading, time, uuid
port, samples, queries, first_day = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
token = "bench-dashboard-token"
auth = {"Authorization": "Bearer " + token}
seen = {}  # source -> time the first SSE message counting it arrived

def listen():
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/v1/analytics/live", headers=auth)
    response = conn.getresponse()
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data:"):
            now = time.monotonic()
            for second in json.loads(line[5:])["seconds"]:
                for event_type, source, events, _ in second["cells"]:
                    if event_type == "bench_probe" and events > 0:
                        seen.setdefault(source, now)

threading.Thread(target=listen, daemon=True).start()
time.sleep(2)
post = http.client.HTTPConnection("127.0.0.1", port)
latencies = []
for k in range(samples):
    source = f"probe-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"event_type": "bench_probe", "source": source, "user_id": "bench"})
    post.request("POST", "/v1/events", body=body, headers={"content-type": "application/json"})
    response = post.getresponse(); response.read()
    accepted = time.monotonic()
    assert response.status == 202, response.status
    deadline = accepted + 10
    while source not in seen and time.monotonic() < deadline:
        time.sleep(0.002)
    if source in seen:
        latencies.append((seen[source] - accepted) * 1000)
    time.sleep(0.37)  # spread the posts over the second
latencies.sort()
q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]
print(f"RESULT dashboard.event_to_sse.p50 {q(latencies, 0.5):.0f} ms")
print(f"RESULT dashboard.event_to_sse.p95 {q(latencies, 0.95):.0f} ms")
print(f"RESULT dashboard.event_to_sse.missed {samples - len(latencies)} events")
print(f"RESULT dashboard.event_to_sse.max {latencies[-1]:.0f} ms")
print("TARGET dashboard.event_to_sse.p95 <= 500")

from datetime import date, timedelta
d0 = date.fromisoformat(first_day)
frm, to = f"{d0}T00:00:00Z", f"{d0 + timedelta(days=30)}T00:00:00Z"
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
month_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30 * 86400))
paths = {
    "summary": f"/v1/analytics/summary?from={frm}&to={to}",
    # The dashboard's "last 30 days": days from the rollups, the last 23 hours from the live counters.
    "summary_to_now": f"/v1/analytics/summary?from={month_ago}&to={now}",
    "daily": f"/v1/analytics/events/daily?from={d0}&to={d0 + timedelta(days=29)}&limit=31",
    "timeseries_hourly": f"/v1/analytics/timeseries?interval=hour&from={d0 + timedelta(days=20)}T00:00:00Z&to={d0 + timedelta(days=27)}T00:00:00Z",
    "raw_1h": f"/v1/analytics/events/raw?from={d0 + timedelta(days=15)}T10:00:00Z&to={d0 + timedelta(days=15)}T11:00:00Z&limit=5000",
}
conn = http.client.HTTPConnection("127.0.0.1", port)
for name, path in paths.items():
    times = []
    # The first requests are not timed: they build the per-day caches (distinct users of the days
    # before the live window, from the rows: seconds at 10M rows, so a first try may hit the
    # request timeout, 408, and the next one continues from the days already cached).
    deadline = time.monotonic() + 180
    for i in range(queries + 5):
        t = time.perf_counter()
        conn.request("GET", path, headers=auth)
        response = conn.getresponse(); body = response.read()
        while i == 0 and response.status == 408 and time.monotonic() < deadline:
            conn.request("GET", path, headers=auth)
            response = conn.getresponse(); body = response.read()
        assert response.status == 200, (path, response.status, body[:200])
        if i >= 5:
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"RESULT dashboard.query.{name}.p50 {q(times, 0.5):.1f} ms")
    print(f"RESULT dashboard.query.{name}.p99 {q(times, 0.99):.1f} ms")
    print(f"TARGET dashboard.query.{name}.p99 <= {150 if name == 'raw_1h' else 10}")
PY
