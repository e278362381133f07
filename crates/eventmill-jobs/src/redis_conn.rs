//! One Redis connection type for a single node and for Redis Cluster (SPEC section 15).
//!
//! `EVENTMILL_REDIS_URL` names one node (`redis://host:6379`) or the nodes of a cluster,
//! separated by commas (`redis://a:7000,redis://b:7000`); `EVENTMILL_REDIS_CLUSTER=true` asks
//! for cluster mode with a single seed node. Everything else in eventmill talks to a
//! [`RedisConn`], which implements the redis crate's `ConnectionLike`: commands, scripts and
//! pipelines are written once. On a cluster the redis crate routes each command by its key's
//! slot and follows MOVED/ASK redirections and failovers by itself; eventmill's part is that every
//! key one script, transaction or pipeline touches shares a hash tag (see `queue::Queue`,
//! `stream::StreamKeys`, `live::LiveKeys`).

use std::time::Duration;

use redis::{
    Cmd, ErrorKind, RedisFuture, RedisResult, ServerErrorKind, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{
        MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
    },
};

/// Where Redis is: one node or a cluster, and how many replicas must have a write before it is
/// acknowledged (cheap to clone; connects nothing by itself).
#[derive(Clone)]
pub struct RedisTarget {
    client: Client,
    wait: ReplicaWait,
}

#[derive(Clone)]
enum Client {
    Node(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// `EVENTMILL_REDIS_WAIT_REPLICAS`: replication is asynchronous, so a write a master acknowledged
/// but had not yet sent to its replica is lost when that replica takes the master's place. With
/// `replicas > 0`, eventmill acknowledges an accepted request (202) or enqueued job only after
/// `WAIT replicas timeout` confirmed it on that many replicas, and answers "unavailable" (503:
/// the client re-sends, deduplicated by its ids or idempotency key) when fewer confirmed in time.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicaWait {
    /// Replicas that must confirm (0: no wait).
    pub replicas: u32,
    /// Longest wait for them before answering unavailable.
    pub timeout: Duration,
}

impl RedisTarget {
    /// `url`: one node, or cluster nodes separated by commas; `cluster` forces cluster mode for a
    /// single seed node.
    pub fn new(url: &str, cluster: bool) -> RedisResult<Self> {
        let nodes: Vec<&str> = url.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let client = if nodes.len() > 1 || cluster {
            // Few retries: a caller's own timeout (the API's 503) must come first, and a master
            // that is down stays down for longer than any retry would wait.
            Client::Cluster(Box::new(ClusterClient::builder(nodes).retries(3).build()?))
        } else {
            Client::Node(redis::Client::open(url)?)
        };
        Ok(Self { client, wait: ReplicaWait::default() })
    }

    /// The target whose connections confirm acknowledged writes on replicas (see [`ReplicaWait`]).
    pub fn with_replica_wait(self, wait: ReplicaWait) -> Self {
        Self { wait, ..self }
    }

    /// Whether this is a Redis Cluster (several nodes, or cluster mode asked for).
    pub fn is_cluster(&self) -> bool {
        matches!(self.client, Client::Cluster(_))
    }

    /// A connection that reconnects by itself; `response_timeout` bounds every command. Lazy:
    /// eventmill starts (and answers 503) while Redis is down, and connects once it is up. Each
    /// call opens connections of its own (a blocking command on one stalls only its owner).
    pub fn connect(&self, response_timeout: Duration) -> RedisResult<RedisConn> {
        let inner = match &self.client {
            Client::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(1000)))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Conn::Node(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
            }
            Client::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(Duration::from_millis(1000))
                    .set_response_timeout(response_timeout);
                Conn::Cluster(client.get_pending_async_connection_with_config(config))
            }
        };
        Ok(RedisConn { inner, wait: self.wait })
    }
}

/// A connection to one node or to a whole cluster; clones share it.
#[derive(Clone)]
pub struct RedisConn {
    inner: Conn,
    wait: ReplicaWait,
}

#[derive(Clone)]
enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Whether this connection talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Conn::Cluster(_))
    }

    /// Before acknowledging a write made on this connection: with `EVENTMILL_REDIS_WAIT_REPLICAS`
    /// set, waits until that many replicas of the write's master have it. `proof` makes the
    /// command that reads the write back (only called when waiting: the default costs nothing) (`EXISTS` of a key it created, `XRANGE` of the entry it added): `WAIT` and
    /// `proof` go in one pipeline, routed by `proof`'s key, so both run on the node that holds
    /// the slot now. `WAIT` alone could not be trusted on a cluster: after a connection error the
    /// redis crate resends a keyless command to another node, whose replicas then answer for
    /// writes they never saw. Fewer replicas within the timeout, or the write missing (its master
    /// failed over before its replica had it), is an error the caller answers "try again" (503).
    pub async fn replicated(&mut self, proof: impl FnOnce() -> Cmd) -> RedisResult<()> {
        let ReplicaWait { replicas, timeout } = self.wait;
        if replicas == 0 {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        // WAIT 0 would wait forever.
        pipe.cmd("WAIT").arg(replicas).arg(timeout.as_millis().max(1) as u64).add_command(proof());
        let (acknowledged, found): (u32, Value) = pipe.query_async(self).await?;
        let present = match found {
            Value::Int(n) => n > 0,
            Value::Array(items) => !items.is_empty(),
            Value::Nil => false,
            _ => true,
        };
        if !present {
            let detail = "the write is no longer on its slot's master (it failed over first)".to_owned();
            return Err((ErrorKind::Io, "write lost in a failover", detail).into());
        }
        if acknowledged < replicas {
            let detail = format!(
                "{acknowledged} of the {replicas} replicas (EVENTMILL_REDIS_WAIT_REPLICAS) confirmed the write within {} ms",
                timeout.as_millis()
            );
            return Err((ErrorKind::Io, "too few replicas", detail).into());
        }
        Ok(())
    }

    /// Runs `cmd` on every master (one node: on it), failing if any fails: health checks and
    /// commands about the whole keyspace.
    pub async fn on_every_master<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<Vec<T>> {
        match &mut self.inner {
            Conn::Node(conn) => Ok(vec![cmd.query_async(conn).await?]),
            Conn::Cluster(conn) => {
                let routing =
                    RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::Special)));
                let value = conn.route_command(cmd.clone(), routing).await?;
                match value {
                    // Special: one (node address, answer) pair per master.
                    Value::Map(pairs) => pairs.into_iter().map(|(_, v)| Ok(redis::from_redis_value(v)?)).collect(),
                    other => Ok(vec![redis::from_redis_value(other)?]),
                }
            }
        }
    }

    /// The keys matching `pattern` on the node that holds `tagged_key`'s slot: `pattern` must
    /// name keys of the same hash tag (on one node, simply every match).
    pub async fn keys_in_slot_of(&mut self, tagged_key: &str, pattern: &str) -> RedisResult<Vec<String>> {
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
            let (next, batch): (u64, Vec<String>) = match &mut self.inner {
                Conn::Node(conn) => scan.query_async(conn).await?,
                Conn::Cluster(conn) => {
                    let route = Route::with_key(tagged_key.as_bytes(), SlotAddr::Master);
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                    redis::from_redis_value(conn.route_command(scan, routing).await?)?
                }
            };
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// Where a transaction's slot has moved: its slot and new master.
struct Moved {
    slot: u16,
    host: String,
    port: u16,
}

/// A transaction (MULTI/EXEC pipeline) refused because its slot moved to another master (after a
/// slot migration or a failover): the node answers MOVED to each queued command and EXECABORT, so
/// nothing of it ran. The redis crate follows MOVED for commands and plain pipelines but not
/// inside a transaction, and keeps its old slot map: without help, a connection that only sends
/// transactions (the ingestion producer) would fail until restarted.
fn moved_transaction(pipeline: &redis::Pipeline, result: &RedisResult<Vec<Value>>) -> Option<Moved> {
    let error = result.as_ref().err()?;
    if !pipeline.is_transaction() || error.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort) {
        return None;
    }
    let errors = error.clone().into_server_errors()?;
    let (_, moved) = errors.iter().find(|(_, e)| e.kind() == Some(ServerErrorKind::Moved))?;
    let mut details = moved.details()?.split_ascii_whitespace();
    let slot = details.next()?.parse().ok()?;
    let (host, port) = details.next()?.rsplit_once(':')?;
    Some(Moved { slot, host: host.to_owned(), port: port.parse().ok()? })
}

/// Refreshes the connection's slot map with a plain read of one of the transaction's keys (the old
/// master answers it MOVED, which the redis crate does follow), then sends the transaction again,
/// to the slot's new master.
async fn resend_moved(
    conn: &mut ClusterConnection,
    pipeline: &redis::Pipeline,
    offset: usize,
    count: usize,
    moved: Moved,
) -> RedisResult<Vec<Value>> {
    let slot = Slot::new(moved.slot);
    let key = pipeline.cmd_iter().find_map(|cmd| {
        // A command's keys come first (after a script's sha and key count): no payload is hashed.
        cmd.args_iter().skip(1).take(3).find_map(|arg| match arg {
            redis::Arg::Simple(bytes) if Some(Slot::for_key(bytes)) == slot => Some(bytes.to_vec()),
            _ => None,
        })
    });
    if let Some(key) = key {
        let _: RedisResult<Value> = redis::cmd("EXISTS").arg(key).query_async(conn).await;
    }
    tracing::info!(slot = moved.slot, to = %format!("{}:{}", moved.host, moved.port), "transaction's slot moved; resent");
    let to = SingleNodeRoutingInfo::ByAddress { host: moved.host, port: moved.port };
    conn.route_pipeline(pipeline.clone(), offset, count, to).await
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Conn::Node(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Conn::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => Box::pin(async move {
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                match moved_transaction(pipeline, &result) {
                    Some(moved) => resend_moved(conn, pipeline, offset, count, moved).await,
                    None => result,
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Conn::Node(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}
