#!/usr/bin/env bash
# eventmill benchmarks: starts its own Redis and PostgreSQL (like the tests, under .eventmill-bench/,
# on ports apart from the tests'), builds the release binary, migrates, runs every scenario
# scripts/bench/<name>.sh several times, prints a table and rewrites BENCHMARKS.md.
#
# Usage: scripts/bench.sh [--quick] [--runs N] [scenario...]
#   --quick    smoke-sized runs, once each; writes target/bench/BENCHMARKS.quick.md, not BENCHMARKS.md
#   --runs N   runs per scenario (default 3)
#   scenario   names of scripts/bench/*.sh to run (default: all, `cluster` included); a partial
#              run writes target/bench/BENCHMARKS.partial.md
#
# Environment: EVENTMILL_BENCH_REDIS_PORT / EVENTMILL_BENCH_PG_PORT (default: the test ports + 100),
# EVENTMILL_BENCH_HOME (default <repo>/.eventmill-bench), EVENTMILL_BENCH_CLUSTER_PORT (first of the
# three ports of the `cluster` scenario's own Redis Cluster, default 7260). Scenario contract: see
# docs/benchmarks.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
QUICK=0
RUNS=""
WANTED=()
while (($#)); do
    case "$1" in
    --quick) QUICK=1 ;;
    --runs) RUNS="$2"; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) WANTED+=("$1") ;;
    esac
    shift
done
RUNS="${RUNS:-$([[ $QUICK == 1 ]] && echo 1 || echo 3)}"

ALL=()
for f in scripts/bench/*.sh; do ALL+=("$(basename "$f" .sh)"); done
if ((${#WANTED[@]} == 0)); then
    SCENARIOS=("${ALL[@]}")
else
    for s in "${WANTED[@]}"; do
        [[ -f "scripts/bench/$s.sh" ]] || { echo "bench.sh: no scenario scripts/bench/$s.sh (have: ${ALL[*]})" >&2; exit 2; }
    done
    SCENARIOS=("${WANTED[@]}")
fi

export EVENTMILL_HOME="${EVENTMILL_BENCH_HOME:-$REPO/.eventmill-bench}"
export EVENTMILL_REDIS_PORT="${EVENTMILL_BENCH_REDIS_PORT:-$((${EVENTMILL_REDIS_PORT:-6379} + 100))}"
export EVENTMILL_PG_PORT="${EVENTMILL_BENCH_PG_PORT:-$((${EVENTMILL_PG_PORT:-5432} + 100))}"

echo "bench: building the release binary" >&2
cargo build --release --quiet --bin eventmill
# CARGO_TARGET_DIR (e.g. a target directory whose release dependencies are built already) is honoured.
export EVENTMILL_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/eventmill"

scripts/services.sh up
eval "$(scripts/services.sh env)"
export EVENTMILL_REDIS_URL EVENTMILL_DATABASE_URL
export EVENTMILL_ADMIN_TOKEN="${EVENTMILL_ADMIN_TOKEN:-bench-admin-token}"
export BENCH_REDIS_PID="$(cat "$EVENTMILL_HOME/redis/redis.pid")"
PG_DATA="$(psql "$EVENTMILL_DATABASE_URL" -X -t -A -c 'SHOW data_directory')"
export BENCH_PG_PID="$(head -1 "$PG_DATA/postmaster.pid")"
"$EVENTMILL_BIN" migrate >/dev/null

OUT="$REPO/target/bench"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
export BENCH_TMP="$OUT/tmp"
mkdir -p "$BENCH_TMP"

for scenario in "${SCENARIOS[@]}"; do
    for run in $(seq "$RUNS"); do
        echo "bench: $scenario run $run/$RUNS" >&2
        log="$OUT/$scenario.$run.log"
        args=()
        [[ $QUICK == 1 ]] && args+=(--quick)
        # Load average sampled every 2 s while the scenario runs.
        (while sleep 2; do printf '%s\t%s\tLOAD\t%s\n' "$scenario" "$run" "$(cut -d' ' -f1 /proc/loadavg)"; done) >>"$RESULTS" &
        sampler=$!
        if ! bash "scripts/bench/$scenario.sh" "${args[@]}" >"$log" 2>"$OUT/$scenario.$run.err"; then
            echo "bench: $scenario run $run failed; see $OUT/$scenario.$run.err" >&2
        fi
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        grep -E '^(RESULT|CPU|TARGET|CEILING) ' "$log" | while read -r kind rest; do
            printf '%s\t%s\t%s\t%s\n' "$scenario" "$run" "$kind" "$rest"
        done >>"$RESULTS" || true
        grep -E '^RESULT ' "$log" | sed 's/^/  /' >&2 || true
    done
done

if [[ $QUICK == 1 ]]; then
    MD="$OUT/BENCHMARKS.quick.md"
elif ((${#WANTED[@]} > 0)); then
    MD="$OUT/BENCHMARKS.partial.md"
else
    MD="$REPO/BENCHMARKS.md"
fi
COMMAND="scripts/bench.sh"
[[ $QUICK == 1 ]] && COMMAND+=" --quick"
[[ $RUNS != 3 && $QUICK == 0 ]] && COMMAND+=" --runs $RUNS"
((${#WANTED[@]})) && COMMAND+=" ${WANTED[*]}"
python3 - "$OUT/meta.json" "$COMMAND" "$RUNS" "${SCENARIOS[@]}" <<'PY'
import json, os, platform, subprocess, sys, datetime
path, command, runs, scenarios = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
notes = "scripts/bench/NOTES.md"
json.dump({
    "command": command, "runs": runs, "scenarios": [f"scripts/bench/{s}.sh" for s in scenarios],
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": out("git", "rev-parse", "--short", "HEAD"), "cpus": os.cpu_count(), "cpu_model": model,
    "mem_gb": round(mem / 1024 / 1024, 1), "kernel": platform.platform(),
    "redis": out("redis-server", "--version").split(" sha")[0],
    "postgres": out("psql", os.environ["EVENTMILL_DATABASE_URL"], "-X", "-t", "-A", "-c", "SELECT version()").split(" on ")[0],
    "notes": notes if os.path.exists(notes) else None,
}, open(path, "w"))
PY
python3 scripts/bench/lib/report.py "$RESULTS" "$OUT/meta.json" "$MD"
echo "bench: wrote $MD" >&2
