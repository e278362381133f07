//! Redis' memory as `INFO memory` tells it: what counts toward `maxmemory`, the limit, and the
//! eviction policy. On a cluster, the fullest master speaks for all (the first to refuse writes).

use crate::redis_conn::RedisConn;

/// One reading of `INFO memory`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryReading {
    /// Bytes counted toward `maxmemory` (`used_memory` less `mem_not_counted_for_evict`: Redis'
    /// own OOM check leaves replication and AOF buffers out).
    pub used: u64,
    /// `maxmemory` (0: no limit).
    pub max: u64,
    /// `maxmemory_policy`.
    pub policy: String,
}

impl MemoryReading {
    /// Parses the text of `INFO memory` (other sections may be in it too).
    pub fn parse(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_owned()))
        };
        let used: u64 = field("used_memory")?.parse().ok()?;
        let not_counted: u64 = field("mem_not_counted_for_evict").and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Self {
            used: used.saturating_sub(not_counted),
            max: field("maxmemory")?.parse().ok()?,
            policy: field("maxmemory_policy").unwrap_or_default(),
        })
    }

    /// Used memory as a share of `maxmemory` (None without a limit).
    pub fn share(&self) -> Option<f64> {
        (self.max > 0).then(|| self.used as f64 / self.max as f64)
    }

    /// Whether Redis is at its limit (it refuses commands that need memory).
    pub fn is_full(&self) -> bool {
        self.max > 0 && self.used >= self.max
    }
}

/// Reads `INFO memory` of every master; the fullest one (by share of its limit) is answered.
pub async fn read(conn: &mut RedisConn) -> redis::RedisResult<MemoryReading> {
    let infos: Vec<String> = conn.on_every_master(redis::cmd("INFO").arg("memory")).await?;
    let mut readings: Vec<MemoryReading> = infos.iter().filter_map(|info| MemoryReading::parse(info)).collect();
    readings.sort_by(|a, b| a.share().unwrap_or(0.0).total_cmp(&b.share().unwrap_or(0.0)));
    readings.pop().ok_or_else(|| (redis::ErrorKind::Parse, "INFO memory without used_memory").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_memory_is_read_as_redis_counts_it() {
        let info = "# Memory\r\nused_memory:1100\r\nused_memory_human:1.07K\r\nmaxmemory:2000\r\n\
                    maxmemory_human:1.95K\r\nmaxmemory_policy:noeviction\r\nmem_not_counted_for_evict:100\r\n";
        let reading = MemoryReading::parse(info).unwrap();
        assert_eq!(reading, MemoryReading { used: 1000, max: 2000, policy: "noeviction".into() });
        assert_eq!(reading.share(), Some(0.5));
        assert!(!reading.is_full());
    }
}
