//! The examples a framework user starts from, run as they would run them (their built binaries),
//! against the test Redis.

use std::{path::PathBuf, process::Output, time::Duration};

use crate::support::{eventually, redis_url};

/// The built example `name` (`cargo test` builds the examples before running the tests; a run of
/// chosen test targets does not: `cargo build -p eventmill-jobs --examples` first).
pub(crate) fn example(name: &str) -> PathBuf {
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

/// Starts axum_app on a free port; its address, and the process (killed when dropped).
async fn start_axum_app(prefix: &str) -> (String, tokio::process::Child) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(example("axum_app"))
        .envs([
            ("SHOP_REDIS_URL", redis_url()),
            ("SHOP_REDIS_PREFIX", prefix.to_owned()),
            ("SHOP_ADDR", "127.0.0.1:0".to_owned()),
            ("SHOP_PASSWORD", "secret".to_owned()),
            ("SHOP_SALES_CRON", "* * * * * *".to_owned()),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (format!("http://{addr}"), child)
}

#[tokio::test]
async fn the_axum_app_example_enqueues_from_a_handler_runs_its_worker_and_schedule_and_guards_its_board() {
    let prefix = format!("emjobs-axum:{:08x}", rand::random::<u32>());
    let (base, mut child) = start_axum_app(&prefix).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let accepted =
        http.post(format!("{base}/orders")).json(&serde_json::json!({"order_id": "o-1"})).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let job = accepted.json::<serde_json::Value>().await.unwrap()["job"].as_str().unwrap().to_owned();
    let completed = eventually(Duration::from_secs(10), || async {
        let status: serde_json::Value =
            http.get(format!("{base}/orders/{job}")).send().await.unwrap().json().await.unwrap();
        status["state"] == "completed" && status["result"]["receipt_for"] == "o-1"
    })
    .await;
    assert!(completed, "the worker in the same process completed the order's job");

    // The board is behind the service's own login.
    assert_eq!(http.get(format!("{base}/jobs/queues")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(format!("{base}/login?password=wrong")).send().await.unwrap().status(), 401);
    let login = http.get(format!("{base}/login?password=secret")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = http.get(format!("{base}/jobs/queues")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("shop"), "the board lists the app's queue: {html}");

    // The cron schedule (every second in this test) enqueues DAILY_SALES, which the worker runs.
    let queues = |cookie: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let jobs: serde_json::Value = http
                .get(format!("{base}/jobs/api/queues/shop/jobs?state=completed"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            jobs.to_string().contains("DAILY_SALES")
        }
    };
    assert!(eventually(Duration::from_secs(10), || queues(cookie.clone())).await, "a scheduled job ran");

    // SIGTERM: the service stops cleanly (the worker hands back what it holds).
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
}
