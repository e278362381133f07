# The local Redis Cluster of scripts/services.sh (sourced by it; uses its helpers: redis_cli,
# proc_alive, port_free, valid_port, have, log, warn, die, and its CLUSTER_* / LOG_DIR variables).
#
# A 3-master Redis Cluster on loopback (no replicas) for the cluster tests: node i listens on
# CLUSTER_PORT+i, its cluster bus on +10000, and keeps nodes.conf and its AOF in cluster/<port>/,
# so a restarted node rejoins with its slots and data.

cluster_node_ports() { # the nodes' ports, one a line
    local i
    for ((i = 0; i < CLUSTER_NODES; i++)); do printf '%s\n' "$((CLUSTER_PORT + i))"; done
}
cluster_node_dir() { printf '%s' "$CLUSTER_DIR/$1"; }

cluster_url() {
    local p urls=()
    for p in $(cluster_node_ports); do urls+=("redis://127.0.0.1:$p"); done
    local IFS=,
    printf '%s' "${urls[*]}"
}

# the cluster node on port $1 is up, in cluster mode, and ours (its dir is our node dir)
cluster_node_alive() {
    local p="$1" out dir want
    want="$(cluster_node_dir "$p")"
    [[ -n "$p" && -d "$want" ]] && have redis-cli || return 1
    [[ "$(redis_cli "$p" ping 2>/dev/null)" == PONG ]] || return 1
    out="$(redis_cli "$p" config get dir 2>/dev/null)" || return 1
    dir="$(printf '%s\n' "$out" | sed -n 2p)"
    [[ "$dir" == "$(cd "$want" && pwd -P)" ]] || return 1
    redis_cli "$p" info cluster 2>/dev/null | grep -q '^cluster_enabled:1'
}

cluster_node_pid() { # pid from the node's pidfile if that process is a live redis-server
    local pid f
    f="$(cluster_node_dir "$1")/redis.pid"
    [[ -f "$f" ]] || return 1
    pid="$(head -n1 "$f" 2>/dev/null)"
    proc_alive "$pid" redis-server || return 1
    printf '%s' "$pid"
}

# `cluster info` field $2 of the node on port $1
cluster_info_field() {
    redis_cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2:\(.*\)/\1/p"
}

# every node is ours, sees the cluster as ok, knows every node, and every slot is served
cluster_healthy() {
    local p
    for p in $(cluster_node_ports); do
        cluster_node_alive "$p" || return 1
        [[ "$(cluster_info_field "$p" cluster_state)" == ok ]] || return 1
        [[ "$(cluster_info_field "$p" cluster_known_nodes)" == "$CLUSTER_NODES" ]] || return 1
        [[ "$(cluster_info_field "$p" cluster_size)" == "$CLUSTER_NODES" ]] || return 1
        [[ "$(cluster_info_field "$p" cluster_slots_ok)" == 16384 ]] || return 1
    done
}

wait_cluster_healthy() { # $1 seconds
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        cluster_healthy && return 0
        sleep 0.2
    done
    cluster_healthy
}

start_cluster_node() {
    local p="$1" dir log
    dir="$(cluster_node_dir "$p")"
    log="$LOG_DIR/cluster-$p.log"
    mkdir -p "$dir" "$LOG_DIR"
    # fd 9 (our lock) must not leak into the daemon
    redis-server \
        --port "$p" \
        --bind 127.0.0.1 \
        --daemonize yes \
        --dir "$dir" \
        --pidfile "$dir/redis.pid" \
        --logfile "$log" \
        --cluster-enabled yes \
        --cluster-config-file nodes.conf \
        --cluster-node-timeout 5000 \
        --appendonly yes \
        --appendfsync everysec \
        --save "" \
        --maxmemory-policy noeviction \
        9>&- </dev/null >/dev/null ||
        die "redis-server (cluster node $p) failed to start; see $log"
    local i
    for ((i = 0; i < 100; i++)); do
        cluster_node_alive "$p" && return 0
        sleep 0.2
    done
    tail -n 20 "$log" >&2 || true
    die "cluster node did not answer on 127.0.0.1:$p within 20s; see $log"
}

stop_cluster_node() { # returns 1 if it was not running
    local p="$1" pid i
    pid="$(cluster_node_pid "$p" || true)"
    if cluster_node_alive "$p"; then
        redis_cli "$p" shutdown >/dev/null 2>&1 || true # SHUTDOWN fsyncs the AOF and nodes.conf
    elif [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
    else
        return 1
    fi
    for ((i = 0; i < 150; i++)); do
        if [[ -n "$pid" ]]; then
            proc_alive "$pid" redis-server || return 0
        else
            cluster_node_alive "$p" || return 0
        fi
        sleep 0.2
    done
    die "cluster node $p (pid ${pid:-?}) did not stop within 30s"
}

# Fresh nodes (data and nodes.conf wiped), joined into one cluster with the slots split evenly.
create_cluster() {
    local p nodes=()
    for p in $(cluster_node_ports); do
        stop_cluster_node "$p" || true
        rm -rf -- "$(cluster_node_dir "$p")"
        start_cluster_node "$p"
        nodes+=("127.0.0.1:$p")
    done
    timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
        >>"$LOG_DIR/cluster-create.log" 2>&1 </dev/null ||
        die "redis-cli --cluster create ${nodes[*]} failed; see $LOG_DIR/cluster-create.log"
    wait_cluster_healthy 30 ||
        die "the cluster on ${nodes[*]} did not reach cluster_state:ok within 30s; see $LOG_DIR/cluster-*.log"
}

# Keeps a healthy cluster, restarts stopped nodes of a formed one (they rejoin with their data),
# and rebuilds anything else (never formed, wrong ports, lost nodes.conf). Prints what it did.
ensure_cluster() {
    cluster_healthy && { printf 'already running'; return 0; }
    local p formed=1
    for p in $(cluster_node_ports); do
        [[ -s "$(cluster_node_dir "$p")/nodes.conf" ]] || formed=""
    done
    if [[ -n "$formed" ]]; then
        local wait=3 # running nodes that disagree: a short grace, then rebuild
        for p in $(cluster_node_ports); do
            cluster_node_alive "$p" && continue
            start_cluster_node "$p"
            wait=15 # a restarted node takes a few gossip rounds to rejoin
        done
        if wait_cluster_healthy "$wait"; then
            printf 'restarted'
            return 0
        fi
        warn "the cluster on port $CLUSTER_PORT.. is not healthy after a restart; rebuilding it (its data is lost)"
    fi
    create_cluster
    printf 'created'
}

# every node port is ours or free, and so is its cluster bus port
cluster_ports_usable() { # first port, ports to avoid...
    local first="$1" p i
    shift
    for ((i = 0; i < CLUSTER_NODES; i++)); do
        p=$((first + i))
        valid_port "$((p + 10000))" || return 1
        [[ " $* " == *" $p "* || " $* " == *" $((p + 10000)) "* ]] && return 1
        [[ -d "$(cluster_node_dir "$p")" ]] && cluster_node_alive "$p" && continue
        port_free "$p" && port_free "$((p + 10000))" || return 1
    done
}

# The cluster's first port: forced, remembered, else the first usable one from 7000. Prints it.
choose_cluster_port() { # ports to avoid...
    local forced="${EVENTMILL_CLUSTER_PORT:-}" p
    if [[ -n "$forced" ]]; then
        valid_port "$forced" || die "invalid cluster port '$forced'"
        if [[ -n "$CLUSTER_PORT" && "$CLUSTER_PORT" != "$forced" ]] && cluster_node_alive "$CLUSTER_PORT"; then
            die "the cluster from $EM_HOME is already running on port $CLUSTER_PORT (requested $forced); run '$PROG down' first"
        fi
        cluster_ports_usable "$forced" "$@" ||
            die "cluster ports $forced..$((forced + CLUSTER_NODES - 1)) (or their bus ports +10000, from the environment) are in use by another process"
        printf '%s' "$forced"
        return 0
    fi
    if [[ -n "$CLUSTER_PORT" ]]; then
        if cluster_ports_usable "$CLUSTER_PORT" "$@"; then
            printf '%s' "$CLUSTER_PORT"
            return 0
        fi
        warn "remembered cluster ports $CLUSTER_PORT.. are now used by another process; choosing new ones"
    fi
    for ((p = DEFAULT_CLUSTER_PORT; p <= DEFAULT_CLUSTER_PORT + 300; p += CLUSTER_NODES)); do
        if cluster_ports_usable "$p" "$@"; then
            printf '%s' "$p"
            return 0
        fi
    done
    die "no $CLUSTER_NODES free consecutive ports (and bus ports +10000) from $DEFAULT_CLUSTER_PORT; set EVENTMILL_CLUSTER_PORT"
}
