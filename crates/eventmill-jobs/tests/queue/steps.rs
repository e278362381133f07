//! Step jobs (`ctx.update_data` + `JobError::delay_until`), through `examples/step_job.rs` run as
//! real worker processes: a worker SIGKILLed in the middle of a step job, its lease taken over by
//! another worker process, which resumes at the recorded step (the steps before it do not run
//! again).

use std::{process::Stdio, sync::Arc, time::Duration};

use eventmill_jobs::JobState;
use serde_json::Value;

use crate::{
    examples::example,
    support::{TestEnv, eventually, redis_url},
};

/// `step_job <args>` on key prefix `prefix`, its lease 1.5 s, 300 ms a step.
fn step_job(prefix: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(example("step_job"));
    command
        .args(args)
        .envs([
            ("STEP_REDIS_URL", redis_url()),
            ("STEP_REDIS_PREFIX", prefix.to_owned()),
            ("STEP_JOB_LEASE_MS", "1500".into()),
            ("STEP_MS", "300".into()),
            ("STEP_INDEX_WAIT_MS", "300".into()),
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The steps recorded in job `id`'s payload so far: (step, pid).
async fn recorded(env: &TestEnv, id: &str) -> Vec<(String, u64)> {
    let job = env.queues.job(id).await.unwrap().expect("the job exists");
    steps(&job.payload["done"])
}

fn steps(list: &Value) -> Vec<(String, u64)> {
    list.as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| (s["step"].as_str().unwrap_or("?").to_owned(), s["pid"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_step_job_sigkilled_mid_way_resumes_at_its_recorded_step_in_another_worker_process() {
    let prefix = format!("emjobs-steps:{:08x}", rand::random::<u32>());
    let env = TestEnv::with(&[("EVENTMILL_REDIS_PREFIX", &prefix)]).await;

    let enqueue = step_job(&prefix, &["enqueue", "orders.csv"]).output().await.unwrap();
    assert!(enqueue.status.success(), "{}", String::from_utf8_lossy(&enqueue.stderr));
    let id = String::from_utf8_lossy(&enqueue.stdout).trim().to_owned();

    let mut first = step_job(&prefix, &["worker"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let first_pid = u64::from(first.id().unwrap());
    // Two steps recorded: the third (`load`, 300 ms) is under way when the process dies.
    let two_done = eventually(Duration::from_secs(30), || async { recorded(&env, &id).await.len() >= 2 }).await;
    first.start_kill().unwrap(); // SIGKILL: no shutdown, nothing handed back
    first.wait().await.unwrap();
    assert!(two_done, "the first worker never recorded two steps: {:?}", recorded(&env, &id).await);
    let at_kill = recorded(&env, &id).await;
    assert_eq!(at_kill, vec![("download".into(), first_pid), ("parse".into(), first_pid)], "killed during `load`");
    assert_eq!(env.queues.job(&id).await.unwrap().unwrap().state, JobState::Active, "its lease still runs");

    let mut second = step_job(&prefix, &["worker"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let second_pid = u64::from(second.id().unwrap());
    let completed = eventually(Duration::from_secs(30), || async {
        env.queues.job(&id).await.unwrap().is_some_and(|j| j.state == JobState::Completed)
    })
    .await;
    let job = env.queues.job(&id).await.unwrap().unwrap();
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert!(completed, "the second worker did not complete the job: {job:?}");

    // Each step ran once: the two recorded ones in the killed process only, the rest (from the
    // interrupted `load` on) in the second one.
    let result = job.result.clone().unwrap();
    let expected: Vec<(String, u64)> = [
        ("download", first_pid),
        ("parse", first_pid),
        ("load", second_pid),
        ("index", second_pid),
        ("notify", second_pid),
    ]
    .into_iter()
    .map(|(s, p)| (s.to_owned(), p))
    .collect();
    assert_eq!(steps(&result["steps"]), expected, "{result}");
    // The killed attempt counted (its lease expired), the delay for the index did not.
    assert_eq!(job.attempts, 2, "{job:?}");
    assert!(job.errors.len() == 1 && job.errors[0].error.contains("stopped responding"), "{:?}", job.errors);
    assert_eq!(job.payload["waited_for_index"], Value::Bool(true), "it waited, delayed, before `index`");
}

/// What the attempts of `TwoAttempts` did, and the gates that hold them.
struct Attempts {
    /// (attempt, what happened), in order.
    events: std::sync::Mutex<Vec<(u32, String)>>,
    /// Attempt n waits at its gates `gates[n - 1]` (each released once by the test).
    gates: [tokio::sync::Semaphore; 2],
}

impl Default for Attempts {
    fn default() -> Self {
        Self { events: Default::default(), gates: [tokio::sync::Semaphore::new(0), tokio::sync::Semaphore::new(0)] }
    }
}

impl Attempts {
    fn note(&self, attempt: u32, what: String) {
        self.events.lock().unwrap().push((attempt, what));
    }
    fn saw(&self, attempt: u32, what: &str) -> bool {
        self.events.lock().unwrap().iter().any(|(a, w)| *a == attempt && w.starts_with(what))
    }
    async fn wait(&self, attempt: u32) {
        self.gates[attempt as usize - 1].acquire().await.unwrap().forget();
    }
}

/// A step job whose attempts are held by the test: attempt 1 records step 1, waits (its lease is
/// expired under it and attempt 2 takes over), then tries to record step 2 as a stale attempt;
/// attempt 2 resumes at the recorded step, records step 2 itself and waits before completing.
struct TwoAttempts;

impl eventmill_jobs::Processor<Attempts> for TwoAttempts {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "STEP_TAKEN_OVER";
    const QUEUE: &'static str = crate::support::ROLLUP_QUEUE;

    async fn process(
        &self,
        ctx: &eventmill_jobs::JobContext<Attempts>,
        mut job: Self::Payload,
    ) -> Result<Value, eventmill_jobs::JobError> {
        let (attempts, attempt) = (ctx.state(), ctx.attempt);
        attempts.note(attempt, format!("started at step {}", job.get("step").and_then(Value::as_u64).unwrap_or(0)));
        if attempt == 1 {
            job.insert("step".into(), 1.into());
            job.insert("by".into(), "attempt 1".into());
            ctx.update_data(&job).await?;
            attempts.note(1, "recorded step 1".into());
            attempts.wait(1).await; // meanwhile its lease expires and attempt 2 takes the job
            job.insert("step".into(), 2.into());
            let written = ctx.update_data(&job).await;
            attempts.note(1, format!("stale write: {written:?}"));
            attempts.wait(1).await;
            return written.map(|()| Value::Null);
        }
        job.insert("step".into(), 2.into());
        job.insert("by".into(), format!("attempt {attempt}").into());
        ctx.update_data(&job).await?;
        attempts.note(attempt, "recorded step 2".into());
        attempts.wait(2).await;
        Ok(Value::Object(job))
    }
}

/// `ctx.update_data` from a stale attempt (its lease expired and another worker took the job) is
/// refused with an error and leaves the new attempt's step state alone. Two workers with their own
/// connections (as two processes); the first one's lease is expired by hand (its score in the
/// active set moved into the past), as a process stalled for longer than its lease would have it.
#[tokio::test]
async fn update_data_from_a_stale_attempt_is_refused_and_keeps_the_new_attempts_step_state() {
    use eventmill_jobs::{Dispatch, EnqueueOptions, QueueSpec, Registry};
    use redis::AsyncCommands;

    use crate::support::{AnalyticsQueues, ROLLUP_QUEUE, start_worker};

    let settings = [("EVENTMILL_JOB_ATTEMPTS", "3"), ("EVENTMILL_JOB_IDLE_CHECK_MS", "100")];
    let first_env = TestEnv::with(&settings).await;
    let prefix = first_env.prefix.clone();
    let second_env = TestEnv::with(&[settings[0], settings[1], ("EVENTMILL_REDIS_PREFIX", &prefix)]).await;
    let attempts = Arc::new(Attempts::default());
    let registry = Arc::new(Registry::new().queue(QueueSpec::new(ROLLUP_QUEUE)).register(TwoAttempts));
    let dispatch = Arc::new(Dispatch { registry, state: attempts.clone() });
    let queue = first_env.queues.rollup();
    let id = queue.enqueue("STEP_TAKEN_OVER", r#"{"file":"orders.csv"}"#, EnqueueOptions::default()).await.unwrap().id;

    let first = start_worker(queue, dispatch.clone(), 1);
    assert!(eventually(Duration::from_secs(10), || async { attempts.saw(1, "recorded step 1") }).await);
    // The first attempt's lease ends now; the second worker (woken by the marker) takes the job.
    let second = start_worker(second_env.queues.rollup(), dispatch, 1);
    let base = eventmill_jobs::queue::key_base(&prefix);
    let taken_over = eventually(Duration::from_secs(10), || async {
        let held_by_first = first_env.queues.job(&id).await.unwrap().is_some_and(|j| j.attempts == 1);
        if held_by_first {
            let mut redis = first_env.redis();
            let _: () = redis.zadd(format!("{base}{ROLLUP_QUEUE}:active"), &id, 1).await.unwrap();
            let _: () = redis.zadd(format!("{base}{ROLLUP_QUEUE}:marker"), "0", 0).await.unwrap();
        }
        attempts.saw(2, "recorded step 2")
    })
    .await;
    assert!(taken_over, "the second worker did not take the job over: {:?}", attempts.events.lock().unwrap());
    assert!(attempts.saw(2, "started at step 1"), "it resumed at the first attempt's step");
    let job = first_env.queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Active, 2), "{job:?}");

    // The stale attempt writes: refused, with the cause, and the second attempt's state stays.
    attempts.gates[0].add_permits(1);
    assert!(eventually(Duration::from_secs(10), || async { attempts.saw(1, "stale write") }).await);
    let events = attempts.events.lock().unwrap().clone();
    let stale = &events.iter().find(|(a, w)| *a == 1 && w.starts_with("stale write")).unwrap().1;
    assert!(stale.contains("Err") && stale.contains("attempt 1 no longer holds the job"), "{stale}");
    let job = first_env.queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.payload["step"].clone(), job.payload["by"].clone()), (2.into(), "attempt 2".into()), "{job:?}");
    assert_eq!((job.state, job.attempts), (JobState::Active, 2), "still the second attempt's: {job:?}");

    // The stale attempt returns its error while the second attempt still runs; its worker shuts
    // down (a clean shutdown sends every result it has): the result is not recorded, the job stays
    // the second attempt's (not sent to a retry under it).
    attempts.gates[0].add_permits(1);
    first.shutdown.cancel();
    first.handle.await.unwrap().unwrap();
    let job = first_env.queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Active, 2), "the stale result took the job: {job:?}");

    // The second attempt completes with its own state.
    attempts.gates[1].add_permits(1);
    let done = eventually(Duration::from_secs(10), || async {
        first_env.queues.job(&id).await.unwrap().is_some_and(|j| j.state == JobState::Completed)
    })
    .await;
    let job = first_env.queues.job(&id).await.unwrap().unwrap();
    assert!(done, "{job:?}");
    assert_eq!(job.result.as_ref().map(|r| r["by"].clone()), Some("attempt 2".into()), "{job:?}");
    second.shutdown.cancel();
    second.handle.await.unwrap().unwrap();
    let job = first_env.queues.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.payload["by"].clone()), (JobState::Completed, "attempt 2".into()), "{job:?}");
}
