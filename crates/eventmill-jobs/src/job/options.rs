//! The `[options]` table of a job file: how to enqueue the job (BullMQ's job options), beside what
//! the job is. The same options are `enqueue` flags (`--priority`, `--delay`, `--key`,
//! `--key-window`, `--dedup`); a flag given on the command line wins over the file.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::queue::{DedupMode, EnqueueOptions, FailurePolicy, MAX_PRIORITY};

/// A job file's `options = { priority = 1, delay = "10m", key = "k", key_window = "1h" }` (a flow's
/// child also `on_failure = "ignore_dependency"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// 1 runs first, then 2...; none runs before any prioritised job.
    pub priority: Option<u32>,
    /// Run no earlier than this long after the enqueue.
    pub delay: Option<Duration>,
    /// Deduplication key, and how long it deduplicates.
    pub key: Option<String>,
    /// How long `key` deduplicates (default: while the job exists).
    pub key_window: Option<Duration>,
    /// A flow's child: what its failure does to its parent (`fail_parent` when unset).
    pub on_failure: Option<FailurePolicy>,
    /// How `key` deduplicates: `simple`, `throttle` (when unset) or `debounce`.
    pub dedup: Option<DedupMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    priority: Option<u32>,
    delay: Option<String>,
    key: Option<String>,
    #[serde(alias = "keyWindow")]
    key_window: Option<String>,
    #[serde(alias = "onFailure")]
    on_failure: Option<String>,
    dedup: Option<String>,
}

impl JobOptions {
    /// Parses the `options` value of a job file.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(value)
            .map_err(|e| format!("options: {e} (known: priority, delay, key, key_window, dedup, on_failure)"))?;
        let duration = |name: &str, text: Option<String>| {
            text.map(|t| {
                humantime::parse_duration(t.trim())
                    .map_err(|e| format!("options.{name} {t:?}: {e} (e.g. \"90s\", \"10m\", \"2h\")"))
            })
            .transpose()
        };
        let options = Self {
            priority: raw.priority,
            delay: duration("delay", raw.delay)?,
            key: raw.key.filter(|k| !k.trim().is_empty()),
            key_window: duration("key_window", raw.key_window)?,
            on_failure: raw.on_failure.map(|p| p.parse().map_err(|e| format!("options.{e}"))).transpose()?,
            dedup: raw.dedup.map(|m| m.parse().map_err(|e| format!("options.{e}"))).transpose()?,
        };
        options.check()?;
        Ok(options)
    }

    /// Refuses a priority past the lowest one, and a key window without a key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(priority) = self.priority.filter(|p| *p > MAX_PRIORITY) {
            return Err(format!("priority {priority} is too large: use 1 (first) to {MAX_PRIORITY}"));
        }
        if self.key_window.is_some() && self.key.is_none() {
            return Err("a key window needs a key".into());
        }
        let mode = self.dedup.unwrap_or_default();
        crate::queue::store::check_dedup(mode, self.key.is_some(), self.key_window.is_some(), self.delay.is_some())
    }

    /// These options, each overridden by `over`'s when set (command-line flags over the file).
    pub fn or(self, over: JobOptions) -> JobOptions {
        JobOptions {
            priority: over.priority.or(self.priority),
            delay: over.delay.or(self.delay),
            key: over.key.or(self.key),
            key_window: over.key_window.or(self.key_window),
            on_failure: over.on_failure.or(self.on_failure),
            dedup: over.dedup.or(self.dedup),
        }
    }

    /// The queue's enqueue options, enqueued by `origin`.
    pub fn enqueue_options(&self, origin: &str) -> EnqueueOptions {
        EnqueueOptions {
            delay: self.delay,
            priority: self.priority,
            idempotency_key: self.key.clone(),
            idempotency_ttl: self.key_window,
            origin: origin.to_owned(),
            on_failure: self.on_failure.unwrap_or_default(),
            dedup: self.dedup.unwrap_or_default(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_durations_and_refuse_unknown_fields() {
        let options = JobOptions::from_value(serde_json::json!({"priority": 2, "delay": "10m", "key": "k"})).unwrap();
        assert_eq!(options.priority, Some(2));
        assert_eq!(options.delay, Some(Duration::from_secs(600)));
        let err = JobOptions::from_value(serde_json::json!({"prio": 1})).unwrap_err();
        assert!(err.contains("known: priority"), "{err}");
        assert!(JobOptions::from_value(serde_json::json!({"priority": 1u32 << 22})).is_err());
        let options = JobOptions::from_value(serde_json::json!({"on_failure": "ignore_dependency"})).unwrap();
        assert_eq!(options.on_failure, Some(FailurePolicy::IgnoreDependency));
        let err = JobOptions::from_value(serde_json::json!({"on_failure": "ignore"})).unwrap_err();
        assert!(err.contains("expected fail_parent (the default), ignore_dependency"), "{err}");
        let options = JobOptions::from_value(serde_json::json!({"key": "k", "dedup": "simple"})).unwrap();
        assert_eq!(options.enqueue_options("test").dedup, DedupMode::Simple);
        let err = JobOptions::from_value(serde_json::json!({"key": "k", "dedup": "debounce"})).unwrap_err();
        assert!(err.contains("debounce needs a delay"), "{err}");
        let err = JobOptions::from_value(serde_json::json!({"dedup": "simple"})).unwrap_err();
        assert!(err.contains("needs a key"), "{err}");
        let err =
            JobOptions::from_value(serde_json::json!({"key": "k", "key_window": "1h", "dedup": "simple"})).unwrap_err();
        assert!(err.contains("the throttle mode's"), "{err}");
        let err = JobOptions::from_value(serde_json::json!({"key": "k", "dedup": "latest"})).unwrap_err();
        assert!(err.contains("expected simple, throttle (the default) or debounce"), "{err}");
    }
}
