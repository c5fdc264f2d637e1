//! The HTTP surface: the JSON API under `/api`, the JWKS, and the Leptos app.

use baton_shared::ApiError;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{middleware, Json, Router};
use baton_shared::Health;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::{Error, ErrorCode, Result};
use crate::metrics;
use crate::security;
use crate::store::now_ms;
use crate::AppState;

pub mod auth;
pub mod me;
pub mod notes;
pub mod sessions;

/// Largest request body accepted (API.md): 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The JSON API, mounted at `/api`.
pub fn api(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/me", get(me::get))
        .route("/me/password", put(me::change_password))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", delete(sessions::revoke))
        .route("/notes", get(notes::list).post(notes::create))
        .route(
            "/notes/{id}",
            get(notes::get).put(notes::update).delete(notes::delete),
        )
        .route("/health", get(health))
        .route("/openapi.json", get(crate::openapi::serve))
        // Latency by route template, for matched routes only.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Answers about users and tokens are never cached, by browsers or proxies.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The whole application: API, JWKS, the Leptos pages and static files.
pub fn router(state: AppState) -> Router {
    let leptos_routes = generate_route_list(baton_app::App);
    let shell_options = state.leptos.clone();
    let page_context = security::page_context(&state.leptos);
    let mut router = Router::new()
        .nest("/api", api(&state))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/metrics", get(metrics::render))
        .leptos_routes_with_context(&state, leptos_routes, page_context.clone(), move || {
            baton_app::shell(shell_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context, baton_app::shell));
    for layer in security::header_layers(&state.config) {
        router = router.layer(layer);
    }
    if let Some(cors) = security::cors_layer(&state.config) {
        router = router.layer(cors);
    }
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: no query string, no headers (tokens never reach a log).
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
            )
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(middleware::from_fn(security::limit_header_size))
        .with_state(state)
}

async fn not_found() -> Error {
    Error::not_found()
}

async fn method_not_allowed() -> Error {
    Error::client(ErrorCode::MethodNotAllowed, "method not allowed")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

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
    let max_age = state.config.key_activation_delay.min(300);
    let mut response = (StatusCode::OK, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
