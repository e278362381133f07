//! Redis refusing writes (SPEC section 13), beside the stream and the queues that write to it.
//!
//! - `refusal`: one classification of a refused command (`OOM`, `READONLY`, `MISCONF`) into a
//!   cause and a fix, used by the API's answers, `eventmill enqueue` and the logs;
//! - `memory`: `INFO memory` read into used / `maxmemory` / policy;
//! - `watch`: a background task that reads it a few times a second into atomics, so ingestion
//!   answers 429 above `EVENTMILL_REDIS_MEMORY_HIGH_WATER` without an INFO per request, and that
//!   says each refusal once when it starts and once when it ends;
//! - `enqueue`: `eventmill enqueue` refused above the high-water mark, and its refusals explained;
//! - `policy`: every process refuses an evicting `maxmemory-policy` at start (an evicting Redis
//!   drops stream entries, pinned times and jobs silently), unless `EVENTMILL_ALLOW_EVICTING_REDIS`.
//!
//! The other half lives with the stream: the consumer acknowledges and trims at `maxmemory`
//! (`stream::oom`), so storing what the stream holds frees memory instead of wedging.

pub mod enqueue;
pub mod memory;
pub mod policy;
pub mod refusal;
mod watch;

pub use memory::MemoryReading;
pub use refusal::Refusal;
pub use watch::{Pressure, RedisWatch};

/// `EVENTMILL_REDIS_MEMORY_HIGH_WATER` and `EVENTMILL_ALLOW_EVICTING_REDIS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// Share of `maxmemory` (0 < share <= 1) from which new events and jobs are refused (429).
    pub memory_high_water: f64,
    /// Run on a Redis whose `maxmemory-policy` evicts keys (with a loud warning) instead of refusing.
    pub allow_evicting: bool,
}

impl LimitSettings {
    /// The settings, or the high-water value as text when it is not a share in (0, 1].
    pub fn checked(memory_high_water: f64, allow_evicting: bool) -> Result<Self, String> {
        if memory_high_water > 0.0 && memory_high_water <= 1.0 {
            Ok(Self { memory_high_water, allow_evicting })
        } else {
            Err(memory_high_water.to_string())
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self { memory_high_water: 0.9, allow_evicting: false }
    }
}

/// Bytes for people: `37.2 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_is_a_share_of_maxmemory() {
        assert!(LimitSettings::checked(0.9, false).is_ok());
        assert!(LimitSettings::checked(1.0, false).is_ok());
        assert_eq!(LimitSettings::checked(0.0, false), Err("0".to_owned()));
        assert!(LimitSettings::checked(1.5, false).is_err());
    }

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(40 * 1024 * 1024), "40.0 MB");
    }
}
