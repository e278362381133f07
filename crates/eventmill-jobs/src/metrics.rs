//! The framework's Prometheus metrics: job attempts and their durations, lifecycle events, queue
//! sizes and schedule ticks, each recorded by a one-line call where the thing happens.
//!
//! They are created once per process and registered into the caller's registry with
//! [`register`], beside the application's own (eventmill serves both on `/metrics`). Counters and
//! histograms are per process; [`set_queue_jobs`] is set from Redis by whoever scrapes.

use std::{sync::LazyLock, time::Instant};

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, core::Collector};

use crate::queue::Outcome;

/// Latency buckets (seconds) of jobs: 1 ms to 5 min.
const SECONDS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

struct JobMetrics {
    jobs: IntCounterVec,
    job_events: IntCounterVec,
    job_duration: HistogramVec,
    queue_jobs: IntGaugeVec,
    scheduler_ticks: IntCounterVec,
    slo_breached: IntGaugeVec,
    slo_measured: GaugeVec,
    slo_target: GaugeVec,
}

static METRICS: LazyLock<JobMetrics> = LazyLock::new(|| {
    let counter = |name: &str, help: &str, labels: &[&str]| {
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
    };
    JobMetrics {
        jobs: counter(
            "eventmill_jobs_total",
            "Job attempts ended by this process, by queue, kind and outcome",
            &["queue", "kind", "outcome"],
        ),
        job_events: counter(
            "eventmill_job_events_total",
            "Job lifecycle events emitted by this process (started, progress, completed, retried, failed, cancelled, released), by queue, kind and event",
            &["queue", "kind", "event"],
        ),
        job_duration: HistogramVec::new(
            HistogramOpts::new("eventmill_job_duration_seconds", "Job attempt duration by queue, kind and outcome")
                .buckets(SECONDS.to_vec()),
            &["queue", "kind", "outcome"],
        )
        .expect("valid metric"),
        queue_jobs: IntGaugeVec::new(
            Opts::new("eventmill_queue_jobs", "Jobs in each queue and state (read from Redis at scrape time)"),
            &["queue", "state"],
        )
        .expect("valid metric"),
        scheduler_ticks: counter(
            "eventmill_scheduler_ticks_total",
            "Schedule ticks handled by this process: enqueued, duplicate (another scheduler had it) or error",
            &["schedule", "outcome"],
        ),
        slo_breached: IntGaugeVec::new(
            Opts::new("eventmill_job_slo_breached", "1 while a job kind's SLO is breached (state shared in Redis), else 0"),
            &["queue", "kind", "slo"],
        )
        .expect("valid metric"),
        slo_measured: GaugeVec::new(
            Opts::new(
                "eventmill_job_slo_measured",
                "A job kind's SLO value over its window: seconds for wait_p95 and run_p95, a ratio (0-1) for failure_rate (absent without data)",
            ),
            &["queue", "kind", "slo"],
        )
        .expect("valid metric"),
        slo_target: GaugeVec::new(
            Opts::new(
                "eventmill_job_slo_target",
                "A job kind's SLO target: seconds for wait_p95 and run_p95, a ratio (0-1) for failure_rate",
            ),
            &["queue", "kind", "slo"],
        )
        .expect("valid metric"),
    }
});

/// Registers the framework's metrics into `registry` (once per registry).
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    let m = &*METRICS;
    let collectors: [Box<dyn Collector>; 8] = [
        Box::new(m.jobs.clone()),
        Box::new(m.job_events.clone()),
        Box::new(m.job_duration.clone()),
        Box::new(m.queue_jobs.clone()),
        Box::new(m.scheduler_ticks.clone()),
        Box::new(m.slo_breached.clone()),
        Box::new(m.slo_measured.clone()),
        Box::new(m.slo_target.clone()),
    ];
    collectors.into_iter().try_for_each(|c| registry.register(c))
}

/// One job attempt ended: `outcome` is completed, retry (failed, will run again) or failed (for
/// good); see `job_outcome`.
pub(crate) fn job_attempt(queue: &str, kind: &str, outcome: &str, started: Instant) {
    METRICS.jobs.with_label_values(&[queue, kind, outcome]).inc();
    METRICS.job_duration.with_label_values(&[queue, kind, outcome]).observe(started.elapsed().as_secs_f64());
}

/// The `outcome` label of a finished attempt: completed, retry (retryable, attempts left) or failed.
pub(crate) fn job_outcome(outcome: &Outcome, attempt: u32, max_attempts: u32) -> &'static str {
    match outcome {
        Outcome::Completed(_) => "completed",
        Outcome::Failed { error, .. } if error.is_retryable() && attempt < max_attempts => "retry",
        Outcome::Failed { .. } => "failed",
        Outcome::Released => "released",
        Outcome::Postponed(_) => "delayed",
        Outcome::RateLimited(_) => "rate_limited",
    }
}

/// One job lifecycle event (`queue::events`).
pub(crate) fn job_event(queue: &str, kind: &str, event: &str) {
    METRICS.job_events.with_label_values(&[queue, kind, event]).inc();
}

/// A running job handed back at shutdown (its kind is not at hand there: `kind="any"`).
pub(crate) fn job_released(queue: &str) {
    METRICS.jobs.with_label_values(&[queue, "any", "released"]).inc();
}

/// One schedule tick handled: enqueued, duplicate (another scheduler enqueued it) or error.
pub(crate) fn scheduler_tick(schedule: &str, outcome: &str) {
    METRICS.scheduler_ticks.with_label_values(&[schedule, outcome]).inc();
}

/// Sets one queue's job count in one state (at scrape time, from Redis).
pub fn set_queue_jobs(queue: &str, state: &str, count: u64) {
    METRICS.queue_jobs.with_label_values(&[queue, state]).set(count as i64);
}

/// Sets the SLO gauges from an evaluation (`Queues::evaluate_slos` calls it): breached 0/1,
/// measured and target in seconds (the p95s) or as a ratio (the failure rate).
pub fn set_slos(statuses: &[crate::queue::SloStatus]) {
    for status in statuses {
        let slo = &status.slo;
        let labels = [slo.queue, slo.kind, slo.objective.as_str()];
        let scale = |value: f64| match slo.objective {
            crate::queue::Objective::FailureRate => value / 100.0,
            _ => value / 1000.0,
        };
        METRICS.slo_breached.with_label_values(&labels).set(i64::from(status.breached));
        METRICS.slo_target.with_label_values(&labels).set(scale(slo.target));
        match status.measured {
            Some(value) => METRICS.slo_measured.with_label_values(&labels).set(scale(value)),
            None => {
                let _ = METRICS.slo_measured.remove_label_values(&labels);
            }
        }
    }
}
