//! Reading the live counters back: a range of seconds or minutes as figures per bucket, per
//! (type, source), and the distinct users of a range of minutes.

use std::collections::BTreeMap;

use crate::redis_conn::RedisConn;
use serde::Serialize;

use super::{LiveKeys, MICROS};

/// The figures of one (type, source) in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    pub events: i64,
    /// Revenue in micro-units.
    pub revenue_micros: i64,
}

/// One bucket (a second or a minute): (type, source) -> figures.
pub type Bucket = BTreeMap<(String, String), Cell>;

/// Parses a counter hash (`c|type|source`, `r|type|source`).
pub fn parse_bucket(fields: Vec<(String, i64)>) -> Bucket {
    let mut bucket = Bucket::new();
    for (field, value) in fields {
        let mut parts = field.splitn(3, '|');
        let (Some(kind), Some(event_type), Some(source)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let cell = bucket.entry((event_type.to_owned(), source.to_owned())).or_default();
        match kind {
            "c" => cell.events += value,
            "r" => cell.revenue_micros += value,
            _ => {}
        }
    }
    bucket
}

/// The granularity of a live counter hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
}

impl Unit {
    /// Seconds per bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }

    fn key(self, keys: &LiveKeys, t: i64) -> String {
        match self {
            Self::Second => keys.second(t),
            Self::Minute => keys.minute(t),
            Self::Hour => keys.hour(t),
        }
    }
}

/// Buckets `first..=last` (in `unit`s since the epoch), in one pipelined round trip.
pub async fn buckets(
    redis: &mut RedisConn,
    keys: &LiveKeys,
    unit: Unit,
    first: i64,
    last: i64,
) -> redis::RedisResult<Vec<(i64, Bucket)>> {
    if last < first {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for t in first..=last {
        pipe.hgetall(unit.key(keys, t));
    }
    let replies: Vec<Vec<(String, i64)>> = pipe.query_async(redis).await?;
    Ok((first..=last).zip(replies).map(|(t, fields)| (t, parse_bucket(fields))).collect())
}

/// Distinct users seen in minutes `first..=last` (HyperLogLog estimate, about 0.8 % error).
pub async fn active_users(redis: &mut RedisConn, keys: &LiveKeys, first: i64, last: i64) -> redis::RedisResult<u64> {
    let names: Vec<String> = (first..=last).map(|m| keys.users(m)).collect();
    redis::cmd("PFCOUNT").arg(names).query_async(redis).await
}

/// Distinct users of the union of HyperLogLogs `names` (0 without any).
pub async fn distinct(redis: &mut RedisConn, names: &[String]) -> redis::RedisResult<u64> {
    if names.is_empty() {
        return Ok(0);
    }
    redis::cmd("PFCOUNT").arg(names).query_async(redis).await
}

/// The `type|source` cells seen in hours `first..=last` (the fields of their counter hashes).
pub async fn hour_cells(
    redis: &mut RedisConn,
    keys: &LiveKeys,
    first: i64,
    last: i64,
) -> redis::RedisResult<Vec<(i64, Vec<String>)>> {
    if last < first {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for hour in first..=last {
        pipe.cmd("HKEYS").arg(keys.hour(hour));
    }
    let replies: Vec<Vec<String>> = pipe.query_async(redis).await?;
    let cells = replies
        .into_iter()
        .map(|fields| fields.into_iter().filter_map(|f| f.strip_prefix("c|").map(str::to_owned)).collect());
    Ok((first..=last).zip(cells).collect())
}

/// Revenue in currency units.
pub fn revenue(micros: i64) -> f64 {
    micros as f64 / MICROS
}
