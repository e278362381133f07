//! Who is asking, for every HTTP area. Ingestion takes an ingest key (`ingest_key`); the admin view
//! (and the query API and dashboard) take the admin token (everything) or the read-only token (look,
//! never touch), presented as `Authorization: Bearer <token>` or as the signed session cookie the
//! login form sets. A cookie session also carries the CSRF token its forms must send back.
//!
//! The cookie is stateless: `role.issued.nonce.signature`, signed with HMAC-SHA256 keyed by the
//! role's token, so changing a token ends every session made with it.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{
    AppState,
    error::{ApiError, TOKEN_REQUIRED},
};

mod ingest_key;

pub use ingest_key::check_ingest_key;

/// Compares without an early exit, so response time does not reveal how much of a key matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Name of the session cookie.
pub const COOKIE: &str = "eventmill_admin";
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Readonly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Role,
    /// First 8 hex digits of the token's SHA-256: names the token in audit lines without leaking it.
    pub fingerprint: String,
    /// The CSRF token of a cookie session; `None` for bearer callers (browsers never add that header
    /// by themselves, so bearer requests cannot be forged cross-site).
    pub csrf: Option<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The token of `role` in force, if that role is configured.
fn token_of(state: &AppState, role: Role) -> Option<&SecretString> {
    match role {
        Role::Admin => Some(&state.admin_token),
        Role::Readonly => state.settings.readonly_token.as_ref(),
    }
}

/// The role a presented token grants.
pub fn role_for_token(state: &AppState, presented: &str) -> Option<Role> {
    [Role::Admin, Role::Readonly].into_iter().find(|role| {
        token_of(state, *role).is_some_and(|t| constant_time_eq(t.expose_secret().as_bytes(), presented.as_bytes()))
    })
}

pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn sign(token: &SecretString, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh session cookie value for `role`.
pub fn new_session(state: &AppState, role: Role) -> Option<String> {
    let token = token_of(state, role)?;
    let issued = chrono::Utc::now().timestamp();
    let nonce = format!("{:032x}", rand::random::<u128>());
    let signature = sign(token, &format!("session|{}|{issued}|{nonce}", role.as_str()));
    Some(format!("{}.{issued}.{nonce}.{signature}", role.as_str()))
}

/// The `Set-Cookie` value carrying a session (or clearing it when `value` is empty); `Secure` when
/// eventmill is told it is served over HTTPS (`EVENTMILL_HTTPS`), so the cookie never travels in clear.
pub fn set_cookie(value: &str, https: bool) -> String {
    let max_age = if value.is_empty() { 0 } else { SESSION_SECONDS };
    let secure = if https { "; Secure" } else { "" };
    // Path `/`: the dashboard and the query API it calls take the same session as the admin view.
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Checks a session cookie value; answers the caller it names.
fn verify_session(state: &AppState, value: &str) -> Option<Principal> {
    let mut parts = value.split('.');
    let (role, issued, nonce, signature) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let role = match role {
        "admin" => Role::Admin,
        "readonly" => Role::Readonly,
        _ => return None,
    };
    let token = token_of(state, role)?;
    let expected = sign(token, &format!("session|{}|{issued}|{nonce}", role.as_str()));
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return None;
    }
    let age = chrono::Utc::now().timestamp() - issued.parse::<i64>().ok()?;
    if !(0..SESSION_SECONDS).contains(&age) {
        return None;
    }
    let csrf = sign(token, &format!("csrf|{issued}|{nonce}"))[..32].to_owned();
    Some(Principal { role, fingerprint: fingerprint(token.expose_secret()), csrf: Some(csrf) })
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The caller of a request, if any token or session is valid.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    if let Some(presented) = bearer(headers) {
        let role = role_for_token(state, presented)?;
        return Some(Principal { role, fingerprint: fingerprint(presented), csrf: None });
    }
    verify_session(state, cookie(headers, COOKIE)?)
}

/// Whether the request is for the JSON API (401/403 as JSON) rather than a page (login redirect).
pub fn is_api(path: &str) -> bool {
    path.starts_with("/admin/api") || path.starts_with("/v1/")
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers).ok_or_else(|| {
            if is_api(parts.uri.path()) {
                ApiError::Unauthorized(TOKEN_REQUIRED)
            } else {
                let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
                ApiError::Login { next: next.to_owned() }
            }
        })
    }
}

/// Refuses a state-changing request sent by another site (the login form's check, the same as
/// the board's actions').
pub use eventmill_jobs::board::same_origin;

/// A `next` target that stays inside the admin view or the dashboard (no open redirect); the
/// dashboard is the first page after login.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n.starts_with("/admin") || n.starts_with("/dashboard"))
                && !n.starts_with("/admin/login")
                && !n.contains("//") =>
        {
            n.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_outside_the_admin_view_are_replaced() {
        assert_eq!(safe_next(Some("/admin/stream?x=1")), "/admin/stream?x=1");
        assert_eq!(safe_next(Some("/dashboard?range=24h")), "/dashboard?range=24h");
        assert_eq!(safe_next(Some("https://evil.example/admin")), "/dashboard");
        assert_eq!(safe_next(Some("/admin//evil.example")), "/dashboard");
        assert_eq!(safe_next(None), "/dashboard");
    }

    #[test]
    fn a_foreign_origin_is_refused_and_the_same_one_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
    }

    #[test]
    fn a_fingerprint_is_short_and_stable() {
        assert_eq!(fingerprint("abc"), "ba7816bf");
    }
}
