//! The run-time schedules' part of a running scheduler: one GET of the version counter every
//! [`POLL`]; when it moved, the definitions are read again and each schedule's tick loop is
//! started, restarted (changed definition) or stopped (removed). Each loop sleeps to its next
//! tick and runs it through the same `Scheduler::tick` as a file schedule (one job per tick
//! across schedulers, pause, limit, misfire, ledger).

use std::{
    collections::HashMap,
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use chrono::Utc;

use super::{NO_MISSED_TICK, ScheduleSpec, Scheduler};
use crate::shutdown::Shutdown;

/// How often a scheduler looks for changed run-time schedules.
pub(crate) const POLL: Duration = Duration::from_secs(2);

/// Keeps the run-time schedules' loops in line with Redis until `shutdown`.
pub(crate) async fn run(scheduler: Arc<Scheduler>, shutdown: Shutdown) {
    let mut running: HashMap<String, (ScheduleSpec, Shutdown)> = HashMap::new();
    let mut seen = None;
    loop {
        if let Err(error) = sync_once(&scheduler, &shutdown, &mut running, &mut seen).await {
            tracing::warn!(%error, "could not read the run-time schedules; trying again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One poll: reload when the version moved.
async fn sync_once(
    scheduler: &Arc<Scheduler>,
    shutdown: &Shutdown,
    running: &mut HashMap<String, (ScheduleSpec, Shutdown)>,
    seen: &mut Option<u64>,
) -> Result<(), crate::QueueError> {
    let version = scheduler.store().version().await?;
    if *seen == Some(version) {
        return Ok(());
    }
    let specs: HashMap<String, ScheduleSpec> = scheduler
        .store()
        .list()
        .await?
        .into_iter()
        .filter(|(name, _)| !scheduler.schedules.iter().any(|s| &s.name == name))
        .collect();
    running.retain(|name, (spec, stop)| {
        let keep = specs.get(name) == Some(spec);
        if !keep {
            stop.cancel();
            tracing::info!(schedule = %name, "run-time schedule stopped (removed or changed)");
        }
        keep
    });
    for (name, spec) in specs {
        if running.contains_key(&name) {
            continue;
        }
        let entry = match spec.check(&name, scheduler.queues().catalog()) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(schedule = %name, %error, "run-time schedule does not check; not run");
                continue;
            }
        };
        let stop = shutdown.child_token();
        tokio::spawn(run_one(scheduler.clone(), entry, spec.clone(), stop.clone()));
        tracing::info!(schedule = %name, "run-time schedule started");
        running.insert(name, (spec, stop));
    }
    *seen = Some(version);
    Ok(())
}

/// One run-time schedule's tick loop until `stop`: its misfire catch-up, then each tick.
async fn run_one(scheduler: Arc<Scheduler>, entry: super::ScheduleEntry, spec: ScheduleSpec, stop: Shutdown) {
    if let Err(error) = scheduler.catch_up_schedule(&entry, Utc::now(), entry.misfire).await {
        tracing::warn!(schedule = %entry.name, %error, "could not catch up a missed run");
    }
    let missed = AtomicI64::new(NO_MISSED_TICK);
    let mut after = Utc::now();
    while let Some(next) = entry.cron.next_after(after) {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        // The poll stops a removed or changed schedule within 2 s; a tick due before that must
        // not run the old definition (nor bring a removed schedule's ledger back): one HGET.
        match scheduler.store().get(&entry.name).await {
            Ok(current) if current.as_ref() != Some(&spec) => {
                tracing::info!(schedule = %entry.name, "run-time schedule removed or changed: its old tick not run");
            }
            // Redis unreachable: the tick records it as missed, as a file schedule's does.
            _ => {
                let _ = scheduler.tick(&entry, next, &missed).await;
            }
        }
        after = next;
    }
    tracing::info!(schedule = %entry.name, "run-time schedule ended (past its end time)");
}
