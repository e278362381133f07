//! Service level objectives per job kind: what "healthy" means for a kind, declared in the
//! registry, measured from the queue's history (`history`), shown on the board, exported to
//! Prometheus, and logged once when a breach starts and once when it ends.
//!
//! ```text
//!  QueueSpec::slos / Processor::SLOS / <PREFIX>_JOB_SLO_<OBJECTIVE>_<KIND>=<target>/<window>
//!        │ per kind and objective (wait p95, run p95, failure rate), each over its own window
//!        ▼
//!  Queues::evaluate_slos(): the minute hashes of the window ──▶ measured value vs target
//!        │ breached: HSETNX {p:queue}:slo-breaches <field> <now>  (1: this call saw it start: logged)
//!        │ ok:       HDEL   {p:queue}:slo-breaches <field>         (1: this call saw it end: logged)
//!        ▼
//!  the board's /slos and /api/slos, /metrics (eventmill_job_slo_*), the worker's periodic check
//! ```
//!
//! Every process may evaluate (the workers every `<PREFIX>_JOB_SLO_CHECK_MS`, the board and
//! `/metrics` when read): the transitions are single Redis commands, so whichever process sees a
//! breach start first records its start time and logs it, and every process shows the same
//! "breached since".
//!
//! ```
//! use std::time::Duration;
//! use eventmill_jobs::{QueueSpec, queue::slo::Slo};
//!
//! const MINUTE: Duration = Duration::from_secs(60);
//! // Every kind of the queue: waits under 5 s (p95 over 15 min), fails under 2 % over an hour.
//! const EMAIL_SLOS: &[Slo] = &[
//!     Slo::wait_p95(Duration::from_secs(5), Duration::from_secs(15 * 60)),
//!     Slo::failure_rate(2.0, Duration::from_secs(3600)),
//! ];
//! let spec = QueueSpec::new("emails").slos(EMAIL_SLOS);
//! assert_eq!(spec.slos.len(), 2);
//! assert_eq!("30s/5m".parse::<Slo>().unwrap().window, 5 * MINUTE); // as a variable writes it
//! ```

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use serde::Serialize;

use super::{Catalog, QueueError, Queues, now_ms};
use crate::settings::JobSettings;

/// What an SLO measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// 95th percentile of the wait (due or enqueued -> started), per attempt, in ms.
    WaitP95,
    /// 95th percentile of the run time (started -> finished), per attempt, in ms.
    RunP95,
    /// Jobs failed for good / (completed + failed), in percent.
    FailureRate,
}

impl Objective {
    /// Every objective.
    pub const ALL: [Objective; 3] = [Objective::WaitP95, Objective::RunP95, Objective::FailureRate];

    /// Its name in labels, JSON and variables (lowercase): `wait_p95`, `run_p95`, `failure_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::WaitP95 => "wait_p95",
            Objective::RunP95 => "run_p95",
            Objective::FailureRate => "failure_rate",
        }
    }

    /// The per-kind variable's name after the prefix: `JOB_SLO_WAIT_P95` (then `_<KIND>`).
    pub fn variable(self) -> String {
        format!("JOB_SLO_{}", self.as_str().to_ascii_uppercase())
    }

    /// A value of this objective for people: `1.2 s`, `850 ms`, `2.5 %`.
    pub fn show(self, value: f64) -> String {
        match self {
            Objective::FailureRate => format!("{value:.1} %"),
            _ if value < 1000.0 => format!("{value:.0} ms"),
            _ if value < 60_000.0 => format!("{:.1} s", value / 1000.0),
            _ => format!("{:.1} min", value / 60_000.0),
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One target: the objective measured over the last `window` must stay at or under `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// What is measured.
    pub objective: Objective,
    /// The most it may be: ms for the p95s, percent for the failure rate.
    pub target: f64,
    /// Measured over this much recent time, whole minutes (1 min to 24 h).
    pub window: Duration,
}

/// Targets are finite (the parser refuses NaN), so equality is an equivalence (`QueueSpec` is `Eq`).
impl Eq for Slo {}

impl Slo {
    /// The 95th percentile of the wait stays at or under `max` over `window`.
    pub const fn wait_p95(max: Duration, window: Duration) -> Self {
        Self { objective: Objective::WaitP95, target: max.as_millis() as f64, window }
    }

    /// The 95th percentile of the run time stays at or under `max` over `window`.
    pub const fn run_p95(max: Duration, window: Duration) -> Self {
        Self { objective: Objective::RunP95, target: max.as_millis() as f64, window }
    }

    /// At most `percent` % of the jobs finished over `window` fail for good.
    pub const fn failure_rate(percent: f64, window: Duration) -> Self {
        Self { objective: Objective::FailureRate, target: percent, window }
    }

    /// The window in minutes (rounded up, 1 to 1440: the minute hashes live a day).
    pub fn window_minutes(&self) -> usize {
        (self.window.as_secs().div_ceil(60) as usize).clamp(1, 1440)
    }

    /// `5 s / 15 min`: the target and window for people.
    pub fn describe(&self) -> String {
        format!("{} over {}", self.objective.show(self.target), show_window(self.window_minutes()))
    }

    /// The target in a variable's syntax without the objective: `5s/15m`, `2%/1h`.
    fn text(&self) -> String {
        let target = match self.objective {
            Objective::FailureRate => format!("{}%", self.target),
            _ => format!("{}ms", self.target),
        };
        format!("{target}/{}m", self.window_minutes())
    }
}

fn show_window(minutes: usize) -> String {
    if minutes.is_multiple_of(60) { format!("{} h", minutes / 60) } else { format!("{minutes} min") }
}

/// A target as a variable writes it, `<target>/<window>`: `5s/15m`, `500ms/1m`, `2%/1h`. A
/// target with `%` is a failure rate; a duration is a p95 (the variable's name says which).
impl FromStr for Slo {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (target, window) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected <target>/<window>, e.g. 5s/15m or 2%/1h"))?;
        let window = humantime::parse_duration(window.trim()).map_err(|e| format!("window {window:?}: {e}"))?;
        if window < Duration::from_secs(60) || window > Duration::from_secs(86_400) {
            return Err(format!("window {window:?}: from 1m to 24h (the minute history lives a day)"));
        }
        let target = target.trim();
        if let Some(percent) = target.strip_suffix('%') {
            let percent: f64 = percent
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or_else(|| format!("{target:?}: expected a percentage"))?;
            return Ok(Slo::failure_rate(percent, window));
        }
        let max = humantime::parse_duration(target).map_err(|e| format!("target {target:?}: {e}"))?;
        Ok(Slo::wait_p95(max, window))
    }
}

/// An SLO of one kind, with where its target came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindSlo {
    /// The kind's queue.
    pub queue: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The objective.
    pub objective: Objective,
    /// Its target (ms or percent).
    pub target: f64,
    /// Its window in minutes.
    pub window_minutes: usize,
    /// `kind`, `queue` (declared in the registry) or `env` (`<PREFIX>_JOB_SLO_*_<KIND>`).
    pub source: &'static str,
}

impl KindSlo {
    fn slo(&self) -> Slo {
        Slo {
            objective: self.objective,
            target: self.target,
            window: Duration::from_secs(self.window_minutes as u64 * 60),
        }
    }
}

/// The SLOs in force: per kind and objective, the environment's override, else the kind's own
/// declaration, else its queue's.
pub fn in_force(catalog: &Catalog, jobs: &JobSettings) -> Vec<KindSlo> {
    let mut out = Vec::new();
    for kind in catalog.kinds() {
        let queue_slos = catalog.queue_spec(kind.queue()).map_or(&[][..], |q| q.slos);
        for objective in Objective::ALL {
            let from_env = jobs.slo_override(kind.name(), objective);
            let declared = |slos: &[Slo]| slos.iter().rev().find(|s| s.objective == objective).copied();
            let (slo, source) = match from_env {
                Some(over) => (over, "env"),
                None => match declared(kind.slos()) {
                    Some(slo) => (Some(slo), "kind"),
                    None => (declared(queue_slos), "queue"),
                },
            };
            if let Some(slo) = slo {
                out.push(KindSlo {
                    queue: kind.queue(),
                    kind: kind.name(),
                    objective,
                    target: slo.target,
                    window_minutes: slo.window_minutes(),
                    source,
                });
            }
        }
    }
    out
}

/// An SLO measured now (`GET /api/slos`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    /// The SLO.
    #[serde(flatten)]
    pub slo: KindSlo,
    /// The value over the window (ms or percent); `None` when no job of the kind finished in it
    /// (no data is not a breach).
    pub measured: Option<f64>,
    /// Attempts (p95s) or finished jobs (failure rate) the value is computed from.
    pub count: u64,
    /// Whether the measured value is over the target.
    pub breached: bool,
    /// Since when (unix ms) it has been breached, as recorded in Redis by whichever process saw
    /// the breach start.
    pub breached_since: Option<i64>,
    /// A breach this evaluation saw start or end (and logged); `None` when another process
    /// recorded it first, or nothing changed.
    #[serde(skip)]
    pub transition: Option<Transition>,
}

/// A change of an SLO's state, recorded (and logged) by exactly one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The measured value went over the target.
    Started,
    /// It came back under.
    Ended,
}

impl SloStatus {
    /// `ok`, or `breached`.
    pub fn state(&self) -> &'static str {
        if self.breached { "breached" } else { "ok" }
    }

    /// The target and window for people (`5 s over 15 min`).
    pub fn target_text(&self) -> String {
        self.slo.slo().describe()
    }

    /// The measured value for people (`—` without data).
    pub fn measured_text(&self) -> String {
        self.measured.map_or_else(|| "—".to_owned(), |v| self.slo.objective.show(v))
    }

    /// The variable that overrides it (`EVENTMILL_JOB_SLO_WAIT_P95_DAILY_ROLLUP`), with its
    /// current value in the variable's syntax.
    pub fn variable(&self, prefix: &str) -> String {
        format!("{prefix}_{}_{}={}", self.slo.objective.variable(), self.slo.kind, self.slo.slo().text())
    }
}

/// The field of an SLO in the breaches hash.
fn field(slo: &KindSlo) -> String {
    serde_json::json!([slo.queue, slo.kind, slo.objective.as_str()]).to_string()
}

impl super::Queue {
    /// The last `minutes` minute periods (the current one included), oldest first.
    async fn minute_periods(&self, minutes: usize) -> Result<Vec<super::history::PeriodStats>, QueueError> {
        let this_minute = now_ms().div_euclid(60_000) * 60_000;
        let first = this_minute - (minutes.max(1) as i64 - 1) * 60_000;
        let mut periods = Vec::with_capacity(minutes);
        for chunk_start in (0..minutes.max(1)).step_by(240) {
            let count = (minutes.max(1) - chunk_start).min(240);
            periods.extend(self.stats_periods(60_000, first + chunk_start as i64 * 60_000, count).await?);
        }
        Ok(periods)
    }
}

impl Queues {
    /// Every SLO in force, measured now; breaches that start or end are recorded in Redis and
    /// logged (once, by whichever process evaluates first).
    pub async fn evaluate_slos(&self) -> Result<Vec<SloStatus>, QueueError> {
        let slos = self.slos();
        if slos.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.slo_breaches_key();
        let mut redis = self.connection();
        let recorded: HashMap<String, i64> = redis::AsyncCommands::hgetall(&mut redis, key).await?;
        let mut out = Vec::with_capacity(slos.len());
        for queue in self.all() {
            let of_queue: Vec<&KindSlo> = slos.iter().filter(|s| s.queue == queue.name).collect();
            let Some(longest) = of_queue.iter().map(|s| s.window_minutes).max() else { continue };
            // Newest first: the last `window` minutes of an SLO are the first `window` periods.
            let mut periods = queue.minute_periods(longest).await?;
            periods.reverse();
            for slo in of_queue {
                let mut stats = super::history::KindStats::default();
                for period in periods.iter().take(slo.window_minutes) {
                    if let Some(kind) = period.get(slo.kind) {
                        stats.merge(kind);
                    }
                }
                let (measured, count) = match slo.objective {
                    Objective::WaitP95 => (stats.wait.quantile(0.95), stats.wait.count()),
                    Objective::RunP95 => (stats.run.quantile(0.95), stats.run.count()),
                    Objective::FailureRate => {
                        (stats.throughput.failure_rate(), stats.throughput.completed + stats.throughput.failed)
                    }
                };
                let breached = measured.is_some_and(|m| m > slo.target);
                let field = field(slo);
                let since = recorded.get(&field).copied();
                let mut transition = None;
                let breached_since = match (breached, since) {
                    (true, Some(since)) => Some(since),
                    (true, None) => {
                        let now = now_ms();
                        let started: bool =
                            redis::cmd("HSETNX").arg(key).arg(&field).arg(now).query_async(&mut redis).await?;
                        if started {
                            tracing::warn!(queue = slo.queue, kind = slo.kind, slo = slo.objective.as_str(),
                                measured = measured.map(|m| slo.objective.show(m)), target = %slo.slo().describe(),
                                "SLO breached: {} {} is {} (target {})", slo.kind, slo.objective,
                                measured.map_or_else(String::new, |m| slo.objective.show(m)), slo.slo().describe());
                            transition = Some(Transition::Started);
                            Some(now)
                        } else {
                            redis::AsyncCommands::hget(&mut redis, key, &field).await?
                        }
                    }
                    (false, Some(since)) => {
                        let ended: bool = redis::AsyncCommands::hdel(&mut redis, key, &field).await?;
                        if ended {
                            transition = Some(Transition::Ended);
                            tracing::info!(
                                queue = slo.queue,
                                kind = slo.kind,
                                slo = slo.objective.as_str(),
                                breached_for_ms = now_ms() - since,
                                "SLO recovered: {} {} is {} (target {})",
                                slo.kind,
                                slo.objective,
                                measured.map_or_else(|| "no data".to_owned(), |m| slo.objective.show(m)),
                                slo.slo().describe()
                            );
                        }
                        None
                    }
                    (false, None) => None,
                };
                out.push(SloStatus { slo: slo.clone(), measured, count, breached, breached_since, transition });
            }
        }
        crate::metrics::set_slos(&out);
        Ok(out)
    }
}

/// Evaluates the SLOs every `every` until `shutdown` (a worker process's part: breaches are
/// logged even when nobody looks at the board).
pub async fn run(queues: Queues, every: Duration, shutdown: crate::shutdown::Shutdown) -> anyhow::Result<()> {
    if queues.slos().is_empty() {
        return Ok(());
    }
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => match queues.evaluate_slos().await {
                Ok(_) => warned = false,
                Err(error) if !warned => {
                    warned = true;
                    tracing::warn!(%error, "could not evaluate the job SLOs");
                }
                Err(_) => {}
            },
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_the_variable_syntax() {
        let slo: Slo = "5s/15m".parse().unwrap();
        assert_eq!((slo.target, slo.window_minutes()), (5000.0, 15));
        let slo: Slo = "2.5%/1h".parse().unwrap();
        assert_eq!((slo.objective, slo.target, slo.window_minutes()), (Objective::FailureRate, 2.5, 60));
        assert!("5s".parse::<Slo>().unwrap_err().contains("<target>/<window>"));
        assert!("5s/10s".parse::<Slo>().unwrap_err().contains("from 1m to 24h"));
        assert!("lots%/1h".parse::<Slo>().unwrap_err().contains("percentage"));
        assert_eq!(Slo::run_p95(Duration::from_millis(1500), Duration::from_secs(3600)).describe(), "1.5 s over 1 h");
    }

    struct Slow;
    impl crate::Processor<()> for Slow {
        type Payload = serde_json::Value;
        const NAME: &'static str = "SLOW";
        const QUEUE: &'static str = "q";
        const SLOS: &'static [Slo] = &[Slo::run_p95(Duration::from_secs(2), Duration::from_secs(600))];
        async fn process(
            &self,
            _: &crate::JobContext<()>,
            _: serde_json::Value,
        ) -> Result<serde_json::Value, crate::JobError> {
            Ok(serde_json::Value::Null)
        }
    }

    #[test]
    fn the_environment_wins_over_the_kind_which_wins_over_its_queue() {
        const HOUR: Duration = Duration::from_secs(3600);
        const QUEUE_SLOS: &[Slo] = &[
            Slo::wait_p95(Duration::from_secs(5), HOUR),
            Slo::run_p95(Duration::from_secs(60), HOUR),
            Slo::failure_rate(1.0, HOUR),
        ];
        let registry = crate::Registry::new().queue(crate::QueueSpec::new("q").slos(QUEUE_SLOS)).register(Slow);
        let settings = |vars: &[(&str, &str)]| {
            crate::JobsSettings::from_lookup("APP", &registry.kind_names(), &registry.queue_names(), |k| {
                vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
            })
        };
        let declared = in_force(registry.catalog(), &settings(&[]).unwrap().jobs);
        let view: Vec<(Objective, f64, usize, &str)> =
            declared.iter().map(|s| (s.objective, s.target, s.window_minutes, s.source)).collect();
        assert_eq!(
            view,
            [
                (Objective::WaitP95, 5000.0, 60, "queue"),
                (Objective::RunP95, 2000.0, 10, "kind"),
                (Objective::FailureRate, 1.0, 60, "queue"),
            ]
        );
        let env = [("APP_JOB_SLO_WAIT_P95_SLOW", "30s/2m"), ("APP_JOB_SLO_FAILURE_RATE_SLOW", "none")];
        let overridden = in_force(registry.catalog(), &settings(&env).unwrap().jobs);
        let view: Vec<(Objective, f64, usize, &str)> =
            overridden.iter().map(|s| (s.objective, s.target, s.window_minutes, s.source)).collect();
        assert_eq!(view, [(Objective::WaitP95, 30_000.0, 2, "env"), (Objective::RunP95, 2000.0, 10, "kind")]);
        let bad = settings(&[("APP_JOB_SLO_FAILURE_RATE_SLOW", "5s/1h")]).unwrap_err();
        assert_eq!(bad.var, "APP_JOB_SLO_FAILURE_RATE_SLOW");
        assert!(bad.expected.contains("percentage"), "{bad}");
        let bad = settings(&[("APP_JOB_SLO_RUN_P95_SLOW", "5%/1h")]).unwrap_err();
        assert!(bad.expected.contains("duration over a window"), "{bad}");
    }
}
