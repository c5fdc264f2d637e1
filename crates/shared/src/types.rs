//! Request and response shapes of the HTTP contract (`API.md`).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::input::{DeviceName, FieldErrors, NoteBody, NoteTitle, Password, Username};

/// The `token_type` of a [`TokenPair`] whose session is not bound to a key.
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// The `token_type` of a [`TokenPair`] whose session is bound to a DPoP key (RFC 9449
/// section 5): its access token must be sent as `Authorization: DPoP <token>` with a
/// proof by that key.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `{"user": User}`: the answer of register and `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEnvelope {
    pub user: User,
}

/// What login and refresh answer: a new access token and a new refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    /// JWT to send as `Authorization: <token_type> <access_token>`.
    pub access_token: String,
    /// `"Bearer"`, or `"DPoP"` for a session bound to the key of the login's proof.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// Opaque, single-use token for `POST /api/auth/refresh`.
    pub refresh_token: String,
    /// Seconds until the refresh token's idle or absolute limit, whichever comes first.
    pub refresh_expires_in: i64,
    pub session_id: Uuid,
    pub user: User,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"..")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"..")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .finish()
    }
}

/// One login on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_used_at: OffsetDateTime,
    /// When the session ends at the latest (its absolute lifetime).
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    /// True for the session of the access token that asked.
    pub current: bool,
}

/// A note, the protected resource of the demo app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Note {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `"ok"`
    pub status: String,
}

macro_rules! redacted_debug {
    ($ty:ident { $($shown:ident),* } hides $($hidden:ident),+) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($hidden), &".."))+
                    .finish()
            }
        }
    };
}

/// `POST /api/auth/register`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
}
redacted_debug!(RegisterRequest { username } hides password);

/// A registration that follows the input rules.
#[derive(Debug)]
pub struct NewAccount {
    pub username: Username,
    pub password: Password,
}

impl RegisterRequest {
    pub fn parse(&self) -> Result<NewAccount, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse(&self.password));
        match (username, password) {
            (Some(username), Some(password)) => Ok(NewAccount { username, password }),
            _ => Err(errors),
        }
    }
}

/// `POST /api/auth/login`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// A name the user gives this device, shown in the session list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}
redacted_debug!(LoginRequest { username, device_name } hides password);

/// Login credentials that follow the input rules.
#[derive(Debug)]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
    pub device_name: Option<DeviceName>,
}

impl LoginRequest {
    pub fn parse(&self) -> Result<Credentials, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse_existing(&self.password));
        let device_name = match &self.device_name {
            Some(name) => errors.check("device_name", DeviceName::parse(name)),
            None => Some(None),
        };
        match (username, password, device_name) {
            (Some(username), Some(password), Some(device_name)) => Ok(Credentials {
                username,
                password,
                device_name,
            }),
            _ => Err(errors),
        }
    }
}

/// Longest refresh token the server looks at; anything longer is not one of ours.
pub const REFRESH_TOKEN_MAX_LEN: usize = 4096;

fn check_refresh_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        Err("is required")
    } else if token.len() > REFRESH_TOKEN_MAX_LEN {
        Err("is too long")
    } else {
        Ok(())
    }
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}
redacted_debug!(RefreshRequest {} hides refresh_token);

impl RefreshRequest {
    /// The token, if it is worth looking up. An unknown but well-formed token is the
    /// server's `refresh_token_invalid`, not an input error.
    pub fn parse(&self) -> Result<&str, FieldErrors> {
        check_refresh_token(&self.refresh_token)
            .map(|()| self.refresh_token.as_str())
            .map_err(|message| {
                let mut errors = FieldErrors::new();
                errors.add("refresh_token", message);
                errors
            })
    }
}

/// `PUT /api/me/password`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}
redacted_debug!(ChangePasswordRequest {} hides current_password, new_password);

#[derive(Debug)]
pub struct PasswordChange {
    pub current_password: Password,
    pub new_password: Password,
}

impl ChangePasswordRequest {
    pub fn parse(&self) -> Result<PasswordChange, FieldErrors> {
        let mut errors = FieldErrors::new();
        let current = errors.check(
            "current_password",
            Password::parse_existing(&self.current_password),
        );
        let new = errors.check("new_password", Password::parse(&self.new_password));
        match (current, new) {
            (Some(current_password), Some(new_password)) => Ok(PasswordChange {
                current_password,
                new_password,
            }),
            _ => Err(errors),
        }
    }
}

/// `POST /api/notes` and `PUT /api/notes/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoteInput {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct ValidNote {
    pub title: NoteTitle,
    pub body: NoteBody,
}

impl NoteInput {
    pub fn parse(&self) -> Result<ValidNote, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", NoteTitle::parse(&self.title));
        let body = errors.check("body", NoteBody::parse(&self.body));
        match (title, body) {
            (Some(title), Some(body)) => Ok(ValidNote { title, body }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let login = LoginRequest {
            username: "alice".into(),
            password: "correct horse".into(),
            device_name: Some("laptop".into()),
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("alice") && shown.contains("laptop"));
        assert!(!shown.contains("correct horse"), "{shown}");
        let refresh = RefreshRequest {
            refresh_token: "secret-token".into(),
        };
        assert!(!format!("{refresh:?}").contains("secret-token"));
    }

    #[test]
    fn register_collects_every_field_error() {
        let bad = RegisterRequest {
            username: "x".into(),
            password: "short".into(),
        };
        let errors = bad.parse().unwrap_err();
        assert_eq!(errors.get("username"), Some("must be 3-32 characters"));
        assert_eq!(errors.get("password"), Some("must be 8-1024 characters"));
    }

    #[test]
    fn login_device_name_is_optional_and_trimmed() {
        let mut req = LoginRequest {
            username: "alice".into(),
            password: "password1".into(),
            device_name: None,
        };
        assert!(req.parse().unwrap().device_name.is_none());
        req.device_name = Some("  ".into());
        assert!(req.parse().unwrap().device_name.is_none());
        req.device_name = Some(" Phone ".into());
        assert_eq!(req.parse().unwrap().device_name.unwrap().as_str(), "Phone");
    }

    #[test]
    fn refresh_token_presence_and_size() {
        let empty = RefreshRequest {
            refresh_token: String::new(),
        };
        assert_eq!(
            empty.parse().unwrap_err().get("refresh_token"),
            Some("is required")
        );
        let huge = RefreshRequest {
            refresh_token: "a".repeat(REFRESH_TOKEN_MAX_LEN + 1),
        };
        assert!(huge.parse().is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let user = User {
            id: Uuid::nil(),
            username: "alice".into(),
            created_at: time::macros::datetime!(2026-11-24 10:00:00 UTC),
        };
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json["created_at"], "2026-11-24T10:00:00Z");
    }
}
