//! The smallest eventmill-jobs program: one queue, one processor with state, a job enqueued, a
//! worker that runs it, its result read back.
//!
//! ```text
//! MINIMAL_REDIS_URL=redis://127.0.0.1:6379 cargo run -p eventmill-jobs --example minimal
//! ```

use std::{sync::Arc, time::Duration};

use eventmill_jobs::{
    JobContext, JobError, JobState, Jobs, JobsSettings, Processor, QueueSpec, Registry, shutdown::Shutdown,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What every job can use: the application's state, built once.
struct Greeter {
    greeting: String,
}

/// The payload of a job (serde: what is stored in Redis).
#[derive(Serialize, Deserialize)]
struct Greet {
    name: String,
}

/// The job kind: its name, its queue and what it does.
struct SayHello;

impl Processor<Greeter> for SayHello {
    type Payload = Greet;
    const NAME: &'static str = "SAY_HELLO";
    const QUEUE: &'static str = "greetings";

    async fn process(&self, ctx: &JobContext<Greeter>, job: Greet) -> Result<Value, JobError> {
        ctx.progress(50, "greeting");
        Ok(json!({ "said": format!("{}, {}!", ctx.state().greeting, job.name) }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let registry = Registry::new().queue(QueueSpec::new("greetings").concurrency(4)).register(SayHello);
    let jobs = Jobs::connect(JobsSettings::from_env("MINIMAL", &registry)?, registry)?;
    let enqueued = jobs.enqueue::<SayHello>(&Greet { name: "world".into() }).await?;

    let shutdown = Shutdown::new();
    let state = Arc::new(Greeter { greeting: "Hello".into() });
    let worker = tokio::spawn({
        let (jobs, shutdown) = (jobs.clone(), shutdown.clone());
        async move { jobs.run_workers(state, shutdown).await }
    });
    loop {
        let job = jobs.queues().job(&enqueued.id).await?.expect("the job exists");
        if job.state == JobState::Completed {
            println!("job {} completed: {}", job.id, job.result.unwrap_or_default());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await?
}
