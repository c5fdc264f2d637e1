//! One HTTP exchange with a timeout, with its DPoP proof when the session has a key. No
//! token logic here: the refresh call uses this directly, so it can never be
//! intercepted by the 401 handling. What is here is the nonce dance of RFC 9449
//! section 8: every answer's `DPoP-Nonce` is kept, and an answer `use_dpop_nonce`
//! with a new one is sent once more, with a new proof.

use std::future::Future;
use std::pin::{pin, Pin};

use futures::future::{select, Either};
use gloo_net::http::RequestBuilder;

use super::dpop;
use crate::error::{error_from_answer, parse_retry_after, ClientError};
use crate::{Answer, Method};
use baton_shared::ErrorCode;
use wasm_bindgen::prelude::*;

// gloo-net has no `keepalive`, and web-sys' `RequestInit` binding costs more than this.
#[wasm_bindgen(inline_js = r#"
export function keepalive_post(url, body) {
  return fetch(url, {
    method: "POST", keepalive: true, body,
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
  }).then((r) => r.status, () => 0);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = keepalive_post)]
    fn keepalive_promise(url: &str, body: &str) -> js_sys::Promise;
}

/// POSTs JSON `body` with `keepalive` (the browser finishes the request even when the
/// page is gone, so no timeout of ours applies); the status, or 0 for no answer.
pub(crate) async fn keepalive_post(url: &str, body: &str) -> u16 {
    let status = wasm_bindgen_futures::JsFuture::from(keepalive_promise(url, body)).await;
    status.ok().and_then(|s| s.as_f64()).unwrap_or(0.0) as u16
}

/// How a request proves who sends it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// A Bearer session's access token.
    Bearer(&'a str),
    /// A proof by DPoP key `key`: with the access token of a bound session on a call
    /// (`Authorization: DPoP`), without one at login and refresh.
    Dpop {
        key: &'a str,
        token: Option<&'a str>,
    },
}

/// An exchange under way ([`send`]).
pub(crate) type Sending<'a> = Pin<Box<dyn Future<Output = Result<Answer, ClientError>> + 'a>>;

/// Boxed: the calls and the refresh all send through it, and one copy of this future's
/// code is enough.
pub(crate) fn send<'a>(
    method: Method,
    url: &'a str,
    body: Option<&'a str>,
    auth: Auth<'a>,
    timeout_ms: u32,
) -> Sending<'a> {
    Box::pin(async move {
        if matches!(auth, Auth::Dpop { .. }) && dpop::nonce_stale() {
            // Any answer carries a nonce: the cheapest call fetches one, so that the
            // proof need not be refused for want of it. Its failure changes nothing.
            let health = super::config().url("/api/health");
            let _ = timed(Method::Get, &health, None, Auth::None, timeout_ms).await;
        }
        let answer = timed(method, url, body, auth, timeout_ms).await?;
        // The answer carried the nonce to use (kept by `timed`): once more, no more.
        let retry = matches!(auth, Auth::Dpop { .. })
            && matches!(answer.status, 400 | 401)
            && error_from_answer(answer.status, &answer.body).code == ErrorCode::UseDpopNonce;
        if retry {
            return timed(method, url, body, auth, timeout_ms).await;
        }
        Ok(answer)
    })
}

async fn timed(
    method: Method,
    url: &str,
    body: Option<&str>,
    auth: Auth<'_>,
    timeout_ms: u32,
) -> Result<Answer, ClientError> {
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(|c| c.signal());
    let method = match method {
        Method::Get => gloo_net::http::Method::GET,
        Method::Post => gloo_net::http::Method::POST,
        Method::Put => gloo_net::http::Method::PUT,
        Method::Delete => gloo_net::http::Method::DELETE,
    };
    let mut builder = RequestBuilder::new(url)
        .method(method.clone())
        .header("Accept", "application/json")
        .abort_signal(signal.as_ref());
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => {
            builder = builder.header("Authorization", &format!("Bearer {token}"));
        }
        Auth::Dpop { key, token } => {
            if let Some(proof) = dpop::proof(key, method.as_str(), url, token).await {
                builder = builder.header("DPoP", &proof);
            }
            if let Some(token) = token {
                builder = builder.header("Authorization", &format!("DPoP {token}"));
            }
        }
    }
    let request = match body {
        Some(body) => builder
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
        None => builder.build(),
    }
    .map_err(|e| ClientError::Network(e.to_string()))?;

    let exchange = async move {
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))?;
        let status = response.status();
        let retry_after_ms = parse_retry_after(response.headers().get("retry-after").as_deref());
        dpop::saw_nonce(response.headers().get("dpop-nonce"));
        let body = response
            .text()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))?;
        Ok(Answer {
            status,
            body,
            retry_after_ms,
        })
    };
    let timeout = gloo_timers::future::TimeoutFuture::new(timeout_ms);
    match select(pin!(exchange), timeout).await {
        Either::Left((answer, _)) => answer,
        Either::Right(((), _)) => {
            if let Some(controller) = controller {
                controller.abort();
            }
            Err(ClientError::Network(format!(
                "no answer within {timeout_ms} ms"
            )))
        }
    }
}
