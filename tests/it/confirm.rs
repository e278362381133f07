//! Destructive admin actions ask first (docs/admin.md): without `confirm` nothing changes and the
//! caller gets the question (428 for JSON callers; the form path is in `admin_stream`); with it the
//! action happens. Both leave an audit line. Run on the real binary to read its log.

use eventmill::queue::EnqueueOptions;
use serde_json::{Value, json};

use crate::{
    helpers::TestEnv,
    jobs_support::AnalyticsQueues,
    secrets::{ADMIN, Logged},
};

#[tokio::test]
async fn a_destructive_action_without_confirmation_changes_nothing_and_with_it_happens_both_audited() {
    let env = TestEnv::new().await;
    let queue = env.resources.queues.rollup();
    let payload = r#"{"job_type":"DAILY_ROLLUP","date":"2026-01-01"}"#;
    let id = queue.enqueue("DAILY_ROLLUP", payload, EnqueueOptions::default()).await.unwrap().id;
    let serve = Logged::start(
        "serve",
        &[
            ("EVENTMILL_REDIS_URL", secrecy::ExposeSecret::expose_secret(&env.settings.redis.url).to_owned()),
            ("EVENTMILL_DATABASE_URL", env.db_url.clone()),
            ("EVENTMILL_REDIS_PREFIX", env.prefix.clone()),
        ],
    );
    let client = reqwest::Client::new();
    let up = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        client.get(serve.url("/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up);
    let post = |path: String, body: Value| client.post(serve.url(&path)).bearer_auth(ADMIN).json(&body).send();

    for action in ["remove", "cancel"] {
        let asked = post(format!("/admin/api/jobs/{id}/{action}"), json!({})).await.unwrap();
        assert_eq!(asked.status(), 428, "{action} without confirmation");
        let body: Value = asked.json().await.unwrap();
        assert_eq!(body["error"], "confirmation_required", "{body}");
        assert!(body["message"].as_str().unwrap().contains("\"confirm\": true"), "{body}");
        assert!(
            env.resources.queues.job(&id).await.unwrap().is_some(),
            "the job is still there after an unconfirmed {action}"
        );
    }
    let asked = post("/admin/api/dead-letters/replay-all".into(), json!({ "confirm": "yes" })).await.unwrap();
    assert_eq!(asked.status(), 428, "only `true` confirms a JSON call");

    let done = post(format!("/admin/api/jobs/{id}/remove"), json!({ "confirm": true })).await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["removed"], 1);
    assert!(env.resources.queues.job(&id).await.unwrap().is_none(), "confirmed, the job is removed");

    let logs = serve.stop().await;
    // Log lines are JSON (docs/operations.md "Logs and shutdown").
    let audit = |outcome: &str| {
        let outcome = format!(r#""outcome":"{outcome}""#);
        logs.lines()
            .filter(|l| l.contains(r#""target":"eventmill::audit""#))
            .any(|l| l.contains(r#""action":"job.remove""#) && l.contains(r#""token":""#) && l.contains(&outcome))
    };
    assert!(audit("confirmation asked"), "the unconfirmed remove is audited:\n{logs}");
    assert!(audit("ok"), "the confirmed remove is audited:\n{logs}");
}
