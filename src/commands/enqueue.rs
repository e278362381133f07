//! `eventmill enqueue`: builds a job from flags or a job file, puts it on its queue, and with
//! `--wait` follows it to its end (a progress bar on a terminal, plain lines otherwise).

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use anyhow::Context;
use eventmill_jobs::job::{JobOptions, JobTemplate, MAX_CHILDREN, PlannedJob};
use serde_json::{Value, json};

use crate::{
    cli::{EnqueueArgs, EnqueueKind},
    domain::job::Job,
    queue::{Catalog, JobRecord, JobState, Queues},
    redis_conn::RedisConn,
    redis_limits::{LimitSettings, RedisWatch, Refusal, memory},
};

/// A usage problem: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The job the arguments describe (its kind registered, relative dates resolved now) and how to
/// enqueue it: a job file's `options`, overridden by the flags given.
pub fn job_from_args(args: &EnqueueArgs, registry: &Catalog) -> Result<PlannedJob, UsageError> {
    let template = match (&args.kind, &args.file) {
        (None, Some(file)) => JobTemplate::from_file(file, registry).map_err(UsageError)?,
        (Some(kind), None) => JobTemplate::from_value(fields(kind)?, registry).map_err(UsageError)?,
        _ => {
            let kinds = registry.kind_names().join(", ");
            return Err(UsageError(format!("give a job kind (rollup, report, export, or one of {kinds}) or --file")));
        }
    };
    let mut plan = template.plan(chrono::Utc::now()).map_err(UsageError)?;
    plan.options = plan.options.or(flag_options(args));
    plan.options.check().map_err(UsageError)?;
    if matches!(&args.kind, Some(EnqueueKind::Report(r)) if r.after_rollups) {
        plan.children = daily_rollups(&plan.job)?;
    }
    Ok(plan)
}

/// `enqueue report --after-rollups`: one DAILY_ROLLUP child per day of the report's period.
fn daily_rollups(report: &Job) -> Result<Vec<PlannedJob>, UsageError> {
    let day = |field: &str| {
        report.payload[field]
            .as_str()
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .ok_or_else(|| UsageError(format!("--after-rollups needs the report's {field} as a date")))
    };
    let (from, to) = (day("start_date")?, day("end_date")?);
    let days: Vec<chrono::NaiveDate> = from.iter_days().take_while(|d| *d <= to).take(MAX_CHILDREN + 1).collect();
    if days.len() > MAX_CHILDREN {
        return Err(UsageError(format!("--after-rollups covers at most {MAX_CHILDREN} days")));
    }
    let registry = crate::processors::registry();
    days.into_iter()
        .map(|d| {
            let fields = json!({ "job_type": "DAILY_ROLLUP", "date": d.to_string() });
            let Value::Object(fields) = fields else { unreachable!("an object") };
            let job = registry.job(fields).map_err(UsageError)?;
            Ok(PlannedJob { job, options: JobOptions::default(), children: Vec::new() })
        })
        .collect()
}

/// The options given as flags (`--priority`, `--delay`, `--key`, `--key-window`).
fn flag_options(args: &EnqueueArgs) -> JobOptions {
    JobOptions { priority: args.priority, delay: args.delay, key: args.key.clone(), key_window: args.key_window }
}

/// `KIND field=value ...`: each value is JSON when it parses as JSON, else text.
fn generic_fields(words: &[String]) -> Result<Value, UsageError> {
    let (kind, rest) = words.split_first().ok_or_else(|| UsageError("give a job kind".into()))?;
    let mut job = serde_json::Map::from_iter([("job_type".to_owned(), json!(kind))]);
    for word in rest.iter().filter(|w| *w != "--wait") {
        let (key, value) = word.split_once('=').ok_or_else(|| UsageError(format!("{word:?}: expected field=value")))?;
        job.insert(key.to_owned(), serde_json::from_str(value).unwrap_or_else(|_| json!(value)));
    }
    Ok(Value::Object(job))
}

fn fields(kind: &EnqueueKind) -> Result<Value, UsageError> {
    let missing = |flag: &str| UsageError(format!("{flag} is required"));
    Ok(match kind {
        EnqueueKind::Other(words) => generic_fields(words)?,
        EnqueueKind::Rollup(r) if r.hourly => json!({
            "job_type": "HOURLY_ROLLUP",
            "start_time": r.start.as_deref().ok_or_else(|| missing("--start"))?,
            "end_time": r.end.as_deref().ok_or_else(|| missing("--end"))?,
        }),
        EnqueueKind::Rollup(r) => {
            let mut job =
                json!({ "job_type": "DAILY_ROLLUP", "date": r.date.as_deref().ok_or_else(|| missing("--date"))? });
            if !r.profiles.is_empty() {
                job["profile_ids"] = json!(r.profiles);
            }
            job
        }
        EnqueueKind::Report(r) => {
            let mut job = json!({ "job_type": "GENERATE_REPORT", "report_type": r.report_type });
            r.file.fill(&mut job);
            if !r.profiles.is_empty() {
                job["profile_ids"] = json!(r.profiles);
            }
            if !r.emails.is_empty() {
                job["recipient_email"] = json!(r.emails);
            }
            job
        }
        EnqueueKind::Export(e) => {
            let mut filters = serde_json::Map::new();
            let mut properties = serde_json::Map::new();
            for filter in &e.filters {
                let (key, value) = filter
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("--filter {filter:?}: expected key=value")))?;
                match key {
                    "event_type" | "source" | "user_id" => filters.insert(key.into(), json!(value)),
                    _ => properties.insert(key.into(), serde_json::from_str(value).unwrap_or_else(|_| json!(value))),
                };
            }
            if !properties.is_empty() {
                filters.insert("properties".into(), Value::Object(properties));
            }
            let mut job = json!({ "job_type": "EXPORT_DATA", "data_type": e.data, "filters": filters });
            e.file.fill(&mut job);
            job
        }
    })
}

/// Enqueues `plan` (a flow when it has children) and, with `wait`, follows it; returns the exit code.
pub async fn enqueue(queues: &Queues, plan: &PlannedJob, wait: bool) -> anyhow::Result<ExitCode> {
    let options = plan.options.enqueue_options("cli");
    let key = options.idempotency_key.clone();
    let enqueued = queues.enqueue_planned(plan, options).await.context("could not enqueue: is Redis running?")?;
    let job = queues.job(&enqueued.id).await?.context("the job vanished right after enqueue")?;
    match (&key, enqueued.created) {
        (Some(key), false) => eprintln!("job {} ({}) already enqueued with key {key:?}", job.id, job.kind),
        _ => eprintln!("enqueued job {} ({}) on {} ({})", job.id, job.kind, job.queue, job.state),
    }
    if !job.children.is_empty() {
        eprintln!("it runs after its {} child job(s): {}", job.children.len(), job.children.join(", "));
    }
    if !wait {
        println!("{}", job.id);
        return Ok(ExitCode::SUCCESS);
    }
    let done = follow(queues, &job.id).await?;
    report_end(&done)
}

/// A failed enqueue's error as the operator should read it, once: Redis refusing the write (full,
/// read-only, persistence failing) with its cause and fix, a full Redis with its figures (read
/// now), instead of "is Redis running?" and the refusal repeated by each layer.
pub async fn explain(error: anyhow::Error, redis: &RedisConn) -> anyhow::Error {
    let Some(refusal) = error.chain().find_map(|e| e.downcast_ref::<redis::RedisError>().and_then(Refusal::of)) else {
        return error;
    };
    let mut conn = redis.clone();
    let read = tokio::time::timeout(Duration::from_secs(1), memory::read(&mut conn)).await;
    anyhow::anyhow!("could not enqueue: {}", refusal.describe(read.ok().and_then(Result::ok).as_ref()))
}

/// Before enqueueing: Redis' memory above `EVENTMILL_REDIS_MEMORY_HIGH_WATER` refuses the job, as
/// ingestion refuses events with 429, so the last room is left to draining the stream.
pub async fn check_memory(redis: &RedisConn, limits: LimitSettings) -> anyhow::Result<()> {
    let mut conn = redis.clone();
    let Ok(Ok(reading)) = tokio::time::timeout(Duration::from_secs(1), memory::read(&mut conn)).await else {
        return Ok(()); // Not known now: the enqueue itself says what is wrong.
    };
    if reading.is_full() {
        anyhow::bail!("could not enqueue: {}", Refusal::OutOfMemory.describe(Some(&reading)));
    }
    let watch = RedisWatch::new(limits);
    watch.record(&reading);
    match watch.refuses_new_writes() {
        Some(refused) => Err(anyhow::anyhow!("could not enqueue: {refused}")),
        None => Ok(()),
    }
}

/// Polls the job until it completes or fails, showing progress on standard error.
pub async fn follow(queues: &Queues, id: &str) -> anyhow::Result<JobRecord> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(100);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {pos:>3}% {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last = (JobState::Waiting, u8::MAX, String::new(), 0);
    loop {
        let job = queues.job(id).await?.with_context(|| format!("job {id} was removed"))?;
        let now = (job.state, job.progress, job.progress_message.clone(), job.attempts);
        if now != last {
            let message =
                format!("{} (attempt {}/{}) {}", job.state, job.attempts, job.max_attempts, job.progress_message);
            match &bar {
                Some(bar) => {
                    bar.set_position(job.progress.into());
                    bar.set_message(message);
                }
                None => eprintln!("{:>3}% {message}", job.progress),
            }
            last = now;
        }
        if job.state.is_final() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints a finished job's outcome: the result (and a report's file path alone on the last
/// stdout line), or its error on stderr with exit code 1.
pub fn report_end(job: &JobRecord) -> anyhow::Result<ExitCode> {
    if job.state == JobState::Cancelled {
        eprintln!("job {} was cancelled", job.id);
        return Ok(ExitCode::FAILURE);
    }
    if job.state == JobState::Failed {
        eprintln!("job {} failed after {} attempt(s): {}", job.id, job.attempts, job.last_error().unwrap_or("?"));
        return Ok(ExitCode::FAILURE);
    }
    let result = job.result.clone().unwrap_or(Value::Null);
    println!("job {} completed: {}", job.id, result);
    if let Some(path) = result.get("path").or_else(|| result.get("output_path")).and_then(Value::as_str) {
        println!("{path}");
    }
    Ok(ExitCode::SUCCESS)
}

impl crate::cli::FileArgs {
    /// Sets the job's format, period and (when given) output path.
    fn fill(&self, job: &mut Value) {
        job["format"] = json!(self.format);
        job["start_date"] = json!(self.from);
        job["end_date"] = json!(self.to);
        if let Some(output) = &self.output {
            job["output_path"] = json!(output);
        }
    }
}
