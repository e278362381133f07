//! Every process refuses an evicting Redis at start: with any `maxmemory-policy` but
//! `noeviction`, a full Redis silently drops keys (stream entries of accepted events, pinned
//! arrival times, jobs) instead of refusing writes, and eventmill's promises would be lies.
//! `EVENTMILL_ALLOW_EVICTING_REDIS=true` runs anyway, with a loud warning.

use std::{collections::HashMap, time::Duration};

use crate::redis_conn::RedisConn;

/// The only policy that never drops a key.
pub const NO_EVICTION: &str = "noeviction";

/// What the start check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCheck {
    /// `noeviction` (or no answer yet: Redis is down, and the watch checks it once it answers).
    Accepted,
    /// An evicting policy, allowed by `EVENTMILL_ALLOW_EVICTING_REDIS`: the warning was logged.
    Allowed(String),
    /// Redis did not answer: checked again by the watch once it does.
    Unknown(String),
}

/// An evicting policy without the override: the error names the setting and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "Redis' maxmemory-policy is `{policy}`, which evicts keys when Redis is full: stream entries of \
     accepted events, their pinned times and jobs would disappear silently. Set `maxmemory-policy \
     noeviction` (in redis.conf, or `redis-cli CONFIG SET maxmemory-policy noeviction` then \
     `CONFIG REWRITE`): eventmill then answers 429 before Redis is full. To run on it anyway, set \
     EVENTMILL_ALLOW_EVICTING_REDIS=true"
)]
pub struct EvictingRedis {
    pub policy: String,
}

/// `maxmemory-policy` of every master (the first evicting one, else `noeviction`): `CONFIG GET`,
/// or `INFO memory`'s `maxmemory_policy` where CONFIG is renamed or not permitted.
pub async fn policy(conn: &mut RedisConn) -> redis::RedisResult<String> {
    let mut get = redis::cmd("CONFIG");
    get.arg("GET").arg("maxmemory-policy");
    let policies: Vec<String> = match conn.on_every_master::<HashMap<String, String>>(&get).await {
        Ok(answers) => answers.into_iter().filter_map(|mut a| a.remove("maxmemory-policy")).collect(),
        Err(error) if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() => return Err(error),
        Err(error) => {
            tracing::debug!(%error, "CONFIG GET refused; reading maxmemory_policy from INFO memory");
            Vec::new()
        }
    };
    let policies = if policies.is_empty() {
        let infos: Vec<String> = conn.on_every_master(redis::cmd("INFO").arg("memory")).await?;
        infos.iter().filter_map(|i| super::MemoryReading::parse(i)).map(|m| m.policy).collect()
    } else {
        policies
    };
    Ok(policies.into_iter().find(|p| p != NO_EVICTION).unwrap_or_else(|| NO_EVICTION.to_owned()))
}

/// The verdict on `policy`: refused unless `noeviction` or `allow`ed (then warned about, loudly).
pub fn judge(policy: &str, allow: bool) -> Result<PolicyCheck, EvictingRedis> {
    if policy == NO_EVICTION {
        return Ok(PolicyCheck::Accepted);
    }
    if !allow {
        return Err(EvictingRedis { policy: policy.to_owned() });
    }
    let warning = format!(
        "WARNING: Redis' maxmemory-policy is `{policy}`: when Redis is full it evicts keys, and accepted \
         events, pinned times and jobs can disappear without a trace. Running anyway because \
         EVENTMILL_ALLOW_EVICTING_REDIS=true; set `maxmemory-policy noeviction` to be safe"
    );
    tracing::warn!(policy, "{warning}");
    eprintln!("{warning}");
    Ok(PolicyCheck::Allowed(policy.to_owned()))
}

/// The start check of every process: Redis' policy within `timeout`. A Redis that does not
/// answer is no reason to refuse to start (eventmill starts while Redis is down): the watch
/// checks once it answers.
pub async fn check_at_start(
    conn: &mut RedisConn,
    allow: bool,
    timeout: Duration,
) -> Result<PolicyCheck, EvictingRedis> {
    match tokio::time::timeout(timeout, policy(conn)).await {
        Ok(Ok(policy)) => judge(&policy, allow),
        Ok(Err(error)) => Ok(PolicyCheck::Unknown(error.to_string())),
        Err(_) => Ok(PolicyCheck::Unknown(format!("no answer within {} ms", timeout.as_millis()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_accepted_without_the_override() {
        assert_eq!(judge("noeviction", false).unwrap(), PolicyCheck::Accepted);
        let refused = judge("allkeys-lru", false).unwrap_err().to_string();
        assert!(refused.contains("`allkeys-lru`") && refused.contains("EVENTMILL_ALLOW_EVICTING_REDIS"), "{refused}");
        assert_eq!(judge("volatile-ttl", true).unwrap(), PolicyCheck::Allowed("volatile-ttl".into()));
    }
}
