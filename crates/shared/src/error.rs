//! The one error body every Baton endpoint answers with, and its codes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Machine-readable error code, serialized in `snake_case`.
///
/// A client branches on the code, never on the message. `token_expired` is the one
/// code on which a client refreshes its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON, a missing or ill-typed field, or a field breaking a rule.
    InvalidInput,
    /// 400: `Authorization: Bearer` with an empty or malformed value.
    InvalidRequest,
    /// 401: no `Authorization` header, or not a Bearer one.
    Unauthenticated,
    /// 401: the access token is past its expiry. Refresh and retry.
    TokenExpired,
    /// 401: the access token is not one this server issued (signature, claims, type).
    TokenInvalid,
    /// 401 on login, 403 on password change: the username or password is wrong.
    InvalidCredentials,
    /// 401: the refresh token is unknown.
    RefreshTokenInvalid,
    /// 401: the refresh token or its session is past its lifetime.
    RefreshTokenExpired,
    /// 401: an already-rotated refresh token was presented; its session is revoked.
    RefreshTokenReused,
    /// 401: the session was ended (logout, logout-all, password change, revocation).
    SessionRevoked,
    /// 401 on resources, 400 on login and refresh (RFC 9449 section 7): the DPoP proof
    /// is missing where one is needed, malformed, signed by another key than the one
    /// the session is bound to, or fails a check (method, URL, `ath`, `iat`, a `jti`
    /// seen before). Do not retry with the same proof.
    InvalidDpopProof,
    /// 401 on resources, 400 on login and refresh (RFC 9449 section 8): the proof needs
    /// the server nonce of the `DPoP-Nonce` header of this answer. Retry once with a
    /// new proof that carries it.
    UseDpopNonce,
    /// 404: no such route, or a resource that is not the caller's.
    NotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: the username is already registered (regardless of case).
    UsernameTaken,
    /// 413: the request body is over 64 KiB.
    PayloadTooLarge,
    /// 415: the request body is not `application/json`.
    UnsupportedMediaType,
    /// 429: too many attempts; see `Retry-After`.
    RateLimited,
    /// 431: the request headers are too large.
    HeadersTooLarge,
    /// 500: an unexpected failure; the message is generic.
    Internal,
    /// 503: the database is unreachable; the message is generic.
    Unavailable,
    /// A code this build does not know (a newer server). Never sent by the server.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status the server answers this code with; `invalid_dpop_proof` and
    /// `use_dpop_nonce` get 400 instead on `/api/auth/login` and `/api/auth/refresh`
    /// (token endpoints answer 400 in OAuth, RFC 9449 section 5).
    pub const fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidInput | InvalidRequest => 400,
            Unauthenticated | TokenExpired | TokenInvalid | InvalidCredentials
            | RefreshTokenInvalid | RefreshTokenExpired | RefreshTokenReused | SessionRevoked
            | InvalidDpopProof | UseDpopNonce => 401,
            NotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            UsernameTaken => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RateLimited => 429,
            HeadersTooLarge => 431,
            Internal | Unknown => 500,
            Unavailable => 503,
        }
    }

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidInput => "invalid_input",
            InvalidRequest => "invalid_request",
            Unauthenticated => "unauthenticated",
            TokenExpired => "token_expired",
            TokenInvalid => "token_invalid",
            InvalidCredentials => "invalid_credentials",
            RefreshTokenInvalid => "refresh_token_invalid",
            RefreshTokenExpired => "refresh_token_expired",
            RefreshTokenReused => "refresh_token_reused",
            SessionRevoked => "session_revoked",
            InvalidDpopProof => "invalid_dpop_proof",
            UseDpopNonce => "use_dpop_nonce",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            RequestTimeout => "request_timeout",
            UsernameTaken => "username_taken",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            RateLimited => "rate_limited",
            HeadersTooLarge => "headers_too_large",
            Internal => "internal",
            Unavailable => "unavailable",
            Unknown => "unknown",
        }
    }

    /// True when a refresh attempt was definitively refused: the session is over and
    /// the client must send the user to log in again. Anything else (network errors,
    /// 429, 5xx) is a failure to retry later, never a reason to log out.
    pub const fn ends_session(self) -> bool {
        matches!(
            self,
            ErrorCode::RefreshTokenInvalid
                | ErrorCode::RefreshTokenExpired
                | ErrorCode::RefreshTokenReused
                | ErrorCode::SessionRevoked
                | ErrorCode::InvalidDpopProof
                | ErrorCode::TokenInvalid
                | ErrorCode::Unauthenticated
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error body: `{"code": "...", "message": "...", "fields": {...}?}`.
///
/// `fields` is present only for validation errors and maps a request field to what is
/// wrong with it, e.g. `{"username": "must be 3-32 characters"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: None,
        }
    }

    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> Self {
        self.fields = Some(fields);
        self
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidInput,
            ErrorCode::TokenExpired,
            ErrorCode::RefreshTokenReused,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::Unavailable,
            ErrorCode::InvalidDpopProof,
            ErrorCode::UseDpopNonce,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn an_unknown_code_from_a_newer_server_still_parses() {
        let e: ApiError =
            serde_json::from_str(r#"{"code":"quota_exceeded","message":"slow down"}"#).unwrap();
        assert_eq!(e.code, ErrorCode::Unknown);
        assert_eq!(e.message, "slow down");
    }

    #[test]
    fn fields_are_omitted_unless_set() {
        let e = ApiError::new(ErrorCode::NotFound, "not found");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"not_found","message":"not found"}"#
        );
        let mut fields = BTreeMap::new();
        fields.insert("username".to_owned(), "must be 3-32 characters".to_owned());
        let e = ApiError::new(ErrorCode::InvalidInput, "invalid input").with_fields(fields);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"invalid_input","message":"invalid input","fields":{"username":"must be 3-32 characters"}}"#
        );
    }

    #[test]
    fn only_definite_refusals_end_a_session() {
        assert!(ErrorCode::RefreshTokenReused.ends_session());
        assert!(ErrorCode::SessionRevoked.ends_session());
        assert!(!ErrorCode::TokenExpired.ends_session());
        assert!(!ErrorCode::Unavailable.ends_session());
        assert!(!ErrorCode::Internal.ends_session());
        assert!(!ErrorCode::RateLimited.ends_session());
        // A proof by the wrong key (or none) cannot be fixed by retrying; a nonce can.
        assert!(ErrorCode::InvalidDpopProof.ends_session());
        assert!(!ErrorCode::UseDpopNonce.ends_session());
    }
}
