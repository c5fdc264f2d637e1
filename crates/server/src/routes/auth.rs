//! `/api/auth/*`: register, login, refresh (rotation with reuse detection), logout.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use baton_shared::ApiError;
use baton_shared::{
    DeviceName, ErrorCode, LoginRequest, RefreshRequest, RegisterRequest, TokenPair, User,
    UserEnvelope, TOKEN_TYPE_BEARER,
};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, AuthUser, ClientIp};
use crate::refresh_token;
use crate::state::AppState;
use crate::store;
use crate::store::rotation::Rotation;
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
        (status = 200, description = "A new session", body = TokenPair),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "`invalid_credentials`", body = ApiError),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ApiError),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>> {
    let outcome = login_inner(&state, ip, &headers, &req).await;
    if let Err(e) = &outcome {
        state.metrics.login_failed(e.code());
    }
    outcome.map(Json)
}

async fn login_inner(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
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
        store::users::set_password_hash(&state.db, found.user.id, &hash).await?;
    }
    let pair = start_session(
        state,
        found.user,
        credentials.device_name.as_ref(),
        user_agent(headers).as_deref(),
    )
    .await?;
    state.metrics.login_ok();
    tracing::info!(user_id = %pair.user.id, session_id = %pair.session_id, "logged in");
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

/// Creates a session with its first refresh token and signs an access token.
async fn start_session(
    state: &AppState,
    user: User,
    device_name: Option<&DeviceName>,
    user_agent: Option<&str>,
) -> Result<TokenPair> {
    let now = now_ms();
    let login = NewSession {
        user,
        device_name: device_name.map(DeviceName::as_str),
        user_agent,
    };
    let issued = store::sessions::create(&state.db, login, &state.lifetimes(), now).await?;
    token_pair(state, issued)
}

/// The answer to a login or a refresh: a new access token beside the refresh token.
fn token_pair(state: &AppState, issued: Issued) -> Result<TokenPair> {
    let (access_token, _exp) = state.tokens.sign(issued.user.id, issued.session_id)?;
    Ok(TokenPair {
        access_token,
        token_type: TOKEN_TYPE_BEARER.to_owned(),
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
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "`refresh_token_invalid`, `refresh_token_expired`, `refresh_token_reused` or `session_revoked`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError),
        (status = 503, description = "`unavailable`: nothing was issued or ended; try again", body = ApiError),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>> {
    let outcome = refresh_inner(&state, ip, &req).await;
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
    req: &RefreshRequest,
) -> Result<TokenPair> {
    state.limits.refresh_attempt(&ip)?;
    let token = req.parse()?;
    let rotation =
        store::rotation::rotate(&state.db, &state.chain, token, &state.lifetimes()).await?;
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
