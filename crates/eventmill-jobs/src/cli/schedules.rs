//! `schedules list|run`: the cron schedules an application loaded (`scheduler.toml`), their next
//! and last runs, and "run now".

use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;

use super::follow;
use crate::scheduler::Scheduler;

/// `schedules ...`: what the scheduler would enqueue, and when.
#[derive(Debug, Clone, Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule with its next and last run.
    List,
    /// Enqueue a schedule's job now.
    Run {
        /// The schedule's name.
        name: String,
        /// Wait for the job's end.
        #[arg(long)]
        wait: bool,
    },
}

impl SchedulesCommand {
    /// Runs the command with `scheduler` (its schedules, and the queues it enqueues on); an
    /// unknown schedule is an error.
    pub async fn run(self, scheduler: &Scheduler) -> anyhow::Result<ExitCode> {
        match self {
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
                    let job = follow::follow(scheduler.queues(), &enqueued.id).await?;
                    return Ok(follow::report_end(&job));
                }
                println!("{}", enqueued.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
