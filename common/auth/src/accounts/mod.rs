//! Accounts: users, their sessions (refresh-token families) and producer API keys, as typed
//! operations over the meta store and the cache. Written once above the traits, so SQLite and
//! MongoDB, memory and Redis all get the same rules.

mod api_keys;
mod sessions;
mod users;

use std::sync::Arc;

use axum::http::StatusCode;
use rand::RngCore;
use thiserror::Error;

pub use api_keys::{ApiKey, ApiKeyPrincipal, KeyQuota, NewApiKey};
pub use sessions::TokenPair;
pub use users::{NewUser, ProfileChange, PublicUser, User, UserFilter};

use super::tokens::{TokenError, TokenKeys};
use sluice_cache::{Cache, CacheError};
use sluice_config::AuthConfig;
use sluice_http::ApiError;
use sluice_meta::{Collection, MetaError, MetaStore};

pub const USERS: Collection = Collection {
    name: "users",
    unique: &["username", "email"],
    indexed: &["role"],
};
pub const SESSIONS: Collection = Collection {
    name: "sessions",
    unique: &[],
    indexed: &["user_id"],
};
pub const API_KEYS: Collection = Collection {
    name: "api_keys",
    unique: &["hash"],
    indexed: &["user_id"],
};

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the username is taken")]
    UsernameTaken,
    #[error("the email address is already used by another account")]
    EmailTaken,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("this is the last admin; make another user admin first")]
    LastAdmin,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("this refresh token was already used; every session token of its family is revoked")]
    RefreshReused,
    #[error("the session has ended; log in again")]
    SessionEnded,
    #[error("the API key is unknown or revoked")]
    InvalidApiKey,
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Hashing(#[from] super::password::HashError),
}

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3).
const CHALLENGE: &str = "Bearer realm=\"sluice\"";

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        let message = e.to_string();
        let unauthorized = |code| {
            ApiError::new(StatusCode::UNAUTHORIZED, code, message.clone())
                .challenge(format!("{CHALLENGE}, error=\"invalid_token\""))
        };
        match e {
            AccountError::Invalid { field, .. } => {
                ApiError::bad_request("invalid_field", message).field(field)
            }
            AccountError::UsernameTaken => {
                ApiError::new(StatusCode::CONFLICT, "username_taken", message).field("username")
            }
            AccountError::EmailTaken => {
                ApiError::new(StatusCode::CONFLICT, "email_taken", message).field("email")
            }
            AccountError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            AccountError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            AccountError::LastAdmin => ApiError::new(StatusCode::CONFLICT, "last_admin", message),
            AccountError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
                    .challenge(CHALLENGE)
            }
            AccountError::Token(token) => unauthorized(token.code()),
            AccountError::RefreshReused => unauthorized("refresh_token_reused"),
            AccountError::SessionEnded => unauthorized("session_ended"),
            AccountError::InvalidApiKey => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", message)
                    .challenge("ApiKey realm=\"sluice\"")
            }
            AccountError::Meta(_) | AccountError::Cache(_) | AccountError::Hashing(_) => {
                tracing::error!(error = %message, "account backend failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend_unavailable",
                    "the account store is unavailable; try again shortly",
                )
                .retry_after(5)
            }
        }
    }
}

/// Everything account operations need; cheap to share behind an `Arc`.
pub struct Accounts {
    meta: Arc<dyn MetaStore>,
    cache: Arc<dyn Cache>,
    keys: TokenKeys,
    config: AuthConfig,
    /// A hash checked when the username is unknown, so that answer takes as long as a wrong
    /// password and does not reveal which usernames exist.
    decoy_hash: String,
    /// Serialises changes that could remove the last admin (demotion, deletion).
    admin_changes: tokio::sync::Mutex<()>,
}

/// Creates the accounts' collections and their unique indexes where missing; idempotent.
pub async fn prepare_meta(meta: &dyn MetaStore) -> Result<(), AccountError> {
    meta.prepare(&[USERS, SESSIONS, API_KEYS]).await?;
    Ok(())
}

impl Accounts {
    /// Prepares the collections and the decoy hash.
    pub async fn open(
        meta: Arc<dyn MetaStore>,
        cache: Arc<dyn Cache>,
        secret: &[u8],
        config: AuthConfig,
    ) -> Result<Accounts, AccountError> {
        prepare_meta(meta.as_ref()).await?;
        let decoy_hash = super::password::hash(&new_id("decoy"), config.bcrypt_cost).await?;
        Ok(Accounts {
            meta,
            cache,
            keys: TokenKeys::new(secret, &config),
            config,
            decoy_hash,
            admin_changes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn tokens(&self) -> &TokenKeys {
        &self.keys
    }

    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The meta store, for the api's own records (saved searches, fraud reviews).
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// Whether the meta store and the cache answer, each with the reason if not.
    pub async fn ready(&self) -> (Result<(), String>, Result<(), String>) {
        let meta = self.meta.count(&USERS, &[]).await.map(drop);
        let cache = self.cache.get("ready-probe").await.map(drop);
        (
            meta.map_err(|e| e.to_string()),
            cache.map_err(|e| e.to_string()),
        )
    }
}

/// A fresh random identifier, `prefix_` and 32 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

#[cfg(test)]
mod tests;
