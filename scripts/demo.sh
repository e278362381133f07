#!/usr/bin/env bash
# The main job (README, command 1): starts Redis and PostgreSQL, a local SMTP mailbox, builds
# eventmill, migrates, runs `eventmill run` in the background with demo traffic (`eventmill loadgen`,
# Black Friday shape) and the demo schedules (scripts/demo/scheduler.toml: a revenue report e-mailed
# to the mailbox every two minutes), and prints where to look.
#
#   scripts/demo.sh          start (or restart) everything
#   scripts/demo.sh stop     stop eventmill, the traffic and the mailbox (Redis and PostgreSQL keep
#                            running; scripts/services.sh down stops them)
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
    stop_pidfile "$STATE/mailbox.pid"
}

if [[ "${1:-}" == "stop" ]]; then
    stop_all
    echo "eventmill, the demo traffic and the mailbox stopped (scripts/services.sh down stops Redis and PostgreSQL)"
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

scripts/services.sh up
eval "$(scripts/services.sh env)"

# A local SMTP mailbox (aiosmtpd, as the e-mail tests use) so e-mailed reports can be seen.
MAILBOX="$STATE/mailbox"
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    echo "installing aiosmtpd (the demo's local mailbox)..." >&2
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd 2>/dev/null ||
        { command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive $([[ $(id -u) -eq 0 ]] || echo sudo) \
            apt-get install -y -qq python3-aiosmtpd >/dev/null; } ||
        true
fi

# A stable admin token for this install, unless one is configured.
if [[ -z "${EVENTMILL_ADMIN_TOKEN:-}" ]]; then
    [[ -s "$STATE/admin-token" ]] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$STATE/admin-token"
    EVENTMILL_ADMIN_TOKEN=$(cat "$STATE/admin-token")
fi
export EVENTMILL_ADMIN_TOKEN
export EVENTMILL_HTTP_ADDR="${EVENTMILL_HTTP_ADDR:-127.0.0.1:8080}"

echo "building eventmill (the shipped \`dist\` profile; a first build takes several minutes)..." >&2
cargo build --profile dist --locked --quiet
BIN=target/dist/eventmill

stop_all
if python3 -c "import aiosmtpd" 2>/dev/null; then
    SMTP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$MAILBOX"
    nohup python3 tests/support/smtp_sink.py "$SMTP_PORT" "$MAILBOX" forever </dev/null >"$STATE/logs/mailbox.log" 2>&1 &
    echo $! >"$STATE/mailbox.pid"
    for _ in $(seq 1 50); do grep -q ready "$STATE/logs/mailbox.log" 2>/dev/null && break; sleep 0.1; done
    export EVENTMILL_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
    MAIL_INFO="$MAILBOX/  (<n>.eml, <n>.json, the attached PDF; a revenue report every two minutes)"
else
    echo "warning: could not install aiosmtpd (python3 -m pip install aiosmtpd): e-mailed reports are off" >&2
    MAIL_INFO="(off: aiosmtpd is not installed)"
fi
export EVENTMILL_SCHEDULER_FILE="${EVENTMILL_SCHEDULER_FILE:-scripts/demo/scheduler.toml}"
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
  E-mails        $MAIL_INFO
  Schedules      $EVENTMILL_SCHEDULER_FILE
  Metrics        curl -H "Authorization: Bearer $EVENTMILL_ADMIN_TOKEN" http://$EVENTMILL_HTTP_ADDR/metrics
  Health         http://$EVENTMILL_HTTP_ADDR/healthz/detailed
  Ingest API     POST http://$EVENTMILL_HTTP_ADDR/v1/events  and  /v1/events/bulk
  Logs           $STATE/logs/eventmill.log  (traffic: $STATE/logs/loadgen.log)
  Stop           scripts/demo.sh stop   (then scripts/services.sh down)

INFO
