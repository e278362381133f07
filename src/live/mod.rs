//! Live metrics (SPEC section 6): per-second and per-minute counters in Redis, kept as events are
//! stored, read once a second for the SSE feed and for the unfinished buckets of the query API.
//!
//! Exactly once: `tally` counts only the rows a batch really stored (the writer reports rows another
//! entry already stored, e.g. a client re-send), and `ack` applies the counts in the same Lua call
//! that XACKs the batch's entries, only if every entry was still pending. A crash before that call
//! leaves the entries pending: they are re-delivered, found stored with their own arrival time, and
//! counted then. A batch whose entries another consumer took over meanwhile is not counted by it;
//! its minutes are marked dirty and `reconcile` rewrites them from PostgreSQL once closed.
//! `read` turns the keys back into figures; `feed` shares one read per second with every SSE client.

pub mod ack;
pub mod feed;
pub mod read;
pub mod reconcile;
pub mod tally;

pub use ack::queue_ack_and_count;
pub use feed::Feed;
pub use tally::Tally;

/// Seconds of per-second data kept (the live charts show the last minutes; the query API reads
/// older seconds from the rows).
pub const SECOND_TTL: u64 = 2 * 3600;
/// Seconds of per-minute data kept.
pub const MINUTE_TTL: u64 = 24 * 3600 + 600;
/// Seconds of per-hour data kept: an hour outlives each of its minutes.
pub const HOUR_TTL: u64 = MINUTE_TTL + 3600;

/// Names of the live counter keys, all under `{<prefix>:events}:live`.
///
/// The hash tag is the stream's own key name (`<prefix>:events` has no braces, so Redis Cluster
/// hashes it whole), so every counter lands in the stream's slot: the acknowledge script XACKs the
/// stream and counts in one call, and a script's keys must share a slot.
#[derive(Debug, Clone)]
pub struct LiveKeys {
    pub prefix: String,
}

impl LiveKeys {
    pub fn new(redis_prefix: &str) -> Self {
        Self { prefix: format!("{{{redis_prefix}:events}}:live") }
    }

    /// Hash of second `sec` (unix seconds): `c|type|source` counts, `r|type|source` revenue in
    /// micro-units (integers, so sums are exact).
    pub fn second(&self, sec: i64) -> String {
        format!("{}:s:{sec}", self.prefix)
    }

    /// Hash of minute `min` (unix minutes), same fields as a second.
    pub fn minute(&self, min: i64) -> String {
        format!("{}:m:{min}", self.prefix)
    }

    /// Hash of hour `hour` (unix hours), same fields as a second.
    pub fn hour(&self, hour: i64) -> String {
        format!("{}:h:{hour}", self.prefix)
    }

    /// HyperLogLog of the users seen in minute `min`.
    pub fn users(&self, min: i64) -> String {
        format!("{}:u:{min}", self.prefix)
    }

    /// HyperLogLog of the users seen in hour `hour`.
    pub fn hour_users(&self, hour: i64) -> String {
        format!("{}:uh:{hour}", self.prefix)
    }

    /// HyperLogLog of the users of one `type|source` in hour `hour` (the filtered active users).
    pub fn cell_users(&self, hour: i64, cell: &str) -> String {
        format!("{}:uc:{hour}:{cell}", self.prefix)
    }

    /// Hash of the batches of other stream shards counted but not yet acknowledged (token ->
    /// their minutes), see `ack::count_in_flight`.
    pub fn in_flight(&self) -> String {
        format!("{}:in-flight", self.prefix)
    }

    /// Set of minutes whose counts must be rewritten from PostgreSQL.
    pub fn dirty(&self) -> String {
        format!("{}:dirty", self.prefix)
    }
}

/// Revenue micro-units per currency unit.
pub const MICROS: f64 = 1_000_000.0;
