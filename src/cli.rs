//! The command line (SPEC section 12): one binary, one subcommand per job.

use clap::{Args, Parser, Subcommand};

use crate::loadgen::LoadgenArgs;

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
