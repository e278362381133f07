//! The framework's command line, for an application to embed in its own clap CLI (feature `cli`,
//! on by default): [`EnqueueArgs`] (`enqueue --file F` or `enqueue KIND field=value ...`, with
//! `--wait`, `--priority`, `--delay`, `--key`, `--key-window`), [`JobsCommand`]
//! (`jobs list|show|retry|remove|cancel`) and [`SchedulesCommand`] (`schedules
//! list|show|run|add|remove|pause|resume`).
//!
//! Each has an async `run` returning the process's exit code: 0 ok, 1 failure (a followed job
//! failed, with its error on standard error), 2 usage. What could not be done at all (Redis down,
//! no such job) comes back as an error, for the application's `main` to print and exit 1 with.
//! Kinds and queues are never named here: they come from the [`Catalog`] of the application's
//! [`Registry`](crate::Registry), and `enqueue --help` lists them ([`list_kinds`]).
//!
//! ```no_run
//! use std::{process::ExitCode, sync::Arc};
//!
//! use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
//! use eventmill_jobs::{
//!     Jobs, JobsSettings, Registry,
//!     cli::{self, EnqueueArgs, JobsCommand, SchedulesCommand},
//! };
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run the workers (the application's own subcommand).
//!     Worker,
//!     /// Put a job on its queue: `enqueue KIND field=value ...` or `enqueue --file job.toml`.
//!     Enqueue(EnqueueArgs),
//!     /// Inspect, retry and remove jobs.
//!     #[command(subcommand)]
//!     Jobs(JobsCommand),
//!     /// The cron schedules.
//!     #[command(subcommand)]
//!     Schedules(SchedulesCommand),
//! }
//!
//! # async fn run() -> anyhow::Result<ExitCode> {
//! let registry: Registry<()> = Registry::new(); // your queues and kinds
//! let matches = cli::list_kinds(Cli::command(), "enqueue", registry.catalog()).get_matches();
//! let cli = Cli::from_arg_matches(&matches)?;
//! let jobs = Jobs::connect(JobsSettings::from_env("MYAPP", &registry)?, registry)?;
//! match cli.command {
//!     Command::Worker => {
//!         jobs.run_workers(Arc::new(()), eventmill_jobs::shutdown::on_signal()).await?;
//!         Ok(ExitCode::SUCCESS)
//!     }
//!     Command::Enqueue(args) => args.run(jobs.queues()).await,
//!     Command::Jobs(command) => command.run(jobs.queues()).await,
//!     Command::Schedules(command) => {
//!         let schedules = jobs.load_schedules("scheduler.toml".as_ref()).map_err(anyhow::Error::msg)?;
//!         command.run(&jobs.scheduler(schedules)).await
//!     }
//! }
//! # }
//! ```
//!
//! An application with typed shortcuts for its own kinds (`enqueue rollup --daily --date
//! today`) declares them as a clap `Subcommand` implementing [`Shortcuts`] and embeds
//! `EnqueueArgs<ItsShortcuts>`: the shortcut builds the job's fields, and everything after
//! (checks, relative dates, flags, `--wait`) is the generic path.

mod enqueue;
mod follow;
mod jobs;
mod schedules;

pub use enqueue::{EnqueueArgs, EnqueueFlags, EnqueueKind, NoShortcuts, Shortcuts, job_from_args};
pub use follow::{enqueue_plan, follow, report_end};
pub use jobs::{JobsCommand, JobsListArgs, JobsRetryArgs};
pub use schedules::{ScheduleAddArgs, SchedulesCommand};

use crate::Catalog;

/// A usage problem (exit code 2): a kind, a field or a flag the command line got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `command` with the registered kinds of `catalog` (name, queue, relative fields:
/// [`Catalog::describe`]) at the end of its subcommand `enqueue`'s help. Panics when `command`
/// has no subcommand of that name (a programming error).
pub fn list_kinds(command: clap::Command, enqueue: &str, catalog: &Catalog) -> clap::Command {
    let kinds = catalog.describe();
    command.mut_subcommand(enqueue, |enqueue| {
        enqueue.after_help(format!("Job kinds (for --file, or `enqueue KIND field=value ...`):\n{kinds}"))
    })
}
