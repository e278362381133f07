#!/usr/bin/env bash
# The long fault runs (docs/faults.md): what the test suite does in seconds,
# here at full length under sustained `eventmill loadgen --verify` traffic (which re-sends the same
# event ids after errors and fails on any loss), against private Redis and PostgreSQL servers
# started on free ports under a temporary folder (the shared ones are never touched).
#
#   scripts/chaos.sh [scenario...]    scenarios: worker-kill serve-kill pg-outage redis-crash sigterm
#
# Environment: CHAOS_RATE (events/s, default 5000), CHAOS_SECONDS (load per scenario, default 40),
# CHAOS_OUTAGE (PostgreSQL outage, default 30 s), CHAOS_RELEASE=1 (build and use the release binary).
# Prints one RESULT line per scenario: injected faults, sent (accepted), stored, duplicates, lost.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATE="${CHAOS_RATE:-5000}"
SECONDS_PER_RUN="${CHAOS_SECONDS:-40}"
OUTAGE="${CHAOS_OUTAGE:-30}"
log() { printf 'chaos: %s\n' "$*" >&2; }

if [[ "${CHAOS_RELEASE:-}" == 1 ]]; then
    cargo build --release --locked -q && BIN="$PWD/target/release/eventmill"
else
    cargo build --locked -q && BIN="$PWD/target/debug/eventmill"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOME_DIR="$(mktemp -d /tmp/eventmill-chaos.XXXXXX)"
chmod 755 "$HOME_DIR"
REDIS_PORT="$(free_port)" PG_PORT="$(free_port)" HTTP_PORT="$(free_port)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
as_pg() { if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    as_pg "$PGBIN/pg_ctl" -D "$HOME_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
    [[ -n "${REDIS_PID:-}" ]] && kill -9 "$REDIS_PID" 2>/dev/null || true
    rm -rf "$HOME_DIR"
}
trap cleanup EXIT

redis_start() {
    mkdir -p "$HOME_DIR/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$HOME_DIR/redis" --appendonly yes \
        --appendfsync everysec --save "" --logfile "$HOME_DIR/redis.log" &
    REDIS_PID=$!
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
}
pg_start() { # crash recovery after an immediate stop under load can take a while on a busy machine
    as_pg "$PGBIN/pg_ctl" -D "$HOME_DIR/pg" -l "$HOME_DIR/pg.log" -w -t 300 \
        -o "-p $PG_PORT -k $HOME_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
        { tail -n 20 "$HOME_DIR/pg.log" >&2; return 1; }
}
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$HOME_DIR/pg" -m immediate -w stop >/dev/null; }

[[ $(id -u) -eq 0 ]] && chown postgres "$HOME_DIR"
as_pg "$PGBIN/initdb" -D "$HOME_DIR/pg" -U eventmill --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
pg_start
redis_start
export EVENTMILL_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export EVENTMILL_DATABASE_URL="postgres://eventmill@127.0.0.1:$PG_PORT/postgres"
export EVENTMILL_HTTP_ADDR="127.0.0.1:$HTTP_PORT" EVENTMILL_ADMIN_TOKEN=chaos EVENTMILL_LOG=error
export EVENTMILL_RECLAIM_IDLE_MS=2000 EVENTMILL_RECLAIM_INTERVAL_MS=500 EVENTMILL_REPORTS_DIR="$HOME_DIR/reports"
"$BIN" migrate >/dev/null

serve() { "$BIN" serve & SERVE=$!; PIDS+=("$SERVE"); until curl -sf "http://$EVENTMILL_HTTP_ADDR/healthz" >/dev/null; do sleep 0.05; done; }
worker() { "$BIN" worker & WORKER=$!; PIDS+=("$WORKER"); }
# "<HTTP status>/<overall status>", e.g. 200/degraded.
health() {
    curl -s -w ' %{http_code}' "http://$EVENTMILL_HTTP_ADDR/healthz/detailed" |
        sed -E 's/.*"status":"([a-z]+)".* ([0-9]+)$/\2\/\1/'
}
loadgen() { # background loadgen --verify; output in $HOME_DIR/load.out
    "$BIN" loadgen --url "http://$EVENTMILL_HTTP_ADDR" --rate "$RATE" --duration "${SECONDS_PER_RUN}s" \
        --concurrency 8 --verify >"$HOME_DIR/load.out" 2>&1 &
    LOAD=$!
}
# RESULT <scenario> faults=<n> sent=<accepted> stored=<n> duplicates=<n> lost=<n> [notes]
result() {
    local scenario="$1" faults="$2" notes="${3:-}" line
    wait "$LOAD" || true
    line="$(grep 'loadgen verify:' "$HOME_DIR/load.out" | tail -n1 || true)"
    if [[ -z "$line" ]]; then
        log "$scenario: loadgen did not verify:"; tail -n5 "$HOME_DIR/load.out" >&2
        echo "RESULT $scenario faults=$faults verify=failed $notes"; return
    fi
    local stored accepted lost dup
    stored="$(sed -n 's/.*verify: \([0-9]*\) of \([0-9]*\) accepted.*/\1/p' <<<"$line")"
    accepted="$(sed -n 's/.*verify: \([0-9]*\) of \([0-9]*\) accepted.*/\2/p' <<<"$line")"
    lost="$(sed -n 's/.*lost \([0-9]*\).*/\1/p' <<<"$line")"
    dup="$(sed -n 's/.*duplicated \([0-9]*\).*/\1/p' <<<"$line")"
    local client; client="$(grep -o 'retried [0-9]*  rejected [0-9]*' "$HOME_DIR/load.out" | tail -n1 || true)"
    echo "RESULT $scenario faults=$faults sent=$accepted stored=$stored duplicates=$dup lost=$lost $notes (client: $client)"
    grep -q 'lost 0; duplicated 0' <<<"$line" || tail -n5 "$HOME_DIR/load.out" >&2
}
stop_all() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=(); }
pause() { sleep "$(python3 -c "import random; print(round(random.uniform($1, $2), 2))")"; }

worker_kill() {
    serve; worker; loadgen
    local n=0
    while kill -0 "$LOAD" 2>/dev/null && ((n < 8)); do
        pause 2 4; kill -9 "$WORKER"; wait "$WORKER" 2>/dev/null || true; n=$((n + 1)); worker
    done
    result worker-kill "$n kill -9 of worker"; stop_all
}
serve_kill() {
    serve; worker; loadgen
    local n=0
    while kill -0 "$LOAD" 2>/dev/null && ((n < 8)); do
        pause 2 4; kill -9 "$SERVE"; wait "$SERVE" 2>/dev/null || true; n=$((n + 1)); sleep 0.3; serve
    done
    result serve-kill "$n kill -9 of serve"; stop_all
}
pg_outage() {
    # A high-water mark the outage reaches, so backpressure (429) is part of the run.
    EVENTMILL_STREAM_MAX_LEN=$((RATE * OUTAGE / 2)) serve; worker; loadgen
    sleep 5; pg_stop
    sleep 2; local during; during="$(health)"
    sleep "$((OUTAGE - 2))"; pg_start
    result pg-outage "1 stop of ${OUTAGE}s" "health_during=$during high_water=$((RATE * OUTAGE / 2))"
    stop_all
}
redis_crash() {
    serve; worker; loadgen
    sleep 8; kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
    local start code ms
    start="$(date +%s%N)"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"event_type":"x"}' \
        "http://$EVENTMILL_HTTP_ADDR/v1/events")"
    ms=$((($(date +%s%N) - start) / 1000000))
    sleep 5; redis_start
    result redis-crash "1 kill -9 of redis" "answer_while_down=$code in ${ms}ms"
    stop_all
}
sigterm() {
    "$BIN" run & local run=$!; PIDS+=("$run")
    until curl -sf "http://$EVENTMILL_HTTP_ADDR/healthz" >/dev/null; do sleep 0.05; done
    "$BIN" enqueue rollup --daily --date today >/dev/null
    loadgen; sleep 10
    local start; start="$(date +%s%N)"
    kill -TERM "$run"; wait "$run" || true
    local ms=$((($(date +%s%N) - start) / 1000000))
    serve; worker
    result sigterm "1 SIGTERM of run" "exit_after=${ms}ms"
    stop_all
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(worker-kill serve-kill pg-outage redis-crash sigterm)
log "binary $BIN, $RATE events/s for ${SECONDS_PER_RUN}s per scenario, redis :$REDIS_PORT, postgres :$PG_PORT"
for s in "${scenarios[@]}"; do
    log "scenario $s"
    case "$s" in
        worker-kill) worker_kill ;;
        serve-kill) serve_kill ;;
        pg-outage) pg_outage ;;
        redis-crash) redis_crash ;;
        sigterm) sigterm ;;
        *) log "unknown scenario $s"; exit 2 ;;
    esac
done
