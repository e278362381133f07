//! After an enqueue: the lines an operator reads (the job's id, or with `--wait` its progress and
//! its end) and the exit code its end gives.

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use anyhow::Context;
use serde_json::Value;

use crate::{JobRecord, JobState, QueueError, Queues, job::PlannedJob};

/// Enqueues `plan` (a flow when it has children) and prints what happened on standard error; then
/// prints the job's id on standard output, or with `wait` follows it and returns its exit code.
pub async fn enqueue_plan(queues: &Queues, plan: &PlannedJob, wait: bool) -> anyhow::Result<ExitCode> {
    let options = plan.options.enqueue_options("cli");
    let key = options.idempotency_key.clone();
    let enqueued = match queues.enqueue_planned(plan, options).await {
        Ok(enqueued) => enqueued,
        // A Redis that answered with a refusal (out of memory, read-only...) is up: its error says
        // what is wrong; only a Redis that did not answer gets the hint.
        Err(QueueError::Redis(error)) if error.code().is_none() => {
            return Err(anyhow::Error::new(QueueError::Redis(error)).context("could not enqueue: is Redis running?"));
        }
        Err(error) => return Err(anyhow::Error::new(error).context("could not enqueue")),
    };
    let job = queues.job(&enqueued.id).await?.context("the job vanished right after enqueue")?;
    match (&key, enqueued.created) {
        (Some(key), false) if enqueued.replaced => eprintln!(
            "job {} ({}) with key {key:?} was still delayed: it now has this payload, its delay restarted (debounce)",
            job.id, job.kind
        ),
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
    Ok(report_end(&done))
}

/// Follows job `id` until it completes, fails or is cancelled ([`Queues::follow`], the loop of
/// `Enqueued::wait`), showing its progress on standard error: a progress bar on a terminal, a line
/// per change otherwise.
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
    let show = |job: &JobRecord| {
        let message = format!("{} (attempt {}/{}) {}", job.state, job.attempts, job.max_attempts, job.progress_message);
        match &bar {
            Some(bar) => {
                bar.set_position(job.progress.into());
                bar.set_message(message);
            }
            None => eprintln!("{:>3}% {message}", job.progress),
        }
    };
    let job = queues.follow(id, None, show).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    job.with_context(|| format!("could not follow job {id}"))
}

/// Prints a finished job's end and gives its exit code: its result on standard output (and a
/// result's `path` or `output_path` alone on the last line, for scripts), else its error or its
/// cancellation on standard error with exit code 1.
pub fn report_end(job: &JobRecord) -> ExitCode {
    if job.state == JobState::Cancelled {
        eprintln!("job {} was cancelled", job.id);
        return ExitCode::FAILURE;
    }
    if job.state == JobState::Failed {
        eprintln!("job {} failed after {} attempt(s): {}", job.id, job.attempts, job.last_error().unwrap_or("?"));
        return ExitCode::FAILURE;
    }
    let result = job.result.clone().unwrap_or(Value::Null);
    println!("job {} completed: {}", job.id, result);
    if let Some(path) = result.get("path").or_else(|| result.get("output_path")).and_then(Value::as_str) {
        println!("{path}");
    }
    ExitCode::SUCCESS
}
