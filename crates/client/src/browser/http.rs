//! One HTTP exchange with a timeout. No authentication logic here: the refresh call
//! uses this directly, so it can never be intercepted by the 401 handling.

use std::future::Future;
use std::pin::{pin, Pin};

use futures::future::{select, Either};
use gloo_net::http::RequestBuilder;

use crate::error::{parse_retry_after, ClientError};
use crate::{Answer, Method};

/// Boxed: the calls and the refresh all send through it, and one copy of this future's
/// code is enough.
pub(crate) fn send<'a>(
    method: Method,
    url: &'a str,
    body: Option<&'a str>,
    bearer: Option<&'a str>,
    timeout_ms: u32,
) -> Pin<Box<dyn Future<Output = Result<Answer, ClientError>> + 'a>> {
    Box::pin(timed(method, url, body, bearer, timeout_ms))
}

async fn timed(
    method: Method,
    url: &str,
    body: Option<&str>,
    bearer: Option<&str>,
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
        .method(method)
        .header("Accept", "application/json")
        .abort_signal(signal.as_ref());
    if let Some(token) = bearer {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
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
