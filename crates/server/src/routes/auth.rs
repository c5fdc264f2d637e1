//! `/api/auth/*`: register, login, refresh (rotation with reuse detection), logout.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use baton_shared::ApiError;
use baton_shared::{
    DeviceName, ErrorCode, LoginRequest, RefreshRequest, RegisterRequest, TokenPair, UserEnvelope,
    TOKEN_TYPE_BEARER, TOKEN_TYPE_DPOP,
};

use crate::clock::now_ms;
use crate::config::DpopMode;
use crate::error::{DpopEndpoint, DpopError, DpopProblem, Error, Result};
use crate::extract::{ApiJson, AuthUser, ClientIp, TokenProof};
use crate::refresh_token;
use crate::state::AppState;
use crate::store;
use crate::store::rotation::{Presenter, Rotation};
use crate::store::sessions::{Ending, Issued, NewSession, RevokeReason};

/// Longest user agent kept with a session.
const USER_AGENT_MAX: usize = 256;

/// `POST /api/auth/register`
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = UserEnvelope),
        (status = 400, description = "`invalid_input`, with `fields`", body = ApiError),
        (status = 409, description = "`username_taken`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserEnvelope>)> {
    state.limits.login_attempt(&ip)?;
    let account = req.parse()?;
    let hash = state.passwords.hash(&account.password).await?;
    let user = store::users::create(&state.db, &account.username, &hash).await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(UserEnvelope { user })))
}

/// `POST /api/auth/login`
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session; bound to the key of the `DPoP` proof if the request carries one (`token_type` `DPoP`)", body = TokenPair),
        (status = 400, description = "`invalid_input`; `invalid_dpop_proof`, `use_dpop_nonce` (retry with the `DPoP-Nonce` of this answer)", body = ApiError),
        (status = 401, description = "`invalid_credentials`", body = ApiError),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ApiError),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    proof: Result<TokenProof>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>> {
    let outcome = match proof {
        Ok(TokenProof(jkt)) => login_inner(&state, ip, &headers, jkt.as_deref(), &req).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        state.metrics.login_failed(e.code());
    }
    outcome.map(Json)
}

async fn login_inner(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    dpop_jkt: Option<&str>,
    req: &LoginRequest,
) -> Result<TokenPair> {
    state.limits.login_attempt(&ip)?;
    let credentials = req.parse()?;
    // Known or not, an account name gets the same limit (no way to probe which exist).
    // The check is reserved before the password is verified, so that concurrent
    // guesses cannot all pass one count.
    let account = credentials.username.canonical();
    let guess = state.limits.guess(&account, &ip, now_ms())?;
    let found = store::users::find_credentials(&state.db, &credentials.username).await?;
    let matched = state
        .passwords
        .verify(
            &credentials.password,
            found.as_ref().map(|f| f.password_hash.as_str()),
        )
        .await?;
    let Some(found) = found.filter(|_| matched) else {
        guess.wrong(now_ms());
        tracing::info!("login refused");
        return Err(Error::invalid_credentials());
    };
    guess.right(now_ms());
    if state.passwords.needs_rehash(&found.password_hash) {
        let hash = state.passwords.hash(&credentials.password).await?;
        store::users::rehash(&state.db, found.user.id, &found.password_hash, &hash).await?;
    }
    let user_agent = user_agent(headers);
    let login = NewSession {
        user: found.user,
        credential_version: found.credential_version,
        device_name: credentials.device_name.as_ref().map(DeviceName::as_str),
        user_agent: user_agent.as_deref(),
        dpop_jkt,
    };
    let Some(issued) =
        store::sessions::create(&state.db, login, &state.lifetimes(), now_ms()).await?
    else {
        // The password was changed after it was checked: the one given is no longer it.
        tracing::info!("login refused: the password changed while it was checked");
        return Err(Error::invalid_credentials());
    };
    let pair = token_pair(state, issued)?;
    state.metrics.login_ok();
    tracing::info!(user_id = %pair.user.id, session_id = %pair.session_id, dpop = dpop_jkt.is_some(), "logged in");
    Ok(pair)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let ua: String = ua
        .chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_MAX)
        .collect();
    let ua = ua.trim();
    (!ua.is_empty()).then(|| ua.to_owned())
}

/// The answer to a login or a refresh: a new access token beside the refresh token,
/// bound to the session's DPoP key if it has one.
fn token_pair(state: &AppState, issued: Issued) -> Result<TokenPair> {
    let jkt = issued.dpop_jkt.as_deref();
    let (access_token, _exp) = state
        .tokens
        .sign_bound(issued.user.id, issued.session_id, jkt)?;
    let token_type = if jkt.is_some() {
        TOKEN_TYPE_DPOP
    } else {
        TOKEN_TYPE_BEARER
    };
    Ok(TokenPair {
        access_token,
        token_type: token_type.to_owned(),
        expires_in: state.tokens.ttl_secs(),
        refresh_token: issued.refresh_token,
        refresh_expires_in: (issued.expires_at - issued.issued_at)
            .div_euclid(1000)
            .max(0),
        session_id: issued.session_id,
        user: issued.user,
    })
}

/// `POST /api/auth/refresh`
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the refresh token rotated", body = TokenPair),
        (status = 400, description = "`invalid_input`; `invalid_dpop_proof` (a bound session needs a proof by its key), `use_dpop_nonce`", body = ApiError),
        (status = 401, description = "`refresh_token_invalid`, `refresh_token_expired`, `refresh_token_reused` or `session_revoked`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError),
        (status = 503, description = "`unavailable`: nothing was issued or ended; try again", body = ApiError),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    proof: Result<TokenProof>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>> {
    let outcome = match proof {
        Ok(TokenProof(jkt)) => refresh_inner(&state, ip, jkt.as_deref(), &req).await,
        Err(e) => Err(e),
    };
    state
        .metrics
        .refresh(outcome.as_ref().err().map(Error::code));
    outcome.map(Json)
}

/// Exchanges a refresh token for a new pair: [`store::rotation::rotate`] decides, this
/// answers.
async fn refresh_inner(
    state: &AppState,
    ip: std::net::IpAddr,
    dpop_jkt: Option<&str>,
    req: &RefreshRequest,
) -> Result<TokenPair> {
    state.limits.refresh_attempt(&ip)?;
    let token = req.parse()?;
    let presenter = Presenter {
        jkt: dpop_jkt,
        bearer_allowed: state.dpop.mode() != DpopMode::Required,
    };
    let lifetimes = state.lifetimes();
    let rotation =
        store::rotation::rotate(&state.db, &state.chain, token, presenter, &lifetimes).await?;
    let refuse = |problem| Error::from(DpopError::new(problem, DpopEndpoint::Token));
    let (code, message) = match rotation {
        Rotation::Rotated(issued) => return token_pair(state, issued),
        Rotation::Replayed(issued) => {
            tracing::info!(session_id = %issued.session_id, "refresh token presented again within the grace window: its successor again");
            return token_pair(state, issued);
        }
        // A used token presented again outside the grace window was copied: the whole
        // session ends, so that neither the thief nor the user keeps a working token.
        Rotation::Reused {
            session_id,
            user_id,
        } => {
            tracing::Span::current().record("user_id", tracing::field::display(user_id));
            let session = Ending::Session(session_id);
            state
                .end_sessions(session, RevokeReason::RefreshTokenReused)
                .await?;
            (
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used; the session has been ended",
            )
        }
        // Nothing was issued and nothing ended: the client may try again.
        Rotation::Contended => return Err(Error::unavailable()),
        Rotation::Expired => (
            ErrorCode::RefreshTokenExpired,
            "the refresh token expired; log in again",
        ),
        Rotation::SessionEnded => (ErrorCode::SessionRevoked, "this session was ended"),
        Rotation::Unknown => (
            ErrorCode::RefreshTokenInvalid,
            "the refresh token is not valid",
        ),
        // Not revoked: a copied token without its key can do nothing, and a refusal
        // that ended the session would let any script that reads storage log the
        // user out (README, Security notes).
        Rotation::WrongKey { session_id } => {
            tracing::warn!(%session_id, proof = dpop_jkt.is_some(), "refresh of a DPoP-bound session without a proof by its key refused");
            return Err(match (state.dpop.mode(), dpop_jkt) {
                (DpopMode::Off, _) => Error::client(
                    ErrorCode::RefreshTokenInvalid,
                    "this session is bound to a DPoP key and DPoP is off; log in again",
                ),
                (_, None) => refuse(DpopProblem::Missing),
                (_, Some(_)) => refuse(DpopProblem::WrongKey),
            });
        }
        Rotation::NotBound => {
            return Err(refuse(DpopProblem::Invalid(
                "this server accepts only DPoP-bound sessions; log in again with a proof",
            )))
        }
    };
    Err(Error::client(code, message))
}

/// `POST /api/auth/logout`: ends the session of this refresh token. Idempotent, and
/// 204 for an unknown token too (nothing to tell an attacker).
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 204, description = "The session ended (also for an unknown token)"),
        (status = 400, description = "`invalid_input`", body = ApiError),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    let token = req.parse()?;
    let hash = refresh_token::hash(token);
    state
        .end_sessions(Ending::OfRefreshToken(&hash), RevokeReason::Logout)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/logout-all`: ends every session of the user, this one included.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user ended"),
        (status = 401, description = "Access-token failure", body = ApiError),
    )
)]
pub async fn logout_all(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode> {
    let everything = Ending::AllOfUser {
        user_id: auth.user_id,
        except: None,
    };
    state
        .end_sessions(everything, RevokeReason::LogoutAll)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
