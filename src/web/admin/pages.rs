//! The page frame of eventmill's own admin pages (navigation, role badge, flash messages, CSRF
//! token) and the login pages; the error page is `error`'s. Templates live in `templates/admin/`
//! and are compiled in by askama, which HTML-escapes every value.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{StatusCode, Uri, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::error::PageResult;
use crate::web::{
    ApiError, AppState,
    auth::{self, Principal},
};

/// What the frame of every page needs.
pub struct Nav {
    pub role: &'static str,
    pub is_admin: bool,
    /// The CSRF token forms send back (empty for bearer callers, who need none).
    pub csrf: String,
    /// Which navigation entry is current.
    pub active: &'static str,
    /// This page's path and query, where forms return after an action.
    pub here: String,
    pub flash: Option<String>,
    pub flash_error: Option<String>,
}

#[derive(Deserialize)]
struct FlashQuery {
    flash: Option<String>,
    flash_error: Option<String>,
}

impl Nav {
    pub fn new(principal: &Principal, active: &'static str, uri: &Uri) -> Self {
        let flash: Option<FlashQuery> = uri.query().and_then(|q| serde_urlencoded::from_str(q).ok());
        let (flash, flash_error) = flash.map_or((None, None), |f| (f.flash, f.flash_error));
        // Forms come back here without the flash of the previous action.
        let query: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "flash" && k != "flash_error")
            .collect();
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let here = if query.is_empty() { uri.path().to_owned() } else { format!("{}?{query}", uri.path()) };
        Self {
            role: principal.role.as_str(),
            is_admin: principal.is_admin(),
            csrf: principal.csrf.clone().unwrap_or_default(),
            active,
            here,
            flash,
            flash_error,
        }
    }
}

/// Renders a page template.
pub fn render(page: &impl Template) -> PageResult {
    page.render().map(Html).map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")).into())
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /admin/login`: the token form.
pub async fn login_form(Query(query): Query<LoginQuery>) -> PageResult {
    render(&LoginPage { next: auth::safe_next(query.next.as_deref()), error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /admin/login`: a valid token sets the session cookie and goes on to `next`.
pub async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = auth::safe_next(form.next.as_deref());
    let session = auth::same_origin(&headers)
        .then(|| auth::role_for_token(&state, form.token.trim()))
        .flatten()
        .and_then(|role| Some((role, auth::new_session(&state, role)?)));
    let Some((role, session)) = session else {
        let wait = login_throttle::refused(&state.login_failures).await;
        tracing::warn!(target: "eventmill::audit", action = "login", outcome = "refused", wait_s = wait,
            "admin login refused");
        let page = LoginPage { next, error: Some("That token is not valid.") };
        let retry_after = [(header::RETRY_AFTER, wait.to_string())];
        return match render(&page) {
            Ok(html) => (StatusCode::UNAUTHORIZED, retry_after, html).into_response(),
            Err(e) => e.into_response(),
        };
    };
    login_throttle::succeeded(&state.login_failures);
    tracing::info!(target: "eventmill::audit", role = role.as_str(), token = %auth::fingerprint(form.token.trim()),
        action = "login", outcome = "ok", "admin login");
    ([(header::SET_COOKIE, auth::set_cookie(&session, state.settings.https))], Redirect::to(&next)).into_response()
}

/// `POST /admin/logout`: clears the session cookie.
pub async fn logout(State(state): State<AppState>) -> Response {
    ([(header::SET_COOKIE, auth::set_cookie("", state.settings.https))], Redirect::to("/admin/login")).into_response()
}

/// Slows down guessing: each refused login in a row waits twice as long as the one before (1 s, 2 s,
/// 4 s ... at most 16 s) before it is answered; a successful login resets it. Counted per server, not
/// per address, on purpose: a guesser spreading over many addresses is slowed down all the same.
mod login_throttle {
    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    const MAX_WAIT_SECONDS: u64 = 16;

    /// Waits out this refusal; returns the seconds waited (sent as `Retry-After`).
    pub async fn refused(refused_in_a_row: &AtomicU32) -> u64 {
        let before = refused_in_a_row.fetch_add(1, Ordering::Relaxed).min(8);
        let wait = (1u64 << before).min(MAX_WAIT_SECONDS);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        wait
    }

    pub fn succeeded(refused_in_a_row: &AtomicU32) {
        refused_in_a_row.store(0, Ordering::Relaxed);
    }
}
