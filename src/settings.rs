//! Typed settings, read once from the environment (and `.env`) and passed down to every part.
//!
//! Every value has an `EVENTMILL_*` override and a documented default; `eventmill config` prints the
//! effective values with secrets masked. Nothing else in the crate reads the environment. Redis and
//! the job queues are the framework's settings (`eventmill_jobs::JobsSettings`, read under the
//! prefix `EVENTMILL`), embedded here as `redis` and `jobs`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use eventmill_jobs::{
    queue::Catalog,
    settings::{Env, JobsSettings},
};
use secrecy::{ExposeSecret, SecretString};

pub use eventmill_jobs::settings::{JobSettings, PolicyOverride, RedisSettings, RetryPolicy, SettingsError, mask_url};

/// The prefix of every variable: `EVENTMILL_REDIS_URL`, `EVENTMILL_JOB_ATTEMPTS`...
pub const ENV_PREFIX: &str = "EVENTMILL";

/// Everything eventmill can be configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Redis is (`EVENTMILL_REDIS_URL`, `_CLUSTER`, `_WAIT_REPLICAS`, `_TIMEOUT_MS`, `_PREFIX`).
    pub redis: RedisSettings,
    /// Stream keys the ingestion stream is split over (spread across a cluster's slots).
    pub stream_shards: usize,
    pub database_url: SecretString,
    pub http_addr: SocketAddr,
    /// Where `/metrics` is served without a token, for scrapers (unset = only on the API, behind a token).
    pub metrics_addr: Option<SocketAddr>,
    /// Admin token; generated at start (and printed) when unset.
    pub admin_token: Option<SecretString>,
    pub readonly_token: Option<SecretString>,
    /// eventmill is reached over HTTPS (usually behind a TLS proxy): the session cookie gets `Secure`.
    pub https: bool,
    /// Keys accepted on the ingestion API; empty = open on loopback only.
    pub ingest_keys: Vec<SecretString>,
    pub reports_dir: PathBuf,
    pub smtp_url: Option<SecretString>,
    /// Sender address of report e-mails.
    pub smtp_from: String,
    /// Rows a PDF export shows at most (the PDF says so when capped; CSV and JSON are never capped).
    pub export_pdf_max_rows: usize,
    /// Error rate (percent) above which the dashboard's error card and chart show their alert state.
    pub dashboard_error_threshold: f64,
    /// How often the live feed reads the counters and pushes an SSE message (one Redis read per
    /// tick per process, whatever the number of viewers).
    pub live_tick: Duration,
    pub scheduler_file: PathBuf,
    /// Redis' memory limits: the share of `maxmemory` above which new events and jobs are refused,
    /// and whether an evicting `maxmemory-policy` is accepted (see `redis_limits`).
    pub redis_limits: crate::redis_limits::LimitSettings,
    pub ingest: IngestSettings,
    pub consumer: ConsumerSettings,
    pub storage: StorageSettings,
    pub jobs: JobSettings,
}

/// Limits of the HTTP ingestion API.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub max_batch_events: usize,
    pub body_limit_bytes: usize,
    /// Unsaved events in the stream above which ingestion answers 429 instead of trimming them.
    pub stream_high_water: u64,
    /// How long a re-send of a client-identified event without a timestamp (and without a
    /// UUIDv7 id) is recognized: its first arrival time is pinned in Redis this long.
    pub resend_window: Duration,
    /// Longest wait on Redis before answering 503.
    pub redis_timeout: Duration,
    /// Longest time a request (its body included) may take before it is answered 408.
    pub request_timeout: Duration,
    /// Most connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

/// How the stream consumer batches, retries and gives up.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Consumer tasks in one process (each with its own name and database connection).
    pub consumers: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// Deliveries after which a failing entry moves to the dead-letter stream.
    pub max_deliveries: u64,
    /// How long an entry must sit unacknowledged before another consumer reclaims it.
    pub reclaim_idle: Duration,
    pub reclaim_interval: Duration,
}

/// Partition and retention policy of the `events` table.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub retention_days: u32,
    pub partitions_ahead_days: u32,
    pub max_connections: u32,
}

impl Settings {
    /// Reads `.env` (when present) and then the process environment, for the job kinds and queues
    /// of `catalog` (a per-kind or per-queue variable naming another is an error, not ignored).
    pub fn from_env(catalog: &Catalog) -> Result<Self, SettingsError> {
        let framework = JobsSettings::from_env_for(ENV_PREFIX, &catalog.kind_names(), &catalog.queue_names())?;
        Self::with_framework(framework, |key| std::env::var(key).ok())
    }

    /// Builds settings from any key lookup; tests pass a map here instead of touching the environment.
    pub fn from_lookup(catalog: &Catalog, get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let framework = JobsSettings::from_lookup(ENV_PREFIX, &catalog.kind_names(), &catalog.queue_names(), &get)?;
        Self::with_framework(framework, get)
    }

    /// The app's own settings beside the framework's.
    fn with_framework(framework: JobsSettings, get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env::new(ENV_PREFIX, &get);
        let JobsSettings { redis, jobs, .. } = framework;
        Ok(Self {
            stream_shards: env.parse::<std::num::NonZeroUsize>("STREAM_SHARDS", "1", "a count of at least 1")?.get(),
            database_url: env.string("DATABASE_URL", "postgres://eventmill@127.0.0.1:5432/eventmill").into(),
            http_addr: env.parse("HTTP_ADDR", "127.0.0.1:8080", "host:port")?,
            metrics_addr: env.parse_optional("METRICS_ADDR", "host:port")?,
            admin_token: env.optional("ADMIN_TOKEN").map(Into::into),
            readonly_token: env.optional("READONLY_TOKEN").map(Into::into),
            https: env.parse("HTTPS", "false", "true or false")?,
            ingest_keys: env
                .string("INGEST_KEYS", "")
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| SecretString::from(k.to_owned()))
                .collect(),
            reports_dir: env.string("REPORTS_DIR", "reports").into(),
            smtp_url: env.optional("SMTP_URL").map(Into::into),
            smtp_from: env.string("SMTP_FROM", "eventmill@localhost"),
            export_pdf_max_rows: env.parse("EXPORT_PDF_MAX_ROWS", "5000", "a count")?,
            dashboard_error_threshold: env.parse("DASHBOARD_ERROR_THRESHOLD", "5", "a percentage")?,
            live_tick: env.millis_in("LIVE_TICK_MS", "250", 20..=60_000, "milliseconds from 20 to 60000")?,
            scheduler_file: env.string("SCHEDULER_FILE", "scheduler.toml").into(),
            redis_limits: crate::redis_limits::LimitSettings::checked(
                env.parse("REDIS_MEMORY_HIGH_WATER", "0.9", "a share of maxmemory above 0 and at most 1")?,
                env.parse("ALLOW_EVICTING_REDIS", "false", "true or false")?,
            )
            .map_err(|value| SettingsError {
                var: "EVENTMILL_REDIS_MEMORY_HIGH_WATER".into(),
                value,
                expected: "a share of maxmemory above 0 and at most 1",
            })?,
            ingest: IngestSettings {
                max_batch_events: env.parse("MAX_BATCH_EVENTS", "5000", "a count")?,
                body_limit_bytes: env.parse("BODY_LIMIT_BYTES", "16777216", "bytes")?,
                stream_high_water: env.parse("STREAM_MAX_LEN", "2000000", "a count")?,
                redis_timeout: redis.timeout,
                resend_window: Duration::from_secs(env.parse("RESEND_WINDOW_SECS", "600", "seconds")?),
                request_timeout: env.millis("REQUEST_TIMEOUT_MS", "10000")?,
                max_connections: env.parse("MAX_CONNECTIONS", "1000", "a count")?,
            },
            consumer: ConsumerSettings {
                consumers: env.parse("CONSUMERS", "2", "a count")?,
                batch_size: env.parse("BATCH_SIZE", "4000", "a count")?,
                flush_interval: env.millis("FLUSH_INTERVAL_MS", "100")?,
                max_deliveries: env.parse("MAX_DELIVERIES", "5", "a count")?,
                reclaim_idle: env.millis("RECLAIM_IDLE_MS", "30000")?,
                reclaim_interval: env.millis("RECLAIM_INTERVAL_MS", "5000")?,
            },
            storage: StorageSettings {
                retention_days: env.parse("RETENTION_DAYS", "400", "days")?,
                partitions_ahead_days: env.parse("PARTITIONS_AHEAD_DAYS", "7", "days")?,
                max_connections: env.parse("DB_MAX_CONNECTIONS", "10", "a count")?,
            },
            redis,
            jobs,
        })
    }

    /// The framework's part (Redis and jobs), for `eventmill_jobs::Jobs::connect`.
    pub fn framework(&self) -> JobsSettings {
        JobsSettings { env_prefix: ENV_PREFIX.to_owned(), redis: self.redis.clone(), jobs: self.jobs.clone() }
    }

    /// The effective configuration as `NAME=value` lines, secrets masked, for `eventmill config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let secret = |s: &Option<SecretString>| match s {
            Some(_) => "******".to_owned(),
            None => "(unset)".to_owned(),
        };
        let framework = self.framework().describe();
        let (redis, jobs): (Vec<_>, Vec<_>) = framework.into_iter().partition(|(name, _)| name.contains("_REDIS_"));
        let app: Vec<(&'static str, String)> = vec![
            ("EVENTMILL_STREAM_SHARDS", self.stream_shards.to_string()),
            ("EVENTMILL_DATABASE_URL", mask_url(self.database_url.expose_secret())),
            ("EVENTMILL_HTTP_ADDR", self.http_addr.to_string()),
            (
                "EVENTMILL_METRICS_ADDR",
                self.metrics_addr
                    .map_or("(unset: /metrics only on the API, with a token)".to_owned(), |a| a.to_string()),
            ),
            (
                "EVENTMILL_ADMIN_TOKEN",
                match &self.admin_token {
                    Some(_) => "******".to_owned(),
                    None => "(unset: generated and printed at start)".to_owned(),
                },
            ),
            ("EVENTMILL_READONLY_TOKEN", secret(&self.readonly_token)),
            ("EVENTMILL_HTTPS", self.https.to_string()),
            (
                "EVENTMILL_INGEST_KEYS",
                match self.ingest_keys.len() {
                    0 => "(none: ingestion open on loopback only)".to_owned(),
                    n => format!("{n} key(s) ******"),
                },
            ),
            ("EVENTMILL_REPORTS_DIR", self.reports_dir.display().to_string()),
            (
                "EVENTMILL_SMTP_URL",
                match &self.smtp_url {
                    Some(url) => mask_url(url.expose_secret()),
                    None => "(unset: e-mail disabled)".to_owned(),
                },
            ),
            ("EVENTMILL_SMTP_FROM", self.smtp_from.clone()),
            ("EVENTMILL_EXPORT_PDF_MAX_ROWS", self.export_pdf_max_rows.to_string()),
            ("EVENTMILL_DASHBOARD_ERROR_THRESHOLD", self.dashboard_error_threshold.to_string()),
            ("EVENTMILL_LIVE_TICK_MS", self.live_tick.as_millis().to_string()),
            ("EVENTMILL_SCHEDULER_FILE", self.scheduler_file.display().to_string()),
            ("EVENTMILL_REDIS_MEMORY_HIGH_WATER", self.redis_limits.memory_high_water.to_string()),
            ("EVENTMILL_ALLOW_EVICTING_REDIS", self.redis_limits.allow_evicting.to_string()),
            ("EVENTMILL_MAX_BATCH_EVENTS", self.ingest.max_batch_events.to_string()),
            ("EVENTMILL_BODY_LIMIT_BYTES", self.ingest.body_limit_bytes.to_string()),
            ("EVENTMILL_STREAM_MAX_LEN", self.ingest.stream_high_water.to_string()),
            ("EVENTMILL_RESEND_WINDOW_SECS", self.ingest.resend_window.as_secs().to_string()),
            ("EVENTMILL_REQUEST_TIMEOUT_MS", self.ingest.request_timeout.as_millis().to_string()),
            ("EVENTMILL_MAX_CONNECTIONS", self.ingest.max_connections.to_string()),
            ("EVENTMILL_CONSUMERS", self.consumer.consumers.to_string()),
            ("EVENTMILL_BATCH_SIZE", self.consumer.batch_size.to_string()),
            ("EVENTMILL_FLUSH_INTERVAL_MS", self.consumer.flush_interval.as_millis().to_string()),
            ("EVENTMILL_MAX_DELIVERIES", self.consumer.max_deliveries.to_string()),
            ("EVENTMILL_RECLAIM_IDLE_MS", self.consumer.reclaim_idle.as_millis().to_string()),
            ("EVENTMILL_RECLAIM_INTERVAL_MS", self.consumer.reclaim_interval.as_millis().to_string()),
            ("EVENTMILL_RETENTION_DAYS", self.storage.retention_days.to_string()),
            ("EVENTMILL_PARTITIONS_AHEAD_DAYS", self.storage.partitions_ahead_days.to_string()),
            ("EVENTMILL_DB_MAX_CONNECTIONS", self.storage.max_connections.to_string()),
        ];
        let app = app.into_iter().map(|(name, value)| (name.to_owned(), value));
        redis.into_iter().chain(app).chain(jobs).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let catalog = crate::processors::registry().catalog().clone();
        Settings::from_lookup(&catalog, |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.ingest.max_batch_events, 5000);
        assert_eq!(s.storage.retention_days, 400);
        assert!(s.ingest_keys.is_empty());
        assert_eq!(s.smtp_from, "eventmill@localhost");
        assert_eq!(s.export_pdf_max_rows, 5000);
        assert_eq!(s.redis.prefix, "eventmill");
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").attempts, 3);
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").backoff, Duration::from_secs(2));
    }

    #[test]
    fn a_job_kind_can_have_its_own_retry_policy() {
        let s = settings(&[("EVENTMILL_JOB_ATTEMPTS_GENERATE_REPORT", "5")]).unwrap();
        assert_eq!(s.jobs.policy("GENERATE_REPORT").attempts, 5);
        assert_eq!(s.jobs.policy("HOURLY_ROLLUP").attempts, 3);
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = settings(&[("EVENTMILL_BATCH_SIZE", "lots")]).unwrap_err();
        assert!(err.to_string().contains("EVENTMILL_BATCH_SIZE"), "{err}");
        let err = settings(&[("EVENTMILL_STREAM_SHARDS", "0")]).unwrap_err();
        assert!(err.to_string().contains("EVENTMILL_STREAM_SHARDS"), "{err}");
    }

    #[test]
    fn config_shows_the_app_and_the_framework_settings_with_secrets_masked() {
        let s = settings(&[
            ("EVENTMILL_REDIS_URL", "redis://:pw@a:7000,redis://:pw@b:7000"),
            ("EVENTMILL_DATABASE_URL", "postgres://u:secret@h:5432/db"),
        ])
        .unwrap();
        let described = s.describe();
        let value = |name: &str| described.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(value("EVENTMILL_REDIS_CLUSTER"), "true");
        assert_eq!(value("EVENTMILL_REDIS_URL"), "redis://:******@a:7000,redis://:******@b:7000");
        assert_eq!(value("EVENTMILL_DATABASE_URL"), "postgres://u:******@h:5432/db");
        assert_eq!(value("EVENTMILL_JOB_LEASE_MS"), "30000");
        assert_eq!(value("EVENTMILL_BATCH_SIZE"), "4000");
    }
}
