//! The command line (SPEC section 12): one binary, one subcommand per job.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use eventmill_jobs::cli::{EnqueueArgs, JobsCommand, SchedulesCommand};

use crate::{
    commands::bench_jobs::BenchJobsArgs,
    domain::job::{ExportDataType, Format, ReportType},
    loadgen::LoadgenArgs,
    queue::Catalog,
};

#[derive(Debug, Parser)]
#[command(
    name = "eventmill",
    version,
    about = "Self-hosted product analytics: events in, live numbers and reports out."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: HTTP API, stream consumers, job workers and scheduler.
    Run,
    /// Run the HTTP API only.
    Serve,
    /// Run the stream consumers (and job workers) only.
    Worker,
    /// Apply database migrations and create the coming days' partitions.
    Migrate,
    /// Print the effective configuration, secrets masked.
    Config,
    /// Inspect and replay events that could not be stored.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Send realistic e-commerce traffic to a running eventmill.
    Loadgen(LoadgenArgs),
    /// Put a job on its queue: `enqueue rollup|report|export ...` or `enqueue --file jobs/x.toml`.
    Enqueue(EnqueueArgs<Shortcut>),
    /// Inspect, retry and remove jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The schedules: scheduler.toml's and the run-time ones (add, remove, pause, resume, ledger).
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// No-op jobs through the queue (scripts/bench/jobs.sh runs it beside BullMQ).
    #[command(hide = true)]
    BenchJobs(BenchJobsArgs),
}

/// eventmill's typed `enqueue` subcommands for its own kinds: each builds its job's fields
/// (`commands::enqueue`), then takes the framework's generic path.
#[derive(Debug, Subcommand)]
pub enum Shortcut {
    /// HOURLY_ROLLUP (--hourly --start --end) or DAILY_ROLLUP (--daily --date [--profile]).
    Rollup(RollupArgs),
    /// GENERATE_REPORT.
    Report(ReportArgs),
    /// EXPORT_DATA.
    Export(ExportArgs),
}

/// Parses the command line; `enqueue --help` lists the job kinds of `kinds`.
pub fn parse(kinds: &Catalog) -> Cli {
    let matches = eventmill_jobs::cli::list_kinds(Cli::command(), "enqueue", kinds).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Args)]
pub struct RollupArgs {
    #[arg(long, conflicts_with = "daily", required_unless_present = "daily")]
    pub hourly: bool,
    #[arg(long)]
    pub daily: bool,
    /// Hourly: window start (RFC 3339, or relative: now, -1h).
    #[arg(long, requires = "hourly", allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Hourly: window end (exclusive).
    #[arg(long, requires = "hourly", allow_hyphen_values = true)]
    pub end: Option<String>,
    /// Daily: the UTC day (YYYY-MM-DD, today, yesterday, -2d).
    #[arg(long, requires = "daily", allow_hyphen_values = true)]
    pub date: Option<String>,
    /// Daily: only these profiles' rows (repeatable).
    #[arg(long = "profile", requires = "daily")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report (any case).
    #[arg(long = "type", value_enum, ignore_case = true)]
    pub report_type: ReportType,
    #[command(flatten)]
    pub file: FileArgs,
    /// Only these profiles (repeatable).
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// E-mail the file to (repeatable).
    #[arg(long = "email")]
    pub emails: Vec<String>,
    /// Enqueue as a flow: one DAILY_ROLLUP child per day of the period, the report after they
    /// all completed (a rollup that fails for good fails the report).
    #[arg(long)]
    pub after_rollups: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The events to export (any case).
    #[arg(long, value_enum, ignore_case = true)]
    pub data: ExportDataType,
    #[command(flatten)]
    pub file: FileArgs,
    /// key=value: event_type, source, user_id, or a property (repeatable).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

/// What report and export jobs share: the file's format, the period, where it goes.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// The file's format (any case).
    #[arg(long, value_enum, ignore_case = true)]
    pub format: Format,
    /// First UTC day (YYYY-MM-DD, today, yesterday, -7d).
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// Last UTC day, included (YYYY-MM-DD, today, yesterday, -1d).
    #[arg(long, allow_hyphen_values = true)]
    pub to: String,
    /// Output path under the reports folder.
    #[arg(long)]
    pub output: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters, oldest first.
    List(ListArgs),
    /// Put dead letters back on the event stream.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReplayArgs {
    /// Dead-letter ids (as listed).
    pub ids: Vec<String>,
    /// Replay every dead letter.
    #[arg(long)]
    pub all: bool,
}
