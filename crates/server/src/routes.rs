//! The HTTP surface: the JSON API under `/api`, the JWKS, and the Leptos app.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::PublicMetrics;
use crate::error::{Error, ErrorCode};
use crate::extract::BODY_LIMIT;
use crate::security;
use crate::state::AppState;

pub mod auth;
pub mod me;
pub mod meta;
pub mod notes;
pub mod openapi;
pub mod sessions;

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
        .route("/health", get(meta::health))
        .route("/openapi.json", get(openapi::serve))
        // Latency by route template, for matched routes only.
        .route_layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // DPoP-Nonce on answers to proofs, and the count of DPoP refusals.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::dpop::nonce_layer,
        ))
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
        .route("/.well-known/jwks.json", get(meta::jwks));
    router = match state.config.public_metrics() {
        PublicMetrics::Off => router,
        PublicMetrics::Open => router.route("/metrics", get(meta::metrics)),
        PublicMetrics::Token(_) => router.route("/metrics", get(meta::metrics_behind_token)),
    };
    let mut router = router
        .leptos_routes_with_context(&state, leptos_routes, page_context.clone(), move || {
            baton_app::shell(shell_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context, baton_app::shell));
    for layer in security::header_layers(&state.config.http) {
        router = router.layer(layer);
    }
    if let Some(cors) = security::cors_layer(&state.config.http) {
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
        .layer(middleware::from_fn(screen_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(middleware::from_fn(security::limit_header_size))
        .with_state(state)
}

/// Longest incoming `x-request-id` kept.
const MAX_REQUEST_ID: usize = 64;

/// Middleware: an incoming `x-request-id` is kept only when it is one short token-like
/// value (1 to [`MAX_REQUEST_ID`] of `A-Z a-z 0-9 - _ . : ~ + / =`); otherwise it is
/// dropped and the next layer makes a new one. Every log line of the request repeats
/// the id, so it must not be able to forge a field (spaces, quotes) or flood a line.
async fn screen_request_id(mut req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(&REQUEST_ID).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => is_token_like(value.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

fn is_token_like(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b':' | b'~' | b'+' | b'/' | b'=')
        })
}

/// `GET /metrics` alone, for the address of BATON_METRICS_BIND.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(meta::metrics))
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

/// Middleware: request latency by route template (never the raw path, which would
/// make one series per note id).
async fn track_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") {
                "/api/unmatched".to_owned()
            } else {
                "page".to_owned()
            }
        });
    let response = next.run(req).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}
