#!/usr/bin/env bash
# Burst into the stream with the consumers stopped: `eventmill serve` alone, the load client as
# fast as accepted (1,000-event bulk requests, 4 connections) for 15 s (--quick: 3 s). The rate is
# events accepted (202, in the stream) per second; nothing is stored.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
seconds=$([[ $QUICK == 1 ]] && echo 3 || echo 15)

reset_redis
port=$(free_port)
export EVENTMILL_HTTP_ADDR="127.0.0.1:$port" EVENTMILL_STREAM_MAX_LEN=100000000
em_start serve serve
serve_pid=$LAST_PID
wait_http "http://127.0.0.1:$port/healthz"
before=$(cpu_snap "$serve_pid")
"$EVENTMILL_BIN" loadgen --url "http://127.0.0.1:$port" --rate 0 --batch 1000 --concurrency 4 \
    --duration "${seconds}s" 2>"$BENCH_TMP/burst.loadgen" || true
after=$(cpu_snap "$serve_pid")
cat "$BENCH_TMP/burst.loadgen" >&2
line=$(grep -E 'loadgen: [0-9.]+s ' "$BENCH_TMP/burst.loadgen" | tail -1)
accepted=$(sed -E 's/.*accepted ([0-9]+) .*/\1/' <<<"$line")
rate=$(sed -E 's/.*accepted [0-9]+ \(([0-9.]+)\/s\).*/\1/' <<<"$line")
echo "RESULT burst.stream $rate events/s"
echo "TARGET burst.stream >= 200000"
echo "CEILING burst.stream ceiling.xadd"
cpu_line burst.stream "$accepted" "$before" "$after"
em_stop_all
reset_redis
