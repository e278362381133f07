//! Ingest keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`. With no keys configured the
//! API is open to loopback clients only, so a fresh install is never open to the network.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use secrecy::ExposeSecret;

use super::{ApiError, constant_time_eq};
use crate::settings::Settings;

/// Accepts the request or says what is missing.
pub fn check_ingest_key(settings: &Settings, headers: &HeaderMap, peer: SocketAddr) -> Result<(), ApiError> {
    if settings.ingest_keys.is_empty() {
        return if peer.ip().is_loopback() {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("no ingest keys are configured, so only loopback clients may send events"))
        };
    }
    let Some(presented) = presented_key(headers) else {
        return Err(ApiError::Unauthorized(
            "send an ingest key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        ));
    };
    if settings.ingest_keys.iter().any(|key| constant_time_eq(key.expose_secret().as_bytes(), presented.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("the ingest key is not valid"))
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
}
