//! The board in a plain axum service that is not eventmill: mounted at `/jobs` behind a trivial
//! auth layer, over real Redis (`EVENTMILL_REDIS_URL`, as `scripts/test.sh` sets it). Its pages
//! list the registry's queues and kinds; an action is refused without a viewer (401) and for a
//! read-only one (403, audited), and done for an admin.

#![cfg(feature = "board")]

mod common;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    middleware,
    routing::get,
};
use eventmill_jobs::{JobContext, JobError, Jobs, JobsSettings, Processor, QueueSpec, Registry, board};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

use common::trivial_auth;

/// The shop's state: nothing the board needs.
struct Shop;

#[derive(Serialize, Deserialize)]
struct Welcome {
    user_id: String,
}

struct SendWelcome;
impl Processor<Shop> for SendWelcome {
    type Payload = Welcome;
    const NAME: &'static str = "SEND_WELCOME";
    const QUEUE: &'static str = "emails";
    async fn process(&self, _: &JobContext<Shop>, _: Welcome) -> Result<Value, JobError> {
        Ok(json!({}))
    }
}

#[derive(Serialize, Deserialize)]
struct Resize {
    image: String,
    taken_on: String,
}

struct ResizeImage;
impl Processor<Shop> for ResizeImage {
    type Payload = Resize;
    const NAME: &'static str = "RESIZE_IMAGE";
    const QUEUE: &'static str = "images";
    const DATE_FIELDS: &'static [&'static str] = &["taken_on"];
    async fn process(&self, _: &JobContext<Shop>, _: Resize) -> Result<Value, JobError> {
        Ok(json!({}))
    }
}

fn jobs() -> Jobs<Shop> {
    let registry = Registry::new()
        .queue(QueueSpec::new("emails"))
        .queue(QueueSpec::new("images"))
        .register(SendWelcome)
        .register(ResizeImage);
    let prefix = format!("boardtest{:x}", rand::random::<u64>());
    let settings =
        JobsSettings::from_lookup("SHOP", &registry.kind_names(), &registry.queue_names(), |key| match key {
            "SHOP_REDIS_URL" => std::env::var("EVENTMILL_REDIS_URL").ok(),
            "SHOP_REDIS_CLUSTER" => std::env::var("EVENTMILL_REDIS_CLUSTER").ok(),
            "SHOP_REDIS_PREFIX" => Some(prefix.clone()),
            _ => None,
        })
        .unwrap();
    Jobs::connect(settings, registry).unwrap()
}

async fn call(app: &Router, method: Method, path: &str, user: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    let response = app.clone().oneshot(request.body(Body::from("{}")).unwrap()).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_board_mounted_in_a_plain_axum_app_lists_the_registrys_queues_and_kinds_and_guards_its_actions() {
    let jobs = jobs();
    let id = jobs.enqueue::<SendWelcome>(&Welcome { user_id: "u1".into() }).await.unwrap().id;
    let audit = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = audit.clone();
    let state = jobs.board("/jobs").title("shop jobs").audit(move |entry| {
        let who = entry.viewer.map_or("nobody", |v| v.name.as_str());
        seen.lock().unwrap().push(format!("{who} {} {}", entry.action, entry.outcome.as_str()));
    });
    let app = Router::new()
        .route("/", get(|| async { "the shop" }))
        .nest("/jobs", board::router(state).layer(middleware::from_fn(trivial_auth)));

    let (status, queues) = call(&app, Method::GET, "/jobs/queues", Some("bob")).await;
    assert_eq!(status, 200, "{queues}");
    assert!(queues.contains(r#"data-queue="emails""#) && queues.contains(r#"data-queue="images""#), "{queues}");
    assert!(queues.contains("shop jobs"), "the page carries the host's title");
    assert!(!queues.contains("<form method=\"post\""), "no action form for a read-only viewer");

    let (status, page) = call(&app, Method::GET, "/jobs/queues/emails?state=waiting", Some("alice")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!(r#"data-id="{id}""#)) && page.contains("SEND_WELCOME"), "the job is listed: {page}");
    assert!(page.contains(r#"href="/jobs/queues/images?state=waiting""#), "links the other declared queue: {page}");
    assert!(page.contains(r#"action="/jobs/api/queues/emails/pause""#), "actions under the mount point: {page}");

    assert!(
        page.contains(r#"id="throughput-chart""#) && page.contains("/jobs/api/queues/emails/history?window=1h"),
        "{page}"
    );
    let (status, body) = call(&app, Method::GET, "/jobs/api/queues/emails/history?window=14d", Some("bob")).await;
    assert_eq!(status, 200, "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((history["window"].as_str(), history["points"].as_array().map(Vec::len)), (Some("14d"), Some(336)));
    assert_eq!(history["step_seconds"], 3600);
    let (status, body) = call(&app, Method::GET, "/jobs/api/queues/emails/history?window=3w", Some("bob")).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("expected 1h, 24h or 14d"), "names the fix: {body}");

    let (status, form) = call(&app, Method::GET, "/jobs/enqueue", Some("alice")).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains(r#"data-kind="SEND_WELCOME""#) && form.contains(r#"data-kind="RESIZE_IMAGE""#), "{form}");
    assert!(form.contains("taken_on"), "the kinds' relative fields are listed: {form}");
    assert!(!form.contains("analytics") && !form.contains("DAILY_ROLLUP"), "nothing of eventmill's: {form}");

    let pause = "/jobs/api/queues/emails/pause";
    let (status, body) = call(&app, Method::POST, pause, None).await;
    assert_eq!(status, 401, "no viewer: {body}");
    assert!(body.contains("Viewer") && body.contains("authentication layer"), "tells the integrator: {body}");
    let (status, body) = call(&app, Method::GET, "/jobs/api/queues", None).await;
    assert_eq!(status, 401, "no viewer, no reading either: {body}");
    let (status, body) = call(&app, Method::POST, pause, Some("bob")).await;
    assert_eq!(status, 403, "read-only: {body}");
    assert!(!jobs.queues().named("emails").unwrap().counts().await.unwrap().paused, "nothing was paused");

    let (status, body) = call(&app, Method::POST, pause, Some("alice")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["paused"], true);
    assert!(jobs.queues().named("emails").unwrap().counts().await.unwrap().paused, "the admin paused it");

    let (status, body) = call(&app, Method::POST, &format!("/jobs/api/jobs/{id}/remove"), Some("alice")).await;
    assert_eq!(status, 428, "a destructive action asks first: {body}");
    assert!(jobs.queues().job(&id).await.unwrap().is_some(), "nothing removed without confirmation");

    let audit = audit.lock().unwrap().clone();
    assert_eq!(
        audit,
        [
            "nobody /jobs/api/queues/emails/pause refused",
            "bob /jobs/api/queues/emails/pause refused",
            "alice queue.pause ok",
            "alice job.remove confirmation asked",
        ],
        "every action, allowed or refused, is audited"
    );
    let (status, front) = call(&app, Method::GET, "/jobs", Some("bob")).await;
    assert!(status == 200 && front.contains(r#"data-queue="images""#), "the mount point is the queue list: {front}");
    let (status, _) = call(&app, Method::GET, "/jobs/assets/admin.css", None).await;
    assert_eq!(status, 200, "the styles need no viewer (a host's login page uses them)");
    let (status, home) = call(&app, Method::GET, "/", None).await;
    assert_eq!((status, home.as_str()), (StatusCode::OK, "the shop"), "the host's own routes are its own");
}

#[tokio::test]
async fn the_job_api_answers_a_flows_tree_from_any_of_its_jobs() {
    use eventmill_jobs::{EnqueueOptions, FailurePolicy, Job, queue::Planned};
    let jobs = jobs();
    let parent = Job { kind: "RESIZE_IMAGE", payload: json!({ "taken_on": "2026-01-01" }) };
    let child = Job { kind: "SEND_WELCOME", payload: json!({ "user_id": "u1" }) };
    let options = EnqueueOptions { on_failure: FailurePolicy::IgnoreDependency, ..EnqueueOptions::default() };
    let flow = jobs
        .queues()
        .enqueue_flow(Planned { job: &parent, options: EnqueueOptions::default() }, &[Planned { job: &child, options }])
        .await
        .unwrap();
    let state = jobs.board("/jobs");
    let app = Router::new().nest("/jobs", board::router(state).layer(middleware::from_fn(trivial_auth)));
    let (status, body) = call(&app, Method::GET, &format!("/jobs/api/jobs/{}", flow.children[0]), Some("bob")).await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["flow"]["id"], flow.id.as_str(), "{detail}");
    assert_eq!(detail["flow"]["state"], "waiting-children");
    assert_eq!(detail["flow"]["children"][0]["on_failure"], "ignore_dependency", "{detail}");
    assert_eq!(detail["flow"]["children"][0]["state"], "waiting");
    let plain = jobs.enqueue::<SendWelcome>(&Welcome { user_id: "u2".into() }).await.unwrap().id;
    let (_, body) = call(&app, Method::GET, &format!("/jobs/api/jobs/{plain}"), Some("bob")).await;
    assert!(serde_json::from_str::<Value>(&body).unwrap().get("flow").is_none(), "no flow field: {body}");
}

#[tokio::test]
async fn the_workers_page_lists_a_running_process_and_says_when_a_silent_one_leaves() {
    let jobs = jobs().with_version("shop 7.1");
    let app = Router::new().nest("/jobs", board::router(jobs.board("/jobs")).layer(middleware::from_fn(trivial_auth)));
    let (status, page) = call(&app, Method::GET, "/jobs/workers", Some("bob")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"id="no-workers""#), "{page}");
    assert!(page.contains("leaves this list 30.0 s after its last beat"), "the lease is said: {page}");
    let (status, page) = call(&app, Method::GET, "/jobs/slos", Some("bob")).await;
    assert!(status == 200 && page.contains(r#"id="no-slos""#), "no kind declares an SLO here: {page}");
    let (_, body) = call(&app, Method::GET, "/jobs/api/slos", Some("bob")).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({ "breached": 0, "slos": [] }));

    let shutdown = eventmill_jobs::shutdown::Shutdown::new();
    let mut parts = tokio::task::JoinSet::new();
    jobs.spawn_workers(jobs.dispatch(Arc::new(Shop)), &mut parts, &shutdown).unwrap();
    let mut listed = Value::Null;
    for _ in 0..100 {
        let (status, body) = call(&app, Method::GET, "/jobs/api/workers", Some("bob")).await;
        assert_eq!(status, 200, "{body}");
        listed = serde_json::from_str(&body).unwrap();
        if listed["processes"].as_array().is_some_and(|p| p.len() == 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(listed["lease_seconds"], 30.0);
    let process = &listed["processes"][0];
    assert_eq!(process["version"], "shop 7.1", "{listed}");
    assert_eq!(process["pid"], std::process::id());
    assert_eq!(process["queues"][0]["queue"], "emails");
    let (_, page) = call(&app, Method::GET, "/jobs/workers", Some("bob")).await;
    assert!(page.contains(&format!(r#"data-pid="{}""#, std::process::id())) && page.contains("shop 7.1"), "{page}");
    assert!(page.contains(r#"href="/jobs/queues/images?state=active""#), "its queues are linked: {page}");

    shutdown.cancel();
    while let Some(done) = parts.join_next().await {
        done.unwrap().unwrap();
    }
    let (_, body) = call(&app, Method::GET, "/jobs/api/workers", Some("bob")).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["processes"], serde_json::json!([]), "left at shutdown");
}
