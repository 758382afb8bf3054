//! Sessions: one per login, holding the refresh-token family. Each refresh rotates the family
//! to a new token; presenting an already-rotated token means it was copied, so the whole family
//! is revoked (RFC 6819 §5.2.2.3, OAuth 2.0 Security BCP §4.14). The meta store holds the
//! truth; the cache remembers for a minute that a session is live, so checking an access token
//! costs a cache read, and ending a session clears that entry.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AccountError, Accounts, PublicUser, SESSIONS, User, new_id};
use crate::tokens::{Claims, Subject, TokenKind};
use sluice_meta::{MetaError, Page};

/// How long a live session is taken on the cache's word. Bounds how long an ended session's
/// access token keeps working on a process whose in-memory cache still holds it.
const LIVE_FOR: Duration = Duration::from_secs(60);
const LIVE: &[u8] = b"live";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    user_id: String,
    /// The `jti` of the one refresh token of this family that may still be used.
    current: String,
    revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_because: Option<String>,
    created_at: i64,
    rotated_at: i64,
    /// When the last refresh token issued expires; the session is over then.
    expires_at: i64,
}

/// What a login or a refresh answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
    pub user: PublicUser,
}

fn cache_key(session_id: &str) -> String {
    format!("session:{session_id}")
}

impl Accounts {
    /// Starts a session for `user` and issues its first token pair.
    pub async fn start_session(&self, user: &User) -> Result<TokenPair, AccountError> {
        self.prune_sessions(&user.id).await?;
        let session_id = new_id("s");
        let refresh_jti = new_id("r");
        let now = sluice_event::now_ms();
        let session = Session {
            user_id: user.id.clone(),
            current: refresh_jti.clone(),
            revoked: false,
            revoked_because: None,
            created_at: now,
            rotated_at: now,
            expires_at: now + millis(self.keys.refresh_ttl),
        };
        self.meta
            .insert(&SESSIONS, &session_id, &to_document(&session))
            .await?;
        Ok(self.issue_pair(user, &session_id, &refresh_jti))
    }

    /// Trades a refresh token for a new pair, retiring the one presented.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AccountError> {
        let claims = self.keys.verify(refresh_token, TokenKind::Refresh)?;
        let mut session = self
            .session(&claims.sid)
            .await?
            .ok_or(AccountError::SessionEnded)?;
        if session.revoked {
            return Err(AccountError::SessionEnded);
        }
        if session.current != claims.jti {
            self.end_session(&claims.sid, "refresh token reused")
                .await?;
            return Err(AccountError::RefreshReused);
        }
        let Some(user) = self.user(&claims.sub).await? else {
            self.end_session(&claims.sid, "user deleted").await?;
            return Err(AccountError::SessionEnded);
        };
        let next_jti = new_id("r");
        let now = sluice_event::now_ms();
        session.current = next_jti.clone();
        session.rotated_at = now;
        session.expires_at = now + millis(self.keys.refresh_ttl);
        // Only if nobody rotated it in the meantime: two refreshes with one token are a reuse.
        let rotated = self
            .meta
            .replace(
                &SESSIONS,
                &claims.sid,
                &to_document(&session),
                &[("current", json!(claims.jti)), ("revoked", json!(false))],
            )
            .await?;
        if !rotated {
            self.end_session(&claims.sid, "refresh token reused")
                .await?;
            return Err(AccountError::RefreshReused);
        }
        Ok(self.issue_pair(&user, &claims.sid, &next_jti))
    }

    /// Whether the session an access token names is still live.
    pub async fn session_is_live(&self, claims: &Claims) -> Result<bool, AccountError> {
        let key = cache_key(&claims.sid);
        if self.cache.get(&key).await?.as_deref() == Some(LIVE) {
            return Ok(true);
        }
        let live = self.session(&claims.sid).await?.is_some_and(|s| {
            !s.revoked && s.user_id == claims.sub && s.expires_at > sluice_event::now_ms()
        });
        if live {
            self.cache.set(&key, LIVE.to_vec(), LIVE_FOR).await?;
        }
        Ok(live)
    }

    /// Ends one session: its refresh token and its access tokens stop working.
    pub async fn end_session(&self, session_id: &str, because: &str) -> Result<(), AccountError> {
        if let Some(mut session) = self.session(session_id).await?
            && !session.revoked
        {
            session.revoked = true;
            session.revoked_because = Some(because.to_owned());
            self.meta
                .replace(&SESSIONS, session_id, &to_document(&session), &[])
                .await?;
        }
        self.cache.delete(&cache_key(session_id)).await?;
        Ok(())
    }

    /// Ends every live session of a user but `except`; how many ended.
    pub async fn end_sessions_of(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<usize, AccountError> {
        let mut ended = 0;
        for (id, session) in self.sessions_of(user_id).await? {
            if !session.revoked && Some(id.as_str()) != except {
                self.end_session(&id, "ended by the user or an administrator")
                    .await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    fn issue_pair(&self, user: &User, session_id: &str, refresh_jti: &str) -> TokenPair {
        let subject = Subject {
            user_id: &user.id,
            username: &user.username,
            role: user.role,
            session_id,
        };
        let (access_token, _) = self.keys.issue(TokenKind::Access, &subject, &new_id("a"));
        let (refresh_token, _) = self.keys.issue(TokenKind::Refresh, &subject, refresh_jti);
        TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.keys.access_ttl.as_secs(),
            user: user.public(),
        }
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, AccountError> {
        self.meta
            .get(&SESSIONS, id)
            .await?
            .map(|document| from_document(id, document))
            .transpose()
    }

    async fn sessions_of(&self, user_id: &str) -> Result<Vec<(String, Session)>, AccountError> {
        let mut all = Vec::new();
        let page_size = 500;
        loop {
            let page = self
                .meta
                .find(
                    &SESSIONS,
                    &[("user_id", json!(user_id))],
                    Page {
                        offset: all.len() as u64,
                        limit: page_size,
                    },
                )
                .await?;
            let done = (page.len() as u64) < page_size;
            for (id, document) in page {
                let session = from_document(&id, document)?;
                all.push((id, session));
            }
            if done {
                return Ok(all);
            }
        }
    }

    /// Forgets sessions whose last refresh token has expired: nothing can use them any more.
    async fn prune_sessions(&self, user_id: &str) -> Result<(), AccountError> {
        let now = sluice_event::now_ms();
        for (id, session) in self.sessions_of(user_id).await? {
            if session.expires_at <= now {
                self.meta.delete(&SESSIONS, &id).await?;
            }
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

fn to_document(session: &Session) -> Value {
    serde_json::to_value(session).unwrap_or(Value::Null)
}

fn from_document(id: &str, document: Value) -> Result<Session, AccountError> {
    serde_json::from_value(document).map_err(|e| {
        MetaError::Corrupt {
            collection: SESSIONS.name,
            id: id.to_owned(),
            detail: e.to_string(),
        }
        .into()
    })
}
