#!/usr/bin/env bash
# eventmill local services: Redis 7 + PostgreSQL >= 15 as plain local processes
# (no systemd, no docker), and a local 3-master Redis Cluster for the cluster tests.
# All state lives under $EVENTMILL_HOME (default: <repo>/.eventmill, git-ignored).
#
# Usage: scripts/services.sh up [--env] | down [--purge] | status | env
#
#   up        start (or keep) the servers and the cluster; idempotent. Human summary on stderr.
#             With --env, also print the env file to stdout.
#   down      stop the servers and the cluster cleanly (data kept). --purge also deletes the data.
#   status    print state of each server; exit 0 if all up, 3 otherwise.
#   env       print the env file, for: eval "$(scripts/services.sh env)"
#
# Environment:
#   EVENTMILL_HOME        state folder (default <repo>/.eventmill)
#   EVENTMILL_REDIS_PORT  force the Redis port (default: remembered, else 6379 if free, else a free one)
#   EVENTMILL_PG_PORT     force the PostgreSQL port (default: remembered, else 5432 if free, else a free one)
#   EVENTMILL_CLUSTER_PORT  force the cluster's first port; its nodes listen on it, +1 and +2 (and
#                         their cluster bus on +10000) (default: remembered, else 7000 if free, else free ones)
#   EVENTMILL_PG_BIN      PostgreSQL bin dir (default: newest /usr/lib/postgresql/<ver>/bin, ver >= 15)
#
# Layout under $EVENTMILL_HOME:
#   ports        remembered ports (redis=N / pg=N / cluster=N)
#   env          export EVENTMILL_REDIS_URL=... / EVENTMILL_DATABASE_URL=... / EVENTMILL_CLUSTER_URL=...
#   redis/       Redis dir (AOF in redis/appendonlydir, redis.pid)
#   cluster/<port>/  one cluster node's dir (nodes.conf, AOF, redis.pid)
#   pg/          PostgreSQL data dir
#   pgsock/      PostgreSQL unix socket dir
#   logs/        redis.log, postgres.log, cluster-<port>.log
#   pgroot       only present if the PostgreSQL files had to live elsewhere
#                (see "traversable" below); contains that folder.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd -P)"
PROG="scripts/services.sh"

PG_MIN_MAJOR=15
DB_NAME=eventmill
DB_USER=eventmill
DEFAULT_REDIS_PORT=6379
DEFAULT_PG_PORT=5432
DEFAULT_CLUSTER_PORT=7000
CLUSTER_NODES=3

log() { printf '%s\n' "$*" >&2; }
warn() { printf 'services.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'services.sh: error: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- paths ----

# Absolute, symlink-free form of $1, which need not exist yet (the longest
# existing prefix is resolved), so paths and hashes are stable across runs.
canon_path() {
    local p="$1" suffix="" base
    case "$p" in /*) ;; *) p="$PWD/$p" ;; esac
    while [[ "$p" != / && "$p" == */ ]]; do p="${p%/}"; done
    while [[ ! -d "$p" ]]; do
        suffix="/$(basename "$p")$suffix"
        p="$(dirname "$p")"
    done
    base="$(cd "$p" && pwd -P)"
    [[ "$base" == / ]] && base=""
    printf '%s%s' "$base" "$suffix"
}

EM_HOME="$(canon_path "${EVENTMILL_HOME:-$REPO/.eventmill}")"
[[ -n "$EM_HOME" ]] || die "refusing to use '/' as EVENTMILL_HOME"

HOME_MARKER="$EM_HOME/.eventmill-home"
PORTS_FILE="$EM_HOME/ports"
ENV_FILE="$EM_HOME/env"
LOCK_FILE="$EM_HOME/.lock"
REDIS_DIR="$EM_HOME/redis"
LOG_DIR="$EM_HOME/logs"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$LOG_DIR/redis.log"
PGROOT_FILE="$EM_HOME/pgroot"
CLUSTER_DIR="$EM_HOME/cluster"

HOME_HASH="$(printf '%s' "$EM_HOME" | sha256sum | cut -c1-12)"

# PostgreSQL paths: normally $EM_HOME/{pg,pgsock,logs/postgres.log}; if the
# postgres user cannot traverse $EM_HOME, they live in /var/tmp/eventmill-<hash>
# (remembered in $PGROOT_FILE).
PG_ROOT="" PG_DATA="" PG_SOCK="" PG_LOG=""
set_pg_paths() { # $1 = root folder holding pg/ and pgsock/
    PG_ROOT="$1"
    PG_DATA="$PG_ROOT/pg"
    PG_SOCK="$PG_ROOT/pgsock"
    if [[ "$PG_ROOT" == "$EM_HOME" ]]; then
        PG_LOG="$LOG_DIR/postgres.log"
    else
        PG_LOG="$PG_ROOT/postgres.log"
    fi
    # unix socket paths are limited to ~107 bytes; the socket file is
    # "<dir>/.s.PGSQL.<port>" (up to 16 more bytes).
    if ((${#PG_SOCK} > 90)); then
        PG_SOCK="/tmp/eventmill-$HOME_HASH-pgsock"
    fi
}
if [[ -s "$PGROOT_FILE" ]]; then
    set_pg_paths "$(head -n1 "$PGROOT_FILE")"
else
    set_pg_paths "$EM_HOME"
fi

# ---------------------------------------------------------------- ports ----

REDIS_PORT="" PG_PORT="" CLUSTER_PORT=""
load_ports() {
    REDIS_PORT="" PG_PORT="" CLUSTER_PORT=""
    [[ -f "$PORTS_FILE" ]] || return 0
    local k v
    while IFS='=' read -r k v; do
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        case "$k" in
            redis) REDIS_PORT="$v" ;;
            pg) PG_PORT="$v" ;;
            cluster) CLUSTER_PORT="$v" ;;
        esac
    done <"$PORTS_FILE"
}
save_ports() {
    printf 'redis=%s\npg=%s\ncluster=%s\n' "$REDIS_PORT" "$PG_PORT" "$CLUSTER_PORT" >"$PORTS_FILE.tmp"
    mv -f "$PORTS_FILE.tmp" "$PORTS_FILE"
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

# True if nothing listens on 127.0.0.1:$1 (SO_REUSEADDR so TIME_WAIT leftovers
# of a just-stopped server do not count as "busy"; a listener still does).
port_free() {
    local p="$1"
    if have python3; then
        python3 - "$p" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
    else
        # no python: a successful connect means something is listening
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
        return 0
    fi
}

# Print a free port: $1 preferred, else scan $1+1 .. $1+200, else ask the kernel.
pick_port() {
    local pref="$1" avoid="${2:-}" p
    for ((p = pref; p <= pref + 200 && p <= 65535; p++)); do
        [[ "$p" == "$avoid" ]] && continue
        if port_free "$p"; then
            printf '%s' "$p"
            return 0
        fi
    done
    if have python3; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return 0
    fi
    die "could not find a free TCP port near $pref"
}

# ------------------------------------------------------------- packages ----

APT_UPDATED=""
apt_install() { # package...
    local pkgs=("$@") sudo=()
    local hint="please install the Debian package(s): ${pkgs[*]} (e.g. 'sudo apt-get install ${pkgs[*]}') and re-run $PROG up"
    have apt-get || die "apt-get is not available; $hint"
    if [[ $EUID -ne 0 ]]; then
        have sudo || die "not root and sudo is not available; $hint"
        sudo=(sudo)
    fi
    log "installing missing package(s): ${pkgs[*]}"
    if [[ -z "$APT_UPDATED" ]]; then
        ${sudo[@]+"${sudo[@]}"} apt-get update || die "apt-get update failed; $hint"
        APT_UPDATED=1
    fi
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${pkgs[@]}" ||
        die "apt-get install failed; $hint"
}

# Newest /usr/lib/postgresql/<ver>/bin (or $EVENTMILL_PG_BIN); empty if none.
find_pg_bin() {
    if [[ -n "${EVENTMILL_PG_BIN:-}" ]]; then
        [[ -x "$EVENTMILL_PG_BIN/postgres" ]] || die "EVENTMILL_PG_BIN=$EVENTMILL_PG_BIN contains no postgres binary"
        printf '%s' "${EVENTMILL_PG_BIN%/}"
        return 0
    fi
    local d best="" bestv=-1 v
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/postgres" && -x "$d/pg_ctl" ]] || continue
        v="$(basename "$(dirname "$d")")"
        v="${v%%.*}"
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        if ((v > bestv)); then best="$d" bestv="$v"; fi
    done
    printf '%s' "$best"
}
pg_bin_major() { # $1 = bin dir
    local out
    out="$("$1/postgres" --version 2>/dev/null)" || return 1
    out="${out##* }" # "postgres (PostgreSQL) 15.14" -> "15.14"
    printf '%s' "${out%%.*}"
}

PGBIN=""
# Like resolve_pg_bin but never fails (for down/status).
resolve_pg_bin_soft() {
    PGBIN=""
    if [[ -f "$PG_DATA/PG_VERSION" && -z "${EVENTMILL_PG_BIN:-}" ]]; then
        local d
        d="/usr/lib/postgresql/$(head -n1 "$PG_DATA/PG_VERSION")/bin"
        [[ -x "$d/pg_ctl" ]] && PGBIN="$d"
    fi
    [[ -n "$PGBIN" ]] || PGBIN="$(find_pg_bin)"
}
resolve_pg_bin() { # sets PGBIN; honours an existing data dir's PG_VERSION
    if [[ -f "$PG_DATA/PG_VERSION" && -z "${EVENTMILL_PG_BIN:-}" ]]; then
        local dv
        dv="$(head -n1 "$PG_DATA/PG_VERSION")"
        PGBIN="/usr/lib/postgresql/$dv/bin"
        [[ -x "$PGBIN/pg_ctl" ]] ||
            die "data dir $PG_DATA was created by PostgreSQL $dv but $PGBIN is missing; install postgresql-$dv or run '$PROG down --purge'"
    else
        PGBIN="$(find_pg_bin)"
    fi
}

ensure_packages() {
    local missing=()
    have redis-server || missing+=(redis-server)
    have redis-cli || missing+=(redis-tools)
    resolve_pg_bin
    local major=0
    if [[ -n "$PGBIN" ]]; then major="$(pg_bin_major "$PGBIN" || echo 0)"; fi
    if [[ -z "$PGBIN" ]] || ((major < PG_MIN_MAJOR)); then missing+=(postgresql); fi
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
        hash -r
    fi
    have redis-server || die "redis-server still not found; please install the Debian package redis-server"
    have redis-cli || die "redis-cli still not found; please install the Debian package redis-tools"
    resolve_pg_bin
    [[ -n "$PGBIN" ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql/<ver>/bin; please install the Debian package postgresql (>= $PG_MIN_MAJOR)"
    major="$(pg_bin_major "$PGBIN" || echo 0)"
    ((major >= PG_MIN_MAJOR)) ||
        die "PostgreSQL $major found in $PGBIN but >= $PG_MIN_MAJOR is required; please install postgresql-$PG_MIN_MAJOR (e.g. from apt.postgresql.org)"
    local f
    for f in initdb pg_ctl pg_isready psql; do
        [[ -x "$PGBIN/$f" ]] || die "$PGBIN/$f is missing; please install the Debian package postgresql-$major (and postgresql-client-$major)"
    done
    local rv
    rv="$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')"
    if [[ -n "$rv" && "${rv%%.*}" -lt 7 ]]; then
        warn "redis-server $rv found; eventmill targets Redis 7"
    fi
}

# ----------------------------------------------------- running as postgres ----

PG_USER=""
# The user PostgreSQL runs as: owner of an existing data dir; otherwise
# ourselves, or 'postgres' when we are root (PostgreSQL refuses to run as root).
resolve_pg_user() {
    if [[ -d "$PG_DATA" ]]; then
        PG_USER="$(stat -c %U "$PG_DATA")"
    elif [[ $EUID -eq 0 ]]; then
        PG_USER=postgres
    else
        PG_USER="$(id -un)"
    fi
    if [[ "$PG_USER" == root ]]; then
        die "$PG_DATA is owned by root; PostgreSQL cannot run as root. Run '$PROG down --purge' and retry"
    fi
}

as_pg() { # run a command as $PG_USER, from / (so an unreadable cwd does not matter)
    if [[ "$PG_USER" == "$(id -un)" ]]; then
        (cd / && "$@")
    elif [[ $EUID -ne 0 ]]; then
        die "PostgreSQL data $PG_DATA belongs to '$PG_USER'; run this script as root or as $PG_USER"
    elif have runuser; then
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        local sh=/bin/sh cmd
        [[ -x /bin/bash ]] && sh=/bin/bash # printf %q output may need bash
        cmd="$(printf '%q ' "$@")"
        (cd / && su "$PG_USER" -s "$sh" -c "$cmd")
    fi
}

ensure_pg_system_user() {
    [[ $EUID -eq 0 && "$PG_USER" == postgres ]] || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    log "creating system user 'postgres'"
    have useradd || die "no 'postgres' user and no useradd; please create a 'postgres' system user"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
        --shell /usr/sbin/nologin postgres || die "useradd postgres failed"
}

# mkdir -p with owner/mode (owner only applied when root)
mkdir_owned() { # dir owner mode
    mkdir -p "$1"
    if [[ $EUID -eq 0 && "$2" != root ]]; then chown "$2:" "$1" 2>/dev/null || chown "$2" "$1"; fi
    chmod "$3" "$1"
}

# Decide where the PostgreSQL files live (first time only) and create the dirs.
prepare_pg_dirs() {
    if [[ ! -s "$PGROOT_FILE" && ! -e "$PG_DATA" && "$PG_USER" != "$(id -un)" ]]; then
        # every parent of $EM_HOME must be traversable by $PG_USER
        if ! as_pg test -x "$EM_HOME" 2>/dev/null || ! as_pg test -x "$LOG_DIR" 2>/dev/null; then
            local alt="/var/tmp/eventmill-$HOME_HASH"
            warn "user '$PG_USER' cannot traverse $EM_HOME (a parent directory is not searchable);"
            warn "PostgreSQL data, socket and log will live in $alt instead"
            mkdir_owned "$alt" root 755
            printf '%s\n' "$alt" >"$PGROOT_FILE"
            set_pg_paths "$alt"
        fi
    fi
    if [[ -e "$PG_SOCK" && $EUID -eq 0 ]]; then
        local o
        o="$(stat -c %U "$PG_SOCK")"
        [[ "$o" == "$PG_USER" ]] || die "$PG_SOCK exists but is owned by '$o', not '$PG_USER'"
    fi
    mkdir_owned "$PG_DATA" "$PG_USER" 700
    mkdir_owned "$PG_SOCK" "$PG_USER" 755
    touch "$PG_LOG"
    if [[ $EUID -eq 0 ]]; then chown "$PG_USER:" "$PG_LOG" 2>/dev/null || chown "$PG_USER" "$PG_LOG"; fi
}

# -------------------------------------------------------------- processes ---

# $1 is a live (non-zombie) process whose name starts with $2. A killed daemon
# can linger as a zombie when PID 1 is slow to reap (containers), and kill -0
# succeeds on zombies, so look at the state too.
proc_alive() {
    local pid="$1" name="$2" stat
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name"* ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # fields after "(comm) "; first one is the state
    [[ "${stat:0:1}" != Z ]]
}

# wait (up to $3 seconds) until pid $1, named $2*, is fully gone (zombie included)
wait_gone() {
    local pid="$1" name="$2" i
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    for ((i = 0; i < $3 * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name"* ]] || return 0
        sleep 0.2
    done
    return 1
}

# --------------------------------------------------------------- redis -----

redis_cli() { timeout 10 redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

# redis on port $1 is up AND it is ours (its dir is our redis dir)
redis_ours_alive() {
    local p="$1" out dir
    [[ -n "$p" ]] && have redis-cli || return 1
    [[ "$(redis_cli "$p" ping 2>/dev/null)" == PONG ]] || return 1
    out="$(redis_cli "$p" config get dir 2>/dev/null)" || return 1
    dir="$(printf '%s\n' "$out" | sed -n 2p)"
    [[ -d "$REDIS_DIR" && "$dir" == "$(cd "$REDIS_DIR" && pwd -P)" ]]
}

redis_pid() { # pid from our pidfile if that process is a live redis-server
    local pid
    [[ -f "$REDIS_PIDFILE" ]] || return 1
    pid="$(head -n1 "$REDIS_PIDFILE" 2>/dev/null)"
    proc_alive "$pid" redis-server || return 1
    printf '%s' "$pid"
}

start_redis() {
    local p="$1"
    mkdir -p "$REDIS_DIR" "$LOG_DIR"
    # fd 9 (our lock) must not leak into the daemon
    redis-server \
        --port "$p" \
        --bind 127.0.0.1 \
        --daemonize yes \
        --dir "$REDIS_DIR" \
        --pidfile "$REDIS_PIDFILE" \
        --logfile "$REDIS_LOG" \
        --appendonly yes \
        --appendfsync everysec \
        --save "" \
        --maxmemory-policy noeviction \
        9>&- </dev/null >/dev/null ||
        die "redis-server failed to start; see $REDIS_LOG"
    local i
    for ((i = 0; i < 100; i++)); do
        redis_ours_alive "$p" && return 0
        sleep 0.2
    done
    tail -n 20 "$REDIS_LOG" >&2 || true
    die "redis-server did not answer on 127.0.0.1:$p within 20s; see $REDIS_LOG"
}

stop_redis() {
    local p="$1" pid="" i
    pid="$(redis_pid || true)"
    if redis_ours_alive "$p"; then
        redis_cli "$p" shutdown >/dev/null 2>&1 || true # SHUTDOWN fsyncs the AOF
    elif [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true # SIGTERM = graceful shutdown too
    else
        return 1 # was not running
    fi
    for ((i = 0; i < 150; i++)); do
        if [[ -n "$pid" ]]; then
            proc_alive "$pid" redis-server || return 0
        else
            redis_ours_alive "$p" || return 0
        fi
        sleep 0.2
    done
    die "redis-server (pid ${pid:-?}) did not stop within 30s"
}

# ------------------------------------------------------------- cluster -----

# shellcheck source=scripts/services-cluster.sh
source "$SCRIPT_DIR/services-cluster.sh"

# ------------------------------------------------------------ postgres -----

# pid of our postmaster (from postmaster.pid) if alive; empty otherwise
pg_pid() {
    local f="$PG_DATA/postmaster.pid" pid
    [[ -r "$f" ]] || return 1
    pid="$(head -n1 "$f" 2>/dev/null)"
    proc_alive "$pid" postgres || return 1
    printf '%s' "$pid"
}
pg_pid_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

pg_isready_bin() {
    if [[ -n "$PGBIN" && -x "$PGBIN/pg_isready" ]]; then
        printf '%s' "$PGBIN/pg_isready"
    elif have pg_isready; then
        command -v pg_isready
    else
        return 1
    fi
}

# our postmaster is running on port $1 and accepting connections
pg_ours_alive() {
    local p="$1" isready
    [[ -n "$p" ]] || return 1
    pg_pid >/dev/null || return 1
    [[ "$(pg_pid_port)" == "$p" ]] || return 1
    isready="$(pg_isready_bin)" || return 1
    "$isready" -q -h 127.0.0.1 -p "$p" -U "$DB_USER" -d postgres -t 5
}

sq() { printf "'%s'" "${1//\'/\'\'}"; } # postgresql.conf string literal

write_pg_conf() {
    local p="$1" conf="$PG_DATA/eventmill.conf"
    cat >"$conf.tmp" <<EOF
# Written by $PROG on every 'up'; do not edit (changes are overwritten).
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = $(sq "$PG_SOCK")
max_connections = 200
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_level = minimal
max_wal_senders = 0
synchronous_commit = on
fsync = on
logging_collector = off
EOF
    mv -f "$conf.tmp" "$conf"
    if [[ $EUID -eq 0 ]]; then chown "$PG_USER:" "$conf" 2>/dev/null || chown "$PG_USER" "$conf"; fi
    chmod 600 "$conf"
    if ! grep -q "^include 'eventmill.conf'" "$PG_DATA/postgresql.conf"; then
        printf "\n# eventmill settings (%s)\ninclude 'eventmill.conf'\n" "$PROG" >>"$PG_DATA/postgresql.conf"
    fi
}

init_pg() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
    if [[ -n "$(ls -A "$PG_DATA" 2>/dev/null)" ]]; then
        die "$PG_DATA is not empty but has no PG_VERSION (half-initialised?); remove it or run '$PROG down --purge'"
    fi
    log "initialising PostgreSQL data dir $PG_DATA (as user '$PG_USER')"
    as_pg "$PGBIN/initdb" -D "$PG_DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C \
        >>"$PG_LOG" 2>&1 </dev/null || {
        tail -n 20 "$PG_LOG" >&2 || true
        die "initdb failed; see $PG_LOG"
    }
}

start_pg() {
    local p="$1" oldpid
    write_pg_conf "$p"
    # a crashed postmaster that is still an unreaped zombie makes PostgreSQL
    # believe the old server is alive (stale postmaster.pid): wait for it
    oldpid="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$oldpid" ]] && ! wait_gone "$oldpid" postgres 15; then
        warn "stale postmaster pid $oldpid still exists (zombie?); trying to start anyway"
    fi
    # fd 9 (our lock) must not leak into the postmaster
    if ! as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start 9>&- </dev/null >/dev/null 2>&1; then
        tail -n 20 "$PG_LOG" >&2 || true
        die "PostgreSQL failed to start on 127.0.0.1:$p; see $PG_LOG"
    fi
    pg_ours_alive "$p" || die "PostgreSQL started but is not ready on 127.0.0.1:$p; see $PG_LOG"
}

stop_pg() {
    local pid i
    pid="$(pg_pid || true)"
    [[ -n "$pid" ]] || return 1
    if [[ -n "$PGBIN" && -x "$PGBIN/pg_ctl" ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    else
        kill -INT "$pid" 2>/dev/null || true # SIGINT = fast shutdown
    fi
    for ((i = 0; i < 300; i++)); do
        proc_alive "$pid" postgres || return 0
        sleep 0.2
    done
    die "PostgreSQL (pid $pid) did not stop within 60s; see $PG_LOG"
}

psql_q() { # port sql
    PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$1" -U "$DB_USER" -d postgres -tAc "$2"
}

ensure_db() {
    local p="$1"
    if [[ "$(psql_q "$p" "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
        log "creating database $DB_NAME"
        psql_q "$p" "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
    fi
}

# -------------------------------------------------------------- helpers -----

take_lock() {
    have flock || return 0
    exec 9>"$LOCK_FILE"
    flock -w 180 9 || die "another $PROG is running on $EM_HOME (lock $LOCK_FILE)"
}

write_env() {
    cat >"$ENV_FILE.tmp" <<EOF
export EVENTMILL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export EVENTMILL_DATABASE_URL=postgres://$DB_USER@127.0.0.1:$PG_PORT/$DB_NAME
export EVENTMILL_CLUSTER_URL=$(cluster_url)
EOF
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# Decide a port. $1 name, $2 env override, $3 remembered, $4 default,
# $5 "alive" predicate, $6 port to avoid. Prints the port.
choose_port() {
    local name="$1" forced="$2" remembered="$3" def="$4" alive="$5" avoid="${6:-}"
    if [[ -n "$forced" ]]; then
        valid_port "$forced" || die "invalid $name port '$forced'"
        if [[ -n "$remembered" && "$remembered" != "$forced" ]] && "$alive" "$remembered"; then
            die "$name from $EM_HOME is already running on port $remembered (requested $forced); run '$PROG down' first"
        fi
        if ! "$alive" "$forced" && ! port_free "$forced"; then
            die "$name port $forced (from the environment) is in use by another process"
        fi
        printf '%s' "$forced"
        return 0
    fi
    if [[ -n "$remembered" ]]; then
        if "$alive" "$remembered" || port_free "$remembered"; then
            printf '%s' "$remembered"
            return 0
        fi
        warn "remembered $name port $remembered is now used by another process; choosing a new one"
    fi
    pick_port "$def" "$avoid"
}

# --------------------------------------------------------------- commands ---

cmd_up() {
    local print_env=""
    while (($#)); do
        case "$1" in
            --env) print_env=1 ;;
            *) die "unknown option for up: $1" ;;
        esac
        shift
    done

    ensure_packages

    # fresh dirs get 755: when root, the postgres user must traverse them
    if [[ ! -d "$EM_HOME" ]]; then
        mkdir -p "$EM_HOME"
        chmod 755 "$EM_HOME"
    fi
    [[ -e "$HOME_MARKER" ]] || : >"$HOME_MARKER"
    if [[ ! -d "$LOG_DIR" ]]; then
        mkdir -p "$LOG_DIR"
        chmod 755 "$LOG_DIR"
    fi
    mkdir -p "$REDIS_DIR"
    take_lock

    load_ports
    local rp pp
    rp="$(choose_port redis "${EVENTMILL_REDIS_PORT:-}" "$REDIS_PORT" "$DEFAULT_REDIS_PORT" redis_ours_alive)"
    REDIS_PORT="$rp"
    save_ports

    resolve_pg_user
    ensure_pg_system_user
    prepare_pg_dirs
    resolve_pg_bin
    pp="$(choose_port postgres "${EVENTMILL_PG_PORT:-}" "$PG_PORT" "$DEFAULT_PG_PORT" pg_ours_alive "$REDIS_PORT")"
    PG_PORT="$pp"
    save_ports
    CLUSTER_PORT="$(choose_cluster_port "$REDIS_PORT" "$PG_PORT")"
    save_ports

    # ---- redis
    local rstate="already running"
    if ! redis_ours_alive "$REDIS_PORT"; then
        local oldpid
        if oldpid="$(redis_pid)"; then
            # our redis is alive but not on the chosen port (or not answering)
            die "our redis-server (pid $oldpid) runs but does not answer on port $REDIS_PORT; run '$PROG down' first"
        fi
        start_redis "$REDIS_PORT"
        rstate="started"
    fi

    # ---- postgres
    local pstate="already running"
    if ! pg_ours_alive "$PG_PORT"; then
        local opid
        if opid="$(pg_pid)"; then
            die "our PostgreSQL (pid $opid) runs on port $(pg_pid_port), not $PG_PORT; run '$PROG down' first"
        fi
        init_pg
        start_pg "$PG_PORT"
        pstate="started"
    fi
    ensure_db "$PG_PORT"

    # ---- cluster
    local cstate
    cstate="$(ensure_cluster)"

    write_env

    local rv pv
    rv="$(redis_cli "$REDIS_PORT" info server 2>/dev/null | sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p')"
    pv="$(psql_q "$PG_PORT" "SHOW server_version" 2>/dev/null | awk '{print $1}')"
    log "eventmill services up ($EM_HOME)"
    log "  redis     127.0.0.1:$REDIS_PORT  redis $rv, $rstate (pid $(redis_pid || echo '?'), log $REDIS_LOG)"
    log "  postgres  127.0.0.1:$PG_PORT  PostgreSQL $pv, $pstate (pid $(pg_pid || echo '?'), data $PG_DATA, log $PG_LOG)"
    log "  cluster   127.0.0.1:$CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1))  $CLUSTER_NODES masters, $cstate (data $CLUSTER_DIR, logs $LOG_DIR/cluster-<port>.log)"
    log "  env:      eval \"\$($PROG env)\"   # $ENV_FILE"
    if [[ -n "$print_env" ]]; then cat "$ENV_FILE"; fi
}

cmd_down() {
    local purge=""
    while (($#)); do
        case "$1" in
            --purge) purge=1 ;;
            *) die "unknown option for down: $1" ;;
        esac
        shift
    done
    if [[ ! -d "$EM_HOME" ]]; then
        log "nothing to stop: $EM_HOME does not exist"
        return 0
    fi
    if [[ -n "$purge" && ! -e "$HOME_MARKER" ]]; then
        die "$EM_HOME does not look like an eventmill home (no $(basename "$HOME_MARKER")); refusing to purge it"
    fi
    take_lock
    load_ports
    resolve_pg_bin_soft
    if [[ -d "$PG_DATA" ]]; then resolve_pg_user; fi

    if stop_redis "$REDIS_PORT"; then
        log "redis stopped (port $REDIS_PORT)"
    else
        log "redis was not running"
    fi
    if [[ -d "$PG_DATA" ]] && stop_pg; then
        log "postgres stopped (port $PG_PORT)"
    else
        log "postgres was not running"
    fi
    if [[ -n "$CLUSTER_PORT" ]]; then
        local p stopped=0
        for p in $(cluster_node_ports); do
            if stop_cluster_node "$p"; then stopped=$((stopped + 1)); fi
        done
        log "cluster: $stopped node(s) stopped (ports $CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1)))"
    fi

    if [[ -n "$purge" ]]; then
        if [[ "$PG_ROOT" != "$EM_HOME" && -d "$PG_ROOT" ]]; then rm -rf -- "$PG_ROOT"; fi
        if [[ "$PG_SOCK" == /tmp/eventmill-* && -d "$PG_SOCK" ]]; then rm -rf -- "$PG_SOCK"; fi
        exec 9>&-
        rm -rf -- "$EM_HOME"
        log "purged $EM_HOME"
    else
        log "data kept in $EM_HOME"
    fi
}

cmd_status() {
    local ok=0
    load_ports
    resolve_pg_bin_soft
    if [[ -n "$REDIS_PORT" ]] && redis_ours_alive "$REDIS_PORT"; then
        echo "redis:    up    127.0.0.1:$REDIS_PORT (pid $(redis_pid || echo '?'))"
    else
        echo "redis:    down  ${REDIS_PORT:+(port $REDIS_PORT)}"
        ok=3
    fi
    if [[ -n "$PG_PORT" ]] && pg_ours_alive "$PG_PORT"; then
        echo "postgres: up    127.0.0.1:$PG_PORT (pid $(pg_pid || echo '?'), data $PG_DATA)"
    else
        echo "postgres: down  ${PG_PORT:+(port $PG_PORT)}"
        ok=3
    fi
    if [[ -n "$CLUSTER_PORT" ]] && cluster_healthy; then
        echo "cluster:  up    $(cluster_url) ($CLUSTER_NODES masters, cluster_state:ok)"
    else
        echo "cluster:  down  ${CLUSTER_PORT:+(ports $CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1)))}"
        ok=3
    fi
    echo "home:     $EM_HOME"
    return "$ok"
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE does not exist; run '$PROG up' first"
    cat "$ENV_FILE"
}

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        env) cmd_env "$@" ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
