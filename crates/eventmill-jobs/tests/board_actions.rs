//! The board's bulk actions over real Redis (`EVENTMILL_REDIS_URL`, as `scripts/test.sh` sets
//! it), in the style of `board.rs`: a plain axum app mounts the board behind a trivial auth layer
//! (`x-user: alice` is an admin, `bob` may only look). Jobs are run by the framework's own workers;
//! only their finish times are moved into the past, as if they had finished hours ago.

#![cfg(feature = "board")]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    middleware,
};
use eventmill_jobs::{
    DedupMode, EnqueueOptions, JobContext, JobError, JobState, Jobs, JobsSettings, Processor, QueueSpec, Registry,
    board,
    queue::{DataEdit, key_base, now_ms},
    shutdown::Shutdown,
};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tower::ServiceExt;

use common::trivial_auth;

struct Shop;

#[derive(Serialize, Deserialize)]
struct Welcome {
    user_id: String,
}

/// Completes, with a log line; a user id starting with `fail` fails for good, one starting with
/// `slow` runs for 1.5 s first.
struct SendWelcome;
impl Processor<Shop> for SendWelcome {
    type Payload = Welcome;
    const NAME: &'static str = "SEND_WELCOME";
    const QUEUE: &'static str = "emails";
    async fn process(&self, ctx: &JobContext<Shop>, job: Welcome) -> Result<Value, JobError> {
        ctx.log(format!("welcoming {}", job.user_id));
        if job.user_id.starts_with("slow") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        if job.user_id.starts_with("fail") {
            return Err(JobError::permanent("no such user"));
        }
        Ok(json!({ "sent": true }))
    }
}

struct Shop2 {
    jobs: Jobs<Shop>,
    prefix: String,
    app: Router,
    audit: Arc<Mutex<Vec<String>>>,
}

fn shop() -> Shop2 {
    let registry =
        Registry::new().queue(QueueSpec::new("emails")).queue(QueueSpec::new("images")).register(SendWelcome);
    let prefix = format!("boardacts{:x}", rand::random::<u64>());
    let settings =
        JobsSettings::from_lookup("SHOP", &registry.kind_names(), &registry.queue_names(), |key| match key {
            "SHOP_REDIS_URL" => std::env::var("EVENTMILL_REDIS_URL").ok(),
            "SHOP_REDIS_CLUSTER" => std::env::var("EVENTMILL_REDIS_CLUSTER").ok(),
            "SHOP_REDIS_PREFIX" => Some(prefix.clone()),
            "SHOP_JOB_IDLE_CHECK_MS" => Some("200".into()),
            _ => None,
        })
        .unwrap();
    let jobs = Jobs::connect(settings, registry).unwrap();
    let audit = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = audit.clone();
    let state = jobs.board("/jobs").audit(move |entry| {
        let who = entry.viewer.map_or("nobody", |v| v.name.as_str());
        seen.lock().unwrap().push(format!("{who} {} {}", entry.action, entry.outcome.as_str()));
    });
    let app = Router::new().nest("/jobs", board::router(state).layer(middleware::from_fn(trivial_auth)));
    Shop2 { jobs, prefix, app, audit }
}

impl Shop2 {
    /// A JSON call as `user`.
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

    /// A form post (or a page, with `GET`) as `user`: the status, the `Location` and the body.
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

    async fn enqueue(&self, user_id: &str) -> String {
        self.jobs.enqueue::<SendWelcome>(&Welcome { user_id: user_id.into() }).await.unwrap().id
    }

    /// A job due in an hour.
    async fn enqueue_delayed(&self, user_id: &str) -> String {
        let options = EnqueueOptions { delay: Some(HOUR), ..Default::default() };
        self.jobs.enqueue_with::<SendWelcome>(&Welcome { user_id: user_id.into() }, options).await.unwrap().id
    }

    /// Runs the workers until `completed` and `failed` jobs of `emails` are finished.
    async fn run_until(&self, completed: u64, failed: u64) {
        let shutdown = Shutdown::new();
        let mut parts = JoinSet::new();
        self.jobs.spawn_workers(self.jobs.dispatch(Arc::new(Shop)), &mut parts, &shutdown).unwrap();
        let queue = self.jobs.queues().named("emails").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let counts = queue.counts().await.unwrap();
            if counts.completed == completed && counts.failed == failed {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "jobs did not finish: {counts:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        shutdown.cancel();
        while let Some(done) = parts.join_next().await {
            done.unwrap().unwrap();
        }
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", key_base(&self.prefix))
    }

    /// Moves job `id`'s finish into the past, as if it had finished `ago` before now.
    async fn finished_ago(&self, id: &str, set: &str, ago: Duration) {
        let at = now_ms() - ago.as_millis() as i64;
        let mut redis = self.jobs.redis().clone();
        let _: () = redis::pipe()
            .cmd("ZADD")
            .arg(self.key(&format!("emails:{set}")))
            .arg("XX")
            .arg(at)
            .arg(id)
            .ignore()
            .hset(self.key(&format!("job:{id}")), "finished_at", at)
            .ignore()
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    /// Whether job `id`'s hash and its log are in Redis.
    async fn stored(&self, id: &str) -> (bool, bool) {
        let mut redis = self.jobs.redis().clone();
        let hash: bool = redis.exists(self.key(&format!("job:{id}"))).await.unwrap();
        let log: bool = redis.exists(self.key(&format!("job:{id}:log"))).await.unwrap();
        (hash, log)
    }

    /// Job `id`'s payload.
    async fn data(&self, id: &str) -> Value {
        self.jobs.queues().job(id).await.unwrap().unwrap().payload
    }

    /// Enqueues under simple deduplication key `key`, delayed by `delay`: the id, and whether it
    /// is a new job.
    async fn enqueue_simple(&self, user_id: &str, key: &str, delay: Option<Duration>) -> (String, bool) {
        let options =
            EnqueueOptions { idempotency_key: Some(key.into()), dedup: DedupMode::Simple, delay, ..Default::default() };
        let enqueued =
            self.jobs.enqueue_with::<SendWelcome>(&Welcome { user_id: user_id.into() }, options).await.unwrap();
        (enqueued.id, enqueued.created)
    }

    /// The job id deduplication key `key` names in Redis (`None`: no such key).
    async fn key_holder(&self, key: &str) -> Option<String> {
        let mut redis = self.jobs.redis().clone();
        redis.get(self.key(&format!("idempotency:{key}"))).await.unwrap()
    }

    fn audit(&self) -> Vec<String> {
        self.audit.lock().unwrap().clone()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn clean_removes_only_the_finished_jobs_older_than_the_age_after_asking_and_never_for_a_read_only_viewer() {
    let shop = shop();
    let mut done = Vec::new();
    for i in 0..5 {
        done.push(shop.enqueue(&format!("u{i}")).await);
    }
    let failed = [shop.enqueue("fail-0").await, shop.enqueue("fail-1").await];
    shop.run_until(5, 2).await;
    // Three completed jobs finished 2 h and 2 days ago, one failed job 3 h ago; the rest just now.
    shop.finished_ago(&done[0], "completed", 2 * HOUR).await;
    shop.finished_ago(&done[1], "completed", 2 * HOUR).await;
    shop.finished_ago(&done[2], "completed", 48 * HOUR).await;
    shop.finished_ago(&failed[0], "failed", 3 * HOUR).await;
    assert_eq!(shop.stored(&done[0]).await, (true, true), "a finished job has its hash and its log");
    let queue = shop.jobs.queues().named("emails").unwrap();
    let url = "/jobs/api/queues/emails/clean";
    let body = json!({ "state": "completed", "older_than": "1h" });

    let (status, answer) = shop.call(Method::POST, url, "bob", body.clone()).await;
    assert_eq!(status, 403, "read-only: {answer}");
    let (status, answer) = shop.call(Method::POST, url, "alice", body.clone()).await;
    assert_eq!(status, 428, "asks first: {answer}");
    assert!(answer["message"].as_str().unwrap().contains("completed jobs of queue emails"), "{answer}");
    let (status, answer) =
        shop.call(Method::POST, url, "alice", json!({ "state": "active", "older_than": "1h", "confirm": true })).await;
    assert_eq!(status, 422, "only finished jobs: {answer}");
    let (status, answer) = shop
        .call(Method::POST, url, "alice", json!({ "state": "completed", "older_than": "soon", "confirm": true }))
        .await;
    assert_eq!(status, 422, "an age it cannot read: {answer}");
    assert_eq!(queue.counts().await.unwrap().completed, 5, "nothing removed so far");

    let (status, answer) = shop
        .call(Method::POST, url, "alice", json!({ "state": "completed", "older_than": "1h", "confirm": true }))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "queue": "emails", "state": "completed", "older_than": "1h", "removed": 3 }));
    for id in &done[..3] {
        assert_eq!(shop.stored(id).await, (false, false), "job {id} (older than 1 h) is gone with its log");
    }
    for id in &done[3..] {
        assert_eq!(shop.stored(id).await, (true, true), "job {id} (finished just now) is kept");
    }
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.completed, counts.failed), (2, 2), "the failed jobs were not touched");
    let listed: Vec<String> = queue.ids(JobState::Completed, 10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    // The page's form: a confirmation page first, then the redirect with its flash.
    let (status, _, page) = shop.form(Method::GET, "/jobs/queues/emails?state=failed", "alice", "").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="clean-form""#) && page.contains(r#"<option value="failed" selected>"#), "{page}");
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails", "bob", "").await;
    assert!(!page.contains("clean-form"), "no clean form for a read-only viewer");
    let form = "state=failed&older_than=2h&return_to=%2Fjobs%2Fqueues%2Femails%3Fstate%3Dfailed";
    let (status, _, page) = shop.form(Method::POST, url, "alice", form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Are you sure?") && page.contains(r#"name="older_than" value="2h""#), "{page}");
    assert_eq!(queue.counts().await.unwrap().failed, 2, "nothing removed before the answer");
    let (status, location, _) = shop.form(Method::POST, url, "alice", &format!("{form}&confirm=yes")).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/jobs/queues/emails?state=failed&flash=1+failed+job"), "{location}");
    assert_eq!(shop.stored(&failed[0]).await, (false, false), "the failed job of 3 h ago is gone");
    assert_eq!(shop.stored(&failed[1]).await, (true, true), "the one of just now is kept");

    assert_eq!(
        shop.audit(),
        [
            "bob /jobs/api/queues/emails/clean refused",
            "alice queue.clean confirmation asked",
            "alice queue.clean error",
            "alice queue.clean error",
            "alice queue.clean ok",
            "alice queue.clean confirmation asked",
            "alice queue.clean ok",
        ]
    );
}

#[tokio::test]
async fn a_clean_step_removes_at_most_its_limit_oldest_first_and_says_whether_more_are_left() {
    let shop = shop();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(shop.enqueue(&format!("u{i}")).await);
    }
    shop.run_until(5, 0).await;
    for (i, id) in ids.iter().enumerate() {
        shop.finished_ago(id, "completed", (10 - i as u32) * HOUR).await;
    }
    let queue = shop.jobs.queues().named("emails").unwrap();
    let before = now_ms() - 6 * 3_600_000 - 60_000; // ids[0..4] finished 10 h to 7 h ago
    let step = queue.clean_step(JobState::Completed, before, 2).await.unwrap();
    assert_eq!((step.done, step.more), (2, true));
    assert_eq!((shop.stored(&ids[0]).await.0, shop.stored(&ids[1]).await.0), (false, false), "the oldest two went");
    assert!(shop.stored(&ids[2]).await.0);
    let step = queue.clean_step(JobState::Completed, before, 2).await.unwrap();
    assert_eq!((step.done, step.more), (2, false));
    let step = queue.clean_step(JobState::Completed, before, 2).await.unwrap();
    assert_eq!((step.done, step.more), (0, false));
    assert!(shop.stored(&ids[4]).await.0, "the job of 6 h ago is kept");
    assert!(queue.clean_step(JobState::Waiting, before, 2).await.is_err(), "only finished states are cleaned");
}

#[tokio::test]
async fn pause_all_and_resume_all_reach_every_queue_and_a_read_only_viewer_changes_nothing() {
    let shop = shop();
    let paused = |name: &'static str| {
        let queue = shop.jobs.queues().named(name).unwrap().clone();
        async move { queue.counts().await.unwrap().paused }
    };
    let (status, answer) = shop.call(Method::POST, "/jobs/api/queues/pause-all", "bob", json!({})).await;
    assert_eq!(status, 403, "{answer}");
    assert!(!paused("emails").await && !paused("images").await);
    let (status, answer) = shop.call(Method::POST, "/jobs/api/queues/pause-all", "alice", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "queues": ["emails", "images"], "paused": true }));
    assert!(paused("emails").await && paused("images").await, "every queue paused");
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues", "alice", "").await;
    assert!(page.contains(r#"id="pause-all""#) && page.contains(r#"id="resume-all""#), "{page}");
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues", "bob", "").await;
    assert!(!page.contains("pause-all"), "no buttons for a read-only viewer");
    let (status, location, _) =
        shop.form(Method::POST, "/jobs/api/queues/resume-all", "alice", "return_to=%2Fjobs%2Fqueues").await;
    assert_eq!((status.as_u16(), location.as_str()), (303, "/jobs/queues?flash=All+2+queue%28s%29+resumed."));
    assert!(!paused("emails").await && !paused("images").await, "every queue resumed");
    assert_eq!(
        shop.audit(),
        ["bob /jobs/api/queues/pause-all refused", "alice queues.pause_all ok", "alice queues.resume_all ok"]
    );
}

#[tokio::test]
async fn promote_all_runs_every_delayed_job_now_and_empty_removes_waiting_and_delayed_jobs_after_asking() {
    let shop = shop();
    let waiting = [shop.enqueue("w0").await, shop.enqueue("w1").await];
    let delayed =
        [shop.enqueue_delayed("d0").await, shop.enqueue_delayed("d1").await, shop.enqueue_delayed("d2").await];
    let queue = shop.jobs.queues().named("emails").unwrap();
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (2, 3));
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails?state=delayed", "alice", "").await;
    assert!(page.contains(r#"id="promote-all""#) && page.contains(r#"id="empty""#), "{page}");

    let promote = "/jobs/api/queues/emails/promote-all";
    let (status, _) = shop.call(Method::POST, promote, "bob", json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(queue.counts().await.unwrap().delayed, 3, "nothing promoted by a read-only viewer");
    let (status, answer) = shop.call(Method::POST, promote, "alice", json!({})).await;
    assert_eq!((status.as_u16(), answer), (200, json!({ "promoted": 3 })));
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (5, 0));
    let line = queue.ids(JobState::Waiting, 10).await.unwrap();
    assert_eq!(line, [&waiting[..], &delayed[..]].concat(), "promoted jobs join the line after those waiting");
    let job = shop.jobs.queues().job(&delayed[0]).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Waiting);
    assert!(job.run_at.unwrap() <= now_ms(), "due now");

    let later = shop.enqueue_delayed("d3").await;
    let empty = "/jobs/api/queues/emails/empty";
    let (status, _) = shop.call(Method::POST, empty, "bob", json!({ "confirm": true })).await;
    assert_eq!(status, 403);
    let (status, answer) = shop.call(Method::POST, empty, "alice", json!({})).await;
    assert_eq!(status, 428, "asks first: {answer}");
    assert_eq!(queue.counts().await.unwrap().waiting, 5, "nothing removed before the answer");
    let (status, answer) = shop.call(Method::POST, empty, "alice", json!({ "confirm": true })).await;
    assert_eq!((status.as_u16(), answer), (200, json!({ "removed": 6 })));
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.delayed), (0, 0));
    for id in waiting.iter().chain(&delayed).chain([&later]) {
        assert_eq!(shop.stored(id).await, (false, false), "job {id} is gone");
    }
    assert_eq!(
        shop.audit(),
        [
            "bob /jobs/api/queues/emails/promote-all refused",
            "alice queue.promote_all ok",
            "bob /jobs/api/queues/emails/empty refused",
            "alice queue.empty confirmation asked",
            "alice queue.empty ok",
        ]
    );
}

#[tokio::test]
async fn emptying_leaves_finished_jobs_alone() {
    let shop = shop();
    let done = shop.enqueue("u0").await;
    shop.run_until(1, 0).await;
    let waiting = shop.enqueue("u1").await;
    let queue = shop.jobs.queues().named("emails").unwrap();
    assert_eq!(queue.empty().await.unwrap(), 1);
    assert!(!shop.stored(&waiting).await.0, "the waiting job is gone");
    assert_eq!(shop.stored(&done).await, (true, true), "the completed job stays");
}

#[tokio::test]
async fn the_redis_panel_shows_each_masters_version_memory_eviction_policy_and_clients() {
    let shop = shop();
    let (status, answer) = shop.call(Method::GET, "/jobs/api/redis", "bob", json!({})).await;
    assert_eq!(status, 200, "a read-only viewer sees it: {answer}");
    let nodes = answer["nodes"].as_array().unwrap();
    let mut redis = shop.jobs.redis().clone();
    // scripts/services.sh's local cluster has 3 masters.
    let masters = if redis.is_cluster() { 3 } else { 1 };
    assert_eq!(nodes.len(), masters, "one entry per master: {answer}");
    let mut info = redis::cmd("INFO");
    info.arg("server");
    let info: Vec<String> = redis.on_every_master(&info).await.unwrap();
    let version = info[0].lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap().trim();
    for node in nodes {
        assert_eq!(node["version"], version, "{node}");
        assert!(node["used_memory"].as_u64().unwrap() > 0, "{node}");
        assert!(node["maxmemory"].is_u64() && !node["maxmemory_policy"].as_str().unwrap().is_empty(), "{node}");
        assert!(node["connected_clients"].as_u64().unwrap() >= 1, "at least this test's connection: {node}");
        assert!(node["port"].is_u64(), "{node}");
    }
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues", "bob", "").await;
    assert!(page.contains(r#"id="redis""#) && page.contains(&format!(r#"<td class="redis-version">{version}</td>"#)));
    let request = Request::builder().uri("/jobs/api/redis").body(Body::empty()).unwrap();
    assert_eq!(shop.app.clone().oneshot(request).await.unwrap().status(), 401, "no viewer, no panel");
}

#[tokio::test]
async fn each_job_in_a_list_shows_its_timeline_added_waited_started_ran_finished() {
    let shop = shop();
    let (plain, delayed) = (shop.enqueue("u0").await, shop.enqueue("u1").await);
    shop.run_until(2, 0).await;
    let waiting = shop.enqueue("u2").await;
    // Known times: added at t; `plain` started 1.5 s later and ran 3 min 4 s; `delayed` was due
    // a minute after it was added (its wait counts from then), started 2 s after that, ran 850 ms.
    let t: i64 = 1_780_000_000_000;
    let mut redis = shop.jobs.redis().clone();
    let times = [(&plain, [t, t, t + 1_500, t + 1_500 + 184_000]), (&delayed, [t, t + 60_000, t + 62_000, t + 62_850])];
    for (id, [created, run_at, started, finished]) in times {
        let fields = [("created_at", created), ("run_at", run_at), ("started_at", started), ("finished_at", finished)];
        let _: () = redis.hset_multiple(shop.key(&format!("job:{id}")), &fields).await.unwrap();
    }

    let (status, list) = shop.call(Method::GET, "/jobs/api/queues/emails/jobs?state=completed", "bob", json!({})).await;
    assert_eq!(status, 200, "{list}");
    let row = |id: &str| list["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
    let plain_row = row(&plain);
    assert_eq!((plain_row["waited_ms"].as_i64(), plain_row["ran_ms"].as_i64()), (Some(1_500), Some(184_000)));
    assert_eq!(plain_row["created"], "2026-05-28 20:26:40.000Z");
    assert_eq!(plain_row["started"], "2026-05-28 20:26:41.500Z");
    assert_eq!(plain_row["finished"], "2026-05-28 20:29:45.500Z");
    let delayed_row = row(&delayed);
    assert_eq!(
        (delayed_row["waited_ms"].as_i64(), delayed_row["ran_ms"].as_i64()),
        (Some(2_000), Some(850)),
        "waited from its run-at time, not from when it was added"
    );

    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails?state=completed", "bob", "").await;
    assert!(page.contains("waited <b>1.5 s</b>, started <time>2026-05-28 20:26:41.500Z</time>"), "{page}");
    assert!(page.contains("ran <b>3 min 4 s</b>, finished <time>2026-05-28 20:29:45.500Z</time>"), "{page}");
    assert!(page.contains("waited <b>2.0 s</b>") && page.contains("ran <b>850 ms</b>"), "{page}");

    let (_, list) = shop.call(Method::GET, "/jobs/api/queues/emails/jobs?state=waiting", "bob", json!({})).await;
    let row = &list["jobs"][0];
    assert_eq!(row["id"], waiting.as_str());
    assert!(row["waited_ms"].is_null() && row["ran_ms"].is_null() && row["started"] == "", "not run yet: {row}");
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails?state=waiting", "bob", "").await;
    assert!(page.contains(r#"<li class="added">added"#) && !page.contains(r#"<li class="waited">"#), "{page}");

    // The job page shows the same timeline, and its API the two durations.
    let (_, _, page) = shop.form(Method::GET, &format!("/jobs/jobs/{plain}"), "bob", "").await;
    assert!(page.contains(r#"id="timeline""#), "{page}");
    assert!(page.contains("waited <b>1.5 s</b>") && page.contains("ran <b>3 min 4 s</b>"), "{page}");
    let (_, job) = shop.call(Method::GET, &format!("/jobs/api/jobs/{delayed}"), "bob", json!({})).await;
    assert_eq!((job["waited_ms"].as_i64(), job["ran_ms"].as_i64()), (Some(2_000), Some(850)), "{job}");
}

#[tokio::test]
async fn a_waiting_or_failed_jobs_data_is_edited_checked_and_logged_and_a_running_or_completed_one_is_refused() {
    let shop = shop();
    let failed = shop.enqueue("fail-1").await;
    shop.run_until(0, 1).await;
    let waiting = shop.enqueue("u1").await;
    let queue = shop.jobs.queues().named("emails").unwrap();
    let url = |id: &str| format!("/jobs/api/jobs/{id}/data");

    let (status, answer) = shop.call(Method::POST, &url(&waiting), "bob", json!({ "data": { "user_id": "u2" } })).await;
    assert_eq!(status, 403, "read-only: {answer}");
    for (bad, why) in [
        (json!("{\"user_id\": "), "not valid JSON"),
        (json!([1]), "must be a JSON object"),
        (json!({ "user_id": 5 }), "not a valid SEND_WELCOME job"),
        (json!({ "user_id": "u2", "job_type": "RESIZE" }), "job_type cannot change"),
    ] {
        let (status, answer) = shop.call(Method::POST, &url(&waiting), "alice", json!({ "data": bad })).await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(why), "{bad}: {answer}");
    }
    assert_eq!(shop.data(&waiting).await["user_id"], "u1", "nothing changed by refused edits");

    let (status, answer) =
        shop.call(Method::POST, &url(&waiting), "alice", json!({ "data": { "user_id": "u2" } })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"], json!({ "user_id": "u2", "job_type": "SEND_WELCOME" }), "{answer}");
    assert_eq!(shop.data(&waiting).await, json!({ "user_id": "u2", "job_type": "SEND_WELCOME" }));
    let log = shop.jobs.queues().log(&waiting).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("data edited by alice (admin) at 20")
            && log[0].contains("was: {")
            && log[0].contains(r#""user_id":"u1""#),
        "{log:?}"
    );

    // A failed job, edited by the page's form (its text), then retried: it runs with the new data.
    let (status, _, page) = shop.form(Method::GET, &format!("/jobs/jobs/{failed}"), "alice", "").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"id="edit-data-form""#) && page.contains("Retry the job to run it with the new data"),
        "{page}"
    );
    let (_, _, page) = shop.form(Method::GET, &format!("/jobs/jobs/{failed}"), "bob", "").await;
    assert!(!page.contains("edit-data-form"), "no edit form for a read-only viewer");
    let form = format!("data=%7B%22user_id%22%3A%22ok-1%22%7D&return_to=%2Fjobs%2Fjobs%2F{failed}");
    let (status, location, _) = shop.form(Method::POST, &url(&failed), "alice", &form).await;
    assert_eq!(status, 303);
    assert!(location.starts_with(&format!("/jobs/jobs/{failed}?flash=Data+of+job+{failed}+edited.")), "{location}");
    let (status, _) = shop.call(Method::POST, &format!("/jobs/api/jobs/{failed}/retry"), "alice", json!({})).await;
    assert_eq!(status, 200);
    shop.run_until(2, 0).await; // and the waiting job
    let job = shop.jobs.queues().job(&failed).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Completed, "the retried job ran with the edited data");
    let log = shop.jobs.queues().log(&failed).await.unwrap();
    assert!(
        log.iter().any(|l| l.starts_with("data edited by alice")) && log.last().unwrap() == "welcoming ok-1",
        "{log:?}"
    );

    // A completed job, and one running.
    let (status, answer) = shop.call(Method::POST, &url(&failed), "alice", json!({ "data": { "user_id": "x" } })).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("is completed"), "{answer}");
    let slow = shop.enqueue("slow-1").await;
    let shutdown = Shutdown::new();
    let mut parts = JoinSet::new();
    shop.jobs.spawn_workers(shop.jobs.dispatch(Arc::new(Shop)), &mut parts, &shutdown).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shop.jobs.queues().job(&slow).await.unwrap().unwrap().state != JobState::Active {
        assert!(tokio::time::Instant::now() < deadline, "the slow job did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, answer) = shop.call(Method::POST, &url(&slow), "alice", json!({ "data": { "user_id": "x" } })).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("is active: it is running"), "{answer}");
    shutdown.cancel();
    while let Some(done) = parts.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(shop.data(&slow).await["user_id"], "slow-1");

    // Another change in between: the edit made against the old data changes nothing.
    let later = shop.enqueue("u3").await;
    let was = queue.raw_payload(&later).await.unwrap().unwrap();
    let answer = queue.edit_data(&later, "{\"user_id\":\"u0\"}", "{}", "x").await.unwrap();
    assert_eq!(answer, DataEdit::Changed);
    assert_eq!(queue.raw_payload(&later).await.unwrap().unwrap(), was);
    assert_eq!(queue.edit_data(&later, &was, "{}", "x").await.unwrap(), DataEdit::Edited, "against its data: done");
    assert_eq!(queue.edit_data("999999", "{}", "{}", "x").await.unwrap(), DataEdit::NotFound);
    let audit = shop.audit();
    assert_eq!(audit.iter().filter(|l| *l == "alice job.edit_data ok").count(), 2, "{audit:?}");
    assert!(audit.contains(&format!("bob /jobs/api/jobs/{waiting}/data refused")), "{audit:?}");
    assert!(audit.contains(&"alice job.edit_data error".to_owned()), "{audit:?}");
}

#[tokio::test]
async fn a_queues_global_concurrency_and_rate_limit_are_shown_changed_from_the_board_and_obeyed_by_every_worker() {
    let shop = shop();
    let queue = shop.jobs.queues().named("emails").unwrap();
    let url = "/jobs/api/queues/emails/limits";
    let shown = || async {
        let (_, queues) = shop.call(Method::GET, "/jobs/api/queues", "bob", json!({})).await;
        (queues[0]["global_concurrency"].clone(), queues[0]["rate_limit"].clone())
    };
    assert_eq!(shown().await, (Value::Null, Value::Null), "no limits declared");

    let (status, _) = shop.call(Method::POST, url, "bob", json!({ "rate_limit": "3/1m" })).await;
    assert_eq!(status, 403);
    for (bad, why) in [
        (json!({ "global_concurrency": "many" }), "whole number"),
        (json!({ "rate_limit": "fast" }), "jobs/duration"),
        (json!({}), "nothing to change"),
    ] {
        let (status, answer) = shop.call(Method::POST, url, "alice", bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(why), "{bad}: {answer}");
    }
    // Set before any worker ever started on the queue: the first start must not take it back.
    let (status, answer) =
        shop.call(Method::POST, url, "alice", json!({ "global_concurrency": 2, "rate_limit": "3/1m" })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "queue": "emails", "global_concurrency": 2, "rate_limit": "3/1m" }));
    assert_eq!(shown().await, (json!(2), json!("3/1m")));
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails", "alice", "").await;
    assert!(
        page.contains("rate limit 3/1m jobs (all workers)") && page.contains("at most 2 running at once"),
        "{page}"
    );
    assert!(page.contains(r#"id="limits-form""#) && page.contains(r#"value="3/1m""#), "{page}");
    let (_, _, page) = shop.form(Method::GET, "/jobs/queues/emails", "bob", "").await;
    assert!(!page.contains("limits-form"), "no form for a read-only viewer");

    // The workers (whose code declares no limit) start 3 of 5 jobs in this minute.
    for i in 0..5 {
        shop.enqueue(&format!("u{i}")).await;
    }
    let shutdown = Shutdown::new();
    let mut parts = JoinSet::new();
    shop.jobs.spawn_workers(shop.jobs.dispatch(Arc::new(Shop)), &mut parts, &shutdown).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while queue.counts().await.unwrap().completed < 3 {
        assert!(tokio::time::Instant::now() < deadline, "3 jobs did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.completed, counts.waiting), (3, 2), "the board's rate limit holds the other two");
    assert_eq!(shown().await, (json!(2), json!("3/1m")), "a worker's start kept the board's limits");

    // From the page's form: no rate limit, one job at a time; the held jobs run, one by one.
    let form = "global_concurrency=1&rate_limit=&return_to=%2Fjobs%2Fqueues%2Femails";
    let (status, location, _) = shop.form(Method::POST, url, "alice", form).await;
    assert_eq!(status, 303);
    assert!(
        location.contains("flash=Limits+of+queue+emails%3A+global+concurrency+1%2C+rate+limit+none."),
        "{location}"
    );
    assert_eq!(shown().await, (json!(1), Value::Null));
    shop.enqueue("slow-a").await;
    shop.enqueue("slow-b").await;
    let (mut most, mut seen_one_held) = (0, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let counts = queue.counts().await.unwrap();
        most = most.max(counts.active);
        seen_one_held |= counts.active == 1 && counts.waiting >= 1;
        if counts.completed == 7 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the jobs did not finish: {counts:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 1, "never more than one job running at once");
    assert!(seen_one_held, "a job waited while another ran");
    shutdown.cancel();
    while let Some(done) = parts.join_next().await {
        done.unwrap().unwrap();
    }
    let audit = shop.audit();
    assert_eq!(audit.iter().filter(|l| *l == "alice queue.limits ok").count(), 2, "{audit:?}");
    assert!(audit.contains(&"bob /jobs/api/queues/emails/limits refused".to_owned()), "{audit:?}");
}

// A simple deduplication key has no TTL: it lives while its job is pending. A job taken away
// before it finished (removed, cancelled waiting or running, emptied) lets go of its key at once,
// and cleaning a finished job that still holds one (left by an earlier version) deletes it: no key
// outlives its job, and the next enqueue with the key is a new job. (An enqueue already took a gone
// or cancelled job as finished, so nothing was refused before; the keys stayed in Redis for good.)

#[tokio::test]
async fn a_simple_dedup_key_is_let_go_when_the_board_removes_its_job() {
    let shop = shop();
    let (removed, _) = shop.enqueue_simple("u0", "remove-me", None).await;
    assert_eq!(shop.key_holder("remove-me").await, Some(removed.clone()), "the waiting job holds its key");
    let url = format!("/jobs/api/jobs/{removed}/remove");
    let (status, answer) = shop.call(Method::POST, &url, "alice", json!({ "confirm": true })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(shop.key_holder("remove-me").await, None, "a removed job lets go of its key");
    let (next, created) = shop.enqueue_simple("u0", "remove-me", None).await;
    assert!(created && next != removed, "the key enqueues a new job");
}

#[tokio::test]
async fn a_simple_dedup_key_is_let_go_when_the_board_cancels_its_job_waiting_delayed_or_running() {
    let shop = shop();
    let confirm = json!({ "confirm": true });
    let (waiting, _) = shop.enqueue_simple("u1", "cancel-waiting", None).await;
    let (delayed, _) = shop.enqueue_simple("u2", "cancel-delayed", Some(HOUR)).await;
    for (id, key) in [(&waiting, "cancel-waiting"), (&delayed, "cancel-delayed")] {
        let url = format!("/jobs/api/jobs/{id}/cancel");
        let (status, answer) = shop.call(Method::POST, &url, "alice", confirm.clone()).await;
        assert_eq!((status.as_u16(), &answer["cancelled"]), (200, &json!("removed")), "{answer}");
        assert_eq!(shop.key_holder(key).await, None, "a cancelled job lets go of its key {key}");
        let (next, created) = shop.enqueue_simple("u3", key, Some(HOUR)).await;
        assert!(created && &next != id, "the key {key} enqueues a new job");
    }

    // While running: the job ends `cancelled`, its key is let go before its processor stops.
    let (running, _) = shop.enqueue_simple("slow-7", "cancel-running", None).await;
    let shutdown = Shutdown::new();
    let mut parts = JoinSet::new();
    shop.jobs.spawn_workers(shop.jobs.dispatch(Arc::new(Shop)), &mut parts, &shutdown).unwrap();
    let started = async {
        while shop.jobs.queues().job(&running).await.unwrap().unwrap().state != JobState::Active {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), started).await.expect("the slow job starts");
    let url = format!("/jobs/api/jobs/{running}/cancel");
    let (status, answer) = shop.call(Method::POST, &url, "alice", confirm).await;
    assert_eq!((status.as_u16(), &answer["cancelled"]), (200, &json!("running")), "{answer}");
    assert_eq!(shop.key_holder("cancel-running").await, None, "a job cancelled while running lets go of its key");
    let (next, created) = shop.enqueue_simple("u4", "cancel-running", Some(HOUR)).await;
    assert!(created && next != running, "the key enqueues a new job");
    shutdown.cancel();
    while let Some(done) = parts.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(shop.jobs.queues().job(&running).await.unwrap().unwrap().state, JobState::Cancelled);
}

#[tokio::test]
async fn a_simple_dedup_key_is_let_go_when_the_board_empties_the_queue() {
    let shop = shop();
    let (waiting, _) = shop.enqueue_simple("u4", "empty-waiting", None).await;
    let (delayed, _) = shop.enqueue_simple("u5", "empty-delayed", Some(HOUR)).await;
    let url = "/jobs/api/queues/emails/empty";
    let (status, answer) = shop.call(Method::POST, url, "alice", json!({ "confirm": true })).await;
    assert_eq!((status.as_u16(), answer), (200, json!({ "removed": 2 })));
    assert_eq!(shop.key_holder("empty-waiting").await, None, "job {waiting} emptied, its key let go");
    assert_eq!(shop.key_holder("empty-delayed").await, None, "job {delayed} emptied, its key let go");
    let (next, created) = shop.enqueue_simple("u6", "empty-waiting", None).await;
    assert!(created && next != waiting, "the key enqueues a new job");
}

#[tokio::test]
async fn a_simple_dedup_key_left_on_a_finished_job_is_deleted_when_the_board_cleans_the_job() {
    let shop = shop();
    // A failed job lets go of its key when it fails; an earlier version left a cancelled job's
    // key behind, as set here.
    let (failed, _) = shop.enqueue_simple("fail-8", "clean-me", None).await;
    shop.run_until(0, 1).await;
    let mut redis = shop.jobs.redis().clone();
    let _: () = redis.set(shop.key("idempotency:clean-me"), &failed).await.unwrap();
    shop.finished_ago(&failed, "failed", 2 * HOUR).await;
    let body = json!({ "state": "failed", "older_than": "1h", "confirm": true });
    let (status, answer) = shop.call(Method::POST, "/jobs/api/queues/emails/clean", "alice", body).await;
    assert_eq!((status.as_u16(), &answer["removed"]), (200, &json!(1)), "{answer}");
    assert_eq!(shop.stored(&failed).await, (false, false), "the job is gone");
    assert_eq!(shop.key_holder("clean-me").await, None, "and the key it held");
}
