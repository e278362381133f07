#!/usr/bin/env bash
# The main job (README, command 1): starts Redis and PostgreSQL, builds eventmill, migrates, runs
# `eventmill run` in the background with demo traffic (`eventmill loadgen`, Black Friday shape), and
# prints where to look.
#
#   scripts/demo.sh          start (or restart) everything
#   scripts/demo.sh stop     stop eventmill and the traffic (the servers keep running;
#                            scripts/services.sh down stops them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATE=.eventmill
mkdir -p "$STATE/logs"

stop_pidfile() { # file
    [[ -f "$1" ]] || return 0
    local pid
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

stop_all() {
    stop_pidfile "$STATE/loadgen.pid"
    stop_pidfile "$STATE/eventmill.pid"
}

if [[ "${1:-}" == "stop" ]]; then
    stop_all
    echo "eventmill and the demo traffic stopped (scripts/services.sh down stops Redis and PostgreSQL)"
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

scripts/services.sh up
eval "$(scripts/services.sh env)"

# A stable admin token for this install, unless one is configured.
if [[ -z "${EVENTMILL_ADMIN_TOKEN:-}" ]]; then
    [[ -s "$STATE/admin-token" ]] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$STATE/admin-token"
    EVENTMILL_ADMIN_TOKEN=$(cat "$STATE/admin-token")
fi
export EVENTMILL_ADMIN_TOKEN
export EVENTMILL_HTTP_ADDR="${EVENTMILL_HTTP_ADDR:-127.0.0.1:8080}"

echo "building eventmill (release; a first build takes several minutes)..." >&2
cargo build --release --locked --quiet
BIN=target/release/eventmill

stop_all
"$BIN" migrate
nohup "$BIN" run >"$STATE/logs/eventmill.log" 2>&1 &
echo $! >"$STATE/eventmill.pid"

for _ in $(seq 1 100); do
    curl -fsS "http://$EVENTMILL_HTTP_ADDR/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://$EVENTMILL_HTTP_ADDR/healthz" >/dev/null || {
    echo "eventmill did not start; see $STATE/logs/eventmill.log" >&2
    tail -n 20 "$STATE/logs/eventmill.log" >&2
    exit 1
}

nohup "$BIN" loadgen --rate "${DEMO_RATE:-200}" --duration forever --scenario black-friday \
    >"$STATE/logs/loadgen.log" 2>&1 &
echo $! >"$STATE/loadgen.pid"

cat <<INFO

eventmill is running with demo traffic (Black Friday shape: 10x spikes every ten minutes).

  Dashboard      http://$EVENTMILL_HTTP_ADDR/dashboard  (log in with the admin token)
  Queue admin    http://$EVENTMILL_HTTP_ADDR/admin
  Admin token    $EVENTMILL_ADMIN_TOKEN
  Health         http://$EVENTMILL_HTTP_ADDR/healthz/detailed
  Ingest API     POST http://$EVENTMILL_HTTP_ADDR/v1/events  and  /v1/events/bulk
  Logs           $STATE/logs/eventmill.log  (traffic: $STATE/logs/loadgen.log)
  Stop           scripts/demo.sh stop   (then scripts/services.sh down)

INFO
