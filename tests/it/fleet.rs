//! Real `eventmill` processes (the binary) on one test environment: each with its own HTTP and
//! metrics ports, stopped (killed) when dropped, and `/metrics` read back as numbers.

use std::{process::Stdio, time::Duration};

use secrecy::ExposeSecret;
use tokio::process::{Child, Command};

use crate::helpers::{TestEnv, eventually};

/// The admin token every process of a fleet uses.
pub const TOKEN: &str = "fleet-token";

/// One running process.
pub struct Process {
    pub child: Child,
    /// `serve`/`run` only: the API port.
    pub http: Option<u16>,
    /// `EVENTMILL_METRICS_ADDR`'s port (open `/metrics`).
    pub metrics: u16,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process still running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http.expect("an API process"))
    }

    /// The open `/metrics` text.
    pub async fn scrape(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics);
        let response = reqwest::get(url).await.expect("metrics listener answers");
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// SIGKILL: no shutdown, no flush, nothing handed back.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `eventmill <command>` on `env` with `extra` settings; returns once its metrics answer.
pub async fn start(env: &TestEnv, command: &str, extra: &[(&str, &str)]) -> Process {
    let http = matches!(command, "serve" | "run").then(free_port);
    let metrics = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eventmill"));
    cmd.arg(command)
        .env("EVENTMILL_REDIS_URL", env.settings.redis.url.expose_secret())
        .env("EVENTMILL_DATABASE_URL", &env.db_url)
        .env("EVENTMILL_REDIS_PREFIX", &env.prefix)
        .env("EVENTMILL_ADMIN_TOKEN", TOKEN)
        .env("EVENTMILL_HTTP_ADDR", format!("127.0.0.1:{}", http.unwrap_or_else(free_port)))
        .env("EVENTMILL_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .env("EVENTMILL_CONSUMERS", "1")
        .env("EVENTMILL_FLUSH_INTERVAL_MS", "50")
        .env("EVENTMILL_JOB_POLL_MS", "20")
        .env("EVENTMILL_DB_MAX_CONNECTIONS", "4")
        .env("EVENTMILL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let process = Process { child: cmd.spawn().expect("the eventmill binary starts"), http, metrics };
    let url = format!("http://127.0.0.1:{metrics}/metrics");
    let up = eventually(Duration::from_secs(20), || async { reqwest::get(&url).await.is_ok() }).await;
    assert!(up, "eventmill {command} did not start");
    process
}

/// The sum of every sample of `name` whose labels contain all of `labels` (`key="value"` each).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric_name, rest) = series.split_once('{').unwrap_or((series, ""));
            metric_name == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}
