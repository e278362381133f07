//! The process's view of Redis' limits, shared by every part: a background task reads
//! `INFO memory` every `POLL` into atomics (ingestion's 429 reads them, never Redis), checks the
//! eviction policy once Redis first answers, and the writers record refusals here so each is
//! logged once when it starts and once when it ends.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{LimitSettings, MemoryReading, Refusal, human_bytes, memory, policy};
use crate::{redis_conn::RedisConn, shutdown::Shutdown};

/// How often the memory is read.
const POLL: Duration = Duration::from_millis(250);
/// A reading older than this is not acted on (Redis stopped answering).
const STALE_MS: i64 = 3_000;
/// Share of the high-water mark from which health says `degraded`.
const NEAR: f64 = 0.8;

/// Where memory stands against the limits.
#[derive(Debug, Clone, PartialEq)]
pub enum Pressure {
    /// Room left (or no limit, or no fresh reading).
    Fine,
    /// Past 80 % of the high-water mark: events still accepted.
    Near(MemoryReading),
    /// Past the high-water mark: new events and jobs are refused (429).
    High(MemoryReading),
    /// At `maxmemory`: Redis itself refuses writes.
    Full(MemoryReading),
}

/// Cheap to clone; every clone shares the same readings.
#[derive(Clone)]
pub struct RedisWatch {
    inner: Arc<Inner>,
}

struct Inner {
    limits: LimitSettings,
    used: AtomicU64,
    max: AtomicU64,
    /// Unix ms of the last reading (0: none yet).
    read_at: AtomicU64,
    policy: Mutex<String>,
    /// The refusal writers last met (`Refusal::to_u8`), until a write succeeds again.
    refusal: AtomicU8,
    /// A watch task runs (one per process, however many parts ask).
    running: AtomicBool,
    /// The policy was judged (at start, or at the first answer after it).
    policy_judged: AtomicBool,
    /// New writes were refused for memory at the last reading (logged when it changes).
    refusing: AtomicBool,
    /// Why the process must stop (an evicting policy found once Redis answered).
    fatal: Mutex<Option<String>>,
}

impl RedisWatch {
    pub fn new(limits: LimitSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                used: AtomicU64::new(0),
                max: AtomicU64::new(0),
                read_at: AtomicU64::new(0),
                policy: Mutex::new(String::new()),
                refusal: AtomicU8::new(0),
                running: AtomicBool::new(false),
                policy_judged: AtomicBool::new(false),
                refusing: AtomicBool::new(false),
                fatal: Mutex::new(None),
            }),
        }
    }

    pub fn limits(&self) -> LimitSettings {
        self.inner.limits
    }

    /// The last reading, if fresh.
    pub fn memory(&self) -> Option<MemoryReading> {
        let read_at = self.inner.read_at.load(Ordering::Acquire) as i64;
        if read_at == 0 || chrono::Utc::now().timestamp_millis() - read_at > STALE_MS {
            return None;
        }
        Some(MemoryReading {
            used: self.inner.used.load(Ordering::Relaxed),
            max: self.inner.max.load(Ordering::Relaxed),
            policy: self.inner.policy.lock().expect("not poisoned").clone(),
        })
    }

    /// Stores a reading (the watch task's, or a one-off read's).
    pub fn record(&self, reading: &MemoryReading) {
        self.inner.used.store(reading.used, Ordering::Relaxed);
        self.inner.max.store(reading.max, Ordering::Relaxed);
        *self.inner.policy.lock().expect("not poisoned") = reading.policy.clone();
        self.inner.read_at.store(chrono::Utc::now().timestamp_millis() as u64, Ordering::Release);
    }

    /// Where memory stands (from the last fresh reading).
    pub fn pressure(&self) -> Pressure {
        let Some(reading) = self.memory() else { return Pressure::Fine };
        let Some(share) = reading.share() else { return Pressure::Fine };
        let high_water = self.inner.limits.memory_high_water;
        if reading.is_full() {
            Pressure::Full(reading)
        } else if share >= high_water {
            Pressure::High(reading)
        } else if share >= high_water * NEAR {
            Pressure::Near(reading)
        } else {
            Pressure::Fine
        }
    }

    /// The refusal of new events and jobs above the high-water mark, if memory is there:
    /// "Redis memory is at 91 % of maxmemory (…)".
    pub fn refuses_new_writes(&self) -> Option<String> {
        match self.pressure() {
            Pressure::High(m) | Pressure::Full(m) => Some(self.high_water_message(&m)),
            _ => None,
        }
    }

    /// The sentence naming memory against the high-water mark.
    pub fn high_water_message(&self, m: &MemoryReading) -> String {
        format!(
            "Redis memory is at {:.0} % of maxmemory (used {} of {}; EVENTMILL_REDIS_MEMORY_HIGH_WATER={}): new \
             events and jobs are refused until the consumers have stored the backlog",
            m.share().unwrap_or(0.0) * 100.0,
            human_bytes(m.used),
            human_bytes(m.max),
            self.inner.limits.memory_high_water
        )
    }

    /// A writer met `error` doing `what`: a refusal is logged when it starts (not on every retry)
    /// and answered; anything else is None (the caller handles it as before).
    pub fn refused(&self, what: &str, error: &redis::RedisError) -> Option<Refusal> {
        let refusal = Refusal::of(error)?;
        let code = Refusal::to_u8(Some(refusal));
        if self.inner.refusal.swap(code, Ordering::AcqRel) != code {
            tracing::error!(code = refusal.code(), %error, "{what}: {}", refusal.describe(self.memory().as_ref()));
        }
        Some(refusal)
    }

    /// A write worked: ends a refusal (logged once).
    pub fn accepted(&self) {
        if self.inner.refusal.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(refusal) = Refusal::from_u8(self.inner.refusal.swap(0, Ordering::AcqRel)) {
            tracing::info!(code = refusal.code(), "Redis accepts writes again");
        }
    }

    /// The refusal writers met last, while it lasts.
    pub fn last_refusal(&self) -> Option<Refusal> {
        Refusal::from_u8(self.inner.refusal.load(Ordering::Relaxed))
    }

    /// Marks the policy as judged by the start check (the watch then only reports it).
    pub fn policy_judged(&self) {
        self.inner.policy_judged.store(true, Ordering::Relaxed);
    }

    /// Why the process stopped itself, if it did (an evicting Redis found after start).
    pub fn fatal(&self) -> Option<String> {
        self.inner.fatal.lock().expect("not poisoned").clone()
    }

    /// Says once when new writes start being refused for memory, and once when they stop.
    fn log_refusing(&self) {
        let refusing = self.refuses_new_writes();
        if self.inner.refusing.swap(refusing.is_some(), Ordering::Relaxed) == refusing.is_some() {
            return;
        }
        match refusing {
            Some(message) => tracing::warn!("{message}"),
            None => tracing::info!("Redis memory is below its high-water mark again: new events are accepted"),
        }
    }

    /// Reads the memory every `POLL` until shutdown (the API's backpressure). The first answer
    /// after a start that could not judge the policy judges it: an evicting one (without the
    /// override) stops the process. A second call while one runs returns at once.
    pub async fn run(self, mut conn: RedisConn, shutdown: Shutdown) {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            return;
        }
        // Resets `running` however the task ends (aborted with its server, too).
        struct Running<'a>(&'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _running = Running(&self.inner.running);
        while !shutdown.is_cancelled() {
            if let Ok(Ok(reading)) = tokio::time::timeout(POLL * 4, memory::read(&mut conn)).await {
                self.record(&reading);
                self.log_refusing();
                self.judge_once(&reading, &shutdown);
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {},
                () = shutdown.cancelled() => {},
            }
        }
    }

    /// For a process without the API (a worker), which needs no memory readings (an idle worker
    /// sends almost no commands): only the policy, once Redis answers, if the start could not
    /// judge it. Returns at once when it was judged.
    pub async fn judge_policy(self, mut conn: RedisConn, shutdown: Shutdown) {
        while !shutdown.is_cancelled() && !self.inner.policy_judged.load(Ordering::Relaxed) {
            if let Ok(Ok(reading)) = tokio::time::timeout(POLL * 4, memory::read(&mut conn)).await {
                self.judge_once(&reading, &shutdown);
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL * 4) => {},
                () = shutdown.cancelled() => {},
            }
        }
    }

    /// Judges the policy of `reading` unless that was done: an evicting one (without the
    /// override) is the process's fatal error, and stops it.
    fn judge_once(&self, reading: &MemoryReading, shutdown: &Shutdown) {
        if !self.inner.policy_judged.swap(true, Ordering::Relaxed)
            && let Err(refused) = policy::judge(&reading.policy, self.inner.limits.allow_evicting)
        {
            tracing::error!("{refused}");
            *self.inner.fatal.lock().expect("not poisoned") = Some(refused.to_string());
            shutdown.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch_at(used: u64, max: u64) -> RedisWatch {
        let watch = RedisWatch::new(LimitSettings { memory_high_water: 0.9, allow_evicting: false });
        watch.record(&MemoryReading { used, max, policy: "noeviction".into() });
        watch
    }

    #[test]
    fn memory_is_fine_then_near_then_high_then_full() {
        assert_eq!(watch_at(50, 100).pressure(), Pressure::Fine);
        assert!(matches!(watch_at(75, 100).pressure(), Pressure::Near(_)));
        assert!(matches!(watch_at(90, 100).pressure(), Pressure::High(_)));
        assert!(matches!(watch_at(100, 100).pressure(), Pressure::Full(_)));
        assert_eq!(watch_at(1 << 40, 0).pressure(), Pressure::Fine, "no maxmemory, no limit");
        assert_eq!(RedisWatch::new(LimitSettings::default()).pressure(), Pressure::Fine, "nothing read yet");
    }

    #[test]
    fn new_writes_are_refused_from_the_high_water_mark_with_the_figures() {
        assert_eq!(watch_at(89, 100).refuses_new_writes(), None);
        let refused = watch_at(95 * 1024 * 1024, 100 * 1024 * 1024).refuses_new_writes().unwrap();
        assert!(refused.starts_with("Redis memory is at 95 % of maxmemory (used 95.0 MB of 100.0 MB;"), "{refused}");
    }
}
