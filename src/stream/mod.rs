//! The Redis Stream between the HTTP API and PostgreSQL (SPEC section 5).
//!
//! `producer` appends accepted events (pipelined XADD inside MULTI/EXEC, so a request is all in or
//! all out); `consumer` reads them in a consumer group, stores them and acknowledges only after the
//! commit; `dead_letter` keeps entries that failed too often, with the reason, until replayed;
//! `group` trims stored entries and forgets stopped consumers; `reply` parses entries out of replies;
//! `settle` decides, per event, what a stored batch means for each entry.

pub mod consumer;
pub mod dead_letter;
pub mod entry;
pub mod group;
pub mod producer;
pub mod reply;
mod settle;

pub use consumer::Consumer;
pub use group::ensure_group;
pub use producer::{Producer, PublishError};

/// Names of the Redis keys the ingestion path uses, all under one prefix.
///
/// Redis Cluster: `<prefix>:events` has no braces, so it is hashed whole; its dead letters and live
/// counters take it as their hash tag (`{<prefix>:events}:dead`), so the consumer's acknowledge
/// transaction stays in one slot. The pinned arrival times share a tag of their own (one pipeline
/// sets many).
#[derive(Debug, Clone)]
pub struct StreamKeys {
    /// The stream of accepted, not yet stored events.
    pub events: String,
    /// Entries that failed to store `max_deliveries` times.
    pub dead: String,
    /// The consumer group that stores events in PostgreSQL.
    pub group: String,
    /// Prefix of the keys pinning the arrival time of client-identified events without a timestamp.
    pub pinned_ts: String,
    /// The live counters the consumer updates as it acknowledges.
    pub live: crate::live::LiveKeys,
}

impl StreamKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}:events"),
            dead: format!("{{{prefix}:events}}:dead"),
            group: "storage".to_owned(),
            pinned_ts: format!("{{{prefix}:event-ts}}:"),
            live: crate::live::LiveKeys::new(prefix),
        }
    }
}

/// A consumer name unique to this process and start, so a restarted consumer never inherits a
/// dead one's identity (its pending entries are reclaimed instead).
pub fn unique_consumer_name(index: usize) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let nonce: u32 = rand::random();
    format!("{host}-{}-{index}-{nonce:08x}", std::process::id())
}
