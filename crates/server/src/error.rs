//! The one error type of the server and how it becomes an HTTP response.
//!
//! Client errors carry the contract's `ApiError` body. Internal and database errors
//! are logged with their cause chain and answered with a generic message: no SQL, no
//! paths, no secrets ever reach a client.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
pub use baton_shared::ErrorCode;
use baton_shared::{ApiError, FieldErrors};

mod dpop;

pub use dpop::{DpopAnswer, DpopEndpoint, DpopError, DpopProblem, DPOP_ALGS};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The realm of every `WWW-Authenticate` challenge.
pub const REALM: &str = "baton";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client error: answered with this code and message.
    #[error("{}: {}", .0.code, .0.message)]
    Client(ApiError),

    /// 403 with this body: the caller is known but may not do this
    /// (`invalid_credentials` on a password change).
    #[error("{}: {}", .0.code, .0.message)]
    Forbidden(ApiError),

    /// 400 `invalid_input` with a message per field.
    #[error("invalid input: {0:?}")]
    Validation(FieldErrors),

    /// 401/400 on the access token, with an RFC 6750 challenge.
    #[error("bearer token refused: {0:?}")]
    Bearer(BearerError),

    /// 400/401 on a DPoP proof or a DPoP-bound token, with an RFC 9449 challenge.
    #[error("DPoP refused: {0:?}")]
    Dpop(DpopError),

    /// 429 with `Retry-After` (seconds).
    #[error("rate limited for {retry_after}s")]
    RateLimited { retry_after: u64 },

    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why an access token was refused (API.md, "Access-token failures").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization` header, or not `Bearer`.
    Missing,
    /// `Bearer` with an empty or malformed value.
    Malformed,
    Expired,
    Invalid,
    SessionRevoked,
}

impl BearerError {
    pub fn code(self) -> ErrorCode {
        match self {
            BearerError::Missing => ErrorCode::Unauthenticated,
            BearerError::Malformed => ErrorCode::InvalidRequest,
            BearerError::Expired => ErrorCode::TokenExpired,
            BearerError::Invalid => ErrorCode::TokenInvalid,
            BearerError::SessionRevoked => ErrorCode::SessionRevoked,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            BearerError::Missing => "an access token is required",
            BearerError::Malformed => "the Authorization header is malformed",
            BearerError::Expired => "the access token expired",
            BearerError::Invalid => "the access token is invalid",
            BearerError::SessionRevoked => "the session of this access token was ended",
        }
    }

    fn challenge(self) -> String {
        match self {
            BearerError::Missing => format!("Bearer realm=\"{REALM}\""),
            BearerError::Malformed => {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_request\"")
            }
            BearerError::Expired => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the access token expired\""
            ),
            BearerError::Invalid | BearerError::SessionRevoked => {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
            }
        }
    }
}

impl Error {
    pub fn client(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Client(ApiError::new(code, message))
    }

    pub fn not_found() -> Self {
        Self::client(ErrorCode::NotFound, "not found")
    }

    pub fn invalid_credentials() -> Self {
        Self::client(ErrorCode::InvalidCredentials, "wrong username or password")
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::InvalidInput, message)
    }

    /// The database is unreachable (as opposed to a query failing): 503.
    pub fn unavailable() -> Self {
        Self::client(
            ErrorCode::Unavailable,
            "the service is temporarily unavailable, try again shortly",
        )
    }

    /// The code this error is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Client(e) | Error::Forbidden(e) => e.code,
            Error::Validation(_) => ErrorCode::InvalidInput,
            Error::Bearer(b) => b.code(),
            Error::Dpop(d) => d.problem.code(),
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Database(e) if is_unavailable(e) => ErrorCode::Unavailable,
            Error::Database(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Error::Validation(errors)
    }
}

/// Maps a unique-constraint violation to a client error; anything else stays a
/// database error.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Database(sqlx::Error::Database(db)) if constraint_matches(&*db, name) => f(),
            other => other,
        })
    }
}

fn constraint_matches(db: &dyn sqlx::error::DatabaseError, name: &str) -> bool {
    if db.constraint() == Some(name) {
        return true;
    }
    // SQLite names the columns, not the index: "UNIQUE constraint failed: users.username_canonical".
    db.kind() == sqlx::error::ErrorKind::UniqueViolation
        && name
            .strip_suffix("_key")
            .and_then(|n| n.split_once('_'))
            .is_some_and(|(table, column)| db.message().ends_with(&format!("{table}.{column}")))
}

/// True when the database could not be reached or is refusing work for now (so the
/// answer is 503 and retrying later may succeed), rather than a query being wrong.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            // PostgreSQL: class 08 connection exception, 53 insufficient resources,
            // 57P01-03 shutting down / cannot connect now.
            Some(code) if code.starts_with("08") || code.starts_with("53") => true,
            Some(code) if matches!(&*code, "57P01" | "57P02" | "57P03") => true,
            // SQLite: BUSY (5, and extended codes ending in it), LOCKED (6),
            // IOERR (10), CANTOPEN (14).
            Some(code) => code
                .parse::<i32>()
                .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 14)),
            None => false,
        },
        _ => false,
    }
}

fn json_error(status: StatusCode, body: ApiError) -> Response {
    (status, Json(body)).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self {
            Error::Client(body) => json_error(status, body),
            Error::Forbidden(body) => json_error(StatusCode::FORBIDDEN, body),
            Error::Validation(fields) => {
                let fields: BTreeMap<String, String> = fields.into_map();
                json_error(
                    status,
                    ApiError::new(code, "some fields are invalid").with_fields(fields),
                )
            }
            Error::Bearer(bearer) => {
                let mut response = json_error(status, ApiError::new(code, bearer.message()));
                if let Ok(value) = HeaderValue::from_str(&bearer.challenge()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Error::Dpop(dpop) => dpop.into_response(),
            Error::RateLimited { retry_after } => {
                let mut response = json_error(
                    status,
                    ApiError::new(code, "too many attempts, try again later"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                response
            }
            Error::Database(e) if code == ErrorCode::Unavailable => {
                tracing::warn!(error = %e, "database unavailable");
                json_error(
                    status,
                    ApiError::new(
                        code,
                        "the service is temporarily unavailable, try again shortly",
                    ),
                )
            }
            Error::Database(e) => {
                tracing::error!(error = ?e, "database error");
                json_error(status, ApiError::new(code, "an internal error occurred"))
            }
            Error::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                json_error(status, ApiError::new(code, "an internal error occurred"))
            }
        }
    }
}
