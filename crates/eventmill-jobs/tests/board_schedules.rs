//! The board's schedules over real Redis (`EVENTMILL_REDIS_URL`, as `scripts/test.sh` sets it):
//! file and run-time schedules listed together (file ones read-only), added through the JSON API
//! and the form, paused and resumed (a paused one's ticks ledgered as skipped by a running
//! scheduler), removed with confirmation; the schedule page's ledger; times for people with the
//! exact UTC time in the title; read-only viewers and missing CSRF tokens refused, every action
//! audited. A plain axum app mounts the board behind a trivial auth layer: `alice` is an admin,
//! `bob` may only look, `carol` is an admin with a session CSRF token (`tok`).

#![cfg(feature = "board")]

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    middleware::{self, Next},
    response::Response,
};
use eventmill_jobs::{
    JobContext, JobError, JobState, Jobs, JobsSettings, Processor, QueueSpec, Registry,
    board::{self, Viewer},
    shutdown::Shutdown,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Shop;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Welcome {
    user_id: String,
}

struct SendWelcome;
impl Processor<Shop> for SendWelcome {
    type Payload = Welcome;
    const NAME: &'static str = "SEND_WELCOME";
    const QUEUE: &'static str = "emails";
    async fn process(&self, _: &JobContext<Shop>, _: Welcome) -> Result<Value, JobError> {
        Ok(json!({ "sent": true }))
    }
}

async fn auth(mut request: Request, next: Next) -> Response {
    let viewer = match request.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        Some("alice") => Some(Viewer::admin("alice")),
        Some("bob") => Some(Viewer::read_only("bob")),
        Some("carol") => Some(Viewer::admin("carol").with_csrf("tok")),
        _ => None,
    };
    if let Some(viewer) = viewer {
        request.extensions_mut().insert(viewer);
    }
    next.run(request).await
}

const FILE: &str = "[[schedule]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n\
                    [schedule.job]\njob_type = \"SEND_WELCOME\"\nuser_id = \"nightly\"\n";

struct Board {
    jobs: Jobs<Shop>,
    app: Router,
    audit: Arc<Mutex<Vec<String>>>,
    file: std::path::PathBuf,
}

fn board() -> Board {
    let registry = Registry::new().queue(QueueSpec::new("emails")).register(SendWelcome);
    let prefix = format!("boardsched{:x}", rand::random::<u64>());
    let settings =
        JobsSettings::from_lookup("SHOP", &registry.kind_names(), &registry.queue_names(), |key| match key {
            "SHOP_REDIS_URL" => std::env::var("EVENTMILL_REDIS_URL").ok(),
            "SHOP_REDIS_CLUSTER" => std::env::var("EVENTMILL_REDIS_CLUSTER").ok(),
            "SHOP_REDIS_PREFIX" => Some(prefix.clone()),
            _ => None,
        })
        .unwrap();
    let jobs = Jobs::connect(settings, registry).unwrap();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-scheduler.toml"));
    std::fs::write(&file, FILE).unwrap();
    let audit = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = audit.clone();
    let state = jobs.board("/jobs").schedules(jobs.schedule_file(&file)).audit(move |entry| {
        let who = entry.viewer.map_or("nobody", |v| v.name.as_str());
        seen.lock().unwrap().push(format!("{who} {} {} {}", entry.action, entry.subject, entry.outcome.as_str()));
    });
    let app = Router::new().nest("/jobs", board::router(state).layer(middleware::from_fn(auth)));
    Board { jobs, app, audit, file }
}

impl Board {
    async fn call(&self, method: Method, path: &str, user: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("x-user", user)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())))
    }

    /// A form post (or a page, with `GET`): the status, the `Location` and the body.
    async fn form(&self, method: Method, path: &str, user: &str, form: &str) -> (StatusCode, String, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-user", user)
            .body(Body::from(form.to_owned()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, location, String::from_utf8_lossy(&body).into_owned())
    }

    async fn schedule(&self, name: &str) -> Value {
        let (status, body) = self.call(Method::GET, &format!("/jobs/api/schedules/{name}"), "bob", Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn audited(&self, line: &str) -> bool {
        self.audit.lock().unwrap().iter().any(|l| l == line)
    }
}

fn pinger() -> Value {
    json!({ "name": "pinger", "every": "1s", "limit": 2, "job": { "job_type": "SEND_WELCOME", "user_id": "p" } })
}

#[tokio::test]
async fn schedules_are_added_paused_resumed_and_removed_on_the_board_with_their_ledger() {
    let b = board();
    let post = |path: &str, user: &str, body: Value| {
        let path = format!("/jobs/api/schedules{path}");
        let user = user.to_owned();
        let b = &b;
        async move { b.call(Method::POST, &path, &user, body).await }
    };

    // Add through the JSON API; read-only viewers and bad definitions are refused with the cause.
    let (status, body) = post("", "alice", pinger()).await;
    assert_eq!((status, &body["upserted"]), (StatusCode::OK, &json!("created")), "{body}");
    assert_eq!(post("", "alice", pinger()).await.1["upserted"], "unchanged");
    assert!(b.audited("alice schedule.add pinger ok"));
    let (status, _) = post("", "bob", pinger()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(b.audited("bob /jobs/api/schedules  refused"), "{:?}", b.audit.lock().unwrap());
    for (bad, cause) in [
        (json!({ "name": "x", "cron": "61 * * * *", "job": { "job_type": "SEND_WELCOME", "user_id": "p" } }), "cron"),
        (json!({ "name": "x", "every": "soon", "job": { "job_type": "SEND_WELCOME", "user_id": "p" } }), "every"),
        (json!({ "name": "x", "every": "1m", "job": { "job_type": "NOPE" } }), "unknown job kind"),
        (json!({ "name": "x", "every": "1m", "limit": "many", "job": { "job_type": "SEND_WELCOME" } }), "limit"),
        (
            json!({ "name": "nightly", "every": "1m", "job": { "job_type": "SEND_WELCOME", "user_id": "p" } }),
            "edit the file",
        ),
    ] {
        let (status, body) = post("", "alice", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["message"].as_str().unwrap().contains(cause), "{bad}: {body}");
    }

    // Listed together: the file one read-only, the run-time one with its limit.
    let (status, list) = b.call(Method::GET, "/jobs/api/schedules", "bob", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nightly", "pinger"]);
    assert_eq!((&list[0]["defined_in"], &list[1]["defined_in"]), (&json!("file"), &json!("redis")));
    assert_eq!((&list[1]["cron"], &list[1]["limit"], &list[1]["runs"]), (&json!("every 1s"), &json!(2), &json!(0)));
    assert!(list[0]["next_run_human"].as_str().unwrap().starts_with("in "), "{list}");

    // Pause (file ones too), resume; unknown names are 404.
    assert_eq!(post("/nightly/pause", "alice", json!({})).await.1["changed"], true);
    assert!(b.jobs.schedules().is_paused("nightly").await.unwrap());
    assert_eq!(post("/nightly/resume", "alice", json!({})).await.1["changed"], true);
    assert!(b.audited("alice schedule.pause nightly ok") && b.audited("alice schedule.resume nightly ok"));
    assert_eq!(post("/nope/pause", "alice", json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(post("/pinger/pause", "bob", json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post("/pinger/pause", "alice", json!({})).await.0, StatusCode::OK);
    assert_eq!(b.schedule("pinger").await["paused"], true);

    // A scheduler runs: the paused schedule's ticks are skipped and ledgered as such.
    let shutdown = Shutdown::new();
    let schedules = b.jobs.load_schedules(&b.file).unwrap();
    let run = tokio::spawn(eventmill_jobs::scheduler::run(Arc::new(b.jobs.scheduler(schedules)), shutdown.clone()));
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = b.schedule("pinger").await;
        if !detail["ledger"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let skipped = &detail["ledger"][0];
    assert_eq!((&skipped["enqueued"], &skipped["reason"]), (&json!(false), &json!("paused")), "{detail}");
    let (status, _, page) = b.form(Method::GET, "/jobs/schedules/pinger", "bob", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"ledger\"") && page.contains("tick skipped") && page.contains(">paused<"), "{page}");
    assert!(page.contains("<time datetime=\"") && page.contains(" UTC\">"), "the exact UTC time on hover: {page}");

    // Resumed: its two runs (its limit), each in the ledger with its job and outcome.
    assert_eq!(post("/pinger/resume", "alice", json!({})).await.0, StatusCode::OK);
    for _ in 0..60 {
        if b.schedule("pinger").await["ended"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap();
    let detail = b.schedule("pinger").await;
    assert_eq!((&detail["ended"], &detail["runs"], &detail["next_run"]), (&json!(true), &json!(2), &Value::Null));
    let enqueued: Vec<&Value> = detail["ledger"].as_array().unwrap().iter().filter(|e| e["enqueued"] == true).collect();
    assert_eq!(enqueued.len(), 2, "{detail}");
    for entry in enqueued {
        let id = entry["job"].as_str().unwrap();
        assert_eq!(entry["outcome"], "waiting", "{entry}");
        assert!(entry["late_ms"].as_i64().unwrap() < 2000, "{entry}");
        let job = b.jobs.queues().job(id).await.unwrap().unwrap();
        assert_eq!((job.state, job.origin.starts_with("schedule:pinger@")), (JobState::Waiting, true));
    }

    // The list page: file one marked read-only with no remove, times for people with UTC titles.
    let (_, _, page) = b.form(Method::GET, "/jobs/schedules", "alice", "").await;
    assert!(page.contains("file · read-only") && page.contains("id=\"add-schedule\""), "{page}");
    assert!(!page.contains("/api/schedules/nightly/remove") && page.contains("/api/schedules/pinger/remove"));
    assert!(page.contains("title=\"") && page.contains(">in "), "{page}");
    let (_, _, page) = b.form(Method::GET, "/jobs/schedules", "bob", "").await;
    assert!(!page.contains("id=\"add-schedule\"") && !page.contains("/remove\""), "no actions for read-only");

    // Remove: confirmed only; a file schedule is refused with the fix.
    let (status, _) = post("/pinger/remove", "alice", json!({})).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert!(b.jobs.schedules().get("pinger").await.unwrap().is_some());
    let (status, body) = post("/nightly/remove", "alice", json!({ "confirm": true })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["message"].as_str().unwrap().contains("defined in scheduler.toml: edit the file"), "{body}");
    assert_eq!(post("/pinger/remove", "alice", json!({ "confirm": true })).await.0, StatusCode::OK);
    assert!(b.audited("alice schedule.remove pinger ok"));
    let (status, _) = b.call(Method::GET, "/jobs/api/schedules/pinger", "bob", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The add form: CSRF-checked for a session viewer, answered with a redirect and a flash.
    let form = "name=weekly&cron=0+8+*+*+1&every=&timezone=Europe%2FBerlin&start=&end=&limit=&misfire=skip\
                &job=%7B%22job_type%22%3A%22SEND_WELCOME%22%2C%22user_id%22%3A%22w%22%7D&return_to=%2Fjobs%2Fschedules";
    let (status, _, _) = b.form(Method::POST, "/jobs/api/schedules", "carol", form).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    assert!(b.jobs.schedules().get("weekly").await.unwrap().is_none());
    let (status, location, _) = b.form(Method::POST, "/jobs/api/schedules", "carol", &format!("csrf=tok&{form}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/jobs/schedules?flash=Schedule+weekly+created"), "{location}");
    let weekly = b.jobs.schedules().get("weekly").await.unwrap().unwrap();
    assert_eq!((weekly.cron.as_deref(), weekly.timezone.as_deref()), (Some("0 8 * * 1"), Some("Europe/Berlin")));
    assert_eq!(weekly.misfire, eventmill_jobs::scheduler::Misfire::Skip);
    let _ = b.jobs.schedules().remove("weekly").await;
    std::fs::remove_file(&b.file).ok();
}
