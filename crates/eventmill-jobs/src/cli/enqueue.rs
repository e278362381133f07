//! `enqueue`: a job from a job file, from `KIND field=value ...` or from an application's shortcut
//! subcommand, checked by the registry's catalog, put on its kind's queue (and followed with
//! `--wait`, in `follow`).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};

use super::{UsageError, follow};
use crate::{
    Catalog, Queues,
    job::{Job, JobOptions, JobTemplate, PlannedJob},
    queue::{DedupMode, MAX_PRIORITY},
};

/// An application's own `enqueue` subcommands with typed flags (`enqueue rollup --daily --date
/// today`): each builds a job's object, which then takes the generic path (the kind's checks,
/// relative values resolved now, the flags, `--wait`).
pub trait Shortcuts: Subcommand {
    /// The job's object, as a job file would write it: `job_type` plus the kind's fields
    /// (relative dates allowed). An error is a usage error.
    fn fields(&self) -> Result<Value, String>;

    /// Jobs to run before this one (a flow), given the job once resolved: the parent waits in
    /// `waiting-children` until they all completed. None by default.
    fn children(&self, job: &Job, catalog: &Catalog) -> Result<Vec<PlannedJob>, String> {
        let _ = (job, catalog);
        Ok(Vec::new())
    }
}

/// No shortcuts: `enqueue` takes only `--file` and `KIND field=value ...`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum NoShortcuts {}

impl Shortcuts for NoShortcuts {
    fn fields(&self) -> Result<Value, String> {
        match *self {}
    }
}

/// `enqueue [FLAGS] (--file F | KIND field=value ... | SHORTCUT ...) [FLAGS]`: puts one job (or a
/// flow) on its queue and prints its id, or with `--wait` follows it to its end.
#[derive(Debug, Args)]
pub struct EnqueueArgs<K: Shortcuts = NoShortcuts> {
    /// The job, unless `--file` gives it.
    #[command(subcommand)]
    pub kind: Option<EnqueueKind<K>>,
    /// A job file (`jobs/*.toml` or `.json`); relative dates resolve now.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// How to enqueue it and whether to wait.
    #[command(flatten)]
    pub flags: EnqueueFlags,
}

/// The job of an `enqueue` without `--file`.
#[derive(Debug, Subcommand)]
pub enum EnqueueKind<K: Shortcuts> {
    /// One of the application's shortcuts.
    #[command(flatten)]
    Shortcut(K),
    /// Any registered kind: `enqueue KIND field=value ...` (values are JSON, or else text).
    #[command(external_subcommand)]
    Fields(Vec<String>),
}

/// The flags of every enqueue, before or after the job (a job file's `options` table in flags; a
/// flag wins over the file).
#[derive(Debug, Clone, Default, Args)]
pub struct EnqueueFlags {
    /// Wait for the job's end, showing its progress; exit 1 if it fails.
    #[arg(long, global = true)]
    pub wait: bool,
    /// Run no earlier than this from now (`90s`, `10m`, `2h`): the job waits as `delayed`.
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub delay: Option<Duration>,
    /// Priority, as BullMQ's: 1 runs first, then 2...; without one a job runs before any
    /// prioritised job. Jobs of equal priority run in order.
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PRIORITY)))]
    pub priority: Option<u32>,
    /// Deduplication key: enqueuing again with the same key inside its window gives back the first
    /// job instead of a new one.
    #[arg(long, global = true)]
    pub key: Option<String>,
    /// How long a `--key` deduplicates, from the first enqueue (`30m`, `24h`; default 24h).
    #[arg(long, global = true, value_parser = humantime::parse_duration, requires = "key")]
    pub key_window: Option<Duration>,
    /// How `--key` deduplicates: `simple` (while the job is not finished), `throttle` (within
    /// `--key-window`; the default) or `debounce` (replaces the pending delayed job's payload and
    /// restarts its `--delay`).
    #[arg(long, global = true, value_parser = parse_dedup, requires = "key")]
    pub dedup: Option<DedupMode>,
}

/// `--dedup`'s value.
fn parse_dedup(text: &str) -> Result<DedupMode, String> {
    text.parse()
}

impl EnqueueFlags {
    /// The job options these flags give.
    pub fn options(&self) -> JobOptions {
        JobOptions {
            priority: self.priority,
            delay: self.delay,
            key: self.key.clone(),
            key_window: self.key_window,
            on_failure: None,
            dedup: self.dedup,
        }
    }

    /// These flags, with those given after a `KIND` (which win).
    fn and(self, later: EnqueueFlags) -> EnqueueFlags {
        EnqueueFlags {
            wait: self.wait || later.wait,
            delay: later.delay.or(self.delay),
            priority: later.priority.or(self.priority),
            key: later.key.or(self.key),
            key_window: later.key_window.or(self.key_window),
            dedup: later.dedup.or(self.dedup),
        }
    }
}

impl<K: Shortcuts> EnqueueArgs<K> {
    /// Enqueues the job on `queues` (their catalog checks it) and returns the exit code: 2 for a
    /// usage problem (printed on standard error), 1 for a followed job that failed.
    pub async fn run(self, queues: &Queues) -> anyhow::Result<ExitCode> {
        let (plan, flags) = match job_from_args(&self, queues.catalog()).and_then(|plan| Ok((plan, self.flags()?))) {
            Ok(planned) => planned,
            Err(usage) => {
                eprintln!("error: {usage}");
                return Ok(ExitCode::from(2));
            }
        };
        follow::enqueue_plan(queues, &plan, flags.wait).await
    }

    /// The flags in force: those given anywhere, those after a `KIND` included.
    pub fn flags(&self) -> Result<EnqueueFlags, UsageError> {
        match &self.kind {
            Some(EnqueueKind::Fields(words)) => Ok(self.flags.clone().and(split_words(words)?.1)),
            _ => Ok(self.flags.clone()),
        }
    }
}

/// The job `args` describe (its kind registered in `catalog`, relative dates resolved now) and
/// how to enqueue it: a job file's `options`, overridden by the flags given.
pub fn job_from_args<K: Shortcuts>(args: &EnqueueArgs<K>, catalog: &Catalog) -> Result<PlannedJob, UsageError> {
    let template = match (&args.kind, &args.file) {
        (None, Some(file)) => JobTemplate::from_file(file, catalog).map_err(UsageError)?,
        (Some(EnqueueKind::Shortcut(shortcut)), None) => {
            JobTemplate::from_value(shortcut.fields().map_err(UsageError)?, catalog).map_err(UsageError)?
        }
        (Some(EnqueueKind::Fields(words)), None) => {
            JobTemplate::from_value(split_words(words)?.0, catalog).map_err(UsageError)?
        }
        _ => return Err(no_job(K::augment_subcommands(clap::Command::new("enqueue")), catalog)),
    };
    let mut plan = template.plan(chrono::Utc::now()).map_err(UsageError)?;
    plan.options = plan.options.or(args.flags()?.options());
    plan.options.check().map_err(UsageError)?;
    if let Some(EnqueueKind::Shortcut(shortcut)) = &args.kind {
        plan.children.extend(shortcut.children(&plan.job, catalog).map_err(UsageError)?);
    }
    Ok(plan)
}

/// Neither a job nor a file (or both): names the shortcuts and the registered kinds.
fn no_job(shortcuts: clap::Command, catalog: &Catalog) -> UsageError {
    let kinds = catalog.kind_names().join(", ");
    let shortcuts: Vec<&str> = shortcuts.get_subcommands().map(|s| s.get_name()).collect();
    match shortcuts.is_empty() {
        true => UsageError(format!("give a job kind (one of {kinds}) or --file")),
        false => UsageError(format!("give a job kind ({}, or one of {kinds}) or --file", shortcuts.join(", "))),
    }
}

/// The flags `KIND field=value ...` may carry after its kind (`--wait`, `--priority 1`...).
#[derive(Debug, Parser)]
#[command(name = "enqueue", no_binary_name = true, disable_help_flag = true)]
struct LaterFlags {
    #[command(flatten)]
    flags: EnqueueFlags,
}

/// `KIND field=value ...` as a job object (each value JSON when it parses as JSON, else text) and
/// the enqueue flags among the words.
pub(super) fn split_words(words: &[String]) -> Result<(Value, EnqueueFlags), UsageError> {
    let (kind, rest) = words.split_first().ok_or_else(|| UsageError("give a job kind".into()))?;
    let mut job = Map::from_iter([("job_type".to_owned(), json!(kind))]);
    let (mut flags, mut rest) = (Vec::new(), rest.iter());
    while let Some(word) = rest.next() {
        if let Some(flag) = word.strip_prefix("--").filter(|f| is_flag(f)) {
            flags.push(word.as_str());
            if !flag.contains('=') && flag != "wait" {
                flags.extend(rest.next().map(String::as_str));
            }
            continue;
        }
        let (key, value) = word.split_once('=').ok_or_else(|| UsageError(format!("{word:?}: expected field=value")))?;
        job.insert(key.to_owned(), serde_json::from_str(value).unwrap_or_else(|_| json!(value)));
    }
    let later = LaterFlags::try_parse_from(flags).map_err(|e| {
        let message = e.to_string();
        UsageError(message.trim_start_matches("error: ").trim_end().to_owned())
    })?;
    Ok((Value::Object(job), later.flags))
}

/// Whether `--flag` (or `--flag=value`) is one of the enqueue flags.
fn is_flag(flag: &str) -> bool {
    let name = flag.split_once('=').map_or(flag, |(name, _)| name);
    matches!(name, "wait" | "delay" | "priority" | "key" | "key-window" | "dedup")
}
