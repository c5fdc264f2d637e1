//! `/api/auth/*`: register, login, refresh (rotation with reuse detection), logout.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use baton_shared::ApiError;
use baton_shared::{
    DeviceName, ErrorCode, LoginRequest, RefreshRequest, RegisterRequest, TokenPair, User,
    UserEnvelope, TOKEN_TYPE_BEARER,
};
use uuid::Uuid;

use crate::clock::{millis, now_ms};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, AuthUser, ClientIp};
use crate::state::AppState;
use crate::store;
use crate::store::sessions::{Exchange, NewSession, RefreshLookup, RevokeReason, Successor};
use crate::tokens::{hash_refresh_token, new_refresh_token};

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
    let account = credentials.username.canonical();
    state.limits.check_account(&account, now_ms())?;
    let found = store::users::find_credentials(&state.db, &credentials.username).await?;
    let matched = state
        .passwords
        .verify(
            &credentials.password,
            found.as_ref().map(|f| f.password_hash.as_str()),
        )
        .await?;
    let Some(found) = found.filter(|_| matched) else {
        state.limits.login_failed(&account, now_ms());
        tracing::info!("login refused");
        return Err(Error::invalid_credentials());
    };
    state.limits.login_succeeded(&account);
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
    let config = &state.config;
    let now = now_ms();
    let session_id = Uuid::new_v4();
    let expires_at = now + millis(config.tokens.session_ttl);
    let token_expires_at = (now + millis(config.tokens.refresh_idle_ttl)).min(expires_at);
    let (refresh_token, hash) = new_refresh_token();
    store::sessions::create(
        &state.db,
        NewSession {
            id: session_id,
            user_id: user.id,
            device_name: device_name.map(DeviceName::as_str),
            user_agent,
            now,
            expires_at,
            token_hash: &hash,
            token_expires_at,
        },
    )
    .await?;
    token_pair(
        state,
        user,
        session_id,
        refresh_token,
        token_expires_at,
        now,
    )
}

fn token_pair(
    state: &AppState,
    user: User,
    session_id: Uuid,
    refresh_token: String,
    refresh_expires_at: i64,
    now: i64,
) -> Result<TokenPair> {
    let (access_token, _exp) = state.tokens.sign(user.id, session_id)?;
    Ok(TokenPair {
        access_token,
        token_type: TOKEN_TYPE_BEARER.to_owned(),
        expires_in: state.tokens.ttl_secs(),
        refresh_token,
        refresh_expires_in: (refresh_expires_at - now).div_euclid(1000).max(0),
        session_id,
        user,
    })
}

/// `POST /api/auth/refresh`
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the refresh token rotated", body = TokenPair),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "`refresh_token_invalid`, `refresh_token_expired`, `refresh_token_reused` or `session_revoked`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError),
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

async fn refresh_inner(
    state: &AppState,
    ip: std::net::IpAddr,
    req: &RefreshRequest,
) -> Result<TokenPair> {
    state.limits.refresh_attempt(&ip)?;
    let token = req.parse()?;
    let hash = hash_refresh_token(token);
    // The common case, a live session's current token, is one statement.
    let now = now_ms();
    let idle_expires_at = now + millis(state.config.tokens.refresh_idle_ttl);
    let (successor, successor_hash) = new_refresh_token();
    if let Some(rotated) =
        store::sessions::rotate_current(&state.db, &hash, &successor_hash, now, idle_expires_at)
            .await?
    {
        return token_pair(
            state,
            rotated.user(),
            rotated.session_id,
            successor,
            rotated.expires_at,
            now,
        );
    }
    // Anything else: find out why, and apply the grace window.
    match store::sessions::find_refresh(&state.db, &hash).await? {
        Some(found) => rotate(state, &hash, found).await,
        None => Err(Error::client(
            ErrorCode::RefreshTokenInvalid,
            "the refresh token is not valid",
        )),
    }
}

/// Exchanges a refresh token for a new pair.
///
/// - The current token of a live session rotates: exactly one of any number of
///   concurrent exchanges wins; the others see the token as just used.
/// - A just-used token whose successor generation is still current, presented within
///   the grace window, gets another successor (a lost response or two racing tabs
///   must not log the user out).
/// - Any other used token is reuse: the whole session is revoked.
async fn rotate(state: &AppState, hash: &[u8], mut found: RefreshLookup) -> Result<TokenPair> {
    let config = &state.config;
    let grace_ms = millis(config.tokens.reuse_grace);
    // Each pass either answers or learns that another exchange changed the session;
    // three passes are enough for any interleaving of one win and its grace siblings.
    for _ in 0..3 {
        let now = now_ms();
        if found.revoked_at.is_some() {
            return Err(Error::client(
                ErrorCode::SessionRevoked,
                "this session was ended",
            ));
        }
        if now >= found.session_expires_at {
            return Err(refresh_expired());
        }
        let is_current = found.token_generation == found.session_generation;
        if is_current && now >= found.token_expires_at {
            return Err(refresh_expired());
        }
        if !is_current {
            let in_grace = grace_ms > 0
                && found.token_generation + 1 == found.session_generation
                && found
                    .rotated_at
                    .is_some_and(|rotated| now - rotated <= grace_ms);
            if !in_grace {
                return Err(reuse_detected(state, &found, now).await?);
            }
        }
        let expires_at =
            (now + millis(config.tokens.refresh_idle_ttl)).min(found.session_expires_at);
        let (token, new_hash) = new_refresh_token();
        let next = Successor {
            session_id: found.session_id,
            token_hash: &new_hash,
            now,
            expires_at,
        };
        let issued = if is_current {
            store::sessions::exchange(&state.db, Exchange::Rotate, found.token_generation, next)
                .await?
        } else {
            store::sessions::exchange(&state.db, Exchange::Sibling, found.session_generation, next)
                .await?
        };
        if issued {
            if !is_current {
                tracing::info!(session_id = %found.session_id, "refresh token presented again within the grace window");
            }
            return token_pair(
                state,
                found.user(),
                found.session_id,
                token,
                expires_at,
                now,
            );
        }
        // Another exchange changed the session between our read and our write: read
        // again on the write path, which sees it.
        found = store::sessions::find_refresh_fresh(&state.db, hash)
            .await?
            .ok_or_else(|| {
                Error::client(
                    ErrorCode::RefreshTokenInvalid,
                    "the refresh token is not valid",
                )
            })?;
    }
    Err(Error::client(
        ErrorCode::RefreshTokenReused,
        "this refresh token was already used",
    ))
}

/// A rotated token presented again outside the grace window: it was copied. The whole
/// session is revoked, so that neither the thief nor the user keeps a working token.
async fn reuse_detected(state: &AppState, found: &RefreshLookup, now: i64) -> Result<Error> {
    let session_id = found.session_id;
    if store::sessions::revoke(&state.db, session_id, RevokeReason::RefreshTokenReused, now).await?
    {
        state.revocations.insert(session_id, now);
        state.metrics.revocation(RevokeReason::RefreshTokenReused);
        tracing::warn!(
            %session_id,
            user_id = %found.user_id,
            "refresh token reuse detected: session revoked"
        );
    }
    Ok(Error::client(
        ErrorCode::RefreshTokenReused,
        "this refresh token was already used; the session has been ended",
    ))
}

fn refresh_expired() -> Error {
    Error::client(
        ErrorCode::RefreshTokenExpired,
        "the refresh token expired; log in again",
    )
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
    let hash = hash_refresh_token(token);
    if let Some(session_id) = store::sessions::session_of_token(&state.db, &hash).await? {
        let now = now_ms();
        if store::sessions::revoke(&state.db, session_id, RevokeReason::Logout, now).await? {
            state.revocations.insert(session_id, now);
            state.metrics.revocation(RevokeReason::Logout);
            tracing::info!(%session_id, "logged out");
        }
    }
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
    let now = now_ms();
    let ended =
        store::sessions::revoke_all(&state.db, auth.user_id, None, RevokeReason::LogoutAll, now)
            .await?;
    for id in &ended {
        state.revocations.insert(*id, now);
        state.metrics.revocation(RevokeReason::LogoutAll);
    }
    tracing::info!(sessions = ended.len(), "logged out everywhere");
    Ok(StatusCode::NO_CONTENT)
}
