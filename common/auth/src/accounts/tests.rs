//! Account rules over the embedded backends; the backends themselves have conformance suites.

use std::sync::Arc;

use super::*;
use crate::Role;
use crate::tokens::TokenKind;
use sluice_cache_memory::MemoryCache;
use sluice_meta::Page;
use sluice_meta_sqlite::SqliteMetaStore;

const PASSWORD: &str = "Correct-Horse-9";

async fn accounts(dir: &std::path::Path) -> Accounts {
    let meta = Arc::new(SqliteMetaStore::open(&dir.join("meta.db")).expect("sqlite"));
    let config = AuthConfig {
        bcrypt_cost: 4,
        ..AuthConfig::default()
    };
    Accounts::open(meta, Arc::new(MemoryCache::new(1000)), &[3u8; 32], config)
        .await
        .expect("accounts")
}

async fn user(accounts: &Accounts, name: &str, role: Role) -> User {
    accounts
        .create_user(NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            email: None,
            display_name: None,
            role,
        })
        .await
        .expect("user created")
}

#[tokio::test]
async fn usernames_are_unique_case_insensitively_and_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    user(&accounts, "Ada", Role::Viewer).await;
    let again = accounts
        .create_user(NewUser {
            username: "ADA".into(),
            password: PASSWORD.into(),
            email: None,
            display_name: None,
            role: Role::Viewer,
        })
        .await;
    assert!(
        matches!(again, Err(AccountError::UsernameTaken)),
        "{again:?}"
    );
    let bad = accounts
        .create_user(NewUser {
            username: "a d".into(),
            password: PASSWORD.into(),
            email: None,
            display_name: None,
            role: Role::Viewer,
        })
        .await;
    assert!(matches!(
        bad,
        Err(AccountError::Invalid {
            field: "username",
            ..
        })
    ));
    let weak = accounts
        .create_user(NewUser {
            username: "bob".into(),
            password: "short".into(),
            email: None,
            display_name: None,
            role: Role::Viewer,
        })
        .await;
    assert!(matches!(
        weak,
        Err(AccountError::Invalid {
            field: "password",
            ..
        })
    ));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_the_same_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    user(&accounts, "ada", Role::Viewer).await;
    let wrong = accounts.check_password("ada", "Wrong-Horse-9").await;
    let unknown = accounts.check_password("nobody", PASSWORD).await;
    assert_eq!(
        wrong.map(|u| u.id).unwrap_err().to_string(),
        unknown.map(|u| u.id).unwrap_err().to_string()
    );
    assert!(accounts.check_password("ADA", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let ada = user(&accounts, "ada", Role::Analyst).await;
    let first = accounts.start_session(&ada).await.expect("login");
    let second = accounts
        .refresh(&first.refresh_token)
        .await
        .expect("rotate");
    let claims = accounts
        .tokens()
        .verify(&second.access_token, TokenKind::Access)
        .expect("valid");
    assert!(accounts.session_is_live(&claims).await.expect("check"));

    // The first refresh token again: a copy is in use, so the family dies.
    let reused = accounts.refresh(&first.refresh_token).await;
    assert!(
        matches!(reused, Err(AccountError::RefreshReused)),
        "{reused:?}"
    );
    let after = accounts.refresh(&second.refresh_token).await;
    assert!(
        matches!(after, Err(AccountError::SessionEnded)),
        "{after:?}"
    );
    assert!(!accounts.session_is_live(&claims).await.expect("check"));
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_leave_at_most_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = Arc::new(accounts(dir.path()).await);
    let ada = user(&accounts, "ada", Role::Analyst).await;
    let login = accounts.start_session(&ada).await.expect("login");
    let attempts: Vec<_> = (0..4)
        .map(|_| {
            let accounts = Arc::clone(&accounts);
            let token = login.refresh_token.clone();
            tokio::spawn(async move { accounts.refresh(&token).await })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        if attempt.await.expect("task").is_ok() {
            winners += 1;
        }
    }
    assert!(winners <= 1, "{winners} refreshes won with one token");
}

#[tokio::test]
async fn password_change_ends_the_other_sessions_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let ada = user(&accounts, "ada", Role::Viewer).await;
    let here = accounts.start_session(&ada).await.expect("login");
    let elsewhere = accounts.start_session(&ada).await.expect("login");
    let here_claims = accounts
        .tokens()
        .verify(&here.access_token, TokenKind::Access)
        .expect("valid");
    let there_claims = accounts
        .tokens()
        .verify(&elsewhere.access_token, TokenKind::Access)
        .expect("valid");
    let ended = accounts
        .change_password(&ada.id, PASSWORD, "Another-Horse-7", &here_claims.sid)
        .await
        .expect("changed");
    assert_eq!(ended, 1);
    assert!(accounts.session_is_live(&here_claims).await.expect("check"));
    assert!(
        !accounts
            .session_is_live(&there_claims)
            .await
            .expect("check")
    );
    assert!(
        accounts
            .check_password("ada", "Another-Horse-7")
            .await
            .is_ok()
    );
    assert!(accounts.check_password("ada", PASSWORD).await.is_err());
}

#[tokio::test]
async fn moderators_cannot_grant_or_touch_admin_and_the_last_admin_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let admin = user(&accounts, "root", Role::Admin).await;
    let moderator = user(&accounts, "mod", Role::Moderator).await;
    let viewer = user(&accounts, "viewer", Role::Viewer).await;
    let promote = |role| ProfileChange {
        role: Some(role),
        ..ProfileChange::default()
    };
    let grant = accounts
        .update_user(moderator.role, &viewer.id, promote(Role::Admin))
        .await;
    assert!(
        matches!(grant, Err(AccountError::Forbidden(_))),
        "{grant:?}"
    );
    let own = accounts
        .update_user(moderator.role, &moderator.id, promote(Role::Admin))
        .await;
    assert!(matches!(own, Err(AccountError::Forbidden(_))), "{own:?}");
    let touch = accounts
        .update_user(moderator.role, &admin.id, promote(Role::Viewer))
        .await;
    assert!(
        matches!(touch, Err(AccountError::Forbidden(_))),
        "{touch:?}"
    );
    let analyst = accounts
        .update_user(moderator.role, &viewer.id, promote(Role::Analyst))
        .await
        .expect("moderators manage non-admins");
    assert_eq!(analyst.role, Role::Analyst);

    let demote = accounts
        .update_user(admin.role, &admin.id, promote(Role::Viewer))
        .await;
    assert!(matches!(demote, Err(AccountError::LastAdmin)), "{demote:?}");
    assert!(matches!(
        accounts.delete_user(&admin.id).await,
        Err(AccountError::LastAdmin)
    ));
    accounts
        .update_user(admin.role, &moderator.id, promote(Role::Admin))
        .await
        .expect("a second admin");
    accounts
        .delete_user(&admin.id)
        .await
        .expect("no longer the last");
    let (admins, total) = accounts
        .list_users(
            &UserFilter {
                role: Some(Role::Admin),
                username: None,
            },
            Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(admins[0].username, "mod");
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let admin = user(&accounts, "root", Role::Admin).await;
    let ada = user(&accounts, "ada", Role::Analyst).await;
    let login = accounts.start_session(&ada).await.expect("login");
    let claims = accounts
        .tokens()
        .verify(&login.access_token, TokenKind::Access)
        .expect("valid");
    accounts
        .update_user(
            admin.role,
            &ada.id,
            ProfileChange {
                role: Some(Role::Viewer),
                ..ProfileChange::default()
            },
        )
        .await
        .expect("demoted");
    assert!(!accounts.session_is_live(&claims).await.expect("check"));
}

#[tokio::test]
async fn api_keys_authenticate_in_both_forms_until_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let ada = user(&accounts, "ada", Role::Analyst).await;
    let other = user(&accounts, "bob", Role::Analyst).await;
    let created = accounts
        .create_api_key(&ada, "filebeat on web-1", KeyQuota::default())
        .await
        .expect("created");
    assert!(created.api_key.starts_with("slk_"));
    let by_key = accounts
        .authenticate_api_key(&created.api_key)
        .await
        .expect("raw");
    let by_encoded = accounts
        .authenticate_api_key(&created.encoded)
        .await
        .expect("encoded");
    assert_eq!(by_key, by_encoded);
    assert_eq!(by_key.user_id, ada.id);
    let listed = accounts.api_keys_of(&ada.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(
        !serde_json::to_string(&listed)
            .expect("json")
            .contains(&created.api_key)
    );

    assert!(matches!(
        accounts.revoke_api_key(&other, &created.key.id).await,
        Err(AccountError::NotFound(_))
    ));
    accounts
        .revoke_api_key(&ada, &created.key.id)
        .await
        .expect("revoked");
    assert!(matches!(
        accounts.authenticate_api_key(&created.api_key).await,
        Err(AccountError::InvalidApiKey)
    ));
}

/// A key's quota travels with it to ingest, and a new one holds from the key's next request,
/// though the key was cached with the old one.
#[tokio::test]
async fn a_keys_quota_is_read_with_it_and_a_change_holds_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = accounts(dir.path()).await;
    let ada = user(&accounts, "ada", Role::Analyst).await;
    let slow = KeyQuota {
        events_per_sec: Some(100),
        bytes_per_sec: None,
    };
    let created = accounts
        .create_api_key(&ada, "greedy batch job", slow)
        .await
        .expect("created");
    let cached = accounts
        .authenticate_api_key(&created.api_key)
        .await
        .expect("authenticated");
    assert_eq!(cached.quota, slow);

    let unbounded = KeyQuota {
        events_per_sec: Some(0),
        bytes_per_sec: Some(1_000_000),
    };
    let changed = accounts
        .set_api_key_quota(&created.key.id, unbounded)
        .await
        .expect("set");
    assert_eq!(changed.quota, unbounded);
    let principal = accounts
        .authenticate_api_key(&created.api_key)
        .await
        .expect("authenticated");
    assert_eq!(principal.quota, unbounded, "not the cached quota");
    assert_eq!(
        accounts.api_keys_of(&ada.id).await.expect("list")[0].quota,
        unbounded
    );
    assert!(matches!(
        accounts.set_api_key_quota("k_gone", slow).await,
        Err(AccountError::NotFound(_))
    ));
}
