#!/usr/bin/env bash
# Sustained HTTP-to-row ingestion: `eventmill serve` and `eventmill worker` as two processes, the
# load client (`eventmill loadgen`, 1,000-event bulk requests, 4 connections, as fast as accepted)
# for 60 s (--quick: 10 s), then `--verify` waits until every accepted event is a row and counts
# them: the rate is rows / (last commit - first send), loss and duplicates must be 0. The stream
# backlog is sampled every second: it is stable when it stops growing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
seconds=$([[ $QUICK == 1 ]] && echo 10 || echo 60)

reset_redis
# Last run's rows out of the way (the events are stamped now, so they sit in today's partitions).
for day in "$(date -u +%F)" "$(date -u -d tomorrow +%F)"; do
    part="events_p${day//-/}"
    [[ -n "$(psql_q -c "SELECT to_regclass('$part')")" ]] && psql_q -c "TRUNCATE $part"
done
em_start_pipeline

(while sleep 1; do redis_q XLEN eventmill:events; done) >"$BENCH_TMP/ingest.backlog" 2>/dev/null &
sampler=$!
before=$(cpu_snap "$serve_pid" "$worker_pid")
"$EVENTMILL_BIN" loadgen --url "http://127.0.0.1:$port" --rate 0 --batch 1000 --concurrency 4 \
    --duration "${seconds}s" --verify 2>"$BENCH_TMP/ingest.loadgen" || true
after=$(cpu_snap "$serve_pid" "$worker_pid")
kill "$sampler" 2>/dev/null || true
cat "$BENCH_TMP/ingest.loadgen" >&2

line=$(grep 'loadgen verify:' "$BENCH_TMP/ingest.loadgen" | tail -1)
stored=$(sed -E 's/.*verify: ([0-9]+) of.*/\1/' <<<"$line")
rate=$(sed -E 's/.*sustained ([0-9.]+) events.*/\1/' <<<"$line")
lost=$(sed -E 's/.*lost ([0-9]+).*/\1/' <<<"$line")
dup=$(sed -E 's/.*duplicated ([0-9]+).*/\1/' <<<"$line")
echo "RESULT ingest.sustained $rate events/s"
echo "TARGET ingest.sustained >= 100000"
echo "CEILING ingest.sustained ceiling.copy"
echo "RESULT ingest.lost $lost events"
echo "TARGET ingest.lost <= 0"
echo "RESULT ingest.duplicated $dup events"
echo "TARGET ingest.duplicated <= 0"
cpu_line ingest.sustained "$stored" "$before" "$after"
# Backlog (entries; this client's requests pack 100 events to an entry): the peak, and its growth
# over the last two thirds of the sending time (about 0 when ingestion keeps up).
python3 - "$BENCH_TMP/ingest.backlog" "$seconds" <<'PY'
import sys
xs = [int(l) for l in open(sys.argv[1]) if l.strip().isdigit()][: int(sys.argv[2])]
if len(xs) >= 3:
    third = len(xs) // 3
    growth = (xs[-1] - xs[third]) * 100 / max(1, len(xs) - 1 - third)
    print(f"RESULT ingest.backlog_peak {max(xs) * 100} events")
    print(f"RESULT ingest.backlog_growth {growth:.0f} events/s")
PY
