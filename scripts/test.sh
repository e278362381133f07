#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this): installs and starts what the tests need
# (Redis, PostgreSQL, and the tools of the report and browser tests), then runs every test.
#
#   scripts/test.sh                 style checks (cargo fmt --check, cargo clippy -D warnings), then all tests
#   scripts/test.sh <cargo test args>   those tests only, e.g. scripts/test.sh --test it ingest
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
    log "checking lints (cargo clippy --all-targets -- -D warnings)"
    cargo clippy --locked --all-targets --quiet -- -D warnings ||
        { log "error: clippy warnings (above): fix them, then re-run"; exit 1; }
}
if [[ $# -eq 0 ]]; then
    style_checks
fi

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

scripts/services.sh up
eval "$(scripts/services.sh env)"

# Databases left by earlier runs' tests (each test creates its own).
psql "$EVENTMILL_DATABASE_URL" -qtAc \
    "SELECT format('DROP DATABASE IF EXISTS %I;', datname) FROM pg_database WHERE datname LIKE 'em\_test\_%'" |
    psql "$EVENTMILL_DATABASE_URL" -q >/dev/null 2>&1 || true

export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"
export EVENTMILL_LOG="${EVENTMILL_LOG:-warn}"
log "running tests against redis=$EVENTMILL_REDIS_URL postgres=$EVENTMILL_DATABASE_URL"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$output"
exit "$status"
