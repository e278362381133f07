//! Why Redis refused a write, and what the operator can do about it: the one mapping from a
//! `redis::RedisError` to a cause and a fix, so the API's 429/503, `eventmill enqueue` and the
//! logs all say the same thing (instead of "unavailable" or "is Redis running?").

use redis::RedisError;

use super::{MemoryReading, human_bytes};

/// A write Redis refused although it is up and answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `OOM`: used memory reached `maxmemory` (policy `noeviction`): commands that need memory are
    /// refused, and so is every MULTI/EXEC.
    OutOfMemory,
    /// `READONLY`: the server is a replica (after a failover, or `REPLICAOF`).
    ReadOnly,
    /// `MISCONF`: Redis cannot persist (its last background save failed) and
    /// `stop-writes-on-bgsave-error` is on.
    PersistenceFailing,
}

impl Refusal {
    /// The refusal `error` carries, if it is one: its own code, a code inside an aborted
    /// transaction or pipeline, or a script's error that quotes the refused command's.
    pub fn of(error: &RedisError) -> Option<Self> {
        if let Some(refusal) = error.code().and_then(Self::from_code) {
            return Some(refusal);
        }
        if let Some(errors) = error.clone().into_server_errors()
            && let Some(refusal) = errors.iter().find_map(|(_, e)| Self::from_code(e.code()))
        {
            return Some(refusal);
        }
        Self::of_message(&error.to_string())
    }

    /// The refusal an error's text quotes (a script's error, or an error kept as text).
    pub fn of_message(text: &str) -> Option<Self> {
        if text.contains("OOM command not allowed") {
            Some(Self::OutOfMemory)
        } else if text.contains("READONLY You can't write") {
            Some(Self::ReadOnly)
        } else if text.contains("MISCONF") {
            Some(Self::PersistenceFailing)
        } else {
            None
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "OOM" => Some(Self::OutOfMemory),
            "READONLY" => Some(Self::ReadOnly),
            "MISCONF" => Some(Self::PersistenceFailing),
            _ => None,
        }
    }

    /// Redis' error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::OutOfMemory => "OOM",
            Self::ReadOnly => "READONLY",
            Self::PersistenceFailing => "MISCONF",
        }
    }

    /// What is wrong, in a sentence; `memory` (when known) gives the figures of a full Redis.
    pub fn cause(self, memory: Option<&MemoryReading>) -> String {
        match (self, memory) {
            (Self::OutOfMemory, Some(m)) if m.max > 0 => {
                format!("Redis is out of memory (used {} of maxmemory {})", human_bytes(m.used), human_bytes(m.max))
            }
            (Self::OutOfMemory, _) => "Redis is out of memory (maxmemory reached)".to_owned(),
            (Self::ReadOnly, _) => "Redis is a read-only replica (READONLY)".to_owned(),
            (Self::PersistenceFailing, _) => {
                "Redis refuses writes because it cannot save to disk (MISCONF: its last background save failed)"
                    .to_owned()
            }
        }
    }

    /// What the operator can do.
    pub fn fix(self) -> &'static str {
        match self {
            Self::OutOfMemory => {
                "the stream drains as the consumers store events (is PostgreSQL up and `eventmill worker` running?); \
                 or raise Redis' maxmemory"
            }
            Self::ReadOnly => {
                "point EVENTMILL_REDIS_URL at the master, or make this server a master again (REPLICAOF NO ONE)"
            }
            Self::PersistenceFailing => {
                "see Redis' log: free disk space or fix the permissions of its `dir`; writes resume once a save \
                 succeeds (BGSAVE)"
            }
        }
    }

    /// Cause and fix in one message.
    pub fn describe(self, memory: Option<&MemoryReading>) -> String {
        format!("{}: {}", self.cause(memory), self.fix())
    }

    /// A compact number for an atomic (0 = none).
    pub(super) fn to_u8(refusal: Option<Self>) -> u8 {
        match refusal {
            None => 0,
            Some(Self::OutOfMemory) => 1,
            Some(Self::ReadOnly) => 2,
            Some(Self::PersistenceFailing) => 3,
        }
    }

    pub(super) fn from_u8(n: u8) -> Option<Self> {
        match n {
            1 => Some(Self::OutOfMemory),
            2 => Some(Self::ReadOnly),
            3 => Some(Self::PersistenceFailing),
            _ => None,
        }
    }
}

/// Whether `error` is Redis refusing for lack of memory.
pub fn is_out_of_memory(error: &RedisError) -> bool {
    Refusal::of(error) == Some(Refusal::OutOfMemory)
}

/// A refusal said once when it starts and once when it ends, however often the caller retries
/// (one per loop: a consumer, a worker).
#[derive(Debug, Default)]
pub struct Episode {
    current: Option<Refusal>,
}

impl Episode {
    /// Records a failed step of `what`: a refusal is logged when it differs from the last one;
    /// returns it (None: not a refusal, the caller logs the error as before).
    pub fn failed(&mut self, what: &str, error: &RedisError) -> Option<Refusal> {
        let refusal = Refusal::of(error)?;
        if self.current != Some(refusal) {
            tracing::error!(code = refusal.code(), %error, "{what}: {}", refusal.describe(None));
            self.current = Some(refusal);
        }
        Some(refusal)
    }

    /// Records a step of `what` that worked: ends a refusal episode (logged once).
    pub fn recovered(&mut self, what: &str) {
        if let Some(refusal) = self.current.take() {
            tracing::info!(code = refusal.code(), "{what}: Redis accepts writes again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a Redis reply `-<code> <detail>` becomes.
    fn server_error(code: &str, detail: &str) -> RedisError {
        let value = redis::parse_redis_value(format!("-{code} {detail}\r\n").as_bytes()).unwrap();
        value.extract_error().unwrap_err()
    }

    #[test]
    fn each_refusal_is_recognized_by_its_code() {
        let oom = server_error("OOM", "command not allowed when used memory > 'maxmemory'.");
        assert_eq!(Refusal::of(&oom), Some(Refusal::OutOfMemory));
        assert_eq!(
            Refusal::of(&server_error("READONLY", "You can't write against a read only replica.")),
            Some(Refusal::ReadOnly)
        );
        assert_eq!(
            Refusal::of(&server_error("MISCONF", "Redis is configured to save RDB snapshots")),
            Some(Refusal::PersistenceFailing)
        );
        assert_eq!(Refusal::of(&server_error("ERR", "unknown command")), None);
    }

    #[test]
    fn a_full_redis_is_described_with_its_figures() {
        let memory = MemoryReading { used: 41 * 1024 * 1024, max: 40 * 1024 * 1024, policy: "noeviction".into() };
        let text = Refusal::OutOfMemory.describe(Some(&memory));
        assert!(text.starts_with("Redis is out of memory (used 41.0 MB of maxmemory 40.0 MB)"), "{text}");
    }
}
