#!/usr/bin/env bash
# Rollup jobs over seeded days (rows written straight into `events`, once per benchmark database):
# HOURLY_ROLLUP of an hour holding 100,000 events and DAILY_ROLLUP of a day holding 2,400,000
# (--quick: 10,000 and 240,000), each run by a `worker` process; the time is the job's own run
# time from its record (started -> finished).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
source "$(dirname "$0")/lib/seed.sh"
hourly=$([[ $QUICK == 1 ]] && echo 10000 || echo 100000)
daily=$([[ $QUICK == 1 ]] && echo 240000 || echo 2400000)
hour_day=$(date -u -d '22 days ago' +%F)
big_day=$(date -u -d '21 days ago' +%F)
seed_events "hour-$hourly-$hour_day" "$hour_day 12:00:00+00" "$hour_day 12:59:59.999+00" "$hourly" all
seed_events "day-$daily-$big_day" "$big_day 00:00:00+00" "$big_day 23:59:59.999+00" "$daily" all

reset_redis
em_start worker worker
worker_pid=$LAST_PID
sleep 1
before=$(cpu_snap "$worker_pid")
run_job rollup --hourly --start "${hour_day}T12:00:00Z" --end "${hour_day}T13:00:00Z"
after=$(cpu_snap "$worker_pid")
echo "RESULT rollup.hourly_100k $JOB_SECONDS s"
echo "TARGET rollup.hourly_100k <= 0.3"
cpu_line rollup.hourly_100k "$hourly" "$before" "$after"

before=$(cpu_snap "$worker_pid")
run_job rollup --daily --date "$big_day"
after=$(cpu_snap "$worker_pid")
echo "RESULT rollup.daily_2400k $JOB_SECONDS s"
echo "TARGET rollup.daily_2400k <= 3"
cpu_line rollup.daily_2400k "$daily" "$before" "$after"
