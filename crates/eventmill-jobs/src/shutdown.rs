//! One shutdown signal shared by every long-running part (`run(resources, shutdown)`).
//!
//! SIGINT or SIGTERM cancels the token; each part finishes what it holds (flushes buffers, returns
//! in-flight work) and returns. Tests cancel the token themselves.

use tokio_util::sync::CancellationToken;

/// Cancelled once, when eventmill should stop.
pub type Shutdown = CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn on_signal() -> Shutdown {
    let token = Shutdown::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; finishing in-flight work");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
