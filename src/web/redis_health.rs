//! The Redis-limits part of `/healthz/detailed`: memory against `maxmemory` and the high-water
//! mark, the eviction policy, and whether Redis takes a write at all (a probe `SET` with a short
//! expiry: a read-only replica or `MISCONF` answers PING but refuses writes).

use std::time::Duration;

use serde_json::json;

use super::{
    AppState,
    health::{Check, Overall},
};
use crate::redis_limits::{Pressure, Refusal, memory, policy::NO_EVICTION};

/// Longest the memory read and the probe may take together.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The state Redis' limits put health in, with a sentence per problem; adds the memory figures
/// to `redis`.
pub(super) async fn assess(state: &AppState, redis: &mut Check) -> (Overall, Vec<String>) {
    let watch = &state.redis_watch;
    let mut conn = state.redis.clone();
    let probe_key = format!("{}:healthz:probe", state.settings.redis.prefix);
    let checks = async {
        let reading = memory::read(&mut conn).await;
        let probe: redis::RedisResult<()> =
            redis::cmd("SET").arg(&probe_key).arg(1).arg("PX").arg(5000).query_async(&mut conn).await;
        (reading, probe)
    };
    let Ok((reading, probe)) = tokio::time::timeout(TIMEOUT, checks).await else {
        return (Overall::Ok, Vec::new());
    };
    let mut overall = Overall::Ok;
    let mut reasons = Vec::new();
    if let Ok(reading) = &reading {
        watch.record(reading);
        redis.memory = Some(json!({
            "used": reading.used,
            "max": reading.max,
            "policy": reading.policy,
            "high_water": watch.limits().memory_high_water,
        }));
        if reading.policy != NO_EVICTION {
            let allowed = watch.limits().allow_evicting;
            reasons.push(format!(
                "Redis' maxmemory-policy is `{}`: when full it evicts keys (accepted events, jobs) instead of \
                 refusing writes; {}",
                reading.policy,
                if allowed {
                    "allowed by EVENTMILL_ALLOW_EVICTING_REDIS"
                } else {
                    "eventmill processes refuse to start on it: set `maxmemory-policy noeviction`"
                }
            ));
            overall = if allowed { Overall::Degraded } else { Overall::Down };
        }
    }
    match watch.pressure() {
        Pressure::Full(m) => {
            reasons.push(format!(
                "{}: it refuses writes; new events are refused with 429 while the consumers drain the stream",
                Refusal::OutOfMemory.cause(Some(&m))
            ));
            overall = Overall::Down;
        }
        Pressure::High(m) => {
            reasons.push(format!("{}: new events are refused with 429", watch.high_water_message(&m)));
            overall = Overall::Down;
        }
        Pressure::Near(m) => {
            reasons.push(format!(
                "Redis memory is at {:.0} % of maxmemory, near the high-water mark ({:.0} %) above which new events \
                 are refused with 429",
                m.share().unwrap_or(0.0) * 100.0,
                watch.limits().memory_high_water * 100.0
            ));
            overall = overall.max(Overall::Degraded);
        }
        Pressure::Fine => {}
    }
    match probe {
        Ok(()) => watch.accepted(),
        Err(error) => match Refusal::of(&error) {
            // Said above with the figures, when they are known.
            Some(Refusal::OutOfMemory) if reading.is_ok() => {}
            Some(refusal) => {
                reasons.push(format!("{}: new events are refused with 503", refusal.describe(None)));
                overall = Overall::Down;
            }
            None => {}
        },
    }
    (overall, reasons)
}
