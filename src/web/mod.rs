//! The one HTTP layer: one `AppState`, one error type (`error`), shared authentication (`auth`),
//! and one folder per area, each exposing `router()`: `ingest` (events in), `admin` (queue admin
//! view, the job framework's board nested in it), `health`, `openapi`. They are merged in one
//! place, `router()`, with request ids and tracing on every request and graceful shutdown. Areas depend on this module, never on each other.

pub mod error;
pub mod auth;
pub mod ingest;
pub mod query;
pub mod dashboard;
pub mod admin;
pub mod health;
mod redis_health;
pub mod metrics;
pub mod openapi;
pub mod limits;

pub use error::ApiError;

use std::{net::SocketAddr, sync::Arc};

use crate::redis_conn::RedisConn;
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    http::{Request, StatusCode, request::Parts},
    serve::ListenerExt,
};
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    settings::Settings,
    shutdown::Shutdown,
    stream::{Producer, StreamKeys},
};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub producer: Producer,
    pub redis: RedisConn,
    pub pool: PgPool,
    /// The first stream shard (and the live counters').
    pub keys: StreamKeys,
    /// Every stream shard, the first included.
    pub shards: std::sync::Arc<Vec<StreamKeys>>,
    /// The job queues (for the admin view).
    pub queues: crate::queue::Queues,
    /// The admin token in force (configured, or generated at start); see `auth`.
    pub admin_token: SecretString,
    /// Refused admin logins in a row: each one waits longer (`admin::pages`).
    pub login_failures: Arc<std::sync::atomic::AtomicU32>,
    /// The live counters' once-a-second read, shared by every SSE client of this process.
    pub feed: crate::live::Feed,
    /// Redis' memory and policy as last read, and the refusals writers met (health, ingestion).
    pub redis_watch: crate::redis_limits::RedisWatch,
    /// The job framework's board (the queue pages), nested at `/admin` (`admin::board_state`).
    pub board: eventmill_jobs::board::BoardState,
}

/// The board's actions, and eventmill's own (dead-letter replays) taken through the board's
/// `Action`, read it from the app's state.
impl axum::extract::FromRef<AppState> for eventmill_jobs::board::BoardState {
    fn from_ref(state: &AppState) -> Self {
        state.board.clone()
    }
}

/// The request id (from `X-Request-ID`, or generated) of the request being handled.
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(Self(id.to_owned()))
    }
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.ingest.body_limit_bytes;
    let timeout = state.settings.ingest.request_timeout;
    Router::new()
        .merge(ingest::router())
        .merge(query::router())
        .merge(dashboard::router())
        .merge(health::router())
        .merge(openapi::router())
        .merge(admin::router(&state))
        .merge(metrics::router())
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        // A request (its body included) not answered in time, i.e. a client sending too slowly.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            let span =
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id);
            // A caller's W3C trace context: the request, and what it enqueues or appends, join it
            // (a no-op without an OpenTelemetry layer; see `telemetry`).
            if let Some(parent) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
                eventmill_jobs::queue::trace::set_parent(&span, parent);
            }
            span
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves until shutdown; in-flight requests finish first.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: Shutdown) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "HTTP server listening");
    let listener = limits::CappedListener::new(listener, state.settings.ingest.max_connections).tap_io(|_| {});
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    tracing::info!("HTTP server stopped");
    Ok(())
}
