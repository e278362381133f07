//! Prometheus metrics: every name, label and bucket in one place, each recorded by a one-line call
//! at the point where the thing happens (docs/operations.md "Metrics" lists them).
//!
//! Counters and histograms are per process (scrape every `serve` and `worker`: a worker exposes
//! its own with `EVENTMILL_METRICS_ADDR`); the stream and queue gauges are read from Redis at
//! scrape time, so they are the same whichever process answers.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets (seconds) of HTTP requests, flushes and jobs: 1 ms to 5 min.
const SECONDS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Rows per flush (the batch size is 4,000 by default).
const ROWS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0];

/// Every metric of the process, registered in one registry.
struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    ingest_requests: IntCounterVec,
    ingest_events: IntCounterVec,
    stream_length: IntGauge,
    stream_lag: IntGauge,
    stream_pending: IntGauge,
    stream_consumers: IntGauge,
    dead_letters: IntGauge,
    flush_rows: Histogram,
    flush_duration: HistogramVec,
    rows_stored: IntCounter,
    dead_lettered: IntCounter,
    sse_subscribers: IntGauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect("metric names are unique");
    let counter = |name: &str, help: &str, labels: &[&str]| {
        let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        reg(Box::new(metric.clone()));
        metric
    };
    let gauge = |name: &str, help: &str| {
        let metric = IntGauge::new(name, help).expect("valid metric");
        reg(Box::new(metric.clone()));
        metric
    };
    let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let metric = HistogramVec::new(opts, labels).expect("valid metric");
        reg(Box::new(metric.clone()));
        metric
    };
    let plain_counter = |name: &str, help: &str| {
        let metric = IntCounter::new(name, help).expect("valid metric");
        reg(Box::new(metric.clone()));
        metric
    };
    let flush_rows = Histogram::with_opts(
        HistogramOpts::new("eventmill_flush_rows", "Rows per stored batch").buckets(ROWS.to_vec()),
    )
    .expect("valid metric");
    reg(Box::new(flush_rows.clone()));
    eventmill_jobs::metrics::register(&registry).expect("metric names are unique");
    Metrics {
        http_requests: counter(
            "eventmill_http_requests_total",
            "HTTP requests by route and status",
            &["route", "status"],
        ),
        http_duration: histogram(
            "eventmill_http_request_duration_seconds",
            "HTTP request latency by route",
            &["route"],
            SECONDS,
        ),
        ingest_requests: counter(
            "eventmill_ingest_requests_total",
            "Ingestion requests by endpoint and outcome",
            &["endpoint", "outcome"],
        ),
        ingest_events: counter(
            "eventmill_ingest_events_total",
            "Events in ingestion requests by outcome",
            &["outcome"],
        ),
        stream_length: gauge("eventmill_stream_length", "Entries in the event stream"),
        stream_lag: gauge("eventmill_stream_lag", "Entries the consumer group has not read yet"),
        stream_pending: gauge("eventmill_stream_pending", "Entries read but not yet acknowledged (stored)"),
        stream_consumers: gauge("eventmill_stream_consumers", "Consumers in the storage group"),
        dead_letters: gauge("eventmill_dead_letters", "Entries in the dead-letter stream"),
        flush_rows,
        flush_duration: histogram(
            "eventmill_flush_duration_seconds",
            "Time to store one batch (COPY, commit, XACK) by outcome",
            &["outcome"],
            SECONDS,
        ),
        rows_stored: plain_counter("eventmill_rows_stored_total", "Events stored in PostgreSQL by this process"),
        dead_lettered: plain_counter(
            "eventmill_dead_lettered_total",
            "Stream entries this process moved to the dead-letter stream",
        ),
        sse_subscribers: gauge("eventmill_sse_subscribers", "Open live-dashboard (SSE) connections"),
        registry,
    }
});

/// One HTTP request answered (`route` is the matched route template, not the raw path).
pub fn http_request(route: &str, status: u16, elapsed: Duration) {
    METRICS.http_requests.with_label_values(&[route, status.to_string().as_str()]).inc();
    METRICS.http_duration.with_label_values(&[route]).observe(elapsed.as_secs_f64());
}

/// One ingestion request's outcome, from its status: accepted, invalid, unauthorized, backpressure
/// (429), unavailable (503).
pub fn ingest_request(endpoint: &str, status: u16) {
    let outcome = match status {
        200..=299 => "accepted",
        401 => "unauthorized",
        429 => "backpressure",
        503 => "unavailable",
        400..=499 => "invalid",
        _ => "error",
    };
    METRICS.ingest_requests.with_label_values(&[endpoint, outcome]).inc();
}

/// `count` events of one request: accepted (in the stream), invalid, or refused (stream full or
/// Redis down: the client retries).
pub fn ingest_events(outcome: &str, count: usize) {
    METRICS.ingest_events.with_label_values(&[outcome]).inc_by(count as u64);
}

/// One batch handed to PostgreSQL: `rows` stored and `dead_lettered` given up, or `None` when the
/// store was unavailable (the batch is kept and retried).
pub fn flush(started: Instant, stored: Option<(usize, usize)>) {
    let outcome = if stored.is_some() { "stored" } else { "unavailable" };
    METRICS.flush_duration.with_label_values(&[outcome]).observe(started.elapsed().as_secs_f64());
    if let Some((rows, dead_lettered)) = stored {
        METRICS.flush_rows.observe(rows as f64);
        METRICS.rows_stored.inc_by(rows as u64);
        METRICS.dead_lettered.inc_by(dead_lettered as u64);
    }
}

/// Entries moved to the dead-letter stream outside a flush (reclaimed too often).
pub fn dead_lettered(count: usize) {
    METRICS.dead_lettered.inc_by(count as u64);
}

/// Counts one open live-dashboard (SSE) connection for as long as it is held.
pub struct SseSubscriber(());

impl SseSubscriber {
    /// Call when a subscriber connects; the gauge goes down when this is dropped.
    pub fn connected() -> Self {
        METRICS.sse_subscribers.inc();
        Self(())
    }
}

impl Drop for SseSubscriber {
    fn drop(&mut self) {
        METRICS.sse_subscribers.dec();
    }
}

/// The stream's backlog as read from Redis (scrape time).
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamGauges {
    pub length: u64,
    pub lag: Option<u64>,
    pub pending: Option<u64>,
    pub consumers: Option<u64>,
    pub dead_letters: u64,
}

/// Sets the stream gauges (an unknown lag or pending count, before the group exists, reads 0).
pub fn set_stream(gauges: StreamGauges) {
    METRICS.stream_length.set(gauges.length as i64);
    METRICS.stream_lag.set(gauges.lag.unwrap_or(0) as i64);
    METRICS.stream_pending.set(gauges.pending.unwrap_or(0) as i64);
    METRICS.stream_consumers.set(gauges.consumers.unwrap_or(0) as i64);
    METRICS.dead_letters.set(gauges.dead_letters as i64);
}

pub use eventmill_jobs::metrics::set_queue_jobs;

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new().encode(&METRICS.registry.gather(), &mut out).expect("text encoding into a Vec cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}
