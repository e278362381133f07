//! `eventmill jobs list|show|retry|remove|cancel` and `eventmill schedules list|run`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{TimeZone, Utc};

use super::enqueue;
use crate::{
    app::Resources,
    cli::{JobsCommand, JobsListArgs, JobsRetryArgs, SchedulesCommand},
    queue::{Cancelled, JobRecord, JobState, Queue, QueueError},
};

pub async fn jobs(resources: &Resources, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let queues = &resources.queues;
    match command {
        JobsCommand::List(args) => list(resources, args).await?,
        JobsCommand::Show { id } => {
            let job = queues.job(&id).await?.ok_or_else(|| QueueError::NotFound(id.clone()))?;
            let mut shown = serde_json::to_value(&job)?;
            shown["log"] = serde_json::json!(queues.log(&id).await?);
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        JobsCommand::Retry(JobsRetryArgs { id: Some(id), .. }) => {
            let queue = queues.queue_of(&id).await?;
            if queue.retry_failed(Some(&id), 1).await? == 0 {
                let state = queues.job(&id).await?.map(|j| j.state.to_string()).unwrap_or_default();
                anyhow::bail!("job {id} is {state}, not failed: only failed jobs can be retried");
            }
            println!("job {id} is waiting again on {}", queue.name);
        }
        JobsCommand::Retry(args) => {
            let mut total = 0;
            for queue in selected(resources, args.queue.as_deref())? {
                loop {
                    let moved = queue.retry_failed(None, 1000).await?;
                    total += moved;
                    if moved < 1000 {
                        break;
                    }
                }
            }
            println!("{total} failed job(s) waiting again");
        }
        JobsCommand::Cancel { id } => {
            let queue = queues.queue_of(&id).await?;
            match queue.cancel(&id).await? {
                Cancelled::Removed => println!("job {id} cancelled: removed before it ran"),
                Cancelled::Running => println!("job {id} cancelled: its processor is asked to stop"),
                Cancelled::AlreadyFinished(state) => anyhow::bail!("job {id} is {state}: nothing to cancel"),
            }
        }
        JobsCommand::Remove { id } => {
            let queue = queues.queue_of(&id).await?;
            queue.remove(&id).await?;
            println!("job {id} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn selected<'a>(resources: &'a Resources, name: Option<&str>) -> anyhow::Result<Vec<&'a Queue>> {
    Ok(match name {
        Some(name) => vec![resources.queues.named(name)?],
        None => resources.queues.all().iter().collect(),
    })
}

async fn list(resources: &Resources, args: JobsListArgs) -> anyhow::Result<()> {
    let state: JobState = args.state.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut jobs: Vec<JobRecord> = Vec::new();
    for queue in selected(resources, args.queue.as_deref())? {
        let counts = queue.counts().await.context("could not read Redis")?;
        eprintln!(
            "{}: waiting {} waiting-children {} delayed {} active {} completed {} failed {}{}",
            queue.name,
            counts.waiting,
            counts.waiting_children,
            counts.delayed,
            counts.active,
            counts.completed,
            counts.failed,
            if counts.paused { " (paused)" } else { "" }
        );
        jobs.extend(resources.queues.list(queue, state, args.limit).await?);
    }
    if args.json {
        for job in &jobs {
            println!("{}", serde_json::to_string(job)?);
        }
        return Ok(());
    }
    println!(
        "{:<8} {:<18} {:<16} {:<16} {:>8}  {:<20} ERROR / PROGRESS",
        "ID", "QUEUE", "KIND", "STATE", "ATTEMPTS", "CREATED"
    );
    for job in jobs {
        let note = match (job.state, job.last_error()) {
            (JobState::Failed | JobState::Delayed, Some(error)) => error.to_owned(),
            _ => format!("{}% {}", job.progress, job.progress_message),
        };
        println!(
            "{:<8} {:<18} {:<16} {:<16} {:>8}  {:<20} {}",
            job.id,
            job.queue,
            job.kind,
            job.state.as_str(),
            format!("{}/{}", job.attempts, job.max_attempts),
            time(job.created_at),
            note
        );
    }
    Ok(())
}

fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

pub async fn schedules(resources: &Resources, command: SchedulesCommand) -> anyhow::Result<ExitCode> {
    let scheduler = resources.scheduler()?;
    match command {
        SchedulesCommand::List => {
            println!("{:<24} {:<16} {:<16} {:<27} LAST RUN (UTC)", "NAME", "CRON", "TIMEZONE", "NEXT RUN (local)");
            for schedule in &scheduler.schedules {
                let next = schedule.cron.next_after(Utc::now()).map_or("-".into(), |t| {
                    t.with_timezone(&schedule.cron.timezone).format("%Y-%m-%d %H:%M %Z").to_string()
                });
                let last = scheduler.last_run(&schedule.name).await?.map_or("never".into(), |t| t.to_rfc3339());
                println!(
                    "{:<24} {:<16} {:<16} {:<27} {}",
                    schedule.name,
                    schedule.cron.expression,
                    schedule.cron.timezone.name(),
                    next,
                    last
                );
            }
        }
        SchedulesCommand::Run { name, wait } => {
            let enqueued = scheduler.run_now(&name).await?;
            eprintln!("schedule {name}: enqueued job {}", enqueued.id);
            if wait {
                let job = enqueue::follow(&resources.queues, &enqueued.id).await?;
                return enqueue::report_end(&job);
            }
            println!("{}", enqueued.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
