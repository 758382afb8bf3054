//! Users: creation with the username, email and password rules, lookup, listing, profile and
//! role changes (with the moderator and last-admin rules), deletion, and password checks.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AccountError, Accounts, USERS, new_id};
use crate::password;
use crate::role::Role;
use sluice_meta::{MetaError, Page};

/// A user as stored. The password hash never leaves this crate's answers: see [`User::public`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(skip)]
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What API answers show of a user: everything but the password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct PublicUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: Role,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

impl User {
    /// What API answers show of a user.
    pub fn public(&self) -> PublicUser {
        PublicUser {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    fn from_stored(id: String, document: Value) -> Result<User, AccountError> {
        let mut user: User = serde_json::from_value(document).map_err(|e| MetaError::Corrupt {
            collection: USERS.name,
            id: id.clone(),
            detail: e.to_string(),
        })?;
        user.id = id;
        Ok(user)
    }

    fn stored(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: Role,
}

/// Changes to a user; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub email: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub username: Option<String>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AccountError {
    AccountError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Lower-cased; 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn normalize_username(username: &str) -> Result<String, AccountError> {
    let name = username.trim().to_lowercase();
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !(3..=32).contains(&name.len())
        || !valid_chars
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(invalid(
            "username",
            "must be 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    Ok(name)
}

fn normalize_email(email: Option<String>) -> Result<Option<String>, AccountError> {
    let Some(email) = email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let well_formed = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if !well_formed {
        return Err(invalid("email", "is not an email address"));
    }
    Ok(Some(email))
}

fn normalize_display_name(name: Option<String>) -> Result<Option<String>, AccountError> {
    let Some(name) = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid(
            "display_name",
            "must be at most 100 characters, without control characters",
        ));
    }
    Ok(Some(name))
}

fn conflict(e: MetaError) -> AccountError {
    match e {
        MetaError::Conflict { ref field, .. } if field == "email" => AccountError::EmailTaken,
        MetaError::Conflict { .. } => AccountError::UsernameTaken,
        other => other.into(),
    }
}

impl Accounts {
    pub async fn create_user(&self, new: NewUser) -> Result<User, AccountError> {
        let username = normalize_username(&new.username)?;
        password::check_policy(&new.password, &username).map_err(|r| invalid("password", r))?;
        let now = sluice_event::now_ms();
        let user = User {
            id: new_id("u"),
            username,
            email: normalize_email(new.email)?,
            display_name: normalize_display_name(new.display_name)?,
            role: new.role,
            password_hash: password::hash(&new.password, self.config.bcrypt_cost).await?,
            created_at: now,
            updated_at: now,
        };
        self.meta
            .insert(&USERS, &user.id, &user.stored())
            .await
            .map_err(conflict)?;
        Ok(user)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, AccountError> {
        self.meta
            .get(&USERS, id)
            .await?
            .map(|document| User::from_stored(id.to_owned(), document))
            .transpose()
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, AccountError> {
        let Ok(username) = normalize_username(username) else {
            return Ok(None);
        };
        self.meta
            .find_one(&USERS, &[("username", json!(username))])
            .await?
            .map(|(id, document)| User::from_stored(id, document))
            .transpose()
    }

    /// A page of users matching `filter`, and how many match in all.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        page: Page,
    ) -> Result<(Vec<User>, u64), AccountError> {
        let mut conditions = Vec::new();
        if let Some(role) = filter.role {
            conditions.push(("role", json!(role)));
        }
        if let Some(username) = &filter.username {
            conditions.push(("username", json!(username.trim().to_lowercase())));
        }
        let total = self.meta.count(&USERS, &conditions).await?;
        let users = self
            .meta
            .find(&USERS, &conditions, page)
            .await?
            .into_iter()
            .map(|(id, document)| User::from_stored(id, document))
            .collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    pub async fn count_users(&self) -> Result<u64, AccountError> {
        Ok(self.meta.count(&USERS, &[]).await?)
    }

    /// Applies `change` to user `id` on behalf of someone with role `actor`. Moderators may not
    /// grant admin nor change an admin; nobody may demote the last admin. A role change ends the
    /// user's sessions, so the new role applies at once instead of when the access token expires.
    pub async fn update_user(
        &self,
        actor: Role,
        id: &str,
        change: ProfileChange,
    ) -> Result<User, AccountError> {
        let _serialised = self.admin_changes.lock().await;
        let mut user = self.user(id).await?.ok_or(AccountError::NotFound("user"))?;
        if actor < Role::Admin {
            if user.role == Role::Admin {
                return Err(AccountError::Forbidden(
                    "only an admin can change an admin".into(),
                ));
            }
            if change.role == Some(Role::Admin) {
                return Err(AccountError::Forbidden(
                    "only an admin can grant the admin role".into(),
                ));
            }
        }
        let role_changed = change.role.is_some_and(|role| role != user.role);
        if role_changed && actor < Role::Moderator {
            return Err(AccountError::Forbidden(
                "changing a role needs the moderator role".into(),
            ));
        }
        if role_changed && user.role == Role::Admin && self.admin_count().await? <= 1 {
            return Err(AccountError::LastAdmin);
        }
        if let Some(email) = change.email {
            user.email = normalize_email(email)?;
        }
        if let Some(name) = change.display_name {
            user.display_name = normalize_display_name(name)?;
        }
        if let Some(role) = change.role {
            user.role = role;
        }
        user.updated_at = sluice_event::now_ms();
        let replaced = self
            .meta
            .replace(&USERS, &user.id, &user.stored(), &[])
            .await
            .map_err(conflict)?;
        if !replaced {
            return Err(AccountError::NotFound("user"));
        }
        if role_changed {
            self.end_sessions_of(&user.id, None).await?;
        }
        Ok(user)
    }

    /// Deletes user `id` with their sessions and API keys; never the last admin.
    pub async fn delete_user(&self, id: &str) -> Result<(), AccountError> {
        let _serialised = self.admin_changes.lock().await;
        let user = self.user(id).await?.ok_or(AccountError::NotFound("user"))?;
        if user.role == Role::Admin && self.admin_count().await? <= 1 {
            return Err(AccountError::LastAdmin);
        }
        self.end_sessions_of(id, None).await?;
        self.revoke_api_keys_of(id).await?;
        self.meta.delete(&USERS, id).await?;
        Ok(())
    }

    async fn admin_count(&self) -> Result<u64, AccountError> {
        Ok(self
            .meta
            .count(&USERS, &[("role", json!(Role::Admin))])
            .await?)
    }

    /// The user whose password this is. An unknown username costs the same bcrypt check as a
    /// wrong password and gets the same error.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<User, AccountError> {
        let user = self.user_by_username(username).await?;
        let hash = user
            .as_ref()
            .map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let matches = password::verify(password, hash).await;
        match user {
            Some(user) if matches => Ok(user),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// Sets a new password after checking the current one, and ends every other session of the
    /// user (a stolen session must not outlive the password change). Returns how many ended.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: &str,
        keep_session: &str,
    ) -> Result<usize, AccountError> {
        let mut user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::SessionEnded)?;
        if !password::verify(current, &user.password_hash).await {
            return Err(invalid("current_password", "is not the current password"));
        }
        if current == new {
            return Err(invalid(
                "new_password",
                "must differ from the current password",
            ));
        }
        password::check_policy(new, &user.username).map_err(|r| invalid("new_password", r))?;
        user.password_hash = password::hash(new, self.config.bcrypt_cost).await?;
        user.updated_at = sluice_event::now_ms();
        self.meta
            .replace(&USERS, &user.id, &user.stored(), &[])
            .await?;
        self.end_sessions_of(&user.id, Some(keep_session)).await
    }

    /// Sets a role without an acting user: for the `sluice user` command line, run by whoever
    /// owns the data directory. The last-admin rule still holds.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User, AccountError> {
        let user = self
            .user_by_username(username)
            .await?
            .ok_or(AccountError::NotFound("user"))?;
        self.update_user(
            Role::Admin,
            &user.id,
            ProfileChange {
                role: Some(role),
                ..ProfileChange::default()
            },
        )
        .await
    }
}
