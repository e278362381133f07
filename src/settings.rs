//! Typed settings, read once from the environment (and `.env`) and passed down to every part.
//!
//! Every value has an `EVENTMILL_*` override and a documented default; `eventmill config` prints the
//! effective values with secrets masked. Nothing else in the crate reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::queue::{RateLimit, rate_limit};

/// Everything eventmill can be configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// One Redis node, or the nodes of a Redis Cluster separated by commas.
    pub redis_url: SecretString,
    /// Cluster mode with a single seed node in `redis_url` (several nodes imply it).
    pub redis_cluster: bool,
    /// Stream keys the ingestion stream is split over (spread across a cluster's slots).
    pub stream_shards: usize,
    /// Replicas that must confirm an accepted request or job before it is acknowledged (0: off;
    /// see `redis_conn::ReplicaWait`).
    pub redis_wait_replicas: u32,
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
    /// Prefix of every Redis key eventmill owns (lets several installs, or tests, share one Redis).
    pub redis_prefix: String,
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

/// Job queues (SPEC section 7): retries, timeouts, leases, wake-ups and retention.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Policy of job kinds that set nothing of their own.
    pub default_policy: RetryPolicy,
    /// Per-kind overrides (`EVENTMILL_JOB_ATTEMPTS_DAILY_ROLLUP`...), by `job_type`, for the
    /// registered kinds (a variable naming another kind is an error).
    pub overrides: Vec<(String, PolicyOverride)>,
    /// Jobs one worker process runs at once, per queue (unless the queue declares its own).
    pub concurrency: usize,
    /// Longest an idle worker waits without looking at its queue (it is woken at once by new
    /// jobs and at the due time of delayed ones; this catches jobs of workers that died).
    pub idle_check: Duration,
    /// How often running jobs' progress and log lines are written (one call for all of them).
    pub progress_flush: Duration,
    /// How long a running job stays claimed without a heartbeat (a killed worker's job is retried after it).
    pub lease: Duration,
    /// How long a job may keep running after shutdown before it is handed back to the queue.
    pub shutdown_grace: Duration,
    /// Completed jobs kept: at most this many, and none older than `keep_completed_age`.
    pub keep_completed: u64,
    pub keep_completed_age: Duration,
    /// Failed jobs kept: at most this many, and none older than `keep_failed_age`.
    pub keep_failed: u64,
    pub keep_failed_age: Duration,
    /// Per-queue rate limits from `EVENTMILL_QUEUE_RATE_LIMIT_<QUEUE>` (`100/1s`; `none` lifts a
    /// declared one), by queue name, for the declared queues.
    pub rate_limits: Vec<(String, Option<RateLimit>)>,
}

/// Attempts, backoff and timeout of one job kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Runs in total, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled before each next one (2 s, 4 s, 8 s...).
    pub backoff: Duration,
    /// Random spread of each wait, as a fraction (0.2 = up to 20 % shorter or longer).
    pub jitter: f64,
    /// Longest run of one attempt; a slower attempt fails (and is retried if attempts are left).
    pub timeout: Duration,
}

/// Some of a policy's values: a processor's declared defaults, or a kind's `EVENTMILL_JOB_*_<KIND>`
/// variables. Unset values come from the layer below.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyOverride {
    pub attempts: Option<u32>,
    pub backoff: Option<Duration>,
    pub jitter: Option<f64>,
    pub timeout: Option<Duration>,
}

impl PolicyOverride {
    /// `base` with this override's values.
    pub fn apply(self, base: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            backoff: self.backoff.unwrap_or(base.backoff),
            jitter: self.jitter.unwrap_or(base.jitter),
            timeout: self.timeout.unwrap_or(base.timeout),
        }
    }
}

/// The per-kind variables: `EVENTMILL_JOB_<NAME>_<KIND>`.
const KIND_VARIABLES: [&str; 4] = ["ATTEMPTS", "BACKOFF_MS", "BACKOFF_JITTER", "TIMEOUT_MS"];

impl JobSettings {
    /// The environment's override for a `job_type` (empty when it has none).
    pub fn override_for(&self, kind: &str) -> PolicyOverride {
        self.overrides.iter().find(|(k, _)| k == kind).map(|(_, o)| *o).unwrap_or_default()
    }

    /// The policy for a `job_type` from the settings alone (no processor defaults: see
    /// `Registry::policy`).
    pub fn policy(&self, kind: &str) -> RetryPolicy {
        self.override_for(kind).apply(self.default_policy)
    }

    /// Queue `queue`'s rate limit: the environment's, else `declared`.
    pub fn rate_limit(&self, queue: &str, declared: Option<RateLimit>) -> Option<RateLimit> {
        self.rate_limits.iter().find(|(q, _)| q == queue).map_or(declared, |(_, limit)| *limit)
    }
}

/// A setting that could not be parsed; names the variable and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: expected {expected}")]
pub struct SettingsError {
    pub var: String,
    pub value: String,
    pub expected: &'static str,
}

impl Settings {
    /// Reads `.env` (when present) and then the process environment, for eventmill's job kinds
    /// and queues.
    pub fn from_env() -> Result<Self, SettingsError> {
        let registry = crate::processors::registry();
        Self::from_env_for(&registry.kind_names(), &registry.queue_names())
    }

    /// As `from_env`, for the job kinds `kinds` (a registry of one's own); a per-kind variable
    /// naming another kind is an error, not silently ignored.
    pub fn from_env_for(kinds: &[&str], queues: &[&str]) -> Result<Self, SettingsError> {
        let _ = dotenvy::dotenv();
        for (var, value) in std::env::vars() {
            check_kind_variable(&var, &value, kinds)?;
            check_queue_variable(&var, &value, queues)?;
        }
        Self::from_lookup_for(kinds, queues, |key| std::env::var(key).ok())
    }

    /// Builds settings from any key lookup; tests pass a map here instead of touching the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let registry = crate::processors::registry();
        Self::from_lookup_for(&registry.kind_names(), &registry.queue_names(), get)
    }

    /// As `from_lookup`, reading the per-kind variables of `kinds`.
    pub fn from_lookup_for(
        kinds: &[&str],
        queues: &[&str],
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let env = Env(&get);
        Ok(Self {
            redis_url: env.string("EVENTMILL_REDIS_URL", "redis://127.0.0.1:6379").into(),
            redis_cluster: env.parse("EVENTMILL_REDIS_CLUSTER", "false", "true or false")?,
            stream_shards: env
                .parse::<std::num::NonZeroUsize>("EVENTMILL_STREAM_SHARDS", "1", "a count of at least 1")?
                .get(),
            redis_wait_replicas: env.parse("EVENTMILL_REDIS_WAIT_REPLICAS", "0", "a count of replicas (0: off)")?,
            database_url: env.string("EVENTMILL_DATABASE_URL", "postgres://eventmill@127.0.0.1:5432/eventmill").into(),
            http_addr: env.parse("EVENTMILL_HTTP_ADDR", "127.0.0.1:8080", "host:port")?,
            metrics_addr: env.parse_optional("EVENTMILL_METRICS_ADDR", "host:port")?,
            admin_token: env.optional("EVENTMILL_ADMIN_TOKEN").map(Into::into),
            readonly_token: env.optional("EVENTMILL_READONLY_TOKEN").map(Into::into),
            https: env.parse("EVENTMILL_HTTPS", "false", "true or false")?,
            ingest_keys: env
                .string("EVENTMILL_INGEST_KEYS", "")
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| SecretString::from(k.to_owned()))
                .collect(),
            reports_dir: env.string("EVENTMILL_REPORTS_DIR", "reports").into(),
            smtp_url: env.optional("EVENTMILL_SMTP_URL").map(Into::into),
            smtp_from: env.string("EVENTMILL_SMTP_FROM", "eventmill@localhost"),
            export_pdf_max_rows: env.parse("EVENTMILL_EXPORT_PDF_MAX_ROWS", "5000", "a count")?,
            dashboard_error_threshold: env.parse("EVENTMILL_DASHBOARD_ERROR_THRESHOLD", "5", "a percentage")?,
            live_tick: env.millis_in("EVENTMILL_LIVE_TICK_MS", "250", 20..=60_000)?,
            scheduler_file: env.string("EVENTMILL_SCHEDULER_FILE", "scheduler.toml").into(),
            redis_prefix: env.string("EVENTMILL_REDIS_PREFIX", "eventmill"),
            redis_limits: crate::redis_limits::LimitSettings::checked(
                env.parse("EVENTMILL_REDIS_MEMORY_HIGH_WATER", "0.9", "a share of maxmemory above 0 and at most 1")?,
                env.parse("EVENTMILL_ALLOW_EVICTING_REDIS", "false", "true or false")?,
            )
            .map_err(|value| SettingsError {
                var: "EVENTMILL_REDIS_MEMORY_HIGH_WATER".into(),
                value,
                expected: "a share of maxmemory above 0 and at most 1",
            })?,
            ingest: IngestSettings {
                max_batch_events: env.parse("EVENTMILL_MAX_BATCH_EVENTS", "5000", "a count")?,
                body_limit_bytes: env.parse("EVENTMILL_BODY_LIMIT_BYTES", "16777216", "bytes")?,
                stream_high_water: env.parse("EVENTMILL_STREAM_MAX_LEN", "2000000", "a count")?,
                redis_timeout: env.millis("EVENTMILL_REDIS_TIMEOUT_MS", "2000")?,
                resend_window: Duration::from_secs(env.parse("EVENTMILL_RESEND_WINDOW_SECS", "600", "seconds")?),
                request_timeout: env.millis("EVENTMILL_REQUEST_TIMEOUT_MS", "10000")?,
                max_connections: env.parse("EVENTMILL_MAX_CONNECTIONS", "1000", "a count")?,
            },
            consumer: ConsumerSettings {
                consumers: env.parse("EVENTMILL_CONSUMERS", "2", "a count")?,
                batch_size: env.parse("EVENTMILL_BATCH_SIZE", "4000", "a count")?,
                flush_interval: env.millis("EVENTMILL_FLUSH_INTERVAL_MS", "100")?,
                max_deliveries: env.parse("EVENTMILL_MAX_DELIVERIES", "5", "a count")?,
                reclaim_idle: env.millis("EVENTMILL_RECLAIM_IDLE_MS", "30000")?,
                reclaim_interval: env.millis("EVENTMILL_RECLAIM_INTERVAL_MS", "5000")?,
            },
            storage: StorageSettings {
                retention_days: env.parse("EVENTMILL_RETENTION_DAYS", "400", "days")?,
                partitions_ahead_days: env.parse("EVENTMILL_PARTITIONS_AHEAD_DAYS", "7", "days")?,
                max_connections: env.parse("EVENTMILL_DB_MAX_CONNECTIONS", "10", "a count")?,
            },
            jobs: job_settings(&env, kinds, queues)?,
        })
    }

    /// Where Redis is (one node or a cluster), from `EVENTMILL_REDIS_URL` and `EVENTMILL_REDIS_CLUSTER`,
    /// and how many replicas confirm acknowledged writes (`EVENTMILL_REDIS_WAIT_REPLICAS`, waiting
    /// at most half of `EVENTMILL_REDIS_TIMEOUT_MS`, so the 503 comes within the timeout).
    pub fn redis_target(&self) -> redis::RedisResult<crate::redis_conn::RedisTarget> {
        let wait = crate::redis_conn::ReplicaWait {
            replicas: self.redis_wait_replicas,
            timeout: self.ingest.redis_timeout / 2,
        };
        Ok(crate::redis_conn::RedisTarget::new(self.redis_url.expose_secret(), self.redis_cluster)?
            .with_replica_wait(wait))
    }

    /// Whether `redis_target` is a cluster (the URL's own rule: several nodes, or the flag).
    fn redis_target_is_cluster(&self) -> bool {
        self.redis_target().map_or(self.redis_cluster, |target| target.is_cluster())
    }

    /// The effective configuration as `NAME=value` lines, secrets masked, for `eventmill config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let secret = |s: &Option<SecretString>| match s {
            Some(_) => "******".to_owned(),
            None => "(unset)".to_owned(),
        };
        vec![
            ("EVENTMILL_REDIS_URL", mask_url(self.redis_url.expose_secret())),
            ("EVENTMILL_REDIS_CLUSTER", self.redis_target_is_cluster().to_string()),
            ("EVENTMILL_STREAM_SHARDS", self.stream_shards.to_string()),
            (
                "EVENTMILL_REDIS_WAIT_REPLICAS",
                match self.redis_wait_replicas {
                    0 => "0 (off: a 202 means on the master)".to_owned(),
                    n => format!("{n} (a 202 means on the master and {n} replica(s))"),
                },
            ),
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
            ("EVENTMILL_REDIS_PREFIX", self.redis_prefix.clone()),
            ("EVENTMILL_REDIS_MEMORY_HIGH_WATER", self.redis_limits.memory_high_water.to_string()),
            ("EVENTMILL_ALLOW_EVICTING_REDIS", self.redis_limits.allow_evicting.to_string()),
            ("EVENTMILL_MAX_BATCH_EVENTS", self.ingest.max_batch_events.to_string()),
            ("EVENTMILL_BODY_LIMIT_BYTES", self.ingest.body_limit_bytes.to_string()),
            ("EVENTMILL_STREAM_MAX_LEN", self.ingest.stream_high_water.to_string()),
            ("EVENTMILL_REDIS_TIMEOUT_MS", self.ingest.redis_timeout.as_millis().to_string()),
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
            ("EVENTMILL_JOB_ATTEMPTS", self.jobs.default_policy.attempts.to_string()),
            ("EVENTMILL_JOB_BACKOFF_MS", self.jobs.default_policy.backoff.as_millis().to_string()),
            ("EVENTMILL_JOB_BACKOFF_JITTER", self.jobs.default_policy.jitter.to_string()),
            ("EVENTMILL_JOB_TIMEOUT_MS", self.jobs.default_policy.timeout.as_millis().to_string()),
            ("EVENTMILL_JOB_CONCURRENCY", self.jobs.concurrency.to_string()),
            ("EVENTMILL_JOB_IDLE_CHECK_MS", self.jobs.idle_check.as_millis().to_string()),
            ("EVENTMILL_JOB_PROGRESS_FLUSH_MS", self.jobs.progress_flush.as_millis().to_string()),
            ("EVENTMILL_JOB_LEASE_MS", self.jobs.lease.as_millis().to_string()),
            ("EVENTMILL_JOB_SHUTDOWN_GRACE_MS", self.jobs.shutdown_grace.as_millis().to_string()),
            ("EVENTMILL_JOB_KEEP_COMPLETED", self.jobs.keep_completed.to_string()),
            ("EVENTMILL_JOB_KEEP_COMPLETED_SECS", self.jobs.keep_completed_age.as_secs().to_string()),
            ("EVENTMILL_JOB_KEEP_FAILED", self.jobs.keep_failed.to_string()),
            ("EVENTMILL_JOB_KEEP_FAILED_SECS", self.jobs.keep_failed_age.as_secs().to_string()),
        ]
    }
}

/// Hides the password of a `scheme://user:password@host` URL.
pub fn mask_url(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(mask_url).collect::<Vec<_>>().join(",");
    }
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:******@{host}"),
        None => url.to_owned(),
    }
}

/// A variable `EVENTMILL_JOB_<NAME>_<KIND>` for a kind not in `kinds` is an error naming it.
fn check_kind_variable(var: &str, value: &str, kinds: &[&str]) -> Result<(), SettingsError> {
    let Some(rest) = var.strip_prefix("EVENTMILL_JOB_") else { return Ok(()) };
    for name in KIND_VARIABLES {
        if let Some(kind) = rest.strip_prefix(name).and_then(|k| k.strip_prefix('_'))
            && !kinds.contains(&kind)
        {
            return Err(SettingsError {
                var: var.to_owned(),
                value: value.to_owned(),
                expected: "a registered job kind after the variable name (see `eventmill enqueue --help`)",
            });
        }
    }
    Ok(())
}

/// A variable `EVENTMILL_QUEUE_RATE_LIMIT_<QUEUE>` for a queue not in `queues` is an error naming it.
fn check_queue_variable(var: &str, value: &str, queues: &[&str]) -> Result<(), SettingsError> {
    if var.starts_with(rate_limit::VARIABLE_PREFIX) && !queues.iter().any(|q| RateLimit::variable(q) == var) {
        return Err(SettingsError {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: "a declared queue after EVENTMILL_QUEUE_RATE_LIMIT_ (analytics:reports -> ANALYTICS_REPORTS)",
        });
    }
    Ok(())
}

/// The rate-limit variables of the declared `queues` that are set.
fn rate_limits<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    queues: &[&str],
) -> Result<Vec<(String, Option<RateLimit>)>, SettingsError> {
    let mut limits = Vec::new();
    for queue in queues {
        let var = RateLimit::variable(queue);
        let Some(value) = env.optional(&var) else { continue };
        let limit = match value.trim() {
            "none" | "off" => None,
            text => Some(text.parse().map_err(|_| SettingsError {
                var,
                value: value.clone(),
                expected: "jobs/duration (100/1s, 10/1m) or none",
            })?),
        };
        limits.push(((*queue).to_owned(), limit));
    }
    Ok(limits)
}

fn job_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    kinds: &[&str],
    queues: &[&str],
) -> Result<JobSettings, SettingsError> {
    let default_policy = RetryPolicy {
        attempts: env.parse("EVENTMILL_JOB_ATTEMPTS", "3", "a count of at least 1")?,
        backoff: env.millis("EVENTMILL_JOB_BACKOFF_MS", "2000")?,
        jitter: env.parse("EVENTMILL_JOB_BACKOFF_JITTER", "0", "a fraction between 0 and 1")?,
        timeout: env.millis("EVENTMILL_JOB_TIMEOUT_MS", "600000")?,
    };
    check_policy(&default_policy, "EVENTMILL_JOB_ATTEMPTS")?;
    let mut overrides = Vec::new();
    for kind in kinds {
        let var = |name: &str| format!("EVENTMILL_JOB_{name}_{kind}");
        let over = PolicyOverride {
            attempts: env.parse_optional(&var("ATTEMPTS"), "a count of at least 1")?,
            backoff: env.parse_optional(&var("BACKOFF_MS"), "milliseconds")?.map(Duration::from_millis),
            jitter: env.parse_optional(&var("BACKOFF_JITTER"), "a fraction between 0 and 1")?,
            timeout: env.parse_optional(&var("TIMEOUT_MS"), "milliseconds")?.map(Duration::from_millis),
        };
        if over != PolicyOverride::default() {
            check_policy(&over.apply(default_policy), "EVENTMILL_JOB_ATTEMPTS_<KIND>")?;
            overrides.push(((*kind).to_owned(), over));
        }
    }
    Ok(JobSettings {
        default_policy,
        overrides,
        concurrency: env.parse("EVENTMILL_JOB_CONCURRENCY", "4", "a count")?,
        idle_check: env.millis("EVENTMILL_JOB_IDLE_CHECK_MS", "15000")?,
        progress_flush: env.millis("EVENTMILL_JOB_PROGRESS_FLUSH_MS", "200")?,
        lease: env.millis("EVENTMILL_JOB_LEASE_MS", "30000")?,
        shutdown_grace: env.millis("EVENTMILL_JOB_SHUTDOWN_GRACE_MS", "8000")?,
        keep_completed: env.parse("EVENTMILL_JOB_KEEP_COMPLETED", "1000", "a count")?,
        keep_completed_age: env
            .parse("EVENTMILL_JOB_KEEP_COMPLETED_SECS", "86400", "seconds")
            .map(Duration::from_secs)?,
        keep_failed: env.parse("EVENTMILL_JOB_KEEP_FAILED", "5000", "a count")?,
        keep_failed_age: env.parse("EVENTMILL_JOB_KEEP_FAILED_SECS", "604800", "seconds").map(Duration::from_secs)?,
        rate_limits: rate_limits(env, queues)?,
    })
}

fn check_policy(p: &RetryPolicy, var: &'static str) -> Result<(), SettingsError> {
    if p.attempts == 0 || !(0.0..=1.0).contains(&p.jitter) {
        let value = format!("attempts={} jitter={}", p.attempts, p.jitter);
        return Err(SettingsError {
            var: var.to_owned(),
            value,
            expected: "at least 1 attempt and a jitter between 0 and 1",
        });
    }
    Ok(())
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.optional(var).unwrap_or_else(|| default.to_owned())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &str,
        default: &str,
        expected: &'static str,
    ) -> Result<T, SettingsError> {
        let value = self.string(var, default);
        value.trim().parse().map_err(|_| SettingsError { var: var.to_owned(), value, expected })
    }

    fn parse_optional<T: std::str::FromStr>(
        &self,
        var: &str,
        expected: &'static str,
    ) -> Result<Option<T>, SettingsError> {
        match self.optional(var) {
            None => Ok(None),
            Some(value) => {
                value.trim().parse().map(Some).map_err(|_| SettingsError { var: var.to_owned(), value, expected })
            }
        }
    }

    fn millis(&self, var: &str, default: &str) -> Result<Duration, SettingsError> {
        self.parse(var, default, "milliseconds").map(Duration::from_millis)
    }

    fn millis_in(
        &self,
        var: &str,
        default: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, SettingsError> {
        let ms: u64 = self.parse(var, default, "milliseconds from 20 to 60000")?;
        if !range.contains(&ms) {
            let value = self.string(var, default);
            return Err(SettingsError { var: var.to_owned(), value, expected: "milliseconds from 20 to 60000" });
        }
        Ok(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.ingest.max_batch_events, 5000);
        assert_eq!(s.storage.retention_days, 400);
        assert!(s.ingest_keys.is_empty());
        assert_eq!(s.smtp_from, "eventmill@localhost");
        assert_eq!(s.export_pdf_max_rows, 5000);
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").attempts, 3);
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").backoff, Duration::from_secs(2));
    }

    #[test]
    fn a_job_kind_can_have_its_own_retry_policy() {
        let s = Settings::from_lookup(|k| (k == "EVENTMILL_JOB_ATTEMPTS_GENERATE_REPORT").then(|| "5".into())).unwrap();
        assert_eq!(s.jobs.policy("GENERATE_REPORT").attempts, 5);
        assert_eq!(s.jobs.policy("HOURLY_ROLLUP").attempts, 3);
    }

    #[test]
    fn a_per_kind_variable_for_an_unknown_kind_is_an_error_naming_it() {
        let kinds = ["DAILY_ROLLUP"];
        assert!(check_kind_variable("EVENTMILL_JOB_ATTEMPTS_DAILY_ROLLUP", "5", &kinds).is_ok());
        assert!(check_kind_variable("EVENTMILL_JOB_BACKOFF_JITTER", "0.1", &kinds).is_ok());
        assert!(check_kind_variable("EVENTMILL_JOB_TIMEOUT_MS", "10", &kinds).is_ok());
        let err = check_kind_variable("EVENTMILL_JOB_ATTEMPTS_DAILY_ROLUP", "5", &kinds).unwrap_err();
        assert!(err.to_string().contains("EVENTMILL_JOB_ATTEMPTS_DAILY_ROLUP"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = Settings::from_lookup(|k| (k == "EVENTMILL_BATCH_SIZE").then(|| "lots".into())).unwrap_err();
        assert!(err.to_string().contains("EVENTMILL_BATCH_SIZE"), "{err}");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("postgres://u:secret@h:5432/db"), "postgres://u:******@h:5432/db");
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(mask_url("redis://:pw@a:7000,redis://:pw@b:7000"), "redis://:******@a:7000,redis://:******@b:7000");
    }

    #[test]
    fn several_redis_nodes_or_the_flag_mean_a_cluster() {
        let described = |vars: &'static [(&'static str, &'static str)]| {
            let s =
                Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())).unwrap();
            s.describe().into_iter().find(|(n, _)| *n == "EVENTMILL_REDIS_CLUSTER").unwrap().1
        };
        assert_eq!(described(&[]), "false");
        assert_eq!(described(&[("EVENTMILL_REDIS_URL", "redis://a:7000,redis://b:7000")]), "true");
        assert_eq!(
            described(&[("EVENTMILL_REDIS_URL", "redis://a:7000"), ("EVENTMILL_REDIS_CLUSTER", "true")]),
            "true"
        );
        let err = Settings::from_lookup(|k| (k == "EVENTMILL_STREAM_SHARDS").then(|| "0".into())).unwrap_err();
        assert!(err.to_string().contains("EVENTMILL_STREAM_SHARDS"), "{err}");
    }
}
