//! Every state-changing board request goes through [`Action`]: a [`Viewer`] must be set (401
//! otherwise), it must be an admin (a read-only viewer gets 403), the request must come from the
//! same origin, and a viewer with a session CSRF token must send it (form field `csrf` or header
//! `X-CSRF-Token`). Each action, allowed or refused, leaves an [`AuditEntry`] saying who, what, on
//! which target and how it went.
//!
//! The same endpoint serves the JSON API and the pages' forms: a form post is answered with a
//! redirect back to its `return_to` page and a flash message, a JSON call with JSON.
//!
//! Actions that delete or drop something call [`Action::unconfirmed`] first: without
//! `confirm=yes` (form field) or `"confirm": true` (JSON body) nothing happens and the caller gets
//! the question instead: a confirmation page whose form re-posts the same fields with
//! `confirm=yes` (no JavaScript needed), or a 428 `confirmation_required` for JSON callers.
//!
//! A host's own actions (outside the board's router) use the same extractor when its state
//! gives a [`BoardState`] (`FromRef`), so they are guarded and audited alike.

use askama::Template;
use axum::{
    Json,
    body::Bytes,
    extract::{FromRef, FromRequest, OriginalUri, Request},
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{BoardError, BoardState, Viewer};

/// Largest action body (the enqueue form is the biggest).
const MAX_BODY: usize = 256 * 1024;

/// How an action went, as its audit record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It was done.
    Ok,
    /// It was allowed but failed (a job not in the right state, Redis down...).
    Error,
    /// The viewer may not do it, or the request was not to be trusted (origin, CSRF).
    Refused,
    /// A destructive action sent without `confirm`: nothing happened, the question was asked.
    ConfirmationAsked,
}

impl AuditOutcome {
    /// `ok`, `error`, `refused`, `confirmation asked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::ConfirmationAsked => "confirmation asked",
        }
    }
}

/// One audit record: who did what to which target, and how it went. The host decides where it
/// goes ([`BoardState::audit`]).
#[derive(Debug)]
pub struct AuditEntry<'a> {
    /// Who asked (`None`: nobody the host's auth layer recognised).
    pub viewer: Option<&'a Viewer>,
    /// What was asked (`job.retry`, `queue.pause`...; the request path when refused).
    pub action: &'a str,
    /// On what (a job id, a queue, a schedule; empty when refused).
    pub subject: &'a str,
    /// How it went.
    pub outcome: AuditOutcome,
    /// A sentence for the log (`admin action: Job 12 retried.`).
    pub message: String,
}

/// An authorised, CSRF-checked action with its parsed body `T`.
pub struct Action<T> {
    /// Who asks.
    pub viewer: Viewer,
    /// The parsed form fields or JSON body.
    pub body: T,
    board: BoardState,
    /// `Some(page)` when the request is a form post to answer with a redirect to `page`.
    return_to: Option<String>,
    /// The request carried `confirm=yes` / `"confirm": true`.
    confirmed: bool,
    /// Where the request was posted, and its form fields (CSRF token included): what a
    /// confirmation page posts again.
    path: String,
    form_fields: Vec<(String, String)>,
}

/// The question a destructive action asks before it happens: a form that posts the same fields
/// again with `confirm=yes`, and a way back.
#[derive(Template)]
#[template(path = "board/confirm.html")]
struct ConfirmPage<'a> {
    question: &'a str,
    action_url: &'a str,
    fields: &'a [(String, String)],
    back: &'a str,
    base: &'a str,
    title: &'a str,
}

impl<T> Action<T> {
    fn audit(&self, action: &str, subject: &str, outcome: AuditOutcome, message: String) {
        (self.board.audit)(&AuditEntry { viewer: Some(&self.viewer), action, subject, outcome, message });
    }

    /// For actions that delete or drop something: `None` when the caller confirmed, otherwise the
    /// answer asking `question` (audited as [`AuditOutcome::ConfirmationAsked`]); nothing is changed.
    pub fn unconfirmed(&self, action: &str, target: &str, question: &str) -> Option<Response> {
        if self.confirmed {
            return None;
        }
        let message = format!("admin action awaits confirmation: {question}");
        self.audit(action, target, AuditOutcome::ConfirmationAsked, message);
        Some(match &self.return_to {
            Some(back) => {
                let (base, title) = (self.board.base.as_str(), self.board.title.as_str());
                let page =
                    ConfirmPage { question, action_url: &self.path, fields: &self.form_fields, back, base, title };
                match page.render() {
                    // Status 200: nothing went wrong, nothing happened.
                    Ok(html) => axum::response::Html(html).into_response(),
                    Err(e) => BoardError::Internal(format!("template: {e}")).into_page(&self.board),
                }
            }
            None => BoardError::ConfirmationRequired(format!(
                "{question} Nothing was changed: send the same request with \"confirm\": true to go ahead."
            ))
            .into_response(),
        })
    }

    /// Audits the action and answers: a redirect with a flash for forms, JSON otherwise. `result`
    /// holds the flash message and the JSON body.
    pub fn respond(self, action: &str, target: &str, result: Result<(String, Value), BoardError>) -> Response {
        match &result {
            Ok((message, _)) => self.audit(action, target, AuditOutcome::Ok, format!("admin action: {message}")),
            Err(error) => self.audit(action, target, AuditOutcome::Error, format!("admin action failed: {error}")),
        }
        match (result, self.return_to.as_deref()) {
            (Ok((message, _)), Some(page)) => redirect_with(page, "flash", &message),
            (Err(error), Some(page)) if error.status_and_code().0.is_client_error() => {
                redirect_with(page, "flash_error", &error.to_string())
            }
            (Err(error), Some(_)) => error.into_page(&self.board),
            (Ok((_, body)), None) => Json(body).into_response(),
            (Err(error), None) => error.into_response(),
        }
    }
}

fn redirect_with(page: &str, key: &str, message: &str) -> Response {
    let separator = if page.contains('?') { '&' } else { '?' };
    let value = serde_urlencoded::to_string([(key, message)]).unwrap_or_default();
    Redirect::to(&format!("{page}{separator}{value}")).into_response()
}

fn refuse(board: &BoardState, viewer: Option<&Viewer>, path: &str, error: BoardError) -> BoardError {
    let message = format!("admin action refused: {error}");
    (board.audit)(&AuditEntry { viewer, action: path, subject: "", outcome: AuditOutcome::Refused, message });
    error
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Refuses a state-changing request sent by another site: its `Origin` (or, without one, a
/// `Sec-Fetch-Site: cross-site`) must match the `Host` it was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        return origin_host.is_some() && origin_host == host;
    }
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) != Some("cross-site")
}

/// A page of this site to go back to (no open redirect): a path, never another host.
fn safe_return(board: &BoardState, page: Option<&str>) -> String {
    match page {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains("://") => {
            p.to_owned()
        }
        _ if board.base.is_empty() => "/".to_owned(),
        _ => board.base.clone(),
    }
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A form post's fields: the CSRF token, where to go back, whether confirmed, and the body.
struct Parsed<T> {
    csrf: Option<String>,
    return_to: Option<String>,
    confirmed: bool,
    form_fields: Vec<(String, String)>,
    body: Result<T, BoardError>,
}

fn parse_form<T: DeserializeOwned>(board: &BoardState, bytes: &[u8]) -> Result<Parsed<T>, BoardError> {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(bytes).map_err(|e| BoardError::Invalid(format!("bad form: {e}")))?;
    let confirmed = take(&mut pairs, "confirm").is_some_and(|v| v == "yes");
    let form_fields = pairs.clone();
    let csrf = take(&mut pairs, "csrf");
    let return_to = Some(safe_return(board, take(&mut pairs, "return_to").as_deref()));
    let rest = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let body = serde_urlencoded::from_str::<T>(&rest).map_err(|e| BoardError::Invalid(e.to_string()));
    Ok(Parsed { csrf, return_to, confirmed, form_fields, body })
}

fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Parsed<T> {
    let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    let (confirmed, body) = match serde_json::from_slice::<Value>(json) {
        Ok(mut value) => {
            let confirm = value.as_object_mut().and_then(|o| o.remove("confirm"));
            let body = serde_json::from_value::<T>(value).map_err(|e| BoardError::Invalid(e.to_string()));
            (confirm == Some(Value::Bool(true)), body)
        }
        Err(e) => (false, Err(BoardError::Invalid(e.to_string()))),
    };
    Parsed { csrf, return_to: None, confirmed, form_fields: Vec::new(), body }
}

impl<S, T> FromRequest<S> for Action<T>
where
    S: Send + Sync,
    BoardState: FromRef<S>,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let board = BoardState::from_ref(state);
        let (parts, body) = request.into_parts();
        let path = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.path(), |u| u.0.path()).to_owned();
        let form = is_form(&parts.headers);
        let reject = |e: BoardError| if form { e.into_page(&board) } else { e.into_response() };
        let Some(viewer) = parts.extensions.get::<Viewer>().cloned() else {
            return Err(reject(refuse(&board, None, &path, BoardError::NoViewer)));
        };
        if !same_origin(&parts.headers) {
            let error = BoardError::Forbidden("cross-origin requests may not change anything");
            return Err(reject(refuse(&board, Some(&viewer), &path, error)));
        }
        if !viewer.is_admin() {
            let error = BoardError::Forbidden("a read-only viewer may not change anything");
            return Err(reject(refuse(&board, Some(&viewer), &path, error)));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.len() > MAX_BODY {
            return Err(reject(BoardError::Invalid("the request body is too large".into())));
        }
        let parsed =
            if form { parse_form(&board, &bytes).map_err(reject)? } else { parse_json(&parts.headers, &bytes) };
        if let Some(expected) = &viewer.csrf {
            let sent = parsed.csrf.unwrap_or_default();
            if !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
                let error = BoardError::Forbidden("missing or wrong CSRF token: reload the page");
                return Err(reject(refuse(&board, Some(&viewer), &path, error)));
            }
        }
        let Parsed { return_to, confirmed, form_fields, body, .. } = parsed;
        match body {
            Ok(body) => Ok(Self { viewer, body, board, return_to, confirmed, path, form_fields }),
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
