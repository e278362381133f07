#!/usr/bin/env bash
# Benchmark scenario "jobs" (contract: COMMON.md / scripts/bench.sh): no-op jobs through eventmill's
# queue and worker (`$EVENTMILL_BIN bench-jobs`, release build) and through BullMQ 6 (npm `bullmq`,
# node, scripts/bench/bullmq) on the same Redis, one after the other in this one run:
#   - throughput of a 10,000-job backlog at concurrency 1 and 50 (jobs/s),
#   - idle pickup p50 / p95 (enqueue call to handler start, ms),
#   - Redis commands/s while a worker is idle (INFO commandstats delta),
#   - how late a retry with a 200 ms backoff starts after its due time (p50 / max, ms),
# and the eventmill/BullMQ ratios. Prints `RESULT <metric> <value> <unit>` lines.
#   scripts/bench/jobs.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=""
[[ "${1:-}" == "--quick" ]] && quick=1
jobs=10000 samples=50 retries=20 seconds=16
if [[ -n "$quick" ]]; then jobs=2000 samples=15 retries=8 seconds=3; fi

: "${EVENTMILL_REDIS_URL:?set EVENTMILL_REDIS_URL (the driver does)}"
bin="${EVENTMILL_BIN:-target/release/eventmill}"
[[ -x "$bin" ]] || { echo "error: $bin is missing: cargo build --release (or set EVENTMILL_BIN)" >&2; exit 1; }
command -v node >/dev/null || { echo "error: node is missing (apt-get install nodejs npm)" >&2; exit 1; }

bullmq_dir=scripts/bench/bullmq
if [[ ! -d "$bullmq_dir/node_modules/bullmq" ]]; then
    echo "installing bullmq into $bullmq_dir/node_modules (git-ignored)" >&2
    npm ci --prefix "$bullmq_dir" --no-audit --no-fund --silent >&2
fi

export EVENTMILL_LOG="${EVENTMILL_LOG:-error}"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

eventmill() { "$bin" bench-jobs "$@" | tee -a "$results"; }
bullmq() { node "$bullmq_dir/bench.mjs" "$@" | tee -a "$results"; }

for c in 1 50; do
    eventmill throughput --jobs "$jobs" --concurrency "$c"
    bullmq throughput --jobs "$jobs" --concurrency "$c"
done
eventmill pickup --samples "$samples"
bullmq pickup --samples "$samples"
eventmill idle --seconds "$seconds"
bullmq idle --seconds "$seconds"
eventmill retry --samples "$retries"
bullmq retry --samples "$retries"

# eventmill / BullMQ for throughput (higher is better) and BullMQ / eventmill for pickup (lower is better).
awk '$1 == "RESULT" { v[$2] = $3 }
     END {
       for (c = 1; c <= 50; c += 49) {
         e = v["jobs.noop.c" c ".eventmill"]; b = v["jobs.noop.c" c ".bullmq"]
         if (b > 0) printf "RESULT jobs.noop.c%d.ratio %.2f x\n", c, e / b
       }
       e = v["jobs.pickup.p95.eventmill"]; b = v["jobs.pickup.p95.bullmq"]
       if (e > 0) printf "RESULT jobs.pickup.p95.speedup %.2f x\n", b / e
     }' "$results"
