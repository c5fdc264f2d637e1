//! The API as OpenAPI 3.1 (served at `GET /api/openapi.json`), generated from the
//! handlers' annotations and the shared types, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, me, meta, notes, sessions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Baton",
        description = "Dual-token login: short-lived JWT access tokens, rotating single-use refresh tokens. Contract: docs/API.md.",
    ),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::logout_all,
        me::get,
        me::change_password,
        sessions::list,
        sessions::revoke,
        notes::list,
        notes::create,
        notes::get,
        notes::update,
        notes::delete,
        meta::health,
        meta::jwks,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out"),
        (name = "me", description = "The logged-in user"),
        (name = "sessions", description = "Where the user is logged in"),
        (name = "notes", description = "The protected resource of the demo app"),
        (name = "meta", description = "Health and keys"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (typ at+jwt)")
                    .description(Some(
                        "401 `token_expired` is the one answer on which a client refreshes. \
                         A DPoP-bound token (`cnf.jkt`, `token_type` `DPoP`) is sent as \
                         `Authorization: DPoP <token>` with a `DPoP` proof instead, never as Bearer.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "dpop",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "DPoP",
                "RFC 9449 proof: a JWT (typ dpop+jwt, alg EdDSA or ES256, the public jwk) \
                 with jti, htm, htu, iat, the server's nonce (DPoP-Nonce) and, beside an \
                 access token, ath. Optional at login (it binds the session to the key); \
                 required on every refresh and call of a bound session.",
            ))),
        );
    }
}

/// `GET /api/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
