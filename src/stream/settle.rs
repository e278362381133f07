//! What a stored batch means for each of its entries: acknowledge it, dead-letter some of its
//! events, or leave it pending for a retry. Works per event, so a packed entry with one poison
//! event is settled with the rest stored and the poison event dead-lettered alone.

use std::collections::HashMap;

use super::{dead_letter::DeadLetter, reply::Entry};

/// The verdict on a batch.
#[derive(Debug, Default)]
pub(super) struct Settlement {
    /// Entries to XACK: every event stored or dead-lettered.
    pub ack: Vec<String>,
    pub letters: Vec<DeadLetter>,
    /// Events that failed but have deliveries left: (event key, reason). Their entry stays pending.
    pub retry_later: Vec<(String, String)>,
    /// Events committed (or found already stored) in this batch.
    pub stored: usize,
}

/// The key naming event `index` of an entry in logs, failure records and dead letters: the entry
/// id for a single-event entry, `<entry id>#<index>` inside a packed one.
pub(super) fn event_key(entry: &Entry, index: usize) -> String {
    if entry.events.len() == 1 { entry.id.clone() } else { format!("{}#{index}", entry.id) }
}

/// Settles `entries` given the events that failed, keyed by (entry index, event index).
pub(super) fn settle(entries: &[Entry], failed: HashMap<(usize, usize), String>, max_deliveries: u64) -> Settlement {
    let mut by_entry: HashMap<usize, Vec<(usize, String)>> = HashMap::new();
    for ((e, k), reason) in failed {
        by_entry.entry(e).or_default().push((k, reason));
    }
    let mut out = Settlement::default();
    for (e, entry) in entries.iter().enumerate() {
        let mut failures = by_entry.remove(&e).unwrap_or_default();
        failures.sort_by_key(|(k, _)| *k);
        out.stored += entry.events.len() - failures.len();
        if failures.is_empty() {
            out.ack.push(entry.id.clone());
        } else if entry.deliveries >= max_deliveries {
            out.ack.push(entry.id.clone());
            out.letters.extend(failures.into_iter().map(|(k, reason)| event_letter(entry, k, reason)));
        } else {
            out.retry_later.extend(failures.into_iter().map(|(k, reason)| (event_key(entry, k), reason)));
        }
    }
    out
}

/// A dead letter holding one event of an entry.
pub(super) fn event_letter(entry: &Entry, index: usize, reason: String) -> DeadLetter {
    DeadLetter {
        id: String::new(),
        entry_id: event_key(entry, index),
        reason,
        deliveries: entry.deliveries,
        failed_at: String::new(),
        request_id: entry.request_id.clone(),
        payload: entry.event_json(index).to_owned(),
    }
}

/// A dead letter holding a whole entry: its consumers kept dying, so no event is known to be at fault.
pub(super) fn entry_letter(entry: &Entry, reason: String) -> DeadLetter {
    DeadLetter {
        id: String::new(),
        entry_id: entry.id.clone(),
        reason,
        deliveries: entry.deliveries,
        failed_at: String::new(),
        request_id: entry.request_id.clone(),
        payload: entry.payload.clone(),
    }
}
