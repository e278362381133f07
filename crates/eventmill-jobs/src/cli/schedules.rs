//! `schedules list|show|run|add|remove|pause|resume`: the schedules of an application's
//! `scheduler.toml` and the run-time ones in Redis, listed together; run-time ones added and
//! removed here; any one paused and resumed (the pause is kept in Redis, so it survives restarts
//! and every scheduler process honours it), and "run now".

use std::{path::PathBuf, process::ExitCode, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::{UsageError, enqueue::split_words, follow};
use crate::{
    QueueError,
    job::checks::MAX_FILE_BYTES,
    scheduler::{DefinedIn, Misfire, ScheduleSpec, Scheduler, Upserted, status::human_time},
};

/// `schedules ...`: what the scheduler would enqueue, and when; run-time schedules.
#[derive(Debug, Clone, Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule (scheduler.toml's and the run-time ones) with its next and last run.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One schedule: its definition, state and ledger (its last due ticks, the skipped ones with
    /// why).
    Show {
        /// The schedule's name.
        name: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue a schedule's job now.
    Run {
        /// The schedule's name.
        name: String,
        /// Wait for the job's end.
        #[arg(long)]
        wait: bool,
    },
    /// Create or replace a run-time schedule (kept in Redis; running schedulers pick it up within
    /// ~2 s): `schedules add NAME --every 30s KIND field=value ...` or `--cron EXPR --file job.toml`.
    Add(Box<ScheduleAddArgs>),
    /// Remove a run-time schedule (one of scheduler.toml is removed by editing the file).
    Remove {
        /// The schedule's name.
        name: String,
    },
    /// Pause a schedule, file or run-time: its ticks are skipped (and ledgered as paused) by every
    /// scheduler until resumed; kept in Redis across restarts.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Resume a paused schedule.
    Resume {
        /// The schedule's name.
        name: String,
    },
}

/// `schedules add NAME (--cron EXPR | --every 30s) [--tz ..] [--start ..] [--end ..] [--limit N]
/// [--misfire run_once|skip] (--file F | --job JSON | KIND field=value ...) [--priority ..]
/// [--delay ..] [--key ..] [--key-window ..]`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleAddArgs {
    /// The schedule's name: letters, digits, '-', '_' or '.'.
    pub name: String,
    /// A cron expression: 5 fields (m h dom mon dow) or 6 with seconds first, e.g. "0 2 * * *".
    #[arg(long, required_unless_present = "every", conflicts_with = "every")]
    pub cron: Option<String>,
    /// A fixed interval in whole seconds: `30s`, `5m`, `1h`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub every: Option<Duration>,
    /// The IANA timezone of the cron expression (default UTC), e.g. Europe/Berlin.
    #[arg(long)]
    pub tz: Option<String>,
    /// No tick before this time: RFC 3339 (`2026-12-24T08:00:00Z`) or from now (`+10m`).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<DateTime<Utc>>,
    /// No tick after this time: RFC 3339 or from now (`+2h`).
    #[arg(long, value_parser = parse_time)]
    pub end: Option<DateTime<Utc>>,
    /// At most this many ticks enqueue a job.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// What a tick missed while no scheduler ran becomes: `run_once` (default) or `skip`.
    #[arg(long, value_parser = parse_misfire)]
    pub misfire: Option<Misfire>,
    /// The job from a job file (`.toml` or `.json`; its relative dates resolve at each tick).
    #[arg(long, conflicts_with_all = ["job", "words"])]
    pub file: Option<PathBuf>,
    /// The job as one JSON object: `{"job_type": "KIND", "field": "value", "options": {..}}`.
    #[arg(long, conflicts_with = "words")]
    pub job: Option<String>,
    /// Each job's priority (1 runs first).
    #[arg(long)]
    pub priority: Option<u32>,
    /// Each job runs this long after its tick (`90s`, `10m`).
    #[arg(long)]
    pub delay: Option<String>,
    /// Deduplication key of each job.
    #[arg(long)]
    pub key: Option<String>,
    /// How long `--key` deduplicates.
    #[arg(long, requires = "key")]
    pub key_window: Option<String>,
    /// `KIND field=value ...` (values are JSON, or else text); the job flags may follow.
    #[arg(trailing_var_arg = true, value_name = "KIND field=value")]
    pub words: Vec<String>,
}

/// `2026-12-24T08:00:00Z`, or `+10m` from now.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(after) = text.strip_prefix('+') {
        let after = humantime::parse_duration(after).map_err(|e| format!("{text:?}: {e} (e.g. +10m)"))?;
        return Ok(Utc::now() + chrono::Duration::from_std(after).map_err(|e| e.to_string())?);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?}: {e} (expected RFC 3339 like 2026-12-24T08:00:00Z, or +10m from now)"))
}

fn parse_misfire(text: &str) -> Result<Misfire, String> {
    serde_json::from_value(json!(text.replace('-', "_")))
        .map_err(|_| format!("misfire {text:?}: expected run_once or skip"))
}

impl ScheduleAddArgs {
    /// The run-time schedule these arguments describe (not yet checked against the registry).
    pub fn spec(&self) -> Result<ScheduleSpec, UsageError> {
        let mut spec = match (&self.cron, self.every) {
            (Some(cron), None) => ScheduleSpec::cron(cron),
            (None, Some(every)) => ScheduleSpec::every(every),
            _ => return Err(UsageError("give exactly one of --cron EXPR or --every 30s".into())),
        };
        spec.timezone = self.tz.clone();
        spec.start = self.start;
        spec.end = self.end;
        spec.limit = self.limit;
        spec.misfire = self.misfire.unwrap_or(Misfire::RunOnce);
        Ok(spec.job(self.job_value()?))
    }

    /// The job template as a job file's object, the flags in its `options` (a flag wins).
    fn job_value(&self) -> Result<Value, UsageError> {
        let (mut job, later) = match (&self.file, &self.job, self.words.is_empty()) {
            (Some(file), None, true) => (read_job_file(file)?, None),
            (None, Some(text), true) => {
                let job = serde_json::from_str(text)
                    .map_err(|e| UsageError(format!("--job: {e} (expected a JSON object)")))?;
                (job, None)
            }
            (None, None, false) => {
                let (job, flags) = split_words(&self.words)?;
                (job, Some(flags))
            }
            _ => return Err(UsageError("give the job: KIND field=value ..., --file F or --job JSON".into())),
        };
        let Value::Object(fields) = &mut job else { return Err(UsageError("the job must be one JSON object".into())) };
        let mut options = match fields.remove("options") {
            Some(Value::Object(options)) => options,
            None => Map::new(),
            Some(other) => return Err(UsageError(format!("the job's options must be an object, not {other}"))),
        };
        let text = |d: Duration| humantime::format_duration(d).to_string();
        let mut set = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                options.insert(name.to_owned(), value);
            }
        };
        set("priority", self.priority.map(|p| json!(p)));
        set("delay", self.delay.clone().map(Value::String));
        set("key", self.key.clone().map(Value::String));
        set("key_window", self.key_window.clone().map(Value::String));
        if let Some(later) = later {
            set("priority", later.priority.map(|p| json!(p)));
            set("delay", later.delay.map(|d| json!(text(d))));
            set("key", later.key.map(Value::String));
            set("key_window", later.key_window.map(|d| json!(text(d))));
        }
        if !options.is_empty() {
            fields.insert("options".to_owned(), Value::Object(options));
        }
        Ok(job)
    }
}

/// A job file's object, as written (relative dates kept for each tick).
fn read_job_file(path: &std::path::Path) -> Result<Value, UsageError> {
    let size = std::fs::metadata(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?.len();
    if size > MAX_FILE_BYTES {
        return Err(UsageError(format!(
            "{} is {size} bytes; a job file may be at most {MAX_FILE_BYTES}",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => toml::from_str(&text).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| UsageError(format!("{}: {e}", path.display())))
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `in 3 min (2026-12-05T08:03:00Z)`.
fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>, none: &str) -> String {
    t.map_or(none.to_owned(), |t| format!("{} ({})", human_time(t, now), utc(t)))
}

impl SchedulesCommand {
    /// Runs the command with `scheduler` (its file's schedules, the run-time ones in Redis and
    /// the queues it enqueues on). An unknown schedule, or changing one of scheduler.toml, is an
    /// error naming the cause; a bad definition is a usage error (exit code 2).
    pub async fn run(self, scheduler: &Scheduler) -> anyhow::Result<ExitCode> {
        let now = Utc::now();
        match self {
            SchedulesCommand::List { json } => {
                let all = scheduler.statuses().await?;
                if json {
                    for status in &all {
                        println!("{}", serde_json::to_string(status)?);
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                println!(
                    "{:<24} {:<8} {:<16} {:<16} {:<8} {:<36} LAST RUN",
                    "NAME", "SOURCE", "CRON", "TIMEZONE", "STATE", "NEXT RUN"
                );
                for s in all {
                    let source = match s.defined_in {
                        DefinedIn::File => "file",
                        DefinedIn::Redis => "run-time",
                    };
                    let state = if s.ended {
                        "ended"
                    } else if s.paused {
                        "paused"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<24} {:<8} {:<16} {:<16} {:<8} {:<36} {}",
                        s.name,
                        source,
                        s.cron,
                        s.timezone,
                        state,
                        when(s.next_run, now, "-"),
                        when(s.last_run, now, "never")
                    );
                }
            }
            SchedulesCommand::Show { name, json } => {
                let detail = scheduler.detail(&name).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&detail)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let s = &detail.status;
                println!("name:        {}", s.name);
                println!(
                    "defined in:  {}",
                    match s.defined_in {
                        DefinedIn::File => "scheduler.toml (read-only here: edit the file)",
                        DefinedIn::Redis => "Redis (run-time)",
                    }
                );
                println!("when:        {} ({})", s.cron, s.timezone);
                if s.start.is_some() || s.end.is_some() {
                    println!("between:     {} and {}", s.start.map_or("-".into(), utc), s.end.map_or("-".into(), utc));
                }
                println!("misfire:     {}", serde_json::to_value(s.misfire)?.as_str().unwrap_or_default());
                let limit = s.limit.map_or(String::new(), |l| format!(" of {l}"));
                println!("runs:        {}{limit}", s.runs);
                println!(
                    "state:       {}",
                    if s.ended {
                        "ended"
                    } else if s.paused {
                        "paused"
                    } else {
                        "active"
                    }
                );
                println!("job:         {}", detail.job.as_ref().map_or(s.job_type.clone(), Value::to_string));
                println!("next run:    {}", when(s.next_run, now, "-"));
                println!("last run:    {}", when(s.last_run, now, "never"));
                println!("\n{:<22} {:<10} {:<10} {:<20} OUTCOME", "DUE (UTC)", "RESULT", "LATE", "JOB");
                for e in &detail.ledger {
                    let result = if e.enqueued { "enqueued" } else { "skipped" };
                    let late = e.late_ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
                    let reason = e.reason.map(|r| serde_json::to_value(r).unwrap_or_default());
                    let outcome = match (&e.outcome, reason.as_ref().and_then(Value::as_str)) {
                        (Some(outcome), Some(reason)) => format!("{outcome} (late: {reason})"),
                        (Some(outcome), None) => outcome.clone(),
                        (None, Some(reason)) => reason.to_owned(),
                        (None, None) => "-".to_owned(),
                    };
                    let job = e.job.as_deref().unwrap_or("-");
                    println!("{:<22} {:<10} {:<10} {:<20} {outcome}", utc(e.due), result, late, job);
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
            SchedulesCommand::Add(args) => {
                let spec = match args.spec() {
                    Ok(spec) => spec,
                    Err(usage) => {
                        eprintln!("error: {usage}");
                        return Ok(ExitCode::from(2));
                    }
                };
                let done = match scheduler.upsert(&args.name, &spec).await {
                    Ok(done) => done,
                    Err(QueueError::Invalid(problem)) => {
                        eprintln!("error: {problem}");
                        return Ok(ExitCode::from(2));
                    }
                    Err(error) => return Err(error.into()),
                };
                let name = &args.name;
                match done {
                    Upserted::Created => eprintln!("schedule {name}: created"),
                    Upserted::Updated => eprintln!("schedule {name}: updated (running schedulers follow within 2 s)"),
                    Upserted::Unchanged => eprintln!("schedule {name}: unchanged (the same definition was stored)"),
                }
                let status = scheduler.detail(name).await?.status;
                println!("{name}: next run {}", when(status.next_run, now, "- (ended)"));
            }
            SchedulesCommand::Remove { name } => {
                scheduler.remove(&name).await?;
                eprintln!("schedule {name}: removed");
            }
            SchedulesCommand::Pause { name } => {
                let changed = scheduler.set_paused(&name, true).await?;
                eprintln!("schedule {name}: {}", if changed { "paused" } else { "was already paused" });
            }
            SchedulesCommand::Resume { name } => {
                let changed = scheduler.set_paused(&name, false).await?;
                eprintln!("schedule {name}: {}", if changed { "resumed" } else { "was not paused" });
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
