//! Running jobs' news, for all of a worker's jobs in one call per interval: progress and log lines
//! (only when some job has news), lease renewal (every third of the lease, while jobs run) and the
//! worker's "alive" beat for admin. An idle worker sends nothing but its beat.

use std::time::Duration;

use tokio::time::Instant;

use super::{Active, lock};
use crate::queue::{EventKind, Live, Queue, context::Pending};

/// How often the worker says it is alive (admin counts workers seen within 30 s).
const BEAT_EVERY: Duration = Duration::from_secs(10);

pub(super) async fn run(queue: Queue, worker: String, active: Active) {
    let settings = queue.settings();
    let renew_every = settings.lease / 3;
    let tick = settings.progress_flush.min(renew_every).max(Duration::from_millis(5));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_renew, mut last_beat) = (Instant::now(), None::<Instant>);
    loop {
        ticker.tick().await;
        if last_beat.is_none_or(|at| at.elapsed() >= BEAT_EVERY) {
            if let Err(error) = queue.beat_worker(&worker).await {
                tracing::warn!(%error, "could not record the worker's beat");
            }
            last_beat = Some(Instant::now());
        }
        let renew = last_renew.elapsed() >= renew_every;
        let news: Vec<(String, Pending)> = lock(&active)
            .iter()
            .map(|(id, slot)| (id.clone(), slot.progress.take()))
            .filter(|(_, pending)| renew || pending.progress.is_some() || !pending.logs.is_empty())
            .collect();
        if news.is_empty() {
            if renew {
                last_renew = Instant::now();
            }
            continue;
        }
        emit_progress(&queue, &active, &news);
        let lives: Vec<Live<'_>> =
            news.iter().map(|(id, p)| Live { id, progress: p.progress.clone(), logs: p.logs.clone() }).collect();
        match queue.report_live(renew, &lives).await {
            Ok(lost) => {
                if renew {
                    last_renew = Instant::now();
                }
                let slots = lock(&active);
                for id in lost {
                    if let Some(slot) = slots.get(&id) {
                        tracing::warn!(job = %id, "the job's claim was lost (removed or lease expired): asking it to stop");
                        slot.cancel.cancel();
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not report running jobs' progress and leases"),
        }
    }
}

/// A progress event per job whose progress changed since the last report.
fn emit_progress(queue: &Queue, active: &Active, news: &[(String, Pending)]) {
    let slots = lock(active);
    for (id, pending) in news {
        if let (Some((percent, message)), Some(slot)) = (&pending.progress, slots.get(id)) {
            queue.events().emit(EventKind::Progress, queue.name, &slot.kind, id, slot.attempt, Some(*percent), message);
        }
    }
}
