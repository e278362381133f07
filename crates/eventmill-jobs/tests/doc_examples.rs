//! The Rust examples of docs/jobs.md's issue 22 sections (run-time schedules, dedup modes, global
//! concurrency and limits, manual rate limit, wait, step jobs, children results, traces), compiled
//! here, with what they need around them: each one's lines stand below as the guide shows them
//! (`the_guides_examples_are_the_ones_compiled_here` checks it), so an example that stops compiling
//! fails the build. They are compiled, not run: their behaviour has its own tests, named in the guide.

#![allow(dead_code, unused_variables, clippy::needless_return)]

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use eventmill_jobs::{JobContext, JobError, Jobs, Processor, QueueSpec, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The application state of the examples.
struct App;

#[derive(Serialize, Deserialize)]
struct Welcome {
    user_id: String,
}

#[derive(Deserialize)]
struct Receipt {
    sent: bool,
}

struct SendWelcome;

impl Processor<App> for SendWelcome {
    type Payload = Welcome;
    const NAME: &'static str = "SEND_WELCOME";
    const QUEUE: &'static str = "emails";

    // "Manual rate limit"
    async fn process(&self, _: &JobContext<App>, _: Welcome) -> Result<Value, JobError> {
        return Err(JobError::rate_limited(Duration::from_secs(30)));
    }
}

// "Run-time schedules"
#[rustfmt::skip]
async fn run_time_schedules(jobs: &Jobs<App>, start: DateTime<Utc>, end: DateTime<Utc>) -> anyhow::Result<()> {
    use std::time::Duration;
    use eventmill_jobs::scheduler::{Misfire, ScheduleSpec};
    use serde_json::json;

    let schedules = jobs.schedules();
    // Idempotent: every process may upsert its schedules at start; the same definition changes nothing.
    schedules.upsert("nightly-rollup", &ScheduleSpec::cron("0 2 * * *")
        .timezone("Europe/Berlin")
        .misfire(Misfire::Skip)
        .job(json!({ "job_type": "DAILY_ROLLUP", "date": "yesterday", "options": { "priority": 1 } }))).await?;
    // every 30 s from a start time, ten runs, not after the end time
    schedules.upsert("warm-cache", &ScheduleSpec::every(Duration::from_secs(30))
        .start(start).end(end).limit(10)
        .job(json!({ "job_type": "HOURLY_ROLLUP", "start_time": "-1h", "end_time": "now" }))).await?;
    schedules.set_paused("nightly-rollup", true).await?;   // file schedules can be paused too
    let ledger = schedules.ledger("nightly-rollup").await?;  // the last 100 due ticks
    schedules.remove("warm-cache").await?;
    Ok(())
}

// "Bulk enqueue"
#[rustfmt::skip]
async fn bulk_enqueue(jobs: &Jobs<App>) -> anyhow::Result<()> {
    let users: Vec<Welcome> = (0..1000).map(|i| Welcome { user_id: format!("u{i}") }).collect();
    let enqueued = jobs.enqueue_bulk::<SendWelcome>(&users).await?; // one Enqueued per payload, in order
    Ok(())
}

// "Deduplication modes"
#[rustfmt::skip]
async fn dedup_simple(queue: &eventmill_jobs::Queue, customer: &str, payload: String) -> anyhow::Result<()> {
    use eventmill_jobs::{DedupMode, EnqueueOptions};
    let options = EnqueueOptions {
        idempotency_key: Some(format!("sync:{customer}")),
        dedup: DedupMode::Simple,            // no second sync of this customer until this one ended
        ..EnqueueOptions::default()
    };
    let enqueued = queue.enqueue("SYNC_CUSTOMER", &payload, options).await?;
    if !enqueued.created { println!("a sync of {customer} is pending: job {}", enqueued.id); }
    Ok(())
}

// "Lifecycle events"
#[rustfmt::skip]
async fn lifecycle_events(queues: &eventmill_jobs::Queues) {
    let mut events = queues.events().subscribe();     // tokio broadcast receiver
    while let Ok(event) = events.recv().await {
        println!("{} {} {} attempt {}", event.job_id, event.kind, event.event.as_str(), event.attempt);
    }
}

// "Global concurrency"
#[rustfmt::skip]
fn global_concurrency() -> Registry<App> {
    Registry::new().queue(QueueSpec::new("emails").concurrency(8).global_concurrency(2))
}

// "Limits changed at run time"
#[rustfmt::skip]
async fn limits_at_run_time(jobs: &Jobs<App>) -> anyhow::Result<()> {
    use std::time::Duration;
    use eventmill_jobs::RateLimit;
    let emails = jobs.queues().named("emails")?;
    emails.set_limits(Some(Some(2)), Some(Some(RateLimit::new(100, Duration::from_secs(1))))).await?; // None: leave as is
    let limits = emails.limits().await?; // Limits { global_concurrency: Some(2), rate_limit: Some(100/1s) }
    Ok(())
}

// "Wait until finished"
#[rustfmt::skip]
async fn wait_until_finished(jobs: &Jobs<App>) -> anyhow::Result<()> {
    use std::time::Duration;
    use eventmill_jobs::WaitError;

    let enqueued = jobs.enqueue::<SendWelcome>(&Welcome { user_id: "u1".into() }).await?;
    match enqueued.wait(Duration::from_secs(30)).await {
        Ok(result) => println!("sent: {result}"),                      // the processor's Ok value
        Err(WaitError::Failed { error, attempts, .. }) => eprintln!("failed after {attempts}: {error}"),
        Err(WaitError::TimedOut { id, timeout, state }) => eprintln!("job {id} still {state} after {timeout:?}"),
        Err(other) => return Err(other.into()),                        // cancelled, removed, Redis
    }
    let typed: Receipt = enqueued.wait_as(Duration::from_secs(30)).await?;   // the result deserialized
    let by_id = jobs.queues().wait("42", Duration::from_secs(5)).await;      // a job known by its id
    Ok(())
}

// "Step jobs"
#[rustfmt::skip]
#[derive(Serialize, Deserialize)]
struct Import { file: String, #[serde(default)] done: Vec<String>, #[serde(default)] waited_for_index: bool }

async fn run_step(_: &JobContext<App>, _: &str, _: &Import) -> Result<(), JobError> {
    Ok(())
}

struct ImportFile;

#[rustfmt::skip]
impl Processor<App> for ImportFile {
    type Payload = Import;
    const NAME: &'static str = "IMPORT_FILE";
    const QUEUE: &'static str = "imports";

    async fn process(&self, ctx: &JobContext<App>, mut job: Import) -> Result<Value, JobError> {
        for step in ["download", "parse", "load", "index", "notify"].iter().skip(job.done.len()) {
            if *step == "index" && !job.waited_for_index {
                job.waited_for_index = true;
                ctx.update_data(&job).await?;                              // remembered across the wait
                return Err(JobError::delay_until(Utc::now() + Duration::from_secs(60)));
            }
            run_step(ctx, step, &job).await?;                              // make each step idempotent
            job.done.push(step.to_string());
            ctx.update_data(&job).await?;                                  // a crash from here resumes at the next step
        }
        Ok(json!({ "steps": job.done }))
    }
}

// "Children results in the parent's context"
#[derive(Serialize, Deserialize)]
struct Report {
    start_date: String,
}

#[derive(Deserialize)]
struct RollupResult {
    rows: u64,
}

struct GenerateReport;

#[rustfmt::skip]
impl Processor<App> for GenerateReport {
    type Payload = Report;
    const NAME: &'static str = "GENERATE_REPORT";
    const QUEUE: &'static str = "reports";

    async fn process(&self, ctx: &JobContext<App>, job: Report) -> Result<Value, JobError> {
        let rollups: BTreeMap<String, RollupResult> = ctx.children_results_as().await?; // typed, by child id
        let raw: BTreeMap<String, Value> = ctx.children_results().await?;                // as stored
        for child in ctx.children().await? {            // every child: id, kind, state, result, failure
            if let Some(error) = &child.failure {       // failed under ignore_dependency / continue_parent
                ctx.log(format!("rollup {} missing: {error}", child.id));
            }
        }
        let failed = ctx.ignored_failures().await?;     // the same failures, by child id
        // ...
        Ok(Value::Null)
    }
}

// "Traces"
#[rustfmt::skip]
async fn traces(jobs: &Jobs<App>, incoming_context: opentelemetry::Context, welcome: Welcome) -> anyhow::Result<()> {
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt; // your app's layer is installed at start

    let span = tracing::info_span!("signup");
    span.set_parent(incoming_context)?;           // e.g. from a message header
    jobs.enqueue::<SendWelcome>(&welcome).instrument(span).await?; // enqueue + attempts join the trace
    Ok(())
}

/// The lines of each ```rust block of docs/jobs.md's "Run-time schedules" and of its sections from
/// "What BullMQ users expect" to "Throughput and latency history" (issue 22's) stand in this file, in the same order (other lines may
/// come between them: the context each example needs), whitespace at either end aside.
#[test]
fn the_guides_examples_are_the_ones_compiled_here() {
    let guide = include_str!("../../../docs/jobs.md");
    let this = include_str!("doc_examples.rs");
    let section = |from: &str, to: &str| {
        let start = guide.find(from).unwrap_or_else(|| panic!("docs/jobs.md has no {from:?}"));
        let end = guide.find(to).unwrap_or_else(|| panic!("docs/jobs.md has no {to:?}"));
        &guide[start..end]
    };
    let sections = [
        section("#### Run-time schedules", "### CLI"),
        section("### What BullMQ users expect", "### Throughput and latency history"),
    ];
    let here: Vec<&str> = this.lines().map(str::trim).collect();
    let mut blocks = 0;
    let mut lines = sections.iter().flat_map(|s| s.lines());
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("```rust") {
            continue;
        }
        blocks += 1;
        let block: Vec<&str> =
            lines.by_ref().take_while(|l| !l.trim_start().starts_with("```")).map(str::trim).collect();
        let mut from = 0;
        for wanted in block.iter().filter(|l| !l.is_empty()) {
            match here[from..].iter().position(|l| l == wanted) {
                Some(at) => from += at + 1,
                None => panic!(
                    "docs/jobs.md's example line {wanted:?} is not compiled here (in order): add it to \
                     tests/doc_examples.rs, or bring the guide back in line with it"
                ),
            }
        }
    }
    assert!(blocks >= 9, "only {blocks} Rust examples found in docs/jobs.md's issue 22 sections");
}
