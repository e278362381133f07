#!/usr/bin/env bash
# Benchmark scenario "cluster" (contract: COMMON.md / scripts/bench.sh): eventmill on a local 3-master
# Redis Cluster this script starts itself (lib/cluster.sh: ports 7260-7262, no replicas, AOF, under
# target/bench/cluster, stopped at the end, on failure too); PostgreSQL is the driver's.
#   - sustained HTTP-to-row ingestion (the load of ingest.sh, lib/common.sh ingest_load) with
#     EVENTMILL_STREAM_SHARDS=3 and, for comparison, 1; lost and duplicated must be 0;
#   - no-op job throughput at concurrency 1 and 50 and idle pickup (`eventmill bench-jobs`, as jobs.sh);
#   - a master restart during load: ingestion with 3 shards at 50,000 events/s, appendfsync always on
#     every node; after 5 s the master serving shard 0 is SIGKILLed and restarted 3 s later from its
#     AOF. The load client re-sends every 503 with the same event ids (up to 20 times, 200 ms apart):
#     accepted events, 503 (and 429) answers, events not accepted (given up after 20 refusals),
#     stored rows, lost, duplicated, and how long the master was away (kill to cluster_state:ok).
# 60 s of load per ingestion run and 30 s for the restart (--quick: 10 s and 15 s).
#   scripts/bench/cluster.sh [--quick]
set -euo pipefail
source "$(dirname "$0")/lib/common.sh" "$@"
source "$BENCH_LIB/cluster.sh"
trap 'em_stop_all; cluster_down' EXIT
seconds=60 restart_seconds=30 jobs=10000 samples=50
if [[ $QUICK == 1 ]]; then seconds=10 restart_seconds=15 jobs=2000 samples=15; fi
export EVENTMILL_LOG="${EVENTMILL_LOG:-error}"

cluster_up
echo "cluster: ${CLUSTER_PORTS[*]} up (EVENTMILL_REDIS_URL=$EVENTMILL_REDIS_URL)" >&2

# ingest_on_cluster SHARDS METRIC SECONDS [RATE]: a fresh keyspace and today's partitions
# empty, serve + worker with SHARDS stream shards, the load started (ingest_wait collects it).
ingest_on_cluster() {
    reset_redis
    truncate_recent_events
    export EVENTMILL_STREAM_SHARDS="$1"
    em_start_pipeline
    shift
    ingest_load "$@"
}

for shards in 3 1; do
    ingest_on_cluster "$shards" "cluster.ingest.shards$shards" "$seconds"
    ingest_wait
    em_stop_all
done
echo "TARGET cluster.ingest.shards3.lost <= 0"
echo "TARGET cluster.ingest.shards3.duplicated <= 0"
echo "TARGET cluster.ingest.shards1.lost <= 0"
echo "TARGET cluster.ingest.shards1.duplicated <= 0"

# No-op jobs: bench-jobs names its metrics jobs.*.eventmill; here they are cluster.jobs.*.
reset_redis
bench_jobs() { "$EVENTMILL_BIN" bench-jobs "$@" | sed -E 's/^RESULT jobs\.([^ ]+)\.eventmill /RESULT cluster.jobs.\1 /'; }
for c in 1 50; do bench_jobs throughput --jobs "$jobs" --concurrency "$c"; done
bench_jobs pickup --samples "$samples"
echo "TARGET cluster.jobs.pickup.p95 <= 5"

# A master restart under load.
for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" CONFIG SET appendfsync always >/dev/null; done
export CLUSTER_FSYNC=always # the restarted node too
# At a fixed 50,000 events/s (below what the pipeline sustains here), so the stream's backlog stays
# under EVENTMILL_STREAM_MAX_LEN: no 429s, and what the client sees is the restart's doing.
ingest_on_cluster 3 cluster.restart "$restart_seconds" 50000
sleep 5
# The master of shard 0 (`<prefix>:events`, whose slot the live counters share too).
victim=$(cluster_port_of "${EVENTMILL_REDIS_PREFIX:-eventmill}:events")
for p in "${CLUSTER_PORTS[@]}"; do
    echo "cluster: port $p holds $(EVENTMILL_REDIS_URL="redis://127.0.0.1:$p" stream_backlog) stream entries" >&2
done
echo "cluster: SIGKILL of the master on port $victim (pid $(cluster_node_pid "$victim"))" >&2
killed_at=$(now)
kill -KILL "$(cluster_node_pid "$victim")"
sleep 3
cluster_node_start "$victim"
cluster_wait_ok
back_at=$(now)
cluster_pids
INGEST_CPU=0 ingest_wait
client=$(grep -E '^loadgen: [0-9]+s ' "$BENCH_TMP/cluster.restart.loadgen" | tail -1)
echo "RESULT cluster.restart.accepted $(sed -E 's/.*accepted ([0-9]+).*/\1/' <<<"$client") events"
echo "RESULT cluster.restart.answers_503 $(sed -E 's/.*503 answers ([0-9]+).*/\1/' <<<"$client") requests"
echo "RESULT cluster.restart.answers_429 $(sed -E 's/.*429 answers ([0-9]+).*/\1/' <<<"$client") requests"
echo "RESULT cluster.restart.not_accepted $(sed -E 's/.*rejected ([0-9]+).*/\1/' <<<"$client") events"
echo "RESULT cluster.restart.stored $INGEST_STORED events"
echo "RESULT cluster.restart.master_down $(elapsed "$back_at" "$killed_at") s"
echo "TARGET cluster.restart.lost <= 0"
echo "TARGET cluster.restart.duplicated <= 0"
