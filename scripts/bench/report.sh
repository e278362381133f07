#!/usr/bin/env bash
# GENERATE_REPORT ENGAGEMENT_METRICS as PDF over 31 days (seeded: 50,000 events a day, --quick:
# 5,000), daily rollups made first so the report reads them, run by a `worker`; the time is the
# job's own run time. No SPEC target: watched for regressions.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
source "$(dirname "$0")/lib/seed.sh"
per_day=$([[ $QUICK == 1 ]] && echo 5000 || echo 50000)
first=$(date -u -d '62 days ago' +%F)
last=$(date -u -d '32 days ago' +%F)
seed_events "month-$per_day-$first" "$first 00:00:00+00" "$last 23:59:59.999+00" "$((per_day * 31))" all

reset_redis
export EVENTMILL_REPORTS_DIR="$BENCH_TMP/reports"
mkdir -p "$EVENTMILL_REPORTS_DIR"
em_start worker worker
worker_pid=$LAST_PID
sleep 1
if [[ -z "$(psql_q -c "SELECT 1 FROM bench_seeded WHERE name = 'rolled-$per_day-$first'")" ]]; then
    d="$first"
    while [[ "$d" < "$(date -u -d "$last + 1 day" +%F)" ]]; do
        run_job rollup --daily --date "$d"
        d=$(date -u -d "$d + 1 day" +%F)
    done
    psql_q -c "INSERT INTO bench_seeded VALUES ('rolled-$per_day-$first', 0)"
fi
before=$(cpu_snap "$worker_pid")
run_job report --type ENGAGEMENT_METRICS --format PDF --from "$first" --to "$last" --output "bench-report-$$.pdf"
after=$(cpu_snap "$worker_pid")
rm -f "$JOB_OUTPUT" "$EVENTMILL_REPORTS_DIR/bench-report-$$.pdf"
echo "RESULT report.pdf_31d $JOB_SECONDS s"
cpu_line report.pdf_31d "$((per_day * 31))" "$before" "$after"
