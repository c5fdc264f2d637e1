//! DPoP refusals (RFC 9449 section 7): what was wrong with a proof or a DPoP-bound
//! token, where it happened, and how it is answered.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use baton_shared::ApiError;

use super::{json_error, BearerError, Error, ErrorCode, REALM};

/// A refusal under RFC 9449 section 7: what was wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopError {
    pub problem: DpopProblem,
    pub endpoint: DpopEndpoint,
}

/// Where a DPoP refusal happens: login and refresh answer 400 with the body only (an
/// OAuth token endpoint); resources answer 401 with a `WWW-Authenticate: DPoP` challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopEndpoint {
    Token,
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopProblem {
    /// No proof where one is needed: a bound session, `BATON_DPOP=required`, or the
    /// `DPoP` scheme without a `DPoP` header.
    Missing,
    /// The proof is malformed or fails a check; the message says which.
    Invalid(&'static str),
    /// The proof was accepted once already (its `jti`).
    Replayed,
    /// A valid proof, by another key than the one the session is bound to.
    WrongKey,
    /// The proof lacks a nonce this server accepts now: retry with `DPoP-Nonce`.
    UseNonce,
    /// A DPoP-bound access token sent as `Bearer`: refused, never downgraded.
    Downgrade,
    /// An access-token failure (expired, revoked...) of a request in the DPoP scheme.
    Token(BearerError),
}

/// The algorithms a DPoP proof may use, as a challenge's `algs` names them.
pub const DPOP_ALGS: &str = "EdDSA ES256";

/// Marks a response that answers in DPoP terms, for the layer that adds `DPoP-Nonce`
/// and counts refusals ([`crate::dpop::nonce_layer`]).
#[derive(Debug, Clone, Copy)]
pub struct DpopAnswer {
    /// The metric label of a refusal; `None` for an ordinary access-token failure.
    pub refusal: Option<&'static str>,
}

impl DpopProblem {
    pub fn code(self) -> ErrorCode {
        match self {
            DpopProblem::Missing
            | DpopProblem::Invalid(_)
            | DpopProblem::Replayed
            | DpopProblem::WrongKey => ErrorCode::InvalidDpopProof,
            DpopProblem::UseNonce => ErrorCode::UseDpopNonce,
            DpopProblem::Downgrade => ErrorCode::TokenInvalid,
            DpopProblem::Token(bearer) => bearer.code(),
        }
    }

    fn message(self) -> &'static str {
        match self {
            DpopProblem::Missing => "a DPoP proof is required",
            DpopProblem::Invalid(why) => why,
            DpopProblem::Replayed => "this DPoP proof was used before",
            DpopProblem::WrongKey => {
                "the DPoP proof is signed by another key than the one this session is bound to"
            }
            DpopProblem::UseNonce => "the DPoP proof needs the nonce of the DPoP-Nonce header",
            DpopProblem::Downgrade => {
                "this access token is bound to a key: send it as DPoP with a proof"
            }
            DpopProblem::Token(bearer) => bearer.message(),
        }
    }

    /// The label `baton_dpop_refusals_total` counts this under.
    fn refusal(self) -> Option<&'static str> {
        match self {
            DpopProblem::Missing => Some("missing_proof"),
            DpopProblem::Invalid(_) => Some("invalid_proof"),
            DpopProblem::Replayed => Some("replayed_proof"),
            DpopProblem::WrongKey => Some("wrong_key"),
            DpopProblem::UseNonce => Some("use_nonce"),
            DpopProblem::Downgrade => Some("bearer_downgrade"),
            DpopProblem::Token(_) => None,
        }
    }

    /// `WWW-Authenticate: DPoP ...` (RFC 9449 section 7.1).
    fn challenge(self) -> String {
        let head = format!("DPoP realm=\"{REALM}\", algs=\"{DPOP_ALGS}\"");
        let error = match self {
            DpopProblem::Token(BearerError::Missing) => return head,
            DpopProblem::Token(BearerError::Malformed) => "invalid_request",
            DpopProblem::Token(_) | DpopProblem::Downgrade => "invalid_token",
            DpopProblem::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        };
        // Messages are static text without quotes or backslashes.
        format!(
            "{head}, error=\"{error}\", error_description=\"{}\"",
            self.message()
        )
    }
}

impl DpopError {
    pub fn new(problem: DpopProblem, endpoint: DpopEndpoint) -> Self {
        Self { problem, endpoint }
    }

    fn status(self) -> StatusCode {
        match (self.endpoint, self.problem) {
            (DpopEndpoint::Token, _) => StatusCode::BAD_REQUEST,
            (DpopEndpoint::Resource, DpopProblem::Token(BearerError::Malformed)) => {
                StatusCode::BAD_REQUEST
            }
            (DpopEndpoint::Resource, _) => StatusCode::UNAUTHORIZED,
        }
    }
}

impl From<DpopError> for Error {
    fn from(e: DpopError) -> Self {
        Error::Dpop(e)
    }
}

impl IntoResponse for DpopError {
    /// 400 with the body on a token endpoint; 401 with a `WWW-Authenticate: DPoP`
    /// challenge on a resource. Marked ([`DpopAnswer`]) for the layer that adds the
    /// nonce and counts the refusal.
    fn into_response(self) -> Response {
        let body = ApiError::new(self.problem.code(), self.problem.message());
        let mut response = json_error(self.status(), body);
        if self.endpoint == DpopEndpoint::Resource {
            if let Ok(value) = HeaderValue::from_str(&self.problem.challenge()) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response.extensions_mut().insert(DpopAnswer {
            refusal: self.problem.refusal(),
        });
        response
    }
}
