//! The scenarios `bench-jobs` added for issue 23, measured the same way for Node BullMQ
//! (`scripts/bench/bullmq/bench.mjs`) and bullmq-official (`scripts/bench/bullmq-rs`):
//!
//! - `bulk`: `--jobs` no-op jobs enqueued `--batch` at a time (`Queue::enqueue_bulk`, one batch
//!   after the other): jobs/s; Redis `used_memory` per waiting job; then a worker (concurrency
//!   50) runs them all with every completed job kept: jobs/s and CPU per job of that run
//!   (`jobs.backlog.c50`: 10 times the throughput scenario's jobs, so finer CPU figures), then
//!   `used_memory` per retained completed job.
//! - `delayed`: an idle worker (concurrency 50); `--jobs` jobs all due at one moment 3 s ahead:
//!   how late each starts after that moment (p50, max).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{BenchJobsArgs, Cpu, Noop, drained, start, stop};
use crate::queue::{BulkJob, EnqueueOptions, Queue};

/// The worker concurrency of the scenarios that run many jobs.
const CONCURRENCY: usize = 50;

/// How far ahead the delayed jobs are due (their enqueue must be over by then).
const DELAYED_LEAD: Duration = Duration::from_secs(3);

pub(super) async fn bulk(
    queue: &Queue,
    mut redis: crate::redis_conn::RedisConn,
    args: &BenchJobsArgs,
) -> anyhow::Result<()> {
    let empty = used_memory(&mut redis).await?;
    let began = Instant::now();
    for first in (0..args.jobs).step_by(args.batch.max(1)) {
        let last = (first + args.batch).min(args.jobs);
        let batch: Vec<BulkJob> = (first..last).map(|i| BulkJob::new("NOOP", format!("{{\"i\":{i}}}"))).collect();
        queue.enqueue_bulk(&batch).await?;
    }
    let rate = args.jobs as f64 / began.elapsed().as_secs_f64();
    let waiting = used_memory(&mut redis).await? - empty;
    println!("RESULT jobs.bulk_enqueue.eventmill {rate:.0} jobs/s");
    println!("RESULT jobs.memory.waiting.eventmill {:.0} bytes", waiting as f64 / args.jobs as f64);

    let handler = Arc::new(Noop { target: args.jobs, ..Noop::default() });
    let cpu = Cpu::now();
    let began = Instant::now();
    let worker = start(queue, handler.clone(), CONCURRENCY);
    handler.all_done.notified().await;
    drained(queue).await?;
    let rate = args.jobs as f64 / began.elapsed().as_secs_f64();
    let cpu = cpu.since();
    stop(worker).await?;
    println!("RESULT jobs.backlog.c{CONCURRENCY}.eventmill {rate:.0} jobs/s");
    cpu.print(&format!("jobs.backlog.c{CONCURRENCY}"), "eventmill", args.jobs);
    let completed = used_memory(&mut redis).await? - empty;
    println!("RESULT jobs.memory.completed.eventmill {:.0} bytes", completed as f64 / args.jobs as f64);
    Ok(())
}

pub(super) async fn delayed(queue: &Queue, args: &BenchJobsArgs) -> anyhow::Result<()> {
    let handler = Arc::new(Noop { target: args.jobs, record: true, ..Noop::default() });
    let worker = start(queue, handler.clone(), CONCURRENCY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let due_ms = crate::queue::now_ms() + DELAYED_LEAD.as_millis() as i64;
    let due = Instant::now() + DELAYED_LEAD;
    for first in (0..args.jobs).step_by(args.batch.max(1)) {
        let last = (first + args.batch).min(args.jobs);
        let delay = Duration::from_millis((due_ms - crate::queue::now_ms()).max(0) as u64);
        let options = EnqueueOptions { delay: Some(delay), ..EnqueueOptions::default() };
        let batch: Vec<BulkJob> = (first..last)
            .map(|i| BulkJob::new("NOOP", format!("{{\"i\":{i}}}")).with_options(options.clone()))
            .collect();
        queue.enqueue_bulk(&batch).await?;
    }
    anyhow::ensure!(Instant::now() < due, "enqueueing {} delayed jobs took longer than {DELAYED_LEAD:?}", args.jobs);
    tokio::time::timeout(DELAYED_LEAD + Duration::from_secs(60), handler.all_done.notified())
        .await
        .context("delayed jobs did not all run")?;
    stop(worker).await?;
    let mut late: Vec<f64> = handler
        .started
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, at)| at.saturating_duration_since(due).as_secs_f64() * 1000.0)
        .collect();
    late.sort_by(f64::total_cmp);
    println!("RESULT jobs.delayed_late.p50.eventmill {:.1} ms", late[late.len() / 2]);
    println!("RESULT jobs.delayed_late.max.eventmill {:.1} ms", late[late.len() - 1]);
    Ok(())
}

/// Redis' `used_memory` (bytes).
pub(super) async fn used_memory(redis: &mut crate::redis_conn::RedisConn) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO memory")
}
