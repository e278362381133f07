//! eventmill-jobs in an axum service of your own (not eventmill): the service's state, a handler
//! that enqueues a job and answers 202, the worker and a cron schedule in the same process, and the
//! queue board mounted under `/jobs` behind the service's own login.
//!
//! ```text
//! SHOP_REDIS_URL=redis://127.0.0.1:6379 SHOP_PASSWORD=secret cargo run -p eventmill-jobs --example axum_app
//! curl -X POST localhost:3000/orders -d '{"order_id":"o-1"}' -H 'content-type: application/json'
//! open http://localhost:3000/login?password=secret, then http://localhost:3000/jobs/
//! ```

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use eventmill_jobs::{
    JobContext, JobError, Jobs, JobsSettings, Processor, QueueSpec, Registry,
    board::{self, Viewer},
    scheduler, shutdown,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the jobs use: here, the receipts sent so far (a real service has its mailer, pool...).
#[derive(Default)]
struct Shop {
    receipts: Mutex<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    order_id: String,
}

/// SEND_RECEIPT: one per order, enqueued by the HTTP handler.
struct SendReceipt;

impl Processor<Shop> for SendReceipt {
    type Payload = Order;
    const NAME: &'static str = "SEND_RECEIPT";
    const QUEUE: &'static str = "shop";

    async fn process(&self, ctx: &JobContext<Shop>, order: Order) -> Result<Value, JobError> {
        ctx.state().receipts.lock().expect("not poisoned").push(order.order_id.clone());
        Ok(json!({ "receipt_for": order.order_id }))
    }
}

/// DAILY_SALES: the cron schedule's job (`SHOP_SALES_CRON`, nightly by default).
struct DailySales;

impl Processor<Shop> for DailySales {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "DAILY_SALES";
    const QUEUE: &'static str = "shop";

    async fn process(&self, ctx: &JobContext<Shop>, _: Self::Payload) -> Result<Value, JobError> {
        Ok(json!({ "receipts": ctx.state().receipts.lock().expect("not poisoned").len() }))
    }
}

/// The HTTP handlers' state: the service's own, with the jobs handle in it.
#[derive(Clone)]
struct AppState {
    jobs: Jobs<Shop>,
    password: Arc<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let registry =
        Registry::new().queue(QueueSpec::new("shop").concurrency(4)).register(SendReceipt).register(DailySales);
    let jobs = Jobs::connect(JobsSettings::from_env("SHOP", &registry)?, registry)?;
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let cron = env("SHOP_SALES_CRON", "0 2 * * *");
    let schedules = format!(
        "[[schedule]]\nname = \"daily-sales\"\ncron = \"{cron}\"\n[schedule.job]\njob_type = \"DAILY_SALES\"\n"
    );
    let schedules =
        scheduler::config::parse(&schedules, Path::new("."), jobs.registry().catalog()).map_err(anyhow::Error::msg)?;
    let state = AppState { jobs: jobs.clone(), password: Arc::new(env("SHOP_PASSWORD", "change-me")) };

    let board_state = jobs.board("/jobs").title("shop jobs").schedules({
        let (jobs, schedules) = (jobs.clone(), schedules.clone());
        move || Ok(jobs.scheduler(schedules.clone()))
    });
    let board = board::router(board_state).layer(middleware::from_fn_with_state(state.clone(), require_login));
    let app = Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{job}", get(order_status))
        .route("/login", get(login))
        .nest("/jobs", board)
        .with_state(state);

    let addr: SocketAddr = env("SHOP_ADDR", "127.0.0.1:3000").parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = shutdown::on_signal();
    let worker = tokio::spawn({
        let (jobs, shutdown) = (jobs.clone(), shutdown.clone());
        async move { jobs.run_workers(Arc::new(Shop::default()), shutdown).await }
    });
    let cron = tokio::spawn(scheduler::run(Arc::new(jobs.scheduler(schedules)), shutdown.clone()));
    axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await?;
    worker.await??;
    cron.await??;
    Ok(())
}

/// `POST /orders`: the receipt is a job; 202 once it is in Redis.
async fn create_order(State(app): State<AppState>, Json(order): Json<Order>) -> Response {
    match app.jobs.enqueue::<SendReceipt>(&order).await {
        Ok(enqueued) => (StatusCode::ACCEPTED, Json(json!({ "job": enqueued.id }))).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": error.to_string() }))).into_response(),
    }
}

/// `GET /orders/{job}`: the receipt job's state and result.
async fn order_status(State(app): State<AppState>, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    match app.jobs.queues().job(&id).await {
        Ok(Some(job)) => Json(json!({ "state": job.state, "result": job.result })).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct Login {
    password: String,
}

/// `GET /login?password=..`: the service's own (deliberately simple) login, a session cookie.
async fn login(State(app): State<AppState>, Query(form): Query<Login>) -> Response {
    if form.password != *app.password {
        return (StatusCode::UNAUTHORIZED, "wrong password").into_response();
    }
    let cookie = format!("shop_session={}; HttpOnly; SameSite=Strict; Path=/", app.password);
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/jobs/".to_owned())]).into_response()
}

/// The service's auth in front of the board: a logged-in user is the board's admin.
async fn require_login(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let expected = format!("shop_session={}", app.password);
    let cookies = request.headers().get(header::COOKIE).and_then(|c| c.to_str().ok()).unwrap_or("");
    if !cookies.split(';').any(|c| c.trim() == expected) {
        return (StatusCode::UNAUTHORIZED, "log in first: /login?password=...").into_response();
    }
    request.extensions_mut().insert(Viewer::admin("shop admin"));
    next.run(request).await
}
