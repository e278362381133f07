# Shared helpers of the benchmark scenarios (sourced, not run): starting eventmill processes,
# CPU snapshots from /proc, timing. Expects the driver's environment: EVENTMILL_BIN,
# EVENTMILL_REDIS_URL, EVENTMILL_DATABASE_URL, BENCH_TMP, BENCH_REDIS_PID, BENCH_PG_PID.

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
redis_q() { redis-cli -u "$EVENTMILL_REDIS_URL" "$@"; }

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

# Removes the ingestion stream and everything else under the bench prefix from Redis.
reset_redis() { redis_q FLUSHALL >/dev/null; }

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
