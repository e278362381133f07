#!/usr/bin/env bash
# Sustained HTTP-to-row ingestion: `eventmill serve` and `eventmill worker` as two processes, the
# load client (`eventmill loadgen`, 1,000-event bulk requests, 4 connections, as fast as accepted)
# for 60 s (--quick: 10 s), then `--verify` waits until every accepted event is a row and counts
# them: the rate is rows / (last commit - first send), loss and duplicates must be 0. The stream
# backlog is sampled every second: it is stable when it stops growing (lib/common.sh ingest_load).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
seconds=$([[ $QUICK == 1 ]] && echo 10 || echo 60)

reset_redis
truncate_recent_events # last run's rows out of the way
em_start_pipeline
ingest_load ingest "$seconds"
ingest_wait
echo "TARGET ingest.sustained >= 100000"
echo "CEILING ingest.sustained ceiling.copy"
echo "TARGET ingest.lost <= 0"
echo "TARGET ingest.duplicated <= 0"
