#!/usr/bin/env bash
# 1,000-event POST latency at 30,000 events/s offered: `serve` + `worker`, an open-loop client
# (`eventmill loadgen --open-loop`: 30 requests/s leave on schedule whatever the answers, each
# timed from its scheduled departure) for 30 s (--quick: 5 s). p50/p99 per request.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
seconds=$([[ $QUICK == 1 ]] && echo 5 || echo 30)

reset_redis
em_start_pipeline
before=$(cpu_snap "$serve_pid" "$worker_pid")
"$EVENTMILL_BIN" loadgen --url "http://127.0.0.1:$port" --open-loop --rate 30000 --batch 1000 \
    --duration "${seconds}s" 2>"$BENCH_TMP/latency.loadgen" || true
after=$(cpu_snap "$serve_pid" "$worker_pid")
cat "$BENCH_TMP/latency.loadgen" >&2
line=$(grep 'loadgen open-loop:' "$BENCH_TMP/latency.loadgen" | tail -1)
requests=$(sed -E 's/.*open-loop: ([0-9]+) requests.*/\1/' <<<"$line")
for q in p50 p95 p99 max; do
    echo "RESULT latency.post1000.$q $(sed -E "s/.* $q ([0-9.]+) ms.*/\1/" <<<"$line") ms"
done
echo "RESULT latency.post1000.refused $(sed -E 's/.*not accepted ([0-9]+).*/\1/' <<<"$line") requests"
echo "TARGET latency.post1000.p99 <= 15"
cpu_line latency.post1000.p99 "$((requests * 1000))" "$before" "$after"
