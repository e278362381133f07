//! A step job: a long import in five steps that keeps the steps done in its own payload
//! (`ctx.update_data`), so an attempt after a crash (a worker killed mid-way, its lease taken over
//! by another worker) resumes at the step it was on, and that waits between two steps without
//! holding a worker (`JobError::delay_until`: the job goes to `delayed` and comes back, no
//! attempt spent). The pattern is in docs/jobs.md, "Step jobs".
//!
//! ```text
//! STEP_REDIS_URL=redis://127.0.0.1:6379 cargo run -p eventmill-jobs --example step_job            # enqueue one, run it, print it
//! STEP_REDIS_URL=... cargo run -p eventmill-jobs --example step_job -- enqueue orders.csv          # enqueue only: prints the id
//! STEP_REDIS_URL=... cargo run -p eventmill-jobs --example step_job -- worker                      # a worker until Ctrl-C
//! ```
//!
//! `STEP_MS` (default 200) is how long each step takes; `STEP_INDEX_WAIT_MS` (default 500) how
//! long the job waits, delayed, for the search index before its `index` step.

use std::{sync::Arc, time::Duration};

use eventmill_jobs::{JobContext, JobError, Jobs, JobsSettings, Processor, QueueSpec, Registry, shutdown};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The steps, in order.
const STEPS: [&str; 5] = ["download", "parse", "load", "index", "notify"];

/// The job's payload: what to import, and the step state it keeps as it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Import {
    file: String,
    /// The steps done so far, each with the process that ran it (`pid`).
    #[serde(default)]
    done: Vec<StepDone>,
    /// Set once the job waited for the search index (so it waits only once).
    #[serde(default)]
    waited_for_index: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepDone {
    step: String,
    pid: u32,
}

/// The application's state: here only the timings.
struct Timings {
    step: Duration,
    index_wait: Duration,
}

struct ImportFile;

impl Processor<Timings> for ImportFile {
    type Payload = Import;
    const NAME: &'static str = "IMPORT_FILE";
    const QUEUE: &'static str = "imports";

    async fn process(&self, ctx: &JobContext<Timings>, mut job: Import) -> Result<Value, JobError> {
        // Resume where the last attempt recorded it was.
        for step in STEPS.iter().skip(job.done.len()) {
            if *step == "index" && !job.waited_for_index {
                // Wait for the index without holding a worker: back in `delayed`, no attempt spent.
                job.waited_for_index = true;
                ctx.update_data(&job).await?;
                let until = chrono::Utc::now() + ctx.state().index_wait;
                return Err(JobError::delay_until(until));
            }
            ctx.log(format!("step {step} (attempt {}, pid {})", ctx.attempt, std::process::id()));
            tokio::time::sleep(ctx.state().step).await; // the step's work
            job.done.push(StepDone { step: (*step).to_owned(), pid: std::process::id() });
            ctx.progress((job.done.len() * 100 / STEPS.len()) as u8, *step);
            ctx.update_data(&job).await?; // durable: a crash from here on resumes at the next step
        }
        Ok(json!({ "file": job.file, "steps": job.done }))
    }
}

fn millis(variable: &str, default: u64) -> Duration {
    Duration::from_millis(std::env::var(variable).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let registry = Registry::new().queue(QueueSpec::new("imports").concurrency(2)).register(ImportFile);
    let jobs = Jobs::connect(JobsSettings::from_env("STEP", &registry)?, registry)?;
    let state = Arc::new(Timings { step: millis("STEP_MS", 200), index_wait: millis("STEP_INDEX_WAIT_MS", 500) });
    let args: Vec<String> = std::env::args().skip(1).collect();
    let import = |file: &str| Import { file: file.to_owned(), done: Vec::new(), waited_for_index: false };
    match args.first().map(String::as_str) {
        Some("enqueue") => {
            let file = args.get(1).map_or("orders.csv", String::as_str);
            println!("{}", jobs.enqueue::<ImportFile>(&import(file)).await?.id);
            Ok(())
        }
        Some("worker") => jobs.run_workers(state, shutdown::on_signal()).await,
        None => {
            let enqueued = jobs.enqueue::<ImportFile>(&import("orders.csv")).await?;
            let stop = shutdown::Shutdown::new();
            let worker = tokio::spawn({
                let (jobs, stop) = (jobs.clone(), stop.clone());
                async move { jobs.run_workers(state, stop).await }
            });
            let result = enqueued.wait(Duration::from_secs(60)).await;
            stop.cancel();
            worker.await??;
            println!("job {} completed: {}", enqueued.id, result?);
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}: use enqueue [FILE], worker, or nothing"),
    }
}
