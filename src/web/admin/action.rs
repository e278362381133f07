//! Every state-changing admin request goes through `Action`: the caller must be the admin (read-only
//! gets 403), the request must come from this origin, and a cookie session must send its CSRF token
//! (form field `csrf` or header `X-CSRF-Token`). Each action, allowed or refused, leaves an audit line
//! saying who (role and token fingerprint), what and on which target (field `subject`: a field named
//! `target` would collide with the log line's own `target` in the JSON logs).
//!
//! The same endpoint serves the JSON API and the pages' forms: a form post is answered with a
//! redirect back to its `return_to` page and a flash message, a JSON call with JSON.
//!
//! Actions that delete or drop something call [`Action::unconfirmed`] first (docs/admin.md): without
//! `confirm=yes` (form field) or `"confirm": true` (JSON body) nothing happens and the caller gets
//! the question instead: a confirmation page whose form re-posts the same fields with
//! `confirm=yes` (no JavaScript needed), or a 428 `confirmation_required` for JSON callers.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::IntoPage;
use crate::web::{
    ApiError, AppState,
    auth::{self, Principal, constant_time_eq},
    error::urlencode,
};

/// Largest action body (the enqueue form is the biggest).
const MAX_BODY: usize = 256 * 1024;

/// An authorised, CSRF-checked action with its parsed body `T`.
pub struct Action<T> {
    pub principal: Principal,
    pub body: T,
    /// `Some(page)` when the request is a form post to answer with a redirect to `page`.
    return_to: Option<String>,
    /// The request carried `confirm=yes` / `"confirm": true`.
    confirmed: bool,
    /// Where the request was posted, and its form fields (CSRF token included): what a
    /// confirmation page posts again.
    path: String,
    form_fields: Vec<(String, String)>,
}

impl<T> Action<T> {
    /// For actions that delete or drop something: `None` when the caller confirmed, otherwise the
    /// answer asking `question` (audited as `outcome = "confirmation asked"`); nothing is changed.
    pub fn unconfirmed(&self, action: &str, target: &str, question: &str) -> Option<Response> {
        if self.confirmed {
            return None;
        }
        let who = &self.principal;
        tracing::info!(target: "eventmill::audit", role = who.role.as_str(), token = who.fingerprint.as_str(), action,
            subject = target, outcome = "confirmation asked", "admin action awaits confirmation: {question}");
        Some(match &self.return_to {
            Some(back) => super::pages::confirmation(question, &self.path, &self.form_fields, back),
            None => ApiError::ConfirmationRequired(format!(
                "{question} Nothing was changed: send the same request with \"confirm\": true to go ahead."
            ))
            .into_response(),
        })
    }

    /// Logs the action with who did it and answers: a redirect with a flash for forms, JSON otherwise.
    pub fn respond(self, action: &str, target: &str, result: Result<(String, Value), ApiError>) -> Response {
        let who = &self.principal;
        let (role, token) = (who.role.as_str(), who.fingerprint.as_str());
        match &result {
            Ok((message, _)) => tracing::info!(target: "eventmill::audit", role, token, action, subject = target,
                outcome = "ok", "admin action: {message}"),
            Err(error) => tracing::info!(target: "eventmill::audit", role, token, action, subject = target,
                outcome = "error", "admin action failed: {error}"),
        }
        match (result, self.return_to.as_deref()) {
            (Ok((message, _)), Some(page)) => redirect_with(page, "flash", &message),
            (Err(error), Some(page)) if error.status_and_code().0.is_client_error() => {
                redirect_with(page, "flash_error", &error.to_string())
            }
            (Err(error), Some(_)) => error.into_page(),
            (Ok((_, body)), None) => Json(body).into_response(),
            (Err(error), None) => error.into_response(),
        }
    }
}

fn redirect_with(page: &str, key: &str, message: &str) -> Response {
    let separator = if page.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{page}{separator}{key}={}", urlencode(message))).into_response()
}

fn refuse(principal: Option<&Principal>, path: &str, why: &'static str) -> ApiError {
    let (role, token) = principal.map_or(("none", ""), |p| (p.role.as_str(), p.fingerprint.as_str()));
    tracing::warn!(target: "eventmill::audit", role, token, action = path, outcome = "refused", "admin action refused: {why}");
    ApiError::Forbidden(why)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Action<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        let form = is_form(&parts.headers);
        let reject = |e: ApiError| if form { e.into_page() } else { e.into_response() };
        let principal = Principal::from_request_parts(&mut parts, state).await.map_err(reject)?;
        if !auth::same_origin(&parts.headers) {
            return Err(reject(refuse(Some(&principal), &path, "cross-origin requests may not change anything")));
        }
        if !principal.is_admin() {
            return Err(reject(refuse(Some(&principal), &path, "the read-only token may not change anything")));
        }
        let bytes = Bytes::from_request(axum::http::Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.len() > MAX_BODY {
            return Err(reject(ApiError::Invalid("the request body is too large".into())));
        }
        let mut form_fields = Vec::new();
        let (fields, return_to, confirmed, body) = if form {
            let mut pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| reject(ApiError::Invalid(format!("bad form: {e}"))))?;
            let confirmed = take(&mut pairs, "confirm").is_some_and(|v| v == "yes");
            form_fields = pairs.clone();
            let csrf = take(&mut pairs, "csrf");
            let return_to = Some(auth::safe_next(take(&mut pairs, "return_to").as_deref()));
            let rest = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            let body = serde_urlencoded::from_str::<T>(&rest).map_err(|e| ApiError::Invalid(e.to_string()));
            (csrf, return_to, confirmed, body)
        } else {
            let csrf = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
            let (confirmed, body) = match serde_json::from_slice::<Value>(json) {
                Ok(mut value) => {
                    let confirm = value.as_object_mut().and_then(|o| o.remove("confirm"));
                    let body = serde_json::from_value::<T>(value).map_err(|e| ApiError::Invalid(e.to_string()));
                    (confirm == Some(Value::Bool(true)), body)
                }
                Err(e) => (false, Err(ApiError::Invalid(e.to_string()))),
            };
            (csrf, None, confirmed, body)
        };
        if let Some(expected) = &principal.csrf {
            let sent = fields.unwrap_or_default();
            if !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
                return Err(reject(refuse(Some(&principal), &path, "missing or wrong CSRF token: reload the page")));
            }
        }
        match body {
            Ok(body) => Ok(Self { principal, body, return_to, confirmed, path, form_fields }),
            Err(error) => Err(match &return_to {
                Some(page) => redirect_with(page, "flash_error", &error.to_string()),
                None => error.into_response(),
            }),
        }
    }
}

/// Removes the first field `name` of a form and answers its value.
fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    pairs.iter().position(|(k, _)| k == name).map(|i| pairs.remove(i).1)
}

/// The body of actions that take none.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoBody {}
