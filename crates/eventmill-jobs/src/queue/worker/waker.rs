//! The idle wake-up: blocks on the queue's marker (BZPOPMIN, on a connection of its own so the
//! shared one never stalls) and wakes the worker loop when a job may be runnable. A timeout wakes
//! it too, as a safety net for jobs of workers that died (their leases expire unannounced).

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::queue::Queue;

pub(super) async fn run(queue: Queue, wake: Arc<Notify>) {
    let timeout = queue.settings().idle_check.max(Duration::from_millis(100));
    loop {
        let mut conn = match queue.blocking_connection() {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, queue = queue.name, "could not open the queue's wake-up connection; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match queue.wait_for_marker(&mut conn, timeout).await {
                Ok(_) => wake.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, queue = queue.name, "queue wake-up failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake.notify_one();
                    break;
                }
            }
        }
    }
}
