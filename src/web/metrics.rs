//! `GET /metrics` (Prometheus text): on the API behind the admin or read-only token, and on
//! `EVENTMILL_METRICS_ADDR` without a token for scrapers on a private network (every `serve`,
//! `worker` and `run` process can listen there, so a worker's job and storage counters are seen).
//! Also the middleware that times every HTTP request.

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use super::{AppState, auth};
use crate::{metrics, shutdown::Shutdown};

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` on the API: the admin or read-only token, as the query API.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(protected))
}

async fn protected(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if auth::authenticate(&state, &headers).is_none() {
        let body = "send the admin or read-only token as `Authorization: Bearer <token>` \
                    (or scrape EVENTMILL_METRICS_ADDR, which needs none)\n";
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
    }
    scrape(&state).await
}

async fn open(State(state): State<AppState>) -> Response {
    scrape(&state).await
}

/// Reads the stream and queue gauges from Redis, then renders every metric.
async fn scrape(state: &AppState) -> Response {
    if let Err(error) = refresh_gauges(state).await {
        // The counters are still worth having; the stale gauges say Redis was not readable.
        tracing::warn!(%error, "metrics: could not read the stream and queue sizes from Redis");
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))], metrics::render()).into_response()
}

async fn refresh_gauges(state: &AppState) -> anyhow::Result<()> {
    metrics::set_stream(super::health::stream_backlog(state).await?);
    // Measures every SLO and sets eventmill_job_slo_* (breaches starting or ending are logged once).
    state.queues.evaluate_slos().await?;
    for queue in state.queues.all() {
        let c = queue.counts().await?;
        let states = [
            ("waiting", c.waiting),
            ("waiting-children", c.waiting_children),
            ("delayed", c.delayed),
            ("active", c.active),
            ("completed", c.completed),
            ("failed", c.failed),
        ];
        for (name, count) in states {
            metrics::set_queue_jobs(queue.name, name, count);
        }
    }
    Ok(())
}

/// Middleware: counts and times every request by its route template (bounded label values).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16();
    metrics::http_request(route, status, started.elapsed());
    match route {
        "/v1/events" => metrics::ingest_request("single", status),
        "/v1/events/bulk" => metrics::ingest_request("bulk", status),
        _ => {}
    }
    response
}

/// Serves `/metrics` alone, without a token, on `listener` until shutdown.
pub async fn serve_open(listener: TcpListener, state: AppState, shutdown: Shutdown) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "metrics listening (no token: keep this address private)");
    let app = Router::new().route("/metrics", get(open)).with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
