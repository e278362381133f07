//! No secret in logs or error answers: the real binary runs with known tokens, ingest keys, a
//! Redis password, a database URL password and an SMTP password; wrong logins, bad tokens and
//! keys, an unreachable SMTP server, PostgreSQL refusing the password and Redis refusing its
//! password are provoked; none of the secrets may appear in stdout, stderr (logs at `debug`) or any
//! HTTP answer.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{process::Command, task::block_in_place};

use crate::{
    fleet::free_port,
    helpers::{TestEnv, base_urls, eventually},
    private::{PrivatePostgres, PrivateRedis},
};

pub(crate) const ADMIN: &str = "adm1n-SECRET-4a7c9e";
const READONLY: &str = "r3ad-SECRET-91b2f0";
const INGEST: &str = "1ngest-SECRET-5d3e8a";
const REDIS_PASSWORD: &str = "red1s-SECRET-c0ffee";
const PG_PASSWORD: &str = "pg-SECRET-b16b00b5";
const SMTP_PASSWORD: &str = "smtp-SECRET-deadbeef";
const SECRETS: [&str; 6] = [ADMIN, READONLY, INGEST, REDIS_PASSWORD, PG_PASSWORD, SMTP_PASSWORD];

/// One `eventmill` process whose stdout and stderr go to files.
pub(crate) struct Logged {
    child: tokio::process::Child,
    out: PathBuf,
    err: PathBuf,
    port: u16,
}

impl Logged {
    pub(crate) fn start(command: &str, env: &[(&str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("eventmill-secrets-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (out, err, port) = (dir.join("stdout"), dir.join("stderr"), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_eventmill"))
            .arg(command)
            .env("EVENTMILL_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("EVENTMILL_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("EVENTMILL_ADMIN_TOKEN", ADMIN)
            .env("EVENTMILL_READONLY_TOKEN", READONLY)
            .env("EVENTMILL_INGEST_KEYS", INGEST)
            .env("EVENTMILL_LOG", "debug")
            .env("EVENTMILL_JOB_POLL_MS", "20")
            .env("EVENTMILL_DB_MAX_CONNECTIONS", "2")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the eventmill binary starts");
        Self { child, out, err, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) async fn stop(mut self) -> String {
        self.child.start_kill().ok();
        self.child.wait().await.ok();
        let text = [&self.out, &self.err].map(|p| std::fs::read_to_string(p).unwrap_or_default()).join("\n");
        std::fs::remove_dir_all(self.out.parent().unwrap()).ok();
        text
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} contains the secret {secret:?}:\n{text}");
    }
}

/// Every request that fails, with its answer checked; answers the bodies.
async fn provoke_http_errors(p: &Logged) -> Vec<String> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let up = eventually(Duration::from_secs(20), || async { client.get(p.url("/healthz")).send().await.is_ok() }).await;
    assert!(up, "eventmill did not answer");
    let event = r#"{"event_type":"page_view"}"#;
    let requests = [
        client.post(p.url("/admin/login")).form(&[("token", &format!("{ADMIN}x"))]),
        client.get(p.url("/v1/analytics/summary")).bearer_auth(format!("{READONLY}x")),
        client.get(p.url("/admin/api/queues")).bearer_auth(format!("x{ADMIN}")),
        client.post(p.url("/v1/events")).header("x-api-key", format!("{INGEST}x")).body(event),
        client
            .post(p.url("/v1/events"))
            .header("x-api-key", INGEST)
            .header("content-type", "application/json")
            .body(event),
        client.get(p.url("/v1/analytics/events/raw")).bearer_auth(READONLY),
        client.get(p.url("/healthz/detailed")),
        client.get(p.url("/metrics")).bearer_auth(ADMIN),
    ];
    let mut bodies = Vec::new();
    for request in requests {
        let response = request.send().await.unwrap();
        let head = format!("{} {:?}", response.status(), response.headers());
        bodies.push(format!("{head}\n{}", response.text().await.unwrap()));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_key_or_password_appears_in_logs_or_error_answers() {
    // 1. Redis with a password (right), PostgreSQL on a URL with a password (trust auth ignores it),
    //    SMTP with a password on a port nothing listens on; a report job to e-mail fails.
    let redis = block_in_place(|| PrivateRedis::start_with_password(REDIS_PASSWORD));
    let env = TestEnv::on(&redis.url(), &base_urls().1, &[]).await;
    let db_url = env.db_url.replacen("://eventmill@", &format!("://eventmill:{PG_PASSWORD}@"), 1);
    assert!(db_url.contains(PG_PASSWORD), "{db_url}");
    let smtp = format!("smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{}", free_port());
    let settings = [
        ("EVENTMILL_REDIS_URL", redis.url()),
        ("EVENTMILL_DATABASE_URL", db_url),
        ("EVENTMILL_REDIS_PREFIX", env.prefix.clone()),
        ("EVENTMILL_SMTP_URL", smtp),
        ("EVENTMILL_REPORTS_DIR", env.settings.reports_dir.display().to_string()),
        ("EVENTMILL_JOB_ATTEMPTS", "1".to_owned()),
    ];
    let run = Logged::start("run", &settings);
    let mut bodies = provoke_http_errors(&run).await;
    let client = reqwest::Client::new();
    let job = "job_type = \"GENERATE_REPORT\"\nreport_type = \"REVENUE_SUMMARY\"\nformat = \"CSV\"\n\
               start_date = \"2026-03-01\"\nend_date = \"2026-03-07\"\nrecipient_email = [\"ops@example.com\"]";
    let enqueued: serde_json::Value = client
        .post(run.url("/admin/api/enqueue"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "job": job }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = enqueued["id"].as_str().unwrap_or_else(|| panic!("enqueued: {enqueued}")).to_owned();
    let job_url = run.url(&format!("/admin/api/jobs/{id}"));
    let failed = eventually(Duration::from_secs(30), || async {
        let job: serde_json::Value =
            client.get(&job_url).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        job["state"] == "failed"
    })
    .await;
    let job = client.get(&job_url).bearer_auth(ADMIN).send().await.unwrap().text().await.unwrap();
    assert!(failed, "the e-mail job did not fail: {job}");
    assert!(job.contains("Connection refused") || job.contains("connection"), "SMTP was tried: {job}");
    assert!(!job.contains("not a usable SMTP URL"), "the SMTP URL itself is fine: {job}");
    bodies.push(job);
    let config = Command::new(env!("CARGO_BIN_EXE_eventmill"))
        .arg("config")
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    bodies.push(String::from_utf8_lossy(&config.stdout).into_owned());
    let logs = run.stop().await;
    assert!(logs.contains("eventmill::audit"), "the logs were captured: {logs}");

    // 2. PostgreSQL that refuses the password and Redis that refuses its password.
    let pg = block_in_place(PrivatePostgres::start_with_passwords);
    let refused = [
        ("EVENTMILL_REDIS_URL", format!("redis://:{REDIS_PASSWORD}x@127.0.0.1:{}", redis.port)),
        ("EVENTMILL_DATABASE_URL", format!("postgres://eventmill:{PG_PASSWORD}@127.0.0.1:{}/postgres", pg.port)),
        ("EVENTMILL_REDIS_PREFIX", env.prefix.clone()),
    ];
    let serve = Logged::start("serve", &refused);
    bodies.extend(provoke_http_errors(&serve).await);
    let refused_logs = serve.stop().await;
    assert!(
        refused_logs.to_lowercase().contains("password"),
        "PostgreSQL's or Redis's refusal is logged: {refused_logs}"
    );

    for (i, body) in bodies.iter().enumerate() {
        assert_no_secret(&format!("HTTP answer {i}"), body);
    }
    assert_no_secret("the logs of `eventmill run`", &logs);
    assert_no_secret("the logs of `eventmill serve` with refused passwords", &refused_logs);
}
