//! A queue's global concurrency and rate limit as they are in force: kept in the queue's meta hash
//! in Redis, where every worker's claim reads them (`claim_allowance` in
//! `helpers.lua`). A worker's start declares the values of its code or environment
//! (`QueueSpec::global_concurrency`, `QueueSpec::rate_limit`, `<PREFIX>_QUEUE_*_<QUEUE>`), but only
//! when they differ from the last declared ones: a value changed from the board holds, across
//! restarts, until a deploy declares another one.

use serde::Serialize;

use super::{QueueError, RateLimit, store::Queue};

/// The global concurrency and rate limit in force for a queue (`None`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Jobs running at once at most, across every worker process.
    pub global_concurrency: Option<u32>,
    /// Jobs started at most per window, across every worker process (`100/1s`).
    #[serde(serialize_with = "as_text")]
    pub rate_limit: Option<RateLimit>,
}

fn as_text<S: serde::Serializer>(limit: &Option<RateLimit>, s: S) -> Result<S::Ok, S::Error> {
    match limit {
        Some(limit) => s.serialize_some(&limit.to_string()),
        None => s.serialize_none(),
    }
}

/// A rate limit as the meta hash keeps it (field `rate`, read by `claim_allowance` in
/// `helpers.lua`): `<jobs>:<window ms>`, `0:0` for none.
pub(crate) fn rate_field(limit: Option<RateLimit>) -> String {
    limit.map_or_else(
        || "0:0".to_owned(),
        |r| format!("{}:{}", r.max, u64::try_from(r.per.as_millis()).unwrap_or(u64::MAX).max(1)),
    )
}

/// [`rate_field`] read back.
fn parse_rate_field(text: &str) -> Option<Option<RateLimit>> {
    let (max, ms) = text.split_once(':')?;
    let (max, ms): (u32, u64) = (max.parse().ok()?, ms.parse().ok()?);
    Some((max > 0).then(|| RateLimit::new(max, std::time::Duration::from_millis(ms.max(1)))))
}

impl Queue {
    /// The limits in force, read from Redis; a queue no worker declared yet answers this
    /// process's declared values.
    pub async fn limits(&self) -> Result<Limits, QueueError> {
        let (global, rate): (Option<u32>, Option<String>) = redis::cmd("HMGET")
            .arg(&self.keys.meta)
            .arg("global_concurrency")
            .arg("rate")
            .query_async(&mut self.redis.clone())
            .await?;
        let global_concurrency = match global {
            Some(n) => (n > 0).then_some(n),
            None => self.global_concurrency(),
        };
        let rate_limit = rate.as_deref().and_then(parse_rate_field).unwrap_or_else(|| self.rate_limit());
        Ok(Limits { global_concurrency, rate_limit })
    }

    /// Changes the limits in force for every worker of the queue, in any process, from their next
    /// claim (`None`: leave as it is; `Some(None)`: no limit). Kept until a worker starts with
    /// other declared values than the last ones (a deploy that changes them).
    pub async fn set_limits(
        &self,
        global_concurrency: Option<Option<u32>>,
        rate_limit: Option<Option<RateLimit>>,
    ) -> Result<Limits, QueueError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        // A queue no worker declared yet: its first start must not take these back.
        let declared_global = self.global_concurrency().unwrap_or(0).to_string();
        pipe.hset_nx(&self.keys.meta, "global_concurrency_declared", declared_global).ignore();
        pipe.hset_nx(&self.keys.meta, "rate_declared", rate_field(self.rate_limit())).ignore();
        if let Some(global) = global_concurrency {
            pipe.hset(&self.keys.meta, "global_concurrency", global.unwrap_or(0)).ignore();
        }
        if let Some(limit) = rate_limit {
            pipe.hset(&self.keys.meta, "rate", rate_field(limit)).ignore();
        }
        // Wake the queue's blocked workers: a raised limit lets them claim now.
        pipe.zadd(&self.keys.marker, "0", 0).ignore();
        let _: () = pipe.query_async(&mut self.redis.clone()).await?;
        self.limits().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_rate_limit_is_kept_as_jobs_and_window_ms_and_read_back() {
        let limit = RateLimit::new(100, Duration::from_secs(1));
        assert_eq!(rate_field(Some(limit)), "100:1000");
        assert_eq!(rate_field(None), "0:0");
        assert_eq!(parse_rate_field("100:1000"), Some(Some(limit)));
        assert_eq!(parse_rate_field("0:0"), Some(None));
        assert_eq!(parse_rate_field("junk"), None);
    }
}
