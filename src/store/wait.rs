//! A worker started while PostgreSQL is down waits for it (SPEC section 13): the migration is
//! retried with backoff until it works, said once when the wait starts and once when it ends.
//! Only `eventmill migrate` fails fast.

use std::time::Duration;

use crate::shutdown::Shutdown;

/// First wait between attempts; doubled up to `MAX_WAIT`.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(15);

/// Runs `migrate` (the app's migration: tables, partitions) until it works; false if shutdown
/// came first.
pub async fn migrated<F, Fut>(migrate: F, shutdown: &Shutdown) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut wait = FIRST_WAIT;
    let mut last_error: Option<String> = None;
    loop {
        match migrate().await {
            Ok(()) => {
                if last_error.is_some() {
                    tracing::info!("PostgreSQL is reachable again: database migrated; storing events");
                }
                return true;
            }
            Err(error) => {
                let text = format!("{error:#}");
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::error!(
                        error = %text,
                        "PostgreSQL is unreachable: the worker runs degraded and waits for it (retrying with \
                         backoff up to every {} s); accepted events wait in the stream, job workers run meanwhile",
                        MAX_WAIT.as_secs()
                    );
                    last_error = Some(text);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            () = shutdown.cancelled() => return false,
        }
        wait = (wait * 2).min(MAX_WAIT);
    }
}
