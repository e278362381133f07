//! The Redis Stream between the HTTP API and PostgreSQL (SPEC section 5).
//!
//! `producer` appends accepted events (pipelined XADD inside MULTI/EXEC, so a request is all in or
//! all out); `consumer` reads them in a consumer group, stores them and acknowledges only after the
//! commit; `dead_letter` keeps entries that failed too often, with the reason, until replayed;
//! `group` trims stored entries and forgets stopped consumers; `reply` parses entries out of replies;
//! `settle` decides, per event, what a stored batch means for each entry; `oom` acknowledges when
//! Redis is out of memory.

pub mod consumer;
pub mod dead_letter;
pub mod entry;
pub mod group;
pub mod oom;
pub mod producer;
pub mod reply;
mod settle;

pub use consumer::Consumer;
pub use group::ensure_group;
pub use producer::{Producer, PublishError};

/// Names of the Redis keys of one stream shard (SPEC section 15).
///
/// Redis Cluster: a shard's stream key has no braces, so it is hashed whole; its dead letters take
/// it as their hash tag (`{<prefix>:events}:dead`), so the consumer's acknowledge transaction stays
/// in one slot. The live counters take the first shard's key as theirs: that shard acknowledges
/// and counts in one call; the others count and acknowledge in two (`live::ack`). The pinned
/// arrival times share a tag of their own (one pipeline sets many).
#[derive(Debug, Clone)]
pub struct StreamKeys {
    /// Position among the shards (0 is `<prefix>:events`, the stream of a single-shard setup).
    pub shard: usize,
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
    /// The first (or only) shard.
    pub fn new(prefix: &str) -> Self {
        Self::shard(prefix, 0, 1)
    }

    /// Every shard of `EVENTMILL_STREAM_SHARDS = count`.
    pub fn shards(prefix: &str, count: usize) -> Vec<Self> {
        (0..count.max(1)).map(|i| Self::shard(prefix, i, count.max(1))).collect()
    }

    /// Shard `index` of `count`: shard 0 is `<prefix>:events`; shard i is `<prefix>:events:<i>.<n>`,
    /// the first `n` whose slot lies i/count of the way round the slot ring from shard 0's, so
    /// shards spread evenly over a cluster's masters (which own contiguous slot ranges).
    pub fn shard(prefix: &str, index: usize, count: usize) -> Self {
        let first = format!("{prefix}:events");
        let events = if index == 0 {
            first.clone()
        } else {
            let span = SLOTS / count as u32;
            let start = (slot(&first) as u32 + index as u32 * span) % SLOTS;
            (0u32..)
                .map(|n| format!("{first}:{index}.{n}"))
                .find(|key| (slot(key) as u32 + SLOTS - start) % SLOTS < span.max(1))
                .expect("some suffix lands in every slot range")
        };
        Self {
            shard: index,
            dead: format!("{{{events}}}:dead"),
            events,
            group: "storage".to_owned(),
            pinned_ts: format!("{{{prefix}:event-ts}}:"),
            live: crate::live::LiveKeys::new(prefix),
        }
    }

    /// Whether this shard's acknowledge transaction can update the live counters too (they share
    /// its slot).
    pub fn counts_with_ack(&self) -> bool {
        self.shard == 0
    }
}

/// Redis Cluster's slot count.
const SLOTS: u32 = 16384;

/// The Redis Cluster slot of `key` (CRC16 of its hash tag, or of the whole key without one).
pub fn slot(key: &str) -> u16 {
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').map(|close| &key[open + 1..open + 1 + close]))
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    (crc16::State::<crc16::XMODEM>::calculate(tagged.as_bytes()) as u32 % SLOTS) as u16
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("a{}b"), slot("a{}b"));
    }

    #[test]
    fn shards_spread_over_the_slot_ring_and_keep_their_dead_letters_in_their_slot() {
        let shards = StreamKeys::shards("eventmill", 3);
        assert_eq!(shards[0].events, "eventmill:events");
        let first = slot(&shards[0].events) as u32;
        for (i, keys) in shards.iter().enumerate() {
            assert_eq!(slot(&keys.dead), slot(&keys.events));
            let offset = (slot(&keys.events) as u32 + SLOTS - first) % SLOTS;
            assert!(offset / (SLOTS / 3) == i as u32, "shard {i} at offset {offset}");
        }
        assert_eq!(slot(&shards[0].live.dirty()), slot(&shards[0].events));
    }
}
