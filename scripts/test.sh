#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this): installs and starts what the tests need
# (Redis, PostgreSQL, a local 3-master Redis Cluster, and the tools of the report and browser tests),
# then runs every test.
#
#   scripts/test.sh                 style checks (cargo fmt --check, cargo clippy -D warnings), all tests
#                                   of the workspace on one Redis node, then the Redis tests of
#                                   CLUSTER_TESTS (below) and the framework crate's tests again on the
#                                   local cluster; the closing line counts both passes
#                                   (EVENTMILL_TEST_CLUSTER=all: every integration test on the cluster)
#   scripts/test.sh <cargo test args>   those tests only, on one node, e.g. scripts/test.sh --test it ingest;
#                                   on the cluster when EVENTMILL_REDIS_URL is given, e.g.
#                                   EVENTMILL_REDIS_URL="$EVENTMILL_CLUSTER_URL" scripts/test.sh --test it ingest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

# rustup's cargo, when the shell was not set up for it.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { log "error: cargo is missing: install Rust with rustup (https://rustup.rs)"; exit 1; }

# Style checks: the full run (CI's) fails on unformatted code or any clippy warning.
style_checks() {
    if command -v rustup >/dev/null 2>&1; then
        for component in rustfmt clippy; do
            rustup component list --installed 2>/dev/null | grep -q "^$component" ||
                { log "installing the Rust component $component"; rustup component add "$component"; }
        done
    fi
    log "checking formatting (cargo fmt --check)"
    cargo fmt --all --check || { log "error: unformatted code: run 'cargo fmt' and commit the result"; exit 1; }
    log "checking lints (cargo clippy --workspace --all-targets -- -D warnings)"
    cargo clippy --locked --workspace --all-targets --quiet -- -D warnings ||
        { log "error: clippy warnings (above): fix them, then re-run"; exit 1; }
}
if [[ $# -eq 0 ]]; then
    style_checks
fi

# The cluster pass of the full run: ingestion (exactly-once, kills, dead letters, stream shards),
# queues (retries, failed queue, backlog, pickup, priorities, flows), the scheduler (one job per
# tick), live counts, several processes sharing the work and the OTLP trace from an HTTP request to
# the job's attempt (issue 22), as libtest filters. The tests that crash a private single-node Redis
# are skipped there (they test that node, not the cluster); the cluster's own fault tests
# (tests/it/cluster.rs) start a private cluster in the first pass.
CLUSTER_TESTS=(
    ingest:: consumer:: shards:: faults::a_worker_killed_at_random_moments faults::a_serve_process_killed_mid_request
    queue:: priorities:: flows:: scheduler:: live_counts:: processes:: traces::
    --skip ingest::redis_down_is_a_fast_503 --skip scheduler::after_redis_is_killed_and_restarted
)

# Debian packages for commands the tests call, installed when missing.
apt_updated=""
need_command() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    if ! command -v apt-get >/dev/null 2>&1; then
        log "error: '$1' is missing; install the Debian/Ubuntu package '$2'"
        exit 1
    fi
    log "installing $2 (for '$1')"
    if [[ -z "$apt_updated" ]]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

if [[ -f scripts/test-deps.sh ]]; then
    # Extra tools of later test suites (reports, browser), declared beside this script.
    # shellcheck source=/dev/null
    source scripts/test-deps.sh
fi

# A Redis URL given by the caller (e.g. the cluster's) is kept for a run of chosen tests.
caller_redis_url="${EVENTMILL_REDIS_URL:-}"
scripts/services.sh up
eval "$(scripts/services.sh env)"
if [[ $# -gt 0 && -n "$caller_redis_url" ]]; then
    export EVENTMILL_REDIS_URL="$caller_redis_url"
fi

# Databases left by earlier runs' tests (each test creates its own).
psql "$EVENTMILL_DATABASE_URL" -qtAc \
    "SELECT format('DROP DATABASE IF EXISTS %I;', datname) FROM pg_database WHERE datname LIKE 'em\_test\_%'" |
    psql "$EVENTMILL_DATABASE_URL" -q >/dev/null 2>&1 || true

export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"
export EVENTMILL_LOG="${EVENTMILL_LOG:-warn}"
output=$(mktemp)
trap 'rm -f "$output" "$output.pass"' EXIT

# "N passed, M failed" over every test binary of the output file $1.
count_results() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
         END { printf "%d passed, %d failed\n", p, f }' "$1"
}

# One cargo test run against $EVENTMILL_REDIS_URL; its output is added to $output. $1 names the pass.
run_pass() {
    local name="$1" status
    shift
    log "running tests ($name) against redis=$EVENTMILL_REDIS_URL postgres=$EVENTMILL_DATABASE_URL"
    set +e
    cargo test --locked "$@" 2>&1 | tee "$output.pass"
    status=${PIPESTATUS[0]}
    set -e
    cat "$output.pass" >>"$output"
    log "$name: $(count_results "$output.pass")"
    return "$status"
}

status=0
if [[ $# -gt 0 ]]; then
    run_pass "chosen tests" "$@" || status=$?
else
    # The app and the framework crate (crates/eventmill-jobs: its tests need Redis only).
    run_pass "all tests, one Redis node" --workspace || status=$?
    (
        export EVENTMILL_REDIS_URL="$EVENTMILL_CLUSTER_URL"
        if [[ "${EVENTMILL_TEST_CLUSTER:-}" == all ]]; then CLUSTER_TESTS=(); fi
        cluster_status=0
        run_pass "Redis Cluster" --test it -- ${CLUSTER_TESTS[@]+"${CLUSTER_TESTS[@]}"} || cluster_status=$?
        run_pass "Redis Cluster, the framework" -p eventmill-jobs || cluster_status=$?
        exit "$cluster_status"
    ) || status=$?
fi
# One closing line over every pass and test binary.
count_results "$output"
exit "$status"
