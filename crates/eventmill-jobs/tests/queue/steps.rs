//! Step jobs (`ctx.update_data` + `JobError::delay_until`), through `examples/step_job.rs` run as
//! real worker processes: a worker SIGKILLed in the middle of a step job, its lease taken over by
//! another worker process, which resumes at the recorded step (the steps before it do not run
//! again).

use std::{process::Stdio, time::Duration};

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
