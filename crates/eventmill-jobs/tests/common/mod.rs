//! What the board's test binaries share: the test app's "auth" in front of the board.

use axum::{extract::Request, middleware::Next, response::Response};
use eventmill_jobs::board::Viewer;

/// The test shop's "auth": header `x-user: alice` is an admin, `bob` may only look, anyone else is
/// nobody (no viewer set: the board must refuse on its own).
pub async fn trivial_auth(mut request: Request, next: Next) -> Response {
    let viewer = match request.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        Some("alice") => Some(Viewer::admin("alice")),
        Some("bob") => Some(Viewer::read_only("bob")),
        _ => None,
    };
    if let Some(viewer) = viewer {
        request.extensions_mut().insert(viewer);
    }
    next.run(request).await
}
