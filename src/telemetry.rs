//! Structured logs: JSON lines by default (one object per event, with the request id in its span),
//! or human-readable with `EVENTMILL_LOG_FORMAT=pretty`. The level filter is `EVENTMILL_LOG`
//! (default `info`, PostgreSQL notices at `warn`), in `tracing_subscriber::EnvFilter` syntax.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber; logs go to standard error so command output stays clean.
pub fn init() {
    let filter =
        EnvFilter::try_from_env("EVENTMILL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let pretty = std::env::var("EVENTMILL_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let result = if pretty {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
