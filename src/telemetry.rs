//! Structured logs: JSON lines by default (one object per event, with the request id in its span),
//! or human-readable with `EVENTMILL_LOG_FORMAT=pretty`. The level filter is `EVENTMILL_LOG`
//! (default `info`, PostgreSQL notices at `warn`), in `tracing_subscriber::EnvFilter` syntax.
//!
//! Traces: when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, the
//! spans (HTTP requests continuing a `traceparent` header, stream entries, job enqueues and
//! attempts; see `otel`) are exported over OTLP/HTTP. Unset, no OpenTelemetry layer is installed
//! and the subscriber is exactly the logging one.

mod otel;

use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

pub use otel::Telemetry;

/// Spans not exported as traces: loops that run whether or not anything happens.
const IDLE_LOOPS: &[&str] = &["consume_once"];

/// Installs the global subscriber; logs go to standard error so command output stays clean.
/// Answers what must be shut down at exit (the trace exporter's last batch).
pub fn init() -> Telemetry {
    let filter =
        EnvFilter::try_from_env("EVENTMILL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let pretty = std::env::var("EVENTMILL_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let (telemetry, tracer) = match otel::from_env() {
        Ok(Some((telemetry, tracer))) => (telemetry, Some(tracer)),
        Ok(None) => (Telemetry::default(), None),
        Err(error) => {
            eprintln!("warning: traces are not exported: {error}");
            (Telemetry::default(), None)
        }
    };
    let Some(tracer) = tracer else {
        let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let result = if pretty {
            builder.try_init()
        } else {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        };
        // A second init (tests) keeps the first subscriber.
        let _ = result;
        return telemetry;
    };
    // With traces: the log filter applies to the log lines only; the spans exported are those at
    // `info` and above whatever `EVENTMILL_LOG` says, but for the consumer's read loop (`IDLE_LOOPS`:
    // a root span every flush interval, idle or not; a traced entry's span has its own parent).
    let logs = fmt::layer().with_writer(std::io::stderr);
    let logs = if pretty {
        logs.boxed()
    } else {
        logs.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed()
    };
    let traces =
        tracing_opentelemetry::layer().with_tracer(tracer).with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            *meta.level() <= tracing::Level::INFO && !(meta.is_span() && IDLE_LOOPS.contains(&meta.name()))
        }));
    let _ = tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init();
    telemetry
}
