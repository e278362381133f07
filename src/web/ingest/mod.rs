//! HTTP in (SPEC section 4): `POST /v1/events` and `POST /v1/events/bulk`.
//!
//! A request is checked whole (key, content type, size, JSON, every event) before anything is
//! appended to the stream, so a rejected request stores nothing; an accepted one is in the stream
//! (all of it, atomically) before the 202 leaves.

pub(crate) mod handlers;
pub mod schema;

use axum::{Router, routing::post};

use super::{ApiError, AppState, auth};

/// The ingestion routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", post(handlers::ingest_one)).route("/v1/events/bulk", post(handlers::ingest_bulk))
}
