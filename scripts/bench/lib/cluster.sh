# A local 3-master Redis Cluster for the benchmarks (sourced, not run): Debian redis-server in cluster
# mode on loopback ports EVENTMILL_BENCH_CLUSTER_PORT .. +2 (default 7260-7262), no replicas, AOF on,
# each node under $CLUSTER_DIR/<port>. cluster_up exports EVENTMILL_REDIS_URL (the three nodes) and
# BENCH_REDIS_PID (their pids) for the eventmill processes and the CPU snapshots; cluster_down stops
# every node (call it from the scenario's EXIT trap).

CLUSTER_BASE="${EVENTMILL_BENCH_CLUSTER_PORT:-7260}"
CLUSTER_PORTS=("$CLUSTER_BASE" "$((CLUSTER_BASE + 1))" "$((CLUSTER_BASE + 2))")
CLUSTER_DIR="${CLUSTER_DIR:-$(cd "$BENCH_LIB/../../.." && pwd -P)/target/bench/cluster}"

cluster_node_pid() { cat "$CLUSTER_DIR/$1/redis.pid" 2>/dev/null; }

# cluster_node_start PORT: starts (or restarts, keeping nodes.conf and the AOF) one node.
cluster_node_start() {
    local p="$1" d="$CLUSTER_DIR/$1" i
    mkdir -p "$d"
    redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --dir "$d" --pidfile "$d/redis.pid" \
        --logfile "$d/redis.log" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 5000 --appendonly yes --appendfsync "${CLUSTER_FSYNC:-everysec}" --save "" \
        --maxmemory-policy noeviction </dev/null >/dev/null
    for i in $(seq 200); do
        redis-cli -p "$p" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "cluster: redis-server on port $p did not answer; see $d/redis.log" >&2
    return 1
}

# Waits until every node reports cluster_state:ok (all slots served).
cluster_wait_ok() {
    local i p ok
    for i in $(seq 300); do
        ok=1
        for p in "${CLUSTER_PORTS[@]}"; do
            redis-cli -p "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
        done
        [[ $ok == 1 ]] && return 0
        sleep 0.1
    done
    echo "cluster: not ok after 30 s" >&2
    return 1
}

# Exports BENCH_REDIS_PID: the nodes' pids, comma-separated (they change when a node restarts).
cluster_pids() {
    local p pids=()
    for p in "${CLUSTER_PORTS[@]}"; do pids+=("$(cluster_node_pid "$p")"); done
    BENCH_REDIS_PID=$(IFS=,; echo "${pids[*]}")
    export BENCH_REDIS_PID
}

# Starts a fresh cluster (any earlier one of this directory is stopped and wiped).
cluster_up() {
    local p urls=() hosts=()
    cluster_down
    rm -rf "$CLUSTER_DIR"
    for p in "${CLUSTER_PORTS[@]}"; do
        cluster_node_start "$p"
        urls+=("redis://127.0.0.1:$p")
        hosts+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
        { cat "$CLUSTER_DIR/create.log" >&2; return 1; }
    cluster_wait_ok
    EVENTMILL_REDIS_URL=$(IFS=,; echo "${urls[*]}")
    export EVENTMILL_REDIS_URL
    cluster_pids
}

# Stops every node of $CLUSTER_DIR that runs (SIGTERM, then waits for it to exit).
cluster_down() {
    local p pid i
    for p in "${CLUSTER_PORTS[@]}"; do
        pid=$(cluster_node_pid "$p") || continue
        [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    return 0
}

# cluster_port_of KEY: the port of the master that serves KEY's slot.
cluster_port_of() {
    local slot
    slot=$(redis-cli -p "${CLUSTER_PORTS[0]}" CLUSTER KEYSLOT "$1")
    redis-cli -p "${CLUSTER_PORTS[0]}" CLUSTER NODES | python3 -c '
import sys
slot = int(sys.argv[1])
for line in sys.stdin:
    fields = line.split()
    if len(fields) < 9 or "master" not in fields[2]:
        continue
    for r in fields[8:]:
        if r.startswith("["):
            continue  # a slot being migrated
        lo, _, hi = r.partition("-")
        if int(lo) <= slot <= int(hi or lo):
            print(fields[1].split("@")[0].rsplit(":", 1)[1])
' "$slot"
}
