//! A private 3-master Redis Cluster for the cluster fault tests (the shared one of
//! `scripts/services.sh` is never touched), with or without one replica per master: free ports,
//! its own temporary folder, AOF with `appendfsync always` (a master killed and restarted keeps
//! every write it acknowledged), removed on drop. Also what the tests do to it: kill and restart a
//! master, wait for a replica to take over a killed master's slots, move a slot to another master
//! while clients use it.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::private::free_port;

/// How long a master may be unreachable before the others mark it failed (and, with no replicas,
/// the whole cluster refuses commands until it is back: `cluster-require-full-coverage`; with
/// replicas, one of its replicas is elected in its place about a second later).
const NODE_TIMEOUT_MS: u64 = 1000;

struct Node {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts a new node, on other free ports if its own were taken before it could bind them.
    fn start(&mut self) {
        for _ in 0..5 {
            if self.spawn() {
                return;
            }
            (self.port, self.bus_port) = (free_port(), free_port());
        }
        panic!(
            "no cluster node started in 5 tries: redis-server exited each time (run it by hand with these arguments to see why)"
        );
    }

    /// Starts the node on its ports and data; false if redis-server exited (a port was taken).
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-port", &self.bus_port.to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while cli(self.port, &["ping"]).as_deref() != Some("PONG") {
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return false;
            }
            assert!(Instant::now() < deadline, "cluster node {} did not answer within 30 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// `kill -<signal>` of the running process.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running node").id().to_string();
        assert!(Command::new("kill").arg(format!("-{signal}")).arg(pid).status().unwrap().success());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

/// `redis-cli -p <port> <args>`'s output, trimmed; None if it failed.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let output =
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Three masters, the slots split evenly, each with `replicas` replicas (`redis-cli --cluster
/// create`).
pub struct PrivateCluster {
    nodes: Vec<Node>,
    replicas: usize,
}

impl PrivateCluster {
    /// Three masters without replicas. Blocking (processes and sleeps): call it inside
    /// `tokio::task::block_in_place`, as every blocking method here.
    pub fn start() -> Self {
        Self::with_replicas(0)
    }

    /// Three masters with `replicas` replicas each; returns once every replica is in sync.
    pub fn with_replicas(replicas: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("eventmill-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut nodes: Vec<Node> = (0..3 * (1 + replicas))
            .map(|i| {
                let node_dir = dir.join(format!("node{i}"));
                std::fs::create_dir_all(&node_dir).unwrap();
                Node { port: free_port(), bus_port: free_port(), dir: node_dir, child: None }
            })
            .collect();
        nodes.iter_mut().for_each(Node::start);
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create {addresses:?} failed");
        let cluster = Self { nodes, replicas };
        cluster.wait_healthy();
        cluster
    }

    /// `EVENTMILL_REDIS_URL` for it: every node, comma-separated.
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    /// Waits (up to 30 s) until every node sees the cluster as ok with every node, and every
    /// replica is in sync with its master.
    pub fn wait_healthy(&self) {
        wait_until("the private cluster did not become healthy", || self.healthy() && self.replicas_in_sync());
    }

    /// Every running node sees every slot served and the cluster ok.
    fn healthy(&self) -> bool {
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
            let info = cli(n.port, &["cluster", "info"]).unwrap_or_default();
            ["cluster_state:ok", "cluster_slots_ok:16384", &known]
                .iter()
                .all(|field| info.lines().any(|l| l.trim() == *field))
        })
    }

    /// Every master has its replicas, each with its link to the master up.
    fn replicas_in_sync(&self) -> bool {
        self.nodes.iter().all(|n| {
            let info = cli(n.port, &["info", "replication"]).unwrap_or_default();
            let has = |field: &str| info.lines().any(|l| l.trim() == field);
            has("master_link_status:up") || has(&format!("connected_slaves:{}", self.replicas))
        })
    }

    /// After the master on `dead` was killed: waits (up to 30 s) until one of its replicas serves
    /// `key`'s slot and every running node sees the cluster ok again; returns the new master's port.
    pub fn wait_failover(&self, dead: u16, key: &str) -> u16 {
        let mut promoted = dead;
        wait_until("no replica took over the killed master's slots", || {
            // Mid-election, a node's view may show no master for the slot: not yet.
            promoted = self.serving(key).map_or(dead, |(port, _)| port);
            promoted != dead && self.healthy()
        });
        promoted
    }

    /// The port of the master serving `key`'s slot, and the slot (as a running node sees it).
    pub fn master_of(&self, key: &str) -> (u16, u16) {
        self.serving(key).expect("every slot is served")
    }

    /// [`PrivateCluster::master_of`], or None while no master serves the slot (in an election).
    fn serving(&self, key: &str) -> Option<(u16, u16)> {
        let port = self.nodes.iter().find(|n| n.child.is_some()).expect("a running node").port;
        let slot: u16 = cli(port, &["cluster", "keyslot", key]).unwrap().parse().unwrap();
        let owner = self.topology().into_iter().find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)));
        Some((owner?.port, slot))
    }

    /// A master other than the one on `port`.
    pub fn other_master(&self, port: u16) -> u16 {
        self.topology().into_iter().filter(|m| !m.slots.is_empty()).map(|m| m.port).find(|p| *p != port).unwrap()
    }

    /// SIGKILL of the master on `port`: a crash (its AOF has every acknowledged write).
    pub fn kill(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Starts the master on `port` again, on its data and `nodes.conf`; waits until the cluster is
    /// whole again.
    pub fn restart(&mut self, port: u16) {
        assert!(self.node(port).spawn(), "the master on port {port} did not start again");
        self.wait_healthy();
    }

    /// SIGSTOP of the node on `port`: a replica that falls behind (it reads nothing of its
    /// master's replication stream until [`PrivateCluster::thaw`]).
    pub fn freeze(&mut self, port: u16) {
        self.node(port).signal("STOP");
    }

    pub fn thaw(&mut self, port: u16) {
        self.node(port).signal("CONT");
    }

    /// The port of the (first) replica of the master on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        let master = self.topology().into_iter().find(|m| m.port == port).expect("a master of this cluster");
        let text = self.nodes.iter().find_map(|n| cli(n.port, &["cluster", "nodes"])).expect("a live node");
        let replica = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.len() > 3 && fields[2].contains("slave") && fields[3] == master.id);
        let address = replica.expect("the master has a replica")[1];
        address.split('@').next().unwrap().rsplit(':').next().unwrap().parse().unwrap()
    }

    fn node(&mut self, port: u16) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster")
    }

    /// Each master's id, port and slot ranges (`CLUSTER NODES` of the first running node).
    fn topology(&self) -> Vec<Master> {
        let text = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .find_map(|n| cli(n.port, &["cluster", "nodes"]))
            .expect("a running node");
        text.lines().filter_map(Master::parse).collect()
    }

    /// Moves `slot` from its master to the master on `to` while clients keep using it, as
    /// `redis-cli --cluster reshard` does: IMPORTING on the target, MIGRATING on the source, the
    /// keys in batches of `batch` (MIGRATE ... KEYS, with `pause` between batches: clients meanwhile
    /// get ASK and TRYAGAIN), then the slot assigned to the target on every master. Returns how many
    /// keys were moved.
    pub async fn migrate_slot(&self, slot: u16, to: u16, batch: usize, pause: Duration) -> usize {
        let masters = self.topology();
        let source = masters.iter().find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))).unwrap();
        let target = masters.iter().find(|m| m.port == to).unwrap();
        assert_ne!(source.port, target.port, "the slot is already on {to}");
        let (mut from_conn, mut to_conn) = (connect(source.port).await, connect(target.port).await);
        let setslot = |state: &str, id: &str| redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(id).clone();
        let _: () = setslot("IMPORTING", &source.id).query_async(&mut to_conn).await.unwrap();
        let _: () = setslot("MIGRATING", &target.id).query_async(&mut from_conn).await.unwrap();
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(batch)
                .query_async(&mut from_conn)
                .await
                .unwrap();
            if keys.is_empty() {
                break;
            }
            let mut migrate = redis::cmd("MIGRATE");
            migrate.arg("127.0.0.1").arg(target.port).arg("").arg(0).arg(5000).arg("KEYS").arg(&keys);
            let _: redis::Value = migrate.query_async(&mut from_conn).await.unwrap();
            moved += keys.len();
            tokio::time::sleep(pause).await;
        }
        // The target first, then the source, then the others (the order `redis-cli` uses).
        let mut order = vec![target, source];
        order.extend(masters.iter().filter(|m| m.port != source.port && m.port != target.port));
        for master in order {
            let _: () = setslot("NODE", &target.id).query_async(&mut connect(master.port).await).await.unwrap();
        }
        moved
    }
}

/// A node is never left running, even by a cluster that panicked while it was being set up.
impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.nodes.iter_mut().for_each(Node::kill);
        if let Some(dir) = self.nodes.first().and_then(|n| n.dir.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Polls `done` every 50 ms for up to 30 s; panics with `failure` if it never holds.
fn wait_until(failure: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{failure} within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain (not cluster-aware) connection to one node, for the commands addressed to that node.
async fn connect(port: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// One master of `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch>
/// <link> <slot ranges...>`.
struct Master {
    id: String,
    port: u16,
    slots: Vec<(u16, u16)>,
}

impl Master {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].contains("master") {
            return None;
        }
        let port = fields[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
        let slots = fields[8..]
            .iter()
            .filter(|r| !r.starts_with('[')) // [slot->-id]: a migration in progress
            .filter_map(|r| match r.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => r.parse().ok().map(|s| (s, s)),
            })
            .collect();
        Some(Self { id: fields[0].to_owned(), port, slots })
    }
}
