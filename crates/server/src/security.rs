//! Browser-facing hardening: the Content-Security-Policy of every page (with a fresh
//! nonce per response, which Leptos puts on every script it emits), the other security
//! headers, CORS (off unless configured), and a bound on request header size.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::HttpConfig;
use crate::error::{Error, ErrorCode};

/// Largest total size of the request headers (names and values). Far above what a
/// browser sends with an access token; a megabyte of headers is refused with 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The policy of HTML pages. Scripts run only from this origin or with this
/// response's nonce (Leptos's hydration script), WebAssembly may compile, and nothing
/// may frame, re-base or embed the page. No `'unsafe-inline'`, no `'unsafe-eval'`.
pub fn page_policy(nonce: &str, dev_reload: Option<&str>) -> String {
    let connect = match dev_reload {
        Some(ws) => format!("connect-src 'self' {ws}"),
        None => "connect-src 'self'".to_owned(),
    };
    format!(
        "default-src 'self'; \
         script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; \
         font-src 'self'; \
         {connect}; \
         object-src 'none'; \
         base-uri 'none'; \
         form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The policy of everything that is not a page (JSON, static files): nothing runs.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Runs in the context of every page render: sets the page's CSP with the nonce
/// leptos_axum generated for this response.
pub fn page_context(options: &LeptosOptions) -> impl Fn() + Clone + Send + Sync + 'static {
    // `cargo leptos watch` reloads the page over a websocket on the reload port.
    let dev_reload = (options.env == Env::DEV)
        .then(|| format!("ws://{}:{}", options.site_addr.ip(), options.reload_port));
    move || {
        let Some(nonce) = leptos::nonce::use_nonce() else {
            return;
        };
        let Some(response) = use_context::<ResponseOptions>() else {
            return;
        };
        if let Ok(value) = HeaderValue::from_str(&page_policy(&nonce, dev_reload.as_deref())) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// Headers set on every response unless a handler set them.
pub fn header_layers(config: &HttpConfig) -> Vec<SetResponseHeaderLayer<HeaderValue>> {
    let mut layers = vec![
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_POLICY),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
        ),
    ];
    if config.hsts {
        layers.push(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    layers
}

/// CORS for the configured origins only. Baton authenticates with a bearer (or DPoP) header,
/// never cookies, so credentials are never allowed; `*` means any origin without them.
pub fn cors_layer(config: &HttpConfig) -> Option<CorsLayer> {
    if config.cors_allowed_origins.is_empty() {
        return None;
    }
    let origin = if config.cors_allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                crate::dpop::DPOP.clone(),
            ])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
                crate::dpop::DPOP_NONCE.clone(),
            ])
            .allow_credentials(false)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Middleware: 431 for requests whose headers exceed [`MAX_HEADER_BYTES`].
pub async fn limit_header_size(req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return Error::client(
            ErrorCode::HeadersTooLarge,
            "the request headers are larger than 16 KiB",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_is_strict() {
        let policy = page_policy("abc123", None);
        for directive in [
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{directive}: {policy}");
        }
        assert!(!policy.contains("'unsafe-inline'") && !policy.contains("'unsafe-eval'"));
        assert!(page_policy("n", Some("ws://127.0.0.1:3001"))
            .contains("connect-src 'self' ws://127.0.0.1:3001"));
    }

    #[test]
    fn cors_is_off_unless_configured() {
        let mut config = crate::config::Config::default().http;
        assert!(cors_layer(&config).is_none());
        config.cors_allowed_origins = vec!["https://app.example.com".into()];
        assert!(cors_layer(&config).is_some());
    }
}
