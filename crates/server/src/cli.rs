//! Operator commands of the server binary.

use std::io::Read;

use anyhow::{bail, Context};
use baton_shared::{Password, Username};
use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::clock::{millis, now_ms, to_datetime};
use crate::config::Config;
use crate::keys::{MasterKey, Revoked};
use crate::state::AppState;
use crate::store;
use crate::store::sessions::{Ending, RevokeReason};

#[derive(Debug, Parser)]
#[command(
    name = "baton-server",
    version,
    about = "Baton: dual-token login server"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and end a user's sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage access-token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Delete expired refresh tokens, sessions and superseded keys now.
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (one line).
    Create {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions.
    List {
        #[arg(long)]
        username: String,
    },
    /// End one session of a user, or all of them.
    Revoke {
        #[arg(long)]
        username: String,
        /// The session to end; all of the user's sessions when absent.
        #[arg(long)]
        session: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and their state.
    List,
    /// Create a new signing key. It is published at once and signs after
    /// BATON_KEY_ACTIVATION_DELAY seconds; the old key verifies until its tokens expire.
    Rotate,
    /// Stop a key at once, on every instance: the tokens it signed are refused (their
    /// clients refresh), it leaves the JWKS. The answer to a leaked key. The key that
    /// signs now is replaced by a new one at the same moment. HS256: the `hs256-…` kid
    /// of a previous secret.
    Revoke {
        /// The key's id (`keys list`, or the `kid` of a token it signed).
        kid: String,
    },
    /// Print a new random master key (base64) for BATON_MASTER_KEY.
    GenerateMaster,
}

/// When running instances act on what a command wrote to the database.
fn reach(state: &AppState) -> String {
    let poll = state.config.background.sync_interval.as_millis();
    if state.db.is_sqlite() {
        format!("running instances act on it within {poll} ms")
    } else {
        format!("running instances act on it at once (pushed; at the latest within {poll} ms)")
    }
}

async fn user_by_name(state: &AppState, username: &str) -> anyhow::Result<baton_shared::User> {
    let username = Username::parse(username).map_err(|e| anyhow::anyhow!("username {e}"))?;
    Ok(store::users::find_credentials(&state.db, &username)
        .await?
        .with_context(|| format!("no user named {username}"))?
        .user)
}

/// Runs an operator command; output goes to stdout, one line per item.
pub async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    if let Command::Keys(KeysCommand::GenerateMaster) = command {
        println!("{}", MasterKey::generate_base64());
        return Ok(());
    }
    let state = AppState::new(config).await?;
    match command {
        Command::Serve | Command::Keys(KeysCommand::GenerateMaster) => {
            unreachable!("handled by the caller")
        }
        Command::User(UserCommand::Create { username }) => {
            let username =
                Username::parse(&username).map_err(|e| anyhow::anyhow!("username {e}"))?;
            let mut line = String::new();
            std::io::stdin().read_to_string(&mut line)?;
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let password = Password::parse(line).map_err(|e| anyhow::anyhow!("password {e}"))?;
            let hash = state
                .passwords
                .hash(&password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let user = store::users::create(&state.db, &username, &hash)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created user {} ({})", user.username, user.id);
        }
        Command::Sessions(SessionsCommand::List { username }) => {
            let user = user_by_name(&state, &username).await?;
            let sessions = store::sessions::list_active(&state.db, user.id, Uuid::nil(), now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for s in &sessions {
                println!(
                    "{}  device={:?}  agent={:?}  created={}  last_used={}  expires={}",
                    s.id,
                    s.device_name.as_deref().unwrap_or("-"),
                    s.user_agent.as_deref().unwrap_or("-"),
                    s.created_at,
                    s.last_used_at,
                    s.expires_at
                );
            }
            println!("{} live session(s)", sessions.len());
        }
        Command::Sessions(SessionsCommand::Revoke { username, session }) => {
            let user = user_by_name(&state, &username).await?;
            let which = match session {
                Some(session_id) => Ending::UsersSession {
                    user_id: user.id,
                    session_id,
                },
                None => Ending::AllOfUser {
                    user_id: user.id,
                    except: None,
                },
            };
            let ended = state
                .end_sessions(which, RevokeReason::Operator)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let (Some(id), true) = (session, ended.is_empty()) {
                bail!("{username} has no live session {id}");
            }
            println!("ended {} session(s); {}", ended.len(), reach(&state));
        }
        Command::Keys(KeysCommand::List) => {
            let now = now_ms();
            let ring = state.tokens.ring();
            let signing = ring.signing_key(now).map(|(kid, _)| kid.to_owned());
            let published = ring.published_kids(now);
            for key in store::keys::all(&state.db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else if Some(&key.kid) == signing.as_ref() {
                    "signing"
                } else if key.activates_at > now {
                    "published, signs later"
                } else if published.contains(&key.kid.as_str()) {
                    "retired, still verifies"
                } else {
                    "retired"
                };
                println!(
                    "{}  {}  activates={}  {}",
                    key.kid,
                    key.alg,
                    to_datetime(key.activates_at),
                    status
                );
            }
        }
        Command::Keys(KeysCommand::Rotate) => {
            let delay = millis(state.config.keys.activation_delay);
            let key = state.keys.rotate(&state.db, delay).await?;
            println!(
                "new signing key {} published now, signs from {}; {}",
                key.kid,
                to_datetime(key.activates_at),
                reach(&state)
            );
        }
        Command::Keys(KeysCommand::Revoke { kid }) => {
            match state.keys.revoke(&state.db, &kid).await? {
                Revoked::Revoked => println!("revoked {kid}; {}", reach(&state)),
                Revoked::Replaced(key) => println!(
                    "revoked {kid}; new signing key {} signs from now; {}",
                    key.kid,
                    reach(&state)
                ),
                Revoked::Already => println!("{kid} was revoked already"),
            }
        }
        Command::Purge => {
            let purged = state.purge_once().await?;
            println!(
                "purged {} refresh token(s) and {} session(s)",
                purged.refresh_tokens, purged.sessions
            );
        }
    }
    state.feed.close().await;
    state.db.close().await;
    Ok(())
}
