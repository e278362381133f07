//! What a stored batch adds to the live counters: counts and revenue per (second, type, source),
//! per minute, and the users of each minute.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{HOUR_TTL, LiveKeys, MICROS, MINUTE_TTL, SECOND_TTL};
use crate::store::EventRow;

/// The counts of one batch, ready for `ack::queue_ack_and_count`.
#[derive(Debug, Default)]
pub struct Tally {
    /// (unix second, `type|source`) -> (events, revenue micro-units).
    cells: BTreeMap<(i64, String), (i64, i64)>,
    /// (unix minute, user).
    users: BTreeSet<(i64, String)>,
    /// (unix hour, `type|source`, user).
    cell_users: BTreeSet<(i64, String, String)>,
}

/// Rows older than this are not counted live: their keys would have expired already.
const OLDEST_SECONDS: i64 = super::MINUTE_TTL as i64 - 600;

/// The Lua script's keys and its JSON argument (see `ack`).
pub struct ScriptArgs {
    /// The counter keys, referred to by their 1-based position after the script's fixed keys.
    pub keys: Vec<String>,
    pub json: String,
}

impl Tally {
    /// Adds one stored row.
    pub fn add(&mut self, row: &EventRow, now_sec: i64) {
        let sec = row.ts_micros.div_euclid(1_000_000);
        if sec < now_sec - OLDEST_SECONDS {
            return;
        }
        let revenue = if row.event_type == "purchase" { amount_micros(row.properties.get()) } else { 0 };
        let cell_name = format!("{}|{}", row.event_type, row.source);
        if let Some(user) = &row.user_id {
            self.users.insert((sec.div_euclid(60), user.clone()));
            self.cell_users.insert((sec.div_euclid(3600), cell_name.clone(), user.clone()));
        }
        let cell = self.cells.entry((sec, cell_name)).or_default();
        cell.0 += 1;
        cell.1 += revenue;
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The minutes this tally touches.
    pub fn minutes(&self) -> BTreeSet<i64> {
        self.cells.keys().map(|(sec, _)| sec.div_euclid(60)).collect()
    }

    /// Every key the counts go to, and `{"h": [[key, "type|source", n, revenue]...],
    /// "u": [[key, [user...]]...], "e": [[key, ttl]...], "d": [minute...]}` where `key` is a
    /// position in `keys` offset by `first_key` (the script's own keys come first).
    pub fn script_args(&self, live: &LiveKeys, first_key: usize) -> ScriptArgs {
        let mut keys = Keys { first: first_key, names: Vec::new(), index: HashMap::new(), ttl: Vec::new() };
        let mut sums: BTreeMap<(usize, &str), (i64, i64)> = BTreeMap::new();
        for ((sec, cell), (n, r)) in &self.cells {
            for key in [
                keys.at(live.second(*sec), SECOND_TTL),
                keys.at(live.minute(sec.div_euclid(60)), MINUTE_TTL),
                keys.at(live.hour(sec.div_euclid(3600)), HOUR_TTL),
            ] {
                let sum = sums.entry((key, cell.as_str())).or_default();
                sum.0 += n;
                sum.1 += r;
            }
        }
        let mut users: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (minute, user) in &self.users {
            users.entry(keys.at(live.users(*minute), MINUTE_TTL)).or_default().push(user);
        }
        let mut hour_users: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
        for (hour, cell, user) in &self.cell_users {
            hour_users.entry(keys.at(live.hour_users(*hour), HOUR_TTL)).or_default().insert(user);
            users.entry(keys.at(live.cell_users(*hour, cell), HOUR_TTL)).or_default().push(user);
        }
        users.extend(hour_users.into_iter().map(|(k, set)| (k, set.into_iter().collect())));
        let sums: Vec<(usize, &str, i64, i64)> = sums.into_iter().map(|((k, c), (n, r))| (k, c, n, r)).collect();
        let users: Vec<(usize, Vec<&str>)> = users.into_iter().collect();
        let json = serde_json::json!({ "h": sums, "u": users, "e": keys.ttl, "d": self.minutes() }).to_string();
        ScriptArgs { keys: keys.names, json }
    }
}

/// Key names numbered in order of first use.
struct Keys {
    first: usize,
    names: Vec<String>,
    index: HashMap<String, usize>,
    ttl: Vec<(usize, u64)>,
}

impl Keys {
    fn at(&mut self, name: String, ttl: u64) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.first + self.names.len();
        self.index.insert(name.clone(), i);
        self.names.push(name);
        self.ttl.push((i, ttl));
        i
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
