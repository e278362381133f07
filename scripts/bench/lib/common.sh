# Shared helpers of the benchmark scenarios (sourced, not run): starting eventmill processes,
# CPU snapshots from /proc, timing, the sustained ingestion measurement. Expects the driver's
# environment: EVENTMILL_BIN, EVENTMILL_REDIS_URL (one node, or cluster nodes separated by commas),
# EVENTMILL_DATABASE_URL, BENCH_TMP, BENCH_REDIS_PID (comma-separated for a cluster), BENCH_PG_PID.

BENCH_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
: "${BENCH_TMP:=$(mktemp -d)}"
QUICK=0
for arg in "$@"; do [[ "$arg" == "--quick" ]] && QUICK=1; done
EM_PIDS=()

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# $1 - $2 as a float.
elapsed() { python3 -c "print(f'{$1 - $2:.6f}')"; }
calc() { python3 -c "print($1)"; }

psql_q() { psql "$EVENTMILL_DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
# redis-cli against the first node of EVENTMILL_REDIS_URL (-c follows a cluster's redirections).
redis_q() { redis-cli -c -u "${EVENTMILL_REDIS_URL%%,*}" "$@"; }
# The nodes of EVENTMILL_REDIS_URL, one URL a line.
redis_nodes() { tr ',' '\n' <<<"$EVENTMILL_REDIS_URL" | sed 's/^ *//; s/ *$//' | grep -v '^$'; }

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# em_start NAME ARGS...: starts "$EVENTMILL_BIN ARGS" in the background, logging to $BENCH_TMP/NAME.log.
em_start() {
    local name="$1"
    shift
    RUST_LOG="${RUST_LOG:-warn}" "$EVENTMILL_BIN" "$@" >"$BENCH_TMP/$name.log" 2>&1 &
    EM_PIDS+=("$!")
    LAST_PID=$!
}

# Stops every process em_start started (SIGTERM, then waits).
em_stop_all() {
    local pid
    for pid in "${EM_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${EM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    EM_PIDS=()
}
trap em_stop_all EXIT

# em_start_pipeline: `serve` on a free port and a `worker` (the whole ingestion path), once the API
# answers; sets port, serve_pid and worker_pid.
em_start_pipeline() {
    port=$(free_port)
    export EVENTMILL_HTTP_ADDR="127.0.0.1:$port"
    em_start serve serve
    serve_pid=$LAST_PID
    em_start worker worker
    worker_pid=$LAST_PID
    wait_http "http://127.0.0.1:$port/healthz"
    sleep 1
}

# wait_http URL: waits up to 30 s for an answer.
wait_http() {
    local i
    for i in $(seq 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# cpu_snap PIDS...: "<eventmill-us> <redis-us> <postgres-us>" so far.
cpu_snap() { python3 "$BENCH_LIB/cpu.py" "$BENCH_REDIS_PID" "$BENCH_PG_PID" "$@"; }

# cpu_line METRIC COUNT "BEFORE" "AFTER": prints the CPU line (microseconds per unit of COUNT).
cpu_line() {
    python3 - "$@" <<'PY'
import sys
metric, count, before, after = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
if count > 0:
    d = [(float(a) - float(b)) / count for a, b in zip(after, before)]
    print(f"CPU {metric} eventmill={d[0]:.2f} redis={d[1]:.2f} postgres={d[2]:.2f}")
PY
}

# Removes the ingestion stream and everything else from Redis (every node of a cluster).
reset_redis() {
    local url
    for url in $(redis_nodes); do redis-cli -u "$url" FLUSHALL >/dev/null; done
}

# Entries in the ingestion stream (every shard, every node; dead letters not counted; a node that
# does not answer counts 0).
stream_backlog() {
    local url key n total=0
    for url in $(redis_nodes); do
        for key in $(redis-cli -u "$url" --scan --pattern "${EVENTMILL_REDIS_PREFIX:-eventmill}*events*" 2>/dev/null); do
            [[ "$key" == *dead* || "$(redis-cli -u "$url" TYPE "$key" 2>/dev/null)" != stream ]] && continue
            n=$(redis-cli -u "$url" XLEN "$key" 2>/dev/null) || n=0
            [[ "$n" =~ ^[0-9]+$ ]] && total=$((total + n))
        done
    done
    echo "$total"
}

# Empties today's and tomorrow's events partitions (the load client stamps its events now).
truncate_recent_events() {
    local day part
    for day in "$(date -u +%F)" "$(date -u -d tomorrow +%F)"; do
        part="events_p${day//-/}"
        [[ -n "$(psql_q -c "SELECT to_regclass('$part')")" ]] && psql_q -c "TRUNCATE $part"
    done
    return 0
}

# ingest_load METRIC SECONDS [RATE]: the load client against the pipeline em_start_pipeline started
# (`eventmill loadgen`: 1,000-event bulk requests, 4 connections, RATE events/s, default 0: as fast
# as accepted; 429/503 answers re-sent with the same event ids, up to 20 times 200 ms apart) for
# SECONDS, then `--verify` waits until every accepted event is a row. The stream backlog is sampled every second. Output: $BENCH_TMP/METRIC.loadgen and
# .backlog; sets INGEST_CPU_BEFORE / INGEST_CPU_AFTER. Returns at once (the load runs in the
# background, pid INGEST_PID): wait with ingest_wait.
ingest_load() {
    INGEST_METRIC="$1" INGEST_SECONDS="$2"
    (while sleep 1; do stream_backlog; done) >"$BENCH_TMP/$INGEST_METRIC.backlog" 2>/dev/null &
    INGEST_SAMPLER=$!
    INGEST_CPU_BEFORE=$(cpu_snap "$serve_pid" "$worker_pid")
    "$EVENTMILL_BIN" loadgen --url "http://127.0.0.1:$port" --rate "${3:-0}" --batch 1000 --concurrency 4 \
        --duration "${INGEST_SECONDS}s" --verify 2>"$BENCH_TMP/$INGEST_METRIC.loadgen" &
    INGEST_PID=$!
}

# ingest_wait: waits for ingest_load's client, then prints METRIC.sustained / .lost / .duplicated,
# the CPU line and the backlog's peak and growth; sets INGEST_LINE (the verify line) and the
# INGEST_STORED / INGEST_LOST / INGEST_DUP counts.
ingest_wait() {
    local metric="$INGEST_METRIC" log="$BENCH_TMP/$INGEST_METRIC.loadgen"
    wait "$INGEST_PID" || true
    INGEST_CPU_AFTER=$(cpu_snap "$serve_pid" "$worker_pid")
    kill "$INGEST_SAMPLER" 2>/dev/null || true
    wait "$INGEST_SAMPLER" 2>/dev/null || true
    cat "$log" >&2
    INGEST_LINE=$(grep 'loadgen verify:' "$log" | tail -1) || { echo "$metric: loadgen did not verify" >&2; return 1; }
    INGEST_STORED=$(sed -E 's/.*verify: ([0-9]+) of.*/\1/' <<<"$INGEST_LINE")
    INGEST_LOST=$(sed -E 's/.*lost ([0-9]+).*/\1/' <<<"$INGEST_LINE")
    INGEST_DUP=$(sed -E 's/.*duplicated ([0-9]+).*/\1/' <<<"$INGEST_LINE")
    echo "RESULT $metric.sustained $(sed -E 's/.*sustained ([0-9.]+) events.*/\1/' <<<"$INGEST_LINE") events/s"
    echo "RESULT $metric.lost $INGEST_LOST events"
    echo "RESULT $metric.duplicated $INGEST_DUP events"
    # INGEST_CPU=0: a run whose processes changed (a restarted Redis) has no CPU line.
    [[ "${INGEST_CPU:-1}" == 1 ]] && cpu_line "$metric.sustained" "$INGEST_STORED" "$INGEST_CPU_BEFORE" "$INGEST_CPU_AFTER"
    # Backlog (entries; this client's requests pack 100 events to an entry): the peak, and its
    # growth over the last two thirds of the sending time (about 0 when ingestion keeps up).
    python3 - "$BENCH_TMP/$metric.backlog" "$INGEST_SECONDS" "$metric" <<'PY'
import sys
xs = [int(l) for l in open(sys.argv[1]) if l.strip().isdigit()][: int(sys.argv[2])]
if len(xs) >= 3:
    third = len(xs) // 3
    growth = (xs[-1] - xs[third]) * 100 / max(1, len(xs) - 1 - third)
    print(f"RESULT {sys.argv[3]}.backlog_peak {max(xs) * 100} events")
    print(f"RESULT {sys.argv[3]}.backlog_growth {growth:.0f} events/s")
PY
}

# Peak resident memory (kB) of a live process.
peak_rss_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# run_job ENQUEUE-ARGS...: enqueues a job, waits for its end (a worker must be running) and sets
# JOB_SECONDS (its own run time, started -> finished, from the job record) and JOB_OUTPUT (the
# last stdout line: a report's or export's file path).
run_job() {
    local out err id
    out=$("$EVENTMILL_BIN" enqueue "$@" --wait 2>"$BENCH_TMP/job.err") || { cat "$BENCH_TMP/job.err" >&2; return 1; }
    id=$(sed -nE 's/^enqueued job ([^ ]+) .*/\1/p' "$BENCH_TMP/job.err" | head -1)
    JOB_OUTPUT=$(tail -1 <<<"$out")
    JOB_SECONDS=$("$EVENTMILL_BIN" jobs show "$id" | python3 -c '
import json, sys
job = json.load(sys.stdin)
print((job["finished_at"] - job["started_at"]) / 1000)')
}
