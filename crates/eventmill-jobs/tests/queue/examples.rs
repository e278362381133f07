//! The examples a framework user starts from, run as they would run them (their built binaries),
//! against the test Redis.

use std::{path::PathBuf, process::Output, time::Duration};

use crate::support::redis_url;

/// The built example `name` (`cargo test` builds the examples before running the tests; a run of
/// chosen test targets does not: `cargo build -p eventmill-jobs --examples` first).
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_owned();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is not built: run `cargo build -p eventmill-jobs --examples` first", path.display());
    path
}

/// Runs example `name` with `env`, at most `timeout`.
async fn run(name: &str, env: &[(&str, String)], timeout: Duration) -> Output {
    let mut command = tokio::process::Command::new(example(name));
    command.envs(env.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
    tokio::time::timeout(timeout, command.output()).await.expect("the example finished in time").unwrap()
}

#[tokio::test]
async fn the_minimal_example_enqueues_a_job_and_its_worker_completes_it() {
    let prefix = format!("emjobs-example:{:08x}", rand::random::<u32>());
    let env = [("MINIMAL_REDIS_URL", redis_url()), ("MINIMAL_REDIS_PREFIX", prefix)];
    let out = run("minimal", &env, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(r#"completed: {"said":"Hello, world!"}"#), "{stdout}");
}
