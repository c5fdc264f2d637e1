//! What is not the API proper: health, the public keys, metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_shared::{ApiError, Health};

use crate::clock::{now_ms, seconds};
use crate::config::PublicMetrics;
use crate::error::{BearerError, Error, Result};
use crate::extract::bearer_token;
use crate::state::AppState;

/// `GET /api/health`: 200 when the database answers, 503 when it does not.
#[tracing::instrument(skip_all)]
#[utoipa::path(
    get, path = "/api/health", tag = "meta",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ApiError),
    )
)]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>> {
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ok".to_owned(),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            Err(Error::unavailable())
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer in time");
            Err(Error::unavailable())
        }
    }
}

/// `GET /.well-known/jwks.json`: the public keys that verify access tokens.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "meta",
    responses((status = 200, description = "RFC 7517 JWK set of the keys that verify access tokens"))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.tokens.ring();
    let body = Json(ring.jwks(now_ms())).into_response();
    let max_age = seconds(state.config.keys.activation_delay).min(300);
    let mut response = (StatusCode::OK, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// `GET /metrics` on the public address when BATON_METRICS_TOKEN is set: only to a
/// request that presents it as its bearer token (401 otherwise).
pub async fn metrics_behind_token(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    use sha2::{Digest, Sha256};
    let PublicMetrics::Token(expected) = state.config.public_metrics() else {
        return Error::not_found().into_response();
    };
    let token = match bearer_token(&headers) {
        Ok(token) => token,
        Err(refused) => return Error::Bearer(refused).into_response(),
    };
    // Digests compared, so that the time taken says nothing about the token.
    if Sha256::digest(token.as_bytes()) != Sha256::digest(expected.expose().as_bytes()) {
        return Error::Bearer(BearerError::Invalid).into_response();
    }
    metrics(State(state)).await
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.set_revoked_sessions(state.revocations.len());
    state.metrics.set_sync_age(state.feed.age());
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
