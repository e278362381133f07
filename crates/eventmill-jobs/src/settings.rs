//! The framework's settings: where Redis is and how jobs run (retries, timeouts, leases, retention,
//! rate limits), read once from the environment under a prefix the application chooses.
//!
//! With the prefix `MYAPP`, Redis is `MYAPP_REDIS_URL` and a kind's attempts are
//! `MYAPP_JOB_ATTEMPTS_<KIND>`; eventmill itself uses `EVENTMILL`. Every value has a documented
//! default (see [`JobsSettings::describe`]); a per-kind or per-queue variable naming a kind or queue
//! the registry does not know is an error, not silently ignored.

use std::{fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    queue::{
        RateLimit, Registry,
        slo::{Objective, Slo},
    },
    redis_conn::{RedisTarget, ReplicaWait},
};

/// Everything the framework reads from the environment: [`RedisSettings`] and [`JobSettings`].
#[derive(Debug, Clone)]
pub struct JobsSettings {
    /// The variables' prefix (`EVENTMILL`: `EVENTMILL_REDIS_URL`, `EVENTMILL_JOB_ATTEMPTS`...).
    pub env_prefix: String,
    /// Where Redis is.
    pub redis: RedisSettings,
    /// How jobs run.
    pub jobs: JobSettings,
}

/// Where Redis is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One Redis node, or the nodes of a Redis Cluster separated by commas.
    pub url: SecretString,
    /// Cluster mode with a single seed node in `url` (several nodes imply it).
    pub cluster: bool,
    /// Replicas that must confirm an accepted write before it is acknowledged (0: off; see
    /// [`ReplicaWait`]).
    pub wait_replicas: u32,
    /// Longest wait on one Redis command.
    pub timeout: Duration,
    /// Prefix of every Redis key the framework owns (lets several installs, or tests, share one Redis).
    pub prefix: String,
}

/// Job queues: retries, timeouts, leases, wake-ups and retention.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Policy of job kinds that set nothing of their own.
    pub default_policy: RetryPolicy,
    /// Per-kind overrides (`<PREFIX>_JOB_ATTEMPTS_DAILY_ROLLUP`...), by `job_type`, for the
    /// registered kinds.
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
    /// How long a worker process stays on the board's workers page after its last beat (it beats
    /// every third of it; a killed process leaves when it runs out).
    pub worker_lease: Duration,
    /// Jobs a worker claims ahead, beyond its free slots, while its jobs are short (0: off). A
    /// held job is leased like a running one; its attempt counts only once it starts, and a
    /// worker that dies holding it hands it back without spending an attempt.
    pub prefetch: usize,
    /// How long a job may keep running after shutdown before it is handed back to the queue.
    pub shutdown_grace: Duration,
    /// Completed jobs kept: at most this many, and none older than `keep_completed_age`.
    pub keep_completed: u64,
    /// Completed jobs older than this are removed.
    pub keep_completed_age: Duration,
    /// Failed jobs kept: at most this many, and none older than `keep_failed_age`.
    pub keep_failed: u64,
    /// Failed jobs older than this are removed.
    pub keep_failed_age: Duration,
    /// Per-queue rate limits from `<PREFIX>_QUEUE_RATE_LIMIT_<QUEUE>` (`100/1s`; `none` lifts a
    /// declared one), by queue name, for the declared queues.
    pub rate_limits: Vec<(String, Option<RateLimit>)>,
    /// Per-queue global concurrency from `<PREFIX>_QUEUE_GLOBAL_CONCURRENCY_<QUEUE>` (a count;
    /// `0` or `none` lifts a declared one), by queue name.
    pub global_concurrencies: Vec<(String, Option<u32>)>,
    /// Per-kind SLO overrides from `<PREFIX>_JOB_SLO_<WAIT_P95|RUN_P95|FAILURE_RATE>_<KIND>`
    /// (`5s/15m`, `2%/1h`; `none` lifts a declared one), by kind and objective.
    pub slos: Vec<(String, Objective, Option<Slo>)>,
    /// How often a worker process evaluates the SLOs (`<PREFIX>_JOB_SLO_CHECK_MS`).
    pub slo_check: Duration,
    /// The variables' prefix, for messages and `describe`.
    pub env_prefix: String,
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

/// Some of a policy's values: a processor's declared defaults, or a kind's `<PREFIX>_JOB_*_<KIND>`
/// variables. Unset values come from the layer below.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyOverride {
    /// Runs in total.
    pub attempts: Option<u32>,
    /// Wait before the first retry.
    pub backoff: Option<Duration>,
    /// Random spread of each wait.
    pub jitter: Option<f64>,
    /// Longest run of one attempt.
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

/// The per-kind variables: `<PREFIX>_JOB_<NAME>_<KIND>`.
const KIND_VARIABLES: [&str; 7] =
    ["ATTEMPTS", "BACKOFF_MS", "BACKOFF_JITTER", "TIMEOUT_MS", "SLO_WAIT_P95", "SLO_RUN_P95", "SLO_FAILURE_RATE"];

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

    /// The environment's SLO for `kind` and `objective`: `None` when unset, `Some(None)` when
    /// lifted (`none`).
    pub fn slo_override(&self, kind: &str, objective: Objective) -> Option<Option<Slo>> {
        self.slos.iter().find(|(k, o, _)| k == kind && *o == objective).map(|(_, _, slo)| *slo)
    }

    /// Queue `queue`'s rate limit: the environment's, else `declared`.
    pub fn rate_limit(&self, queue: &str, declared: Option<RateLimit>) -> Option<RateLimit> {
        self.rate_limits.iter().find(|(q, _)| q == queue).map_or(declared, |(_, limit)| *limit)
    }

    /// Queue `queue`'s global concurrency: the environment's, else `declared`.
    pub fn global_concurrency(&self, queue: &str, declared: Option<u32>) -> Option<u32> {
        self.global_concurrencies.iter().find(|(q, _)| q == queue).map_or(declared, |(_, n)| *n)
    }

    /// The variable that overrides queue `queue`'s rate limit (see [`RateLimit::variable`]).
    pub fn rate_limit_variable(&self, queue: &str) -> String {
        RateLimit::variable(&self.env_prefix, queue)
    }
}

impl RedisSettings {
    /// Where Redis is (one node or a cluster), and how many replicas confirm acknowledged writes
    /// (waiting at most half of `timeout`, so an error comes within it).
    pub fn target(&self) -> redis::RedisResult<RedisTarget> {
        let wait = ReplicaWait { replicas: self.wait_replicas, timeout: self.timeout / 2 };
        Ok(RedisTarget::new(self.url.expose_secret(), self.cluster)?.with_replica_wait(wait))
    }

    /// Whether `target` is a cluster (the URL's own rule: several nodes, or the flag).
    pub fn is_cluster(&self) -> bool {
        self.target().map_or(self.cluster, |target| target.is_cluster())
    }
}

/// A setting that could not be parsed; names the variable and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: expected {expected}")]
pub struct SettingsError {
    /// The variable.
    pub var: String,
    /// Its value.
    pub value: String,
    /// What it should have been.
    pub expected: &'static str,
}

impl JobsSettings {
    /// Reads `.env` (when present) and then the process environment, for the kinds and queues of
    /// `registry`: `JobsSettings::from_env("MYAPP", &registry)` reads `MYAPP_REDIS_URL`...
    pub fn from_env<S>(prefix: &str, registry: &Registry<S>) -> Result<Self, SettingsError> {
        Self::from_env_for(prefix, &registry.kind_names(), &registry.queue_names())
    }

    /// As `from_env`, for the job kinds `kinds` and queues `queues`.
    pub fn from_env_for(prefix: &str, kinds: &[&str], queues: &[&str]) -> Result<Self, SettingsError> {
        let _ = dotenvy::dotenv();
        for (var, value) in std::env::vars() {
            check_kind_variable(prefix, &var, &value, kinds)?;
            check_queue_variable(prefix, &var, &value, queues)?;
        }
        Self::from_lookup(prefix, kinds, queues, |key| std::env::var(key).ok())
    }

    /// Builds settings from any key lookup; tests pass a map here instead of touching the environment.
    pub fn from_lookup(
        prefix: &str,
        kinds: &[&str],
        queues: &[&str],
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let env = Env::new(prefix, &get);
        let redis = RedisSettings {
            url: env.string("REDIS_URL", "redis://127.0.0.1:6379").into(),
            cluster: env.parse("REDIS_CLUSTER", "false", "true or false")?,
            wait_replicas: env.parse("REDIS_WAIT_REPLICAS", "0", "a count of replicas (0: off)")?,
            timeout: env.millis("REDIS_TIMEOUT_MS", "2000")?,
            prefix: env.string("REDIS_PREFIX", &prefix.to_ascii_lowercase()),
        };
        Ok(Self { env_prefix: prefix.to_owned(), redis, jobs: job_settings(&env, kinds, queues)? })
    }

    /// The effective configuration as `NAME=value` lines, secrets masked (for a `config` command;
    /// the queues' rate limits are the catalog's, see [`JobSettings::rate_limit`]).
    pub fn describe(&self) -> Vec<(String, String)> {
        let (redis, jobs) = (&self.redis, &self.jobs);
        let var = |name: &str| format!("{}_{name}", self.env_prefix);
        let mut lines = vec![
            (var("REDIS_URL"), mask_url(redis.url.expose_secret())),
            (var("REDIS_CLUSTER"), redis.is_cluster().to_string()),
            (
                var("REDIS_WAIT_REPLICAS"),
                match redis.wait_replicas {
                    0 => "0 (off: a 202 means on the master)".to_owned(),
                    n => format!("{n} (a 202 means on the master and {n} replica(s))"),
                },
            ),
            (var("REDIS_TIMEOUT_MS"), redis.timeout.as_millis().to_string()),
            (var("REDIS_PREFIX"), redis.prefix.clone()),
            (var("JOB_ATTEMPTS"), jobs.default_policy.attempts.to_string()),
            (var("JOB_BACKOFF_MS"), jobs.default_policy.backoff.as_millis().to_string()),
            (var("JOB_BACKOFF_JITTER"), jobs.default_policy.jitter.to_string()),
            (var("JOB_TIMEOUT_MS"), jobs.default_policy.timeout.as_millis().to_string()),
            (var("JOB_CONCURRENCY"), jobs.concurrency.to_string()),
            (var("JOB_IDLE_CHECK_MS"), jobs.idle_check.as_millis().to_string()),
            (var("JOB_PROGRESS_FLUSH_MS"), jobs.progress_flush.as_millis().to_string()),
            (var("JOB_LEASE_MS"), jobs.lease.as_millis().to_string()),
            (var("JOB_WORKER_LEASE_MS"), jobs.worker_lease.as_millis().to_string()),
            (var("JOB_SLO_CHECK_MS"), jobs.slo_check.as_millis().to_string()),
            (var("JOB_PREFETCH"), jobs.prefetch.to_string()),
            (var("JOB_SHUTDOWN_GRACE_MS"), jobs.shutdown_grace.as_millis().to_string()),
            (var("JOB_KEEP_COMPLETED"), jobs.keep_completed.to_string()),
            (var("JOB_KEEP_COMPLETED_SECS"), jobs.keep_completed_age.as_secs().to_string()),
            (var("JOB_KEEP_FAILED"), jobs.keep_failed.to_string()),
            (var("JOB_KEEP_FAILED_SECS"), jobs.keep_failed_age.as_secs().to_string()),
        ];
        // The global concurrency overrides that are set (unset: the queue's declared value; the
        // rate limits in force are the catalog's, see [`JobSettings::rate_limit`]).
        lines.extend(jobs.global_concurrencies.iter().map(|(queue, limit)| {
            let value = limit.map_or_else(
                || "none (lifts the declared one)".to_owned(),
                |n| format!("{n} (jobs of {queue} running at once across every worker process)"),
            );
            (global_concurrency_variable(&self.env_prefix, queue), value)
        }));
        lines
    }
}

/// Hides the password of a `scheme://user:password@host` URL (each of a comma-separated list).
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

/// A variable `<PREFIX>_JOB_<NAME>_<KIND>` for a kind not in `kinds` is an error naming it.
pub fn check_kind_variable(prefix: &str, var: &str, value: &str, kinds: &[&str]) -> Result<(), SettingsError> {
    let Some(rest) = var.strip_prefix(prefix).and_then(|r| r.strip_prefix("_JOB_")) else { return Ok(()) };
    for name in KIND_VARIABLES {
        if let Some(kind) = rest.strip_prefix(name).and_then(|k| k.strip_prefix('_'))
            && !kinds.contains(&kind)
        {
            return Err(SettingsError {
                var: var.to_owned(),
                value: value.to_owned(),
                expected: "a registered job kind after the variable name (see `enqueue --help`)",
            });
        }
    }
    Ok(())
}

/// A per-queue variable's name from the prefix and the queue.
type QueueVariable = fn(&str, &str) -> String;

/// A variable `<PREFIX>_QUEUE_RATE_LIMIT_<QUEUE>` or `<PREFIX>_QUEUE_GLOBAL_CONCURRENCY_<QUEUE>` for
/// a queue not in `queues` is an error naming it and the declared queues' variables.
fn check_queue_variable(prefix: &str, var: &str, value: &str, queues: &[&str]) -> Result<(), SettingsError> {
    let families: [(&str, QueueVariable); 2] =
        [("_QUEUE_RATE_LIMIT_", RateLimit::variable), ("_QUEUE_GLOBAL_CONCURRENCY_", global_concurrency_variable)];
    for (infix, variable) in families {
        if var.starts_with(&variable(prefix, "")) && !queues.iter().any(|q| variable(prefix, q) == var) {
            let declared: Vec<String> = queues.iter().map(|q| format!("{} ({q})", variable(prefix, q))).collect();
            let declared = if declared.is_empty() { "none".to_owned() } else { declared.join(", ") };
            return Err(SettingsError {
                var: var.to_owned(),
                value: value.to_owned(),
                // Built once, for an error that stops the process at start.
                expected: Box::leak(
                    format!(
                        "a declared queue after {infix} (analytics:reports -> ANALYTICS_REPORTS); declared: {declared}"
                    )
                    .into_boxed_str(),
                ),
            });
        }
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
        let var = RateLimit::variable(env.prefix, queue);
        let Some(value) = env.raw(&var) else { continue };
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

/// `<prefix>_QUEUE_GLOBAL_CONCURRENCY_<QUEUE>`, the queue's name as in [`RateLimit::variable`].
pub fn global_concurrency_variable(prefix: &str, queue: &str) -> String {
    RateLimit::variable(prefix, queue).replacen("_QUEUE_RATE_LIMIT_", "_QUEUE_GLOBAL_CONCURRENCY_", 1)
}

/// The global-concurrency variables of the declared `queues` that are set.
fn global_concurrencies<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    queues: &[&str],
) -> Result<Vec<(String, Option<u32>)>, SettingsError> {
    let mut limits = Vec::new();
    for queue in queues {
        let var = global_concurrency_variable(env.prefix, queue);
        let Some(value) = env.raw(&var) else { continue };
        let limit = match value.trim() {
            "none" | "off" | "0" => None,
            text => Some(text.parse().map_err(|_| SettingsError {
                var,
                value: value.clone(),
                expected: "a count of jobs running at once across every worker process, or none",
            })?),
        };
        limits.push(((*queue).to_owned(), limit));
    }
    Ok(limits)
}

/// The per-kind SLO variables that are set: `<PREFIX>_JOB_SLO_<OBJECTIVE>_<KIND>=<target>/<window>`.
fn slo_overrides<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    kinds: &[&str],
) -> Result<Vec<(String, Objective, Option<Slo>)>, SettingsError> {
    let mut out = Vec::new();
    for kind in kinds {
        for objective in Objective::ALL {
            let name = format!("{}_{kind}", objective.variable());
            let Some(value) = env.optional(&name) else { continue };
            let slo = match value.trim() {
                "none" | "off" => None,
                text => {
                    let expected = match objective {
                        Objective::FailureRate => "a percentage over a window (2%/1h), or none",
                        _ => "a duration over a window (5s/15m, 500ms/1m; window 1m to 24h), or none",
                    };
                    let parsed = text.parse::<Slo>().ok().filter(|slo| {
                        (slo.objective == Objective::FailureRate) == (objective == Objective::FailureRate)
                    });
                    let slo =
                        parsed.ok_or_else(|| SettingsError { var: env.var(&name), value: value.clone(), expected })?;
                    Some(Slo { objective, ..slo })
                }
            };
            out.push(((*kind).to_owned(), objective, slo));
        }
    }
    Ok(out)
}

fn job_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    kinds: &[&str],
    queues: &[&str],
) -> Result<JobSettings, SettingsError> {
    let default_policy = RetryPolicy {
        attempts: env.parse("JOB_ATTEMPTS", "3", "a count of at least 1")?,
        backoff: env.millis("JOB_BACKOFF_MS", "2000")?,
        jitter: env.parse("JOB_BACKOFF_JITTER", "0", "a fraction between 0 and 1")?,
        timeout: env.millis("JOB_TIMEOUT_MS", "600000")?,
    };
    check_policy(&default_policy, env.var("JOB_ATTEMPTS"))?;
    let mut overrides = Vec::new();
    for kind in kinds {
        let var = |name: &str| format!("JOB_{name}_{kind}");
        let over = PolicyOverride {
            attempts: env.parse_optional(&var("ATTEMPTS"), "a count of at least 1")?,
            backoff: env.parse_optional(&var("BACKOFF_MS"), "milliseconds")?.map(Duration::from_millis),
            jitter: env.parse_optional(&var("BACKOFF_JITTER"), "a fraction between 0 and 1")?,
            timeout: env.parse_optional(&var("TIMEOUT_MS"), "milliseconds")?.map(Duration::from_millis),
        };
        if over != PolicyOverride::default() {
            check_policy(&over.apply(default_policy), env.var("JOB_ATTEMPTS_<KIND>"))?;
            overrides.push(((*kind).to_owned(), over));
        }
    }
    Ok(JobSettings {
        default_policy,
        overrides,
        concurrency: env.parse("JOB_CONCURRENCY", "4", "a count")?,
        idle_check: env.millis("JOB_IDLE_CHECK_MS", "15000")?,
        progress_flush: env.millis("JOB_PROGRESS_FLUSH_MS", "200")?,
        lease: env.millis("JOB_LEASE_MS", "30000")?,
        worker_lease: env.millis_in(
            "JOB_WORKER_LEASE_MS",
            "30000",
            300..=86_400_000,
            "milliseconds, from 300 (a worker process beats every third of it)",
        )?,
        prefetch: env.parse("JOB_PREFETCH", "4", "a count of jobs (0: off)")?,
        shutdown_grace: env.millis("JOB_SHUTDOWN_GRACE_MS", "8000")?,
        keep_completed: env.parse("JOB_KEEP_COMPLETED", "1000", "a count")?,
        keep_completed_age: env.parse("JOB_KEEP_COMPLETED_SECS", "86400", "seconds").map(Duration::from_secs)?,
        keep_failed: env.parse("JOB_KEEP_FAILED", "5000", "a count")?,
        keep_failed_age: env.parse("JOB_KEEP_FAILED_SECS", "604800", "seconds").map(Duration::from_secs)?,
        slos: slo_overrides(env, kinds)?,
        slo_check: env.millis_in("JOB_SLO_CHECK_MS", "15000", 100..=3_600_000, "milliseconds, 100 to 3600000")?,
        rate_limits: rate_limits(env, queues)?,
        global_concurrencies: global_concurrencies(env, queues)?,
        env_prefix: env.prefix.to_owned(),
    })
}

fn check_policy(p: &RetryPolicy, var: String) -> Result<(), SettingsError> {
    if p.attempts == 0 || !(0.0..=1.0).contains(&p.jitter) {
        let value = format!("attempts={} jitter={}", p.attempts, p.jitter);
        return Err(SettingsError { var, value, expected: "at least 1 attempt and a jitter between 0 and 1" });
    }
    Ok(())
}

/// Reads `<prefix>_<NAME>` variables from a lookup, with defaults and errors naming the variable
/// (the application reads its own settings with it too).
pub struct Env<'a, F: Fn(&str) -> Option<String>> {
    prefix: &'a str,
    get: &'a F,
}

impl<F: Fn(&str) -> Option<String>> fmt::Debug for Env<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("prefix", &self.prefix).finish()
    }
}

impl<'a, F: Fn(&str) -> Option<String>> Env<'a, F> {
    /// Variables `<prefix>_<NAME>` from `get`.
    pub fn new(prefix: &'a str, get: &'a F) -> Self {
        Self { prefix, get }
    }

    /// The full variable name of `name`.
    pub fn var(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// A variable by its full name, unset when empty.
    fn raw(&self, var: &str) -> Option<String> {
        (self.get)(var).filter(|v| !v.trim().is_empty())
    }

    /// `<prefix>_<name>`, unset when empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.raw(&self.var(name))
    }

    /// `<prefix>_<name>`, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    /// `<prefix>_<name>` (or `default`) parsed; an error names the variable and `expected`.
    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        default: &str,
        expected: &'static str,
    ) -> Result<T, SettingsError> {
        let value = self.string(name, default);
        value.trim().parse().map_err(|_| SettingsError { var: self.var(name), value, expected })
    }

    /// `<prefix>_<name>` parsed when set.
    pub fn parse_optional<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &'static str,
    ) -> Result<Option<T>, SettingsError> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => {
                value.trim().parse().map(Some).map_err(|_| SettingsError { var: self.var(name), value, expected })
            }
        }
    }

    /// `<prefix>_<name>` in milliseconds.
    pub fn millis(&self, name: &str, default: &str) -> Result<Duration, SettingsError> {
        self.parse(name, default, "milliseconds").map(Duration::from_millis)
    }

    /// `<prefix>_<name>` in milliseconds, within `range`.
    pub fn millis_in(
        &self,
        name: &str,
        default: &str,
        range: std::ops::RangeInclusive<u64>,
        expected: &'static str,
    ) -> Result<Duration, SettingsError> {
        let ms: u64 = self.parse(name, default, expected)?;
        if !range.contains(&ms) {
            return Err(SettingsError { var: self.var(name), value: self.string(name, default), expected });
        }
        Ok(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<JobsSettings, SettingsError> {
        JobsSettings::from_lookup("MYAPP", &["DAILY_ROLLUP", "REPORT"], &["analytics:reports"], |k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn describe_lists_the_queue_overrides_that_are_set() {
        let s = settings(&[("MYAPP_QUEUE_GLOBAL_CONCURRENCY_ANALYTICS_REPORTS", "2")]).unwrap();
        let lines = s.describe();
        let global = lines.iter().find(|(name, _)| name == "MYAPP_QUEUE_GLOBAL_CONCURRENCY_ANALYTICS_REPORTS");
        assert!(global.is_some_and(|(_, value)| value.starts_with("2 (")), "{lines:?}");
        let s = settings(&[]).unwrap();
        assert!(!s.describe().iter().any(|(name, _)| name.contains("_QUEUE_")), "only the overrides that are set");
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").attempts, 3);
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").backoff, Duration::from_secs(2));
        assert_eq!(s.redis.prefix, "myapp");
        assert!(!s.redis.is_cluster());
    }

    #[test]
    fn a_job_kind_can_have_its_own_retry_policy() {
        let s = settings(&[("MYAPP_JOB_ATTEMPTS_REPORT", "5")]).unwrap();
        assert_eq!(s.jobs.policy("REPORT").attempts, 5);
        assert_eq!(s.jobs.policy("DAILY_ROLLUP").attempts, 3);
    }

    #[test]
    fn a_per_kind_variable_for_an_unknown_kind_is_an_error_naming_it() {
        let kinds = ["DAILY_ROLLUP"];
        assert!(check_kind_variable("E", "E_JOB_ATTEMPTS_DAILY_ROLLUP", "5", &kinds).is_ok());
        assert!(check_kind_variable("E", "E_JOB_BACKOFF_JITTER", "0.1", &kinds).is_ok());
        assert!(check_kind_variable("E", "E_JOB_TIMEOUT_MS", "10", &kinds).is_ok());
        let err = check_kind_variable("E", "E_JOB_ATTEMPTS_DAILY_ROLUP", "5", &kinds).unwrap_err();
        assert!(err.to_string().contains("E_JOB_ATTEMPTS_DAILY_ROLUP"), "{err}");
        let err = check_queue_variable("E", "E_QUEUE_RATE_LIMIT_NOPE", "5/1s", &["analytics:reports"]).unwrap_err();
        assert!(err.to_string().contains("E_QUEUE_RATE_LIMIT_NOPE"), "{err}");
        assert!(
            err.to_string().contains("declared: E_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS (analytics:reports)"),
            "{err}"
        );
        let err = check_queue_variable("E", "E_QUEUE_GLOBAL_CONCURRENCY_NOPE", "2", &["analytics:reports", "mail"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("E_QUEUE_GLOBAL_CONCURRENCY_NOPE=\"2\" is not valid"), "{err}");
        assert!(
            err.contains("declared: E_QUEUE_GLOBAL_CONCURRENCY_ANALYTICS_REPORTS (analytics:reports), E_QUEUE_GLOBAL_CONCURRENCY_MAIL (mail)"),
            "{err}"
        );
        assert!(check_queue_variable("E", "E_QUEUE_GLOBAL_CONCURRENCY_MAIL", "2", &["mail"]).is_ok());
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = settings(&[("MYAPP_JOB_LEASE_MS", "long")]).unwrap_err();
        assert!(err.to_string().contains("MYAPP_JOB_LEASE_MS"), "{err}");
        let err = settings(&[("MYAPP_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS", "fast")]).unwrap_err();
        assert!(err.to_string().contains("MYAPP_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS"), "{err}");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("postgres://u:secret@h:5432/db"), "postgres://u:******@h:5432/db");
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(mask_url("redis://:pw@a:7000,redis://:pw@b:7000"), "redis://:******@a:7000,redis://:******@b:7000");
    }

    #[test]
    fn several_redis_nodes_or_the_flag_mean_a_cluster() {
        assert!(settings(&[("MYAPP_REDIS_URL", "redis://a:7000,redis://b:7000")]).unwrap().redis.is_cluster());
        let flagged = settings(&[("MYAPP_REDIS_URL", "redis://a:7000"), ("MYAPP_REDIS_CLUSTER", "true")]).unwrap();
        assert!(flagged.redis.is_cluster());
    }
}
