//! Request extractors whose rejections speak the contract: the authenticated user
//! (Bearer access token), the client's address, JSON bodies and path ids.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::dpop::{Scheme, Target};
use crate::error::{BearerError, Error, ErrorCode};
use crate::rate_limit::client_ip;
use crate::state::AppState;

/// Largest request body accepted (API.md): 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The user and session of a valid access token. Handlers that need a user take this.
///
/// Verifying costs a signature check (cached per token), a lookup in the in-memory
/// revocation set, and for a DPoP token one proof check: no database I/O.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        authenticate(state, parts).await
    }
}

/// The whole access-token check, for the extractor and the benchmarks. A valid token
/// gets 503 `unavailable` instead of an answer while the change feed is stale: this
/// instance cannot know whether another one ended its session. A DPoP-bound token
/// needs the `DPoP` scheme and a proof by its key ([`crate::dpop`]).
pub async fn authenticate(state: &AppState, parts: &Parts) -> Result<AuthUser, Error> {
    let (scheme, token) = authorization(&parts.headers, state.dpop.enabled())?;
    let claims = state.tokens.verify(token).map_err(|e| scheme.refuse(e))?;
    if state.feed.is_stale() {
        state.metrics.stale_refusal();
        return Err(Error::unavailable());
    }
    if state.revocations.is_revoked(&claims.sid) {
        return Err(scheme.refuse(BearerError::SessionRevoked));
    }
    let bound = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
    state
        .dpop
        .resource_request(&target(parts), scheme, token, bound)
        .await?;
    Ok(AuthUser {
        user_id: claims.sub,
        session_id: claims.sid,
    })
}

/// What a DPoP proof of this request must name: its method and its path as the client
/// sent it (`OriginalUri`: the API router is nested under `/api`, which strips it).
pub fn target(parts: &Parts) -> Target<'_> {
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(parts.uri.path(), |uri| uri.path());
    Target {
        method: &parts.method,
        path,
        headers: &parts.headers,
    }
}

/// The DPoP proof of a login or refresh, checked and recorded as used: the thumbprint
/// of its key, or `None` without one where that is allowed.
#[derive(Debug, Clone)]
pub struct TokenProof(pub Option<String>);

impl FromRequestParts<AppState> for TokenProof {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let target = target(parts);
        state
            .dpop
            .token_request(&state.db, &target)
            .await
            .map(TokenProof)
    }
}

/// The scheme and token of an `Authorization` header: `Bearer <token>` (RFC 6750
/// section 2.1), or `DPoP <token>` (RFC 9449 section 7.1) when `dpop` is on.
pub fn authorization(headers: &HeaderMap, dpop: bool) -> Result<(Scheme, &str), Error> {
    let (scheme, rest) = authorization_parts(headers).map_err(Error::Bearer)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(Error::Bearer(BearerError::Missing));
    };
    token68(rest)
        .map(|token| (scheme, token))
        .ok_or_else(|| scheme.refuse(BearerError::Malformed))
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 section 2.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let (scheme, rest) = authorization_parts(headers)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    token68(rest).ok_or(BearerError::Malformed)
}

/// The one `Authorization` header, split into its scheme and the rest.
fn authorization_parts(headers: &HeaderMap) -> Result<(&str, &str), BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    Ok(value.split_once(' ').unwrap_or((value, "")))
}

/// The credentials after the scheme, if they are one token68 of at most 8 KiB.
fn token68(rest: &str) -> Option<&str> {
    let token = rest.trim_matches(' ');
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let token68 = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    (token68 && token.len() <= 8 * 1024).then_some(token)
}

/// The client's address: the peer, or with `trusted_proxy_hops = N` the N-th address
/// from the right of `X-Forwarded-For` (what the nearest trusted proxy saw). An
/// `X-Forwarded-For` from anyone else is ignored, so it cannot reset a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            state.config.http.trusted_proxy_hops,
        )))
    }
}

/// Deepest nesting of arrays and objects a request body may have. Baton's bodies are
/// flat objects; anything deeper is refused before it is parsed.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON request body with the contract's rejections: 415 `unsupported_media_type`
/// for a body that is not `application/json`, 413 `payload_too_large` over 64 KiB, 400
/// `invalid_input` for malformed JSON, nesting deeper than [`MAX_JSON_DEPTH`], or a
/// missing or ill-typed field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::client(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        let too_large = || {
            Error::client(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than 64 KiB",
            )
        };
        // A declared length over the limit is refused before a byte of the body is
        // read; a body without one (chunked) is cut off at the limit while reading.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > BODY_LIMIT as u64) {
            return Err(too_large());
        }
        // The whole body must arrive within the deadline: a client trickling it a byte
        // at a time does not hold a request (and a connection) open.
        let deadline = state.config.http.body_read_timeout;
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                Error::client(
                    ErrorCode::RequestTimeout,
                    "the request body did not arrive in time",
                )
            })?;
        let body = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Error::invalid_input("the request body could not be read")
            }
        })?;
        parse_json(&body).map(ApiJson)
    }
}

/// `application/json` or `application/<anything>+json`, any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a request body: depth first (cheap, and no deep recursion), then serde.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if json_depth_exceeds(body, MAX_JSON_DEPTH) {
        return Err(Error::invalid_input(format!(
            "the request body is nested more than {MAX_JSON_DEPTH} levels deep"
        )));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            // serde's message names the field and the expected type ("missing field
            // `password`", "invalid type: integer `7`, expected a string").
            Error::invalid_input(format!("the request body does not match: {e}"))
        }
        _ => Error::invalid_input("the request body is not valid JSON"),
    })
}

/// True when arrays/objects nest deeper than `max` (brackets inside strings do not count).
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A resource id from the path. A malformed id names no resource: 404 `not_found`.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S> FromRequestParts<S> for IdPath
where
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<Uuid>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(IdPath(id)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(Error::not_found()),
            Err(_) => Err(Error::not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_depth_is_bounded_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(json_depth_exceeds(deep.as_bytes(), MAX_JSON_DEPTH));
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(!json_depth_exceeds(ok.as_bytes(), MAX_JSON_DEPTH));
        // Brackets in strings, and escaped quotes, are text.
        let text = format!(
            r#"{{"title": "{}\"{}", "body": ""}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(!json_depth_exceeds(text.as_bytes(), MAX_JSON_DEPTH));
        assert!(matches!(
            parse_json::<serde_json::Value>(deep.as_bytes()),
            Err(Error::Client(e)) if e.code == ErrorCode::InvalidInput
        ));
    }

    #[test]
    fn json_content_types() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonp"));
        assert!(!with("multipart/form-data"));
        assert!(!is_json(&HeaderMap::new()));
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_header_cases() {
        use BearerError::*;
        type Case<'a> = (&'a [&'a [u8]], Result<&'a str, BearerError>);
        let cases: &[Case] = &[
            (&[], Err(Missing)),
            (&[b"Basic dXNlcjpwYXNz"], Err(Missing)),
            (&[b"Token abc"], Err(Missing)),
            (&[b"Bearer"], Err(Malformed)),
            (&[b"Bearer "], Err(Malformed)),
            (&[b"Bearer    "], Err(Malformed)),
            (&[b"Bearer a b"], Err(Malformed)),
            (&[b"Bearer abc\"def"], Err(Malformed)),
            (&[b"Bearer \xff\xfe"], Err(Malformed)),
            (&[b"Bearer ==="], Err(Malformed)),
            (&[b"Bearer abc", b"Bearer def"], Err(Malformed)),
            (&[b"Bearer abc.def.ghi"], Ok("abc.def.ghi")),
            (&[b"bearer abc"], Ok("abc")),
            (&[b"BEARER  abc=="], Ok("abc==")),
        ];
        for (values, expected) in cases {
            let h = headers(values);
            assert_eq!(bearer_token(&h), *expected, "{values:?}");
        }
        let huge = format!("Bearer {}", "a".repeat(10_000));
        assert_eq!(bearer_token(&headers(&[huge.as_bytes()])), Err(Malformed));
    }
}
