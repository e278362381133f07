//! eventmill's auth in front of the framework's board: the admin or read-only token (bearer or
//! login cookie, `web::auth`) becomes the board's `Viewer`; a caller without one gets what every
//! admin route gives (the login page, or 401 JSON from `/admin/api`). The board's audit records
//! become eventmill's audit lines (target `eventmill::audit`, fields `role`, `token`, `action`,
//! `subject`, `outcome`).

use axum::{
    extract::{OriginalUri, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use eventmill_jobs::board::{self, AuditEntry, AuditOutcome, Role as BoardRole, Viewer};

use super::error::IntoPage;
use crate::web::{
    ApiError, AppState,
    auth::{self, Principal, Role},
    error::TOKEN_REQUIRED,
};

/// The board's viewer for an authenticated caller: named by its token's fingerprint, with its
/// session's CSRF token.
pub fn viewer_of(principal: &Principal) -> Viewer {
    let viewer = match principal.role {
        Role::Admin => Viewer::admin(&principal.fingerprint),
        Role::Readonly => Viewer::read_only(&principal.fingerprint),
    };
    match &principal.csrf {
        Some(csrf) => viewer.with_csrf(csrf),
        None => viewer,
    }
}

/// Middleware: sets the `Viewer` of an authenticated caller, refuses anyone else (the board's
/// static assets excepted: the login page uses them).
pub async fn tell_the_board(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(principal) = auth::authenticate(&state, request.headers()) {
        request.extensions_mut().insert(viewer_of(&principal));
        return next.run(request).await;
    }
    if board::is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let original = request.extensions().get::<OriginalUri>().map_or_else(|| request.uri().clone(), |u| u.0.clone());
    if !auth::is_api(original.path()) {
        let next = original.path_and_query().map_or("/admin", |p| p.as_str());
        return ApiError::Login { next: next.to_owned() }.into_response();
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let refused = ApiError::Unauthorized(TOKEN_REQUIRED);
    if form { refused.into_page() } else { refused.into_response() }
}

/// The board's audit records as eventmill's audit lines.
pub fn audit_line(entry: &AuditEntry<'_>) {
    let (role, token) = entry.viewer.map_or(("none", ""), |v| (role_name(v.role), v.name.as_str()));
    let (action, subject, outcome, message) = (entry.action, entry.subject, entry.outcome.as_str(), &entry.message);
    match entry.outcome {
        AuditOutcome::Refused => {
            tracing::warn!(target: "eventmill::audit", role, token, action, outcome, "{message}")
        }
        _ => tracing::info!(target: "eventmill::audit", role, token, action, subject, outcome, "{message}"),
    }
}

fn role_name(role: BoardRole) -> &'static str {
    match role {
        BoardRole::Admin => Role::Admin.as_str(),
        BoardRole::ReadOnly => Role::Readonly.as_str(),
    }
}
