//! `jobs list|show|retry|remove|cancel`: the queues' jobs as an operator sees and handles them.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use clap::{Args, Subcommand};

use crate::{
    JobRecord, JobState, Queue, QueueError, Queues,
    queue::{Cancelled, QueueCounts},
};

/// `jobs ...`: inspect, retry and remove jobs of every declared queue.
#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// List jobs of one state, newest first for finished ones.
    List(JobsListArgs),
    /// Everything about one job: payload, attempts and their errors, progress, timestamps, result.
    Show {
        /// The job's id.
        id: String,
    },
    /// Put failed jobs back in the queue with fresh attempts.
    Retry(JobsRetryArgs),
    /// Delete a job, whatever its state.
    Remove {
        /// The job's id.
        id: String,
    },
    /// Cancel a job: a waiting or delayed one is removed; a running one is asked to stop and ends
    /// `cancelled`.
    Cancel {
        /// The job's id.
        id: String,
    },
}

/// `jobs list`: which jobs, how many, as a table or JSON lines.
#[derive(Debug, Clone, Args)]
pub struct JobsListArgs {
    /// One declared queue (default: every one).
    #[arg(long)]
    pub queue: Option<String>,
    /// waiting, waiting-children (flow parents), delayed, active, completed or failed.
    #[arg(long, default_value = "failed")]
    pub state: String,
    /// At most this many jobs per queue.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `jobs retry ID` or `jobs retry --all-failed [--queue Q]`.
#[derive(Debug, Clone, Args)]
pub struct JobsRetryArgs {
    /// The failed job's id.
    #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
    pub id: Option<String>,
    /// Every failed job (of --queue, or of every queue).
    #[arg(long)]
    pub all_failed: bool,
    /// With --all-failed: only this queue's.
    #[arg(long)]
    pub queue: Option<String>,
}

impl JobsCommand {
    /// Runs the command on `queues`; a job that is not there or not in a state the command
    /// applies to is an error (exit code 1 once the application printed it).
    pub async fn run(self, queues: &Queues) -> anyhow::Result<ExitCode> {
        match self {
            JobsCommand::List(args) => list(queues, args).await?,
            JobsCommand::Show { id } => {
                let job = queues.job(&id).await?.ok_or_else(|| QueueError::NotFound(id.clone()))?;
                let mut shown = serde_json::to_value(&job)?;
                shown["log"] = serde_json::json!(queues.log(&id).await?);
                if let Some(flow) = queues.flow(&id).await? {
                    shown["flow"] = serde_json::to_value(flow)?;
                }
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
                for queue in selected(queues, args.queue.as_deref())? {
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
}

/// The queue called `name`, or every declared queue.
fn selected<'a>(queues: &'a Queues, name: Option<&str>) -> anyhow::Result<Vec<&'a Queue>> {
    Ok(match name {
        Some(name) => vec![queues.named(name)?],
        None => queues.all().iter().collect(),
    })
}

/// Each queue's counts on standard error, then its jobs of the state asked for on standard output.
async fn list(queues: &Queues, args: JobsListArgs) -> anyhow::Result<()> {
    let state: JobState = args.state.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut jobs: Vec<JobRecord> = Vec::new();
    for queue in selected(queues, args.queue.as_deref())? {
        let counts = queue.counts().await.context("could not read Redis")?;
        eprintln!("{}: {}", queue.name, counts_line(&counts));
        jobs.extend(queues.list(queue, state, args.limit).await?);
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

/// `waiting 1 waiting-children 0 delayed 0 active 0 completed 3 failed 0 (paused)`.
fn counts_line(counts: &QueueCounts) -> String {
    format!(
        "waiting {} waiting-children {} delayed {} active {} completed {} failed {}{}",
        counts.waiting,
        counts.waiting_children,
        counts.delayed,
        counts.active,
        counts.completed,
        counts.failed,
        if counts.paused { " (paused)" } else { "" }
    )
}

/// A unix-ms time as `YYYY-MM-DD HH:MM:SS` (UTC).
fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}
