//! What a stored batch adds to the live counters: counts and revenue per (second, type, source),
//! per minute, and the users of each minute.

use std::collections::{BTreeMap, BTreeSet};

use super::MICROS;
use crate::store::EventRow;

/// The counts of one batch, ready for `ack::queue_ack_and_count`.
#[derive(Debug, Default)]
pub struct Tally {
    /// (unix second, `type|source`) -> (events, revenue micro-units).
    cells: BTreeMap<(i64, String), (i64, i64)>,
    users: BTreeMap<i64, BTreeSet<String>>,
}

/// Rows older than this are not counted live: their keys would have expired already.
const OLDEST_SECONDS: i64 = super::MINUTE_TTL as i64 - 600;

impl Tally {
    /// Adds one stored row.
    pub fn add(&mut self, row: &EventRow, now_sec: i64) {
        let sec = row.ts_micros.div_euclid(1_000_000);
        if sec < now_sec - OLDEST_SECONDS {
            return;
        }
        let revenue = if row.event_type == "purchase" { amount_micros(row.properties.get()) } else { 0 };
        let cell = self.cells.entry((sec, format!("{}|{}", row.event_type, row.source))).or_default();
        cell.0 += 1;
        cell.1 += revenue;
        if let Some(user) = &row.user_id {
            self.users.entry(sec.div_euclid(60)).or_default().insert(user.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The minutes this tally touches.
    pub fn minutes(&self) -> BTreeSet<i64> {
        self.cells.keys().map(|(sec, _)| sec.div_euclid(60)).collect()
    }

    /// The Lua script's argument: `{"s": [[sec, "type|source", n, revenue]...], "u": [[min, [user...]]...]}`.
    pub fn to_json(&self) -> String {
        let cells: Vec<(i64, &str, i64, i64)> =
            self.cells.iter().map(|((sec, key), (n, r))| (*sec, key.as_str(), *n, *r)).collect();
        let users: Vec<(i64, Vec<&str>)> =
            self.users.iter().map(|(min, set)| (*min, set.iter().map(String::as_str).collect())).collect();
        serde_json::json!({ "s": cells, "u": users }).to_string()
    }
}

/// `properties.amount` in micro-units when it is a number, else 0 (as the rollups count it).
pub fn amount_micros(properties: &str) -> i64 {
    #[derive(serde::Deserialize)]
    struct Amount {
        amount: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Amount>(properties) {
        Ok(Amount { amount: Some(serde_json::Value::Number(n)) }) => {
            n.as_f64().map(|a| (a * MICROS).round() as i64).unwrap_or(0)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_exact_micro_units_and_non_numbers_count_nothing() {
        assert_eq!(amount_micros(r#"{"amount": 19.99}"#), 19_990_000);
        assert_eq!(amount_micros(r#"{"amount": "19.99"}"#), 0);
        assert_eq!(amount_micros(r#"{"sku": "x"}"#), 0);
    }
}
