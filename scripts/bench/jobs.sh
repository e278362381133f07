#!/usr/bin/env bash
# Benchmark scenario "jobs" (contract: docs/benchmarks.md / scripts/bench.sh): no-op jobs through
# three job queues on the same Redis, alternating within this one run (the order rotates from one
# measurement to the next, so none always goes first):
#   - eventmill's queue and worker (`$EVENTMILL_BIN bench-jobs`, release build), `.eventmill`;
#   - Node BullMQ 6.7.6 + ioredis (scripts/bench/bullmq, `npm ci`), `.bullmq`;
#   - bullmq-official 1.4.4, BullMQ's Rust port (scripts/bench/bullmq-rs, its own Cargo project,
#     built here), `.bullmq_rs`.
# Each measures:
#   - throughput of a 10,000-job backlog at concurrency 1 and 50 (jobs/s, from the worker's start
#     to the last job's completion recorded in Redis), with CPU us/job of the worker process and of
#     Redis, and the jobs/s one Redis core allows at that Redis CPU per job;
#   - idle pickup p50 / p95 (enqueue call to handler start, ms);
#   - Redis commands/s while a worker is idle (INFO commandstats delta);
#   - how late a retry with a 200 ms backoff starts after its due time (p50 / max, ms);
#   - bulk enqueue of 100,000 jobs in batches of 1,000 (jobs/s), and Redis used_memory per waiting
#     job and per retained completed job (bytes); the run of those 100,000 jobs at concurrency 50
#     (`jobs.backlog.c50`, jobs/s and CPU per job, ten times the jobs of the throughput rows);
#   - 10,000 delayed jobs due at one moment: how late they start (p50 / max, ms);
# and the eventmill/BullMQ ratios (`.ratio`: Node, `.ratio_rs`: the Rust port). Prints `RESULT`,
# `CPU`, `CEILING` and `TARGET` lines.
# EVENTMILL_BASELINE_BIN (optional): another eventmill binary (e.g. a release build of an older
# commit) measured as a fourth system in the same rotation, its rows suffixed `.eventmill_before`:
# before/after figures from one run.
#   scripts/bench/jobs.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=""
[[ "${1:-}" == "--quick" ]] && quick=1
jobs=10000 samples=50 retries=20 seconds=16 bulk=100000 delayed=10000
if [[ -n "$quick" ]]; then jobs=2000 samples=15 retries=8 seconds=3 bulk=10000 delayed=2000; fi

: "${EVENTMILL_REDIS_URL:?set EVENTMILL_REDIS_URL (the driver does)}"
bin="${EVENTMILL_BIN:-target/release/eventmill}"
[[ -x "$bin" ]] || { echo "error: $bin is missing: cargo build --release (or set EVENTMILL_BIN)" >&2; exit 1; }
command -v node >/dev/null || { echo "error: node is missing (apt-get install nodejs npm)" >&2; exit 1; }

bullmq_dir=scripts/bench/bullmq
if [[ ! -d "$bullmq_dir/node_modules/bullmq" || ! -d "$bullmq_dir/node_modules/ioredis" ]] ||
    ! grep -q '"version": "6.7.6"' "$bullmq_dir/node_modules/bullmq/package.json"; then
    echo "installing bullmq 6.7.6 and ioredis into $bullmq_dir/node_modules (git-ignored)" >&2
    npm ci --prefix "$bullmq_dir" --no-audit --no-fund --silent >&2
fi
rs_dir=scripts/bench/bullmq-rs
echo "building $rs_dir (bullmq-official; its target/ is git-ignored)" >&2
nice -n 10 cargo build --release --locked --quiet --manifest-path "$rs_dir/Cargo.toml" >&2
rs_bin="${CARGO_TARGET_DIR:-$rs_dir/target}/release/eventmill-bench-bullmq-rs"
baseline_bin="${EVENTMILL_BASELINE_BIN:-}"
[[ -z "$baseline_bin" || -x "$baseline_bin" ]] || { echo "error: EVENTMILL_BASELINE_BIN=$baseline_bin is not an executable" >&2; exit 1; }

export EVENTMILL_LOG="${EVENTMILL_LOG:-error}"
export BENCH_CLK_TCK="${BENCH_CLK_TCK:-$(getconf CLK_TCK)}"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# Each program's lines are collected (and shown on stderr as they come); they are printed at the
# end grouped by measurement, eventmill / Node / Rust port, whatever order they ran in.
eventmill() { "$bin" bench-jobs "$@" | tee -a "$results" >&2; }
bullmq() { node "$bullmq_dir/bench.mjs" "$@" | tee -a "$results" >&2; }
bullmq_rs() { "$rs_bin" "$@" | tee -a "$results" >&2; }
baseline() {
    "$baseline_bin" bench-jobs "$@" | sed -E 's/\.eventmill( |$)/.eventmill_before\1/g' | tee -a "$results" >&2
}

# all3 ARGS...: the same measurement by the three (four with a baseline), in an order rotated at
# every call.
systems=(eventmill bullmq bullmq_rs)
[[ -n "$baseline_bin" ]] && systems+=(baseline)
turn=0
all3() {
    local n=${#systems[@]} i
    for ((i = 0; i < n; i++)); do "${systems[$(((turn + i) % n))]}" "$@"; done
    turn=$((turn + 1))
}

for c in 1 50; do all3 throughput --jobs "$jobs" --concurrency "$c"; done
all3 pickup --samples "$samples"
all3 idle --seconds "$seconds"
all3 retry --samples "$retries"
all3 bulk --jobs "$bulk" --batch 1000
all3 delayed --jobs "$delayed" --batch 1000

python3 - "$results" <<'PY'
import sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
systems = {"eventmill": 0, "bullmq": 1, "bullmq_rs": 2, "eventmill_before": 3}
first = {}
def key(i, line):
    metric = line.split()[1] if len(line.split()) > 1 else ""
    base, _, system = metric.rpartition(".")
    first.setdefault(base, i)
    return (first[base], systems.get(system, 3), i)
for _, line in sorted((key(i, l), l) for i, l in enumerate(lines)):
    print(line)
PY

# eventmill / BullMQ where higher is better (rates), BullMQ / eventmill where lower is better
# (pickup: `.speedup`), eventmill / BullMQ for memory (lower is better: below 1 is less memory);
# `.vs_before`: eventmill / the baseline binary (when EVENTMILL_BASELINE_BIN is set).
awk '$1 == "RESULT" { v[$2] = $3 }
     function ratio(name, e, b) { if (b > 0 && e > 0) printf "RESULT %s %.2f x\n", name, e / b }
     END {
       n = split("noop.c1 noop.c50 bulk_enqueue", higher, " ")
       for (i = 1; i <= n; i++) {
         m = "jobs." higher[i]
         ratio(m ".ratio", v[m ".eventmill"], v[m ".bullmq"])
         ratio(m ".ratio_rs", v[m ".eventmill"], v[m ".bullmq_rs"])
         ratio(m ".vs_before", v[m ".eventmill"], v[m ".eventmill_before"])
       }
       ratio("jobs.memory.waiting.vs_before", v["jobs.memory.waiting.eventmill"], v["jobs.memory.waiting.eventmill_before"])
       ratio("jobs.pickup.p95.speedup", v["jobs.pickup.p95.bullmq"], v["jobs.pickup.p95.eventmill"])
       ratio("jobs.pickup.p95.speedup_rs", v["jobs.pickup.p95.bullmq_rs"], v["jobs.pickup.p95.eventmill"])
       ratio("jobs.memory.waiting.ratio", v["jobs.memory.waiting.eventmill"], v["jobs.memory.waiting.bullmq"])
       ratio("jobs.memory.waiting.ratio_rs", v["jobs.memory.waiting.eventmill"], v["jobs.memory.waiting.bullmq_rs"])
     }' "$results"
# Issue 23's targets.
cat <<'EOF'
TARGET jobs.noop.c1.ratio >= 1.5
TARGET jobs.noop.c1.ratio_rs >= 1.5
TARGET jobs.noop.c50.ratio >= 3
TARGET jobs.noop.c50.ratio_rs >= 2.5
TARGET jobs.pickup.p95.eventmill <= 0.5
TARGET jobs.bulk_enqueue.ratio >= 2
TARGET jobs.bulk_enqueue.ratio_rs >= 2
TARGET jobs.memory.waiting.ratio <= 1
TARGET jobs.memory.waiting.ratio_rs <= 1
EOF
