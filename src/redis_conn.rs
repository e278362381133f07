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

/// Where Redis is: one node or a cluster (cheap to clone; connects nothing by itself).
#[derive(Clone)]
pub enum RedisTarget {
    Node(redis::Client),
    Cluster(Box<ClusterClient>),
}

impl RedisTarget {
    /// `url`: one node, or cluster nodes separated by commas; `cluster` forces cluster mode for a
    /// single seed node.
    pub fn new(url: &str, cluster: bool) -> RedisResult<Self> {
        let nodes: Vec<&str> = url.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        if nodes.len() > 1 || cluster {
            // Few retries: a caller's own timeout (the API's 503) must come first, and a master
            // that is down stays down for longer than any retry would wait.
            let client = ClusterClient::builder(nodes).retries(3).build()?;
            Ok(Self::Cluster(Box::new(client)))
        } else {
            Ok(Self::Node(redis::Client::open(url)?))
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// A connection that reconnects by itself; `response_timeout` bounds every command. Lazy:
    /// eventmill starts (and answers 503) while Redis is down, and connects once it is up. Each
    /// call opens connections of its own (a blocking command on one stalls only its owner).
    pub fn connect(&self, response_timeout: Duration) -> RedisResult<RedisConn> {
        match self {
            Self::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(1000)))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Ok(RedisConn::Node(ConnectionManager::new_lazy_with_config(client.clone(), config)?))
            }
            Self::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(Duration::from_millis(1000))
                    .set_response_timeout(response_timeout);
                Ok(RedisConn::Cluster(client.get_pending_async_connection_with_config(config)))
            }
        }
    }
}

/// A connection to one node or to a whole cluster; clones share it.
#[derive(Clone)]
pub enum RedisConn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects to `url` (see [`RedisTarget::new`]).
    pub fn open(url: &str, cluster: bool, response_timeout: Duration) -> RedisResult<Self> {
        RedisTarget::new(url, cluster)?.connect(response_timeout)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmd` on every master (one node: on it), failing if any fails: health checks and
    /// commands about the whole keyspace.
    pub async fn on_every_master<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<Vec<T>> {
        match self {
            Self::Node(conn) => Ok(vec![cmd.query_async(conn).await?]),
            Self::Cluster(conn) => {
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
            let (next, batch): (u64, Vec<String>) = match self {
                Self::Node(conn) => scan.query_async(conn).await?,
                Self::Cluster(conn) => {
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
        match self {
            Self::Node(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => Box::pin(async move {
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                match moved_transaction(pipeline, &result) {
                    Some(moved) => resend_moved(conn, pipeline, offset, count, moved).await,
                    None => result,
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
