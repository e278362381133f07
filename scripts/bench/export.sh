#!/usr/bin/env bash
# EXPORT_DATA of 1,000,000 ENGAGEMENT rows as CSV (--quick: 100,000) from a seeded day, run by a
# fresh `worker` process: rows/s over the job's own run time, and the worker's peak RSS (VmHWM,
# the whole process: its stream consumers and job workers included).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
source "$(dirname "$0")/lib/seed.sh"
rows=$([[ $QUICK == 1 ]] && echo 100000 || echo 1000000)
day=$(date -u -d '25 days ago' +%F)
seed_events "export-$rows-$day" "$day 00:00:00+00" "$day 23:59:59.999+00" "$rows" engagement

reset_redis
export EVENTMILL_REPORTS_DIR="$BENCH_TMP/reports"
mkdir -p "$EVENTMILL_REPORTS_DIR"
em_start worker worker
worker_pid=$LAST_PID
sleep 1
before=$(cpu_snap "$worker_pid")
run_job export --data ENGAGEMENT --format CSV --from "$day" --to "$day" --output "bench-export-$$.csv"
after=$(cpu_snap "$worker_pid")
file="$JOB_OUTPUT"
[[ -f "$file" ]] || file="$EVENTMILL_REPORTS_DIR/bench-export-$$.csv"
written=$(($(wc -l <"$file") - 1))
rm -f "$file"
echo "RESULT export.csv_rows $(calc "round($written / $JOB_SECONDS)") rows/s"
echo "TARGET export.csv_rows >= 300000"
echo "RESULT export.csv_peak_rss $(calc "round($(peak_rss_kb "$worker_pid") / 1024)") MB"
echo "TARGET export.csv_peak_rss <= 100"
echo "RESULT export.csv_written $written rows"
cpu_line export.csv_rows "$written" "$before" "$after"
