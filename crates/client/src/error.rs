//! What a call can end in, and how an answer is classified: refresh, give up the
//! session, or report the error to the caller.

use std::collections::BTreeMap;
use std::fmt;

use baton_shared::{ApiError, ErrorCode};

/// Why an API call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server answered with an error (its `ApiError` body, or one made up from the
    /// status when the body was not one).
    Api { status: u16, error: ApiError },
    /// No answer: offline, connection refused, timed out.
    Network(String),
    /// No session is stored: the user is not logged in.
    NotLoggedIn,
    /// The session was refused (revoked, expired, reused). Storage was cleared and the
    /// app was told to send the user to log in.
    SessionEnded,
    /// A success answer that does not match the contract.
    Decode(String),
    /// Not running in a browser (server-side rendering).
    Unsupported,
}

impl ClientError {
    /// The server's error body, if the server answered.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api_error().map(|e| e.code)
    }

    /// Per-field validation messages (`ApiError.fields`), empty if there are none.
    pub fn fields(&self) -> BTreeMap<String, String> {
        self.api_error()
            .and_then(|e| e.fields.clone())
            .unwrap_or_default()
    }

    /// A sentence to show the user.
    pub fn user_message(&self) -> String {
        match self {
            ClientError::Api { error, .. } => error.message.clone(),
            ClientError::Network(_) => {
                "The server could not be reached. Check your connection and try again.".into()
            }
            ClientError::NotLoggedIn | ClientError::SessionEnded => {
                "Your session has ended. Please log in again.".into()
            }
            ClientError::Decode(_) => "The server sent an unexpected answer.".into(),
            ClientError::Unsupported => "This needs a browser.".into(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { status, error } => write!(f, "HTTP {status}: {error}"),
            ClientError::Network(why) => write!(f, "network error: {why}"),
            ClientError::NotLoggedIn => f.write_str("not logged in"),
            ClientError::SessionEnded => f.write_str("the session ended"),
            ClientError::Decode(why) => write!(f, "unexpected answer: {why}"),
            ClientError::Unsupported => f.write_str("not running in a browser"),
        }
    }
}

impl std::error::Error for ClientError {}

/// The error body of a failed answer: the server's `ApiError`, or, when the body is not
/// one (a proxy's HTML page, an empty 502), one made up from the status so that a 503
/// still reads as `unavailable` and a 429 as `rate_limited`.
pub fn error_from_answer(status: u16, body: &str) -> ApiError {
    if let Ok(error) = serde_json::from_str::<ApiError>(body) {
        return error;
    }
    let code = match status {
        400 => ErrorCode::InvalidInput,
        401 => ErrorCode::Unknown,
        404 => ErrorCode::NotFound,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, format!("the server answered HTTP {status}"))
}

/// What to do with the answer to an authenticated API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVerdict {
    /// 2xx.
    Success,
    /// 401 `token_expired`, the one code on which a client refreshes: refresh, then
    /// retry the call once.
    RefreshAndRetry,
    /// A 401 that means the session is over (`session_revoked`, `token_invalid`,
    /// `unauthenticated`): clear it and send the user to log in.
    EndSession(ErrorCode),
    /// Any other error: hand it to the caller.
    Fail,
}

pub fn classify_api_answer(status: u16, code: Option<ErrorCode>) -> ApiVerdict {
    match (status, code) {
        (200..=299, _) => ApiVerdict::Success,
        (401, Some(ErrorCode::TokenExpired)) => ApiVerdict::RefreshAndRetry,
        (401, Some(code)) if code.ends_session() => ApiVerdict::EndSession(code),
        _ => ApiVerdict::Fail,
    }
}

/// What a failed refresh means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// A definite refusal (401 `refresh_token_*`, `session_revoked`): the session is
    /// over. Only this logs the user out.
    Refused(ErrorCode),
    /// Anything else (no answer, 429, 5xx, a body we cannot read): keep the session
    /// and retry later.
    Failed,
}

pub fn classify_refresh_failure(status: Option<u16>, code: Option<ErrorCode>) -> RefreshVerdict {
    match (status, code) {
        (Some(401), Some(code)) if code.ends_session() => RefreshVerdict::Refused(code),
        // A bound session whose proof the server refuses (the key is gone, or another
        // one's): no retry can fix it (RFC 9449 answers it 400 at the token endpoint).
        (Some(400), Some(ErrorCode::InvalidDpopProof)) => {
            RefreshVerdict::Refused(ErrorCode::InvalidDpopProof)
        }
        _ => RefreshVerdict::Failed,
    }
}

/// `Retry-After` in milliseconds, if it is a number of seconds (the form Baton sends).
pub fn parse_retry_after(value: Option<&str>) -> Option<i64> {
    let secs: i64 = value?.trim().parse().ok()?;
    (secs >= 0).then(|| secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_token_expired_refreshes() {
        use ErrorCode::*;
        assert_eq!(
            classify_api_answer(401, Some(TokenExpired)),
            ApiVerdict::RefreshAndRetry
        );
        for code in [SessionRevoked, TokenInvalid, Unauthenticated] {
            assert_eq!(
                classify_api_answer(401, Some(code)),
                ApiVerdict::EndSession(code)
            );
        }
        // A 401 we cannot read, or any other status, is the caller's to handle.
        assert_eq!(classify_api_answer(401, Some(Unknown)), ApiVerdict::Fail);
        assert_eq!(classify_api_answer(401, None), ApiVerdict::Fail);
        assert_eq!(
            classify_api_answer(403, Some(InvalidCredentials)),
            ApiVerdict::Fail
        );
        assert_eq!(
            classify_api_answer(400, Some(InvalidInput)),
            ApiVerdict::Fail
        );
        assert_eq!(
            classify_api_answer(503, Some(Unavailable)),
            ApiVerdict::Fail
        );
        assert_eq!(classify_api_answer(200, None), ApiVerdict::Success);
        assert_eq!(classify_api_answer(204, None), ApiVerdict::Success);
    }

    #[test]
    fn only_a_definite_refusal_ends_a_session_on_refresh() {
        use ErrorCode::*;
        for code in [
            RefreshTokenInvalid,
            RefreshTokenExpired,
            RefreshTokenReused,
            SessionRevoked,
        ] {
            assert_eq!(
                classify_refresh_failure(Some(401), Some(code)),
                RefreshVerdict::Refused(code)
            );
        }
        assert_eq!(
            classify_refresh_failure(Some(400), Some(InvalidDpopProof)),
            RefreshVerdict::Refused(InvalidDpopProof)
        );
        assert_eq!(
            classify_refresh_failure(Some(400), Some(UseDpopNonce)),
            RefreshVerdict::Failed,
            "a nonce is asked for and retried, never a refusal"
        );
        for (status, code) in [
            (None, None),                    // network error
            (Some(503), Some(Unavailable)),  // database down
            (Some(500), Some(Internal)),     // bug
            (Some(502), None),               // proxy page
            (Some(429), Some(RateLimited)),  // slow down
            (Some(401), Some(Unknown)),      // a code this build does not know
            (Some(401), None),               // no readable body
            (Some(400), Some(InvalidInput)), // not a refusal of the session
            (Some(404), Some(NotFound)),     // misrouted
            (Some(401), Some(TokenExpired)), // not a refresh answer
        ] {
            assert_eq!(
                classify_refresh_failure(status, code),
                RefreshVerdict::Failed,
                "{status:?} {code:?}"
            );
        }
    }

    #[test]
    fn error_bodies_are_read_or_made_up() {
        let e = error_from_answer(
            400,
            r#"{"code":"invalid_input","message":"invalid input","fields":{"title":"is required"}}"#,
        );
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(e.fields.unwrap()["title"], "is required");
        assert_eq!(
            error_from_answer(503, "<html>busy</html>").code,
            ErrorCode::Unavailable
        );
        assert_eq!(error_from_answer(429, "").code, ErrorCode::RateLimited);
        assert_eq!(error_from_answer(502, "").code, ErrorCode::Internal);
        assert_eq!(error_from_answer(401, "").code, ErrorCode::Unknown);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(Some("30")), Some(30_000));
        assert_eq!(parse_retry_after(Some(" 0 ")), Some(0));
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn client_errors_expose_fields_and_messages() {
        let mut fields = BTreeMap::new();
        fields.insert("username".to_owned(), "must be 3-32 characters".to_owned());
        let e = ClientError::Api {
            status: 400,
            error: ApiError::new(ErrorCode::InvalidInput, "invalid input").with_fields(fields),
        };
        assert_eq!(e.code(), Some(ErrorCode::InvalidInput));
        assert_eq!(e.fields()["username"], "must be 3-32 characters");
        assert_eq!(e.user_message(), "invalid input");
        assert!(ClientError::Network("x".into()).fields().is_empty());
        assert!(ClientError::Network("x".into())
            .user_message()
            .contains("could not be reached"));
    }
}
