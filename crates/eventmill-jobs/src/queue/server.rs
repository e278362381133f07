//! The Redis server(s) behind the queues, as the board's Redis panel shows them: version, memory
//! used and its limit, eviction policy, connected clients; read from `INFO` on every master (on
//! one node: on it).

use serde::Serialize;

use super::{QueueError, Queues};

/// What one Redis server (one master of a cluster) says about itself in `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedisInfo {
    /// `redis_version`.
    pub version: String,
    /// `tcp_port`: which node, on a cluster.
    pub port: Option<u16>,
    /// `role`: `master` (or `slave`).
    pub role: String,
    /// `uptime_in_seconds`.
    pub uptime_seconds: u64,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `used_memory_human` (`1.23M`).
    pub used_memory_human: String,
    /// `maxmemory`, bytes; 0: no limit.
    pub maxmemory: u64,
    /// `maxmemory_human` (`0B` for no limit).
    pub maxmemory_human: String,
    /// `maxmemory_policy`: the eviction policy (queues need `noeviction`: an evicted job is lost).
    pub maxmemory_policy: String,
    /// `connected_clients`.
    pub connected_clients: u64,
}

impl RedisInfo {
    /// Reads the fields above from the text of `INFO` (unknown or missing fields are left empty).
    pub fn parse(info: &str) -> Self {
        let mut out = Self::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim_end_matches('\r').split_once(':') else { continue };
            let number = || value.trim().parse::<u64>().unwrap_or(0);
            match key {
                "redis_version" => out.version = value.to_owned(),
                "tcp_port" => out.port = value.trim().parse().ok(),
                "role" => out.role = value.to_owned(),
                "uptime_in_seconds" => out.uptime_seconds = number(),
                "used_memory" => out.used_memory = number(),
                "used_memory_human" => out.used_memory_human = value.to_owned(),
                "maxmemory" => out.maxmemory = number(),
                "maxmemory_human" => out.maxmemory_human = value.to_owned(),
                "maxmemory_policy" => out.maxmemory_policy = value.to_owned(),
                "connected_clients" => out.connected_clients = number(),
                _ => {}
            }
        }
        out
    }

    /// Whether Redis may evict keys (and so lose jobs): any policy but `noeviction`.
    pub fn may_evict(&self) -> bool {
        !self.maxmemory_policy.is_empty() && self.maxmemory_policy != "noeviction"
    }
}

impl Queues {
    /// `INFO` of every master the queues live on (one node: that node), by port.
    pub async fn redis_info(&self) -> Result<Vec<RedisInfo>, QueueError> {
        let texts: Vec<String> = self.connection().on_every_master(&redis::cmd("INFO")).await?;
        let mut nodes: Vec<RedisInfo> = texts.iter().map(|text| RedisInfo::parse(text)).collect();
        nodes.sort_by_key(|node| node.port);
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_is_read_into_its_fields() {
        let text = "# Server\r\nredis_version:7.0.15\r\ntcp_port:6397\r\nuptime_in_seconds:42\r\n\r\n# Clients\r\n\
                    connected_clients:3\r\n# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
                    maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n# Replication\r\nrole:master\r\n";
        let info = RedisInfo::parse(text);
        assert_eq!(
            info,
            RedisInfo {
                version: "7.0.15".into(),
                port: Some(6397),
                role: "master".into(),
                uptime_seconds: 42,
                used_memory: 1_048_576,
                used_memory_human: "1.00M".into(),
                maxmemory: 0,
                maxmemory_human: "0B".into(),
                maxmemory_policy: "noeviction".into(),
                connected_clients: 3,
            }
        );
        assert!(!info.may_evict());
        assert!(RedisInfo { maxmemory_policy: "allkeys-lru".into(), ..info }.may_evict());
    }
}
