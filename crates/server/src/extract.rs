//! Request extractors whose rejections speak the contract: the authenticated user
//! (Bearer access token), JSON bodies and path ids.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{BearerError, Error, ErrorCode};
use crate::AppState;

/// The user and session of a valid access token. Handlers that need a user take this.
///
/// Verifying costs a signature check and a lookup in the in-memory revocation set:
/// no database I/O.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        authenticate(&state, &parts.headers).map_err(Error::Bearer)
    }
}

/// The whole access-token check, for the extractor and the benchmarks.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<AuthUser, BearerError> {
    let token = bearer_token(headers)?;
    let claims = state.tokens.verify(token)?;
    if state.revocations.is_revoked(&claims.sid) {
        return Err(BearerError::SessionRevoked);
    }
    Ok(AuthUser {
        user_id: claims.sub,
        session_id: claims.sid,
    })
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 section 2.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = rest.trim_matches(' ');
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let token68 = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !token68 || token.len() > 8 * 1024 {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// `axum::Json` with the contract's rejections: 415 for a body that is not JSON, 400
/// `invalid_input` for malformed JSON or a missing or ill-typed field, 413 over 64 KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Error::client(
            ErrorCode::UnsupportedMediaType,
            "the request body must be JSON (Content-Type: application/json)",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            Error::invalid_input("the request body is not valid JSON")
        }
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field and the expected type ("missing field
            // `password`", "invalid type: integer, expected a string"); it never
            // contains more of the input than the offending scalar.
            Error::invalid_input(format!(
                "the request body does not match: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            ))
        }
        JsonRejection::BytesRejection(e)
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            Error::client(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than 64 KiB",
            )
        }
        other => {
            if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::client(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than 64 KiB",
                )
            } else {
                Error::invalid_input("the request body could not be read")
            }
        }
    }
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
