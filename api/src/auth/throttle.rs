//! Brakes on password guessing at `POST /api/auth/login` (and on bcrypt work at registration):
//! a rate per client address and per username (`governor`, in this process), and a lock on a username after repeated failures
//! (a counter in the cache, so every api process sees it). All answer 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sluice_auth::AccountError;
use sluice_cache::Cache;
use sluice_config::LoginLimits;
use sluice_http::ApiError;

/// Past this many remembered keys, idle ones are dropped, so a spray of usernames or addresses
/// cannot grow memory without bound.
const MAX_TRACKED_KEYS: usize = 10_000;
/// Usernames longer than this are cut before they become limiter keys.
const MAX_KEY_CHARS: usize = 64;

pub struct LoginThrottle {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_username: DefaultKeyedRateLimiter<String>,
    cache: Arc<dyn Cache>,
    limits: LoginLimits,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

fn lock_key(username: &str) -> String {
    format!("login-failures:{username}")
}

fn too_many(code: &'static str, message: String, wait: Duration) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(wait.as_secs().max(1))
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits, cache: Arc<dyn Cache>) -> LoginThrottle {
        LoginThrottle {
            per_ip: RateLimiter::keyed(quota(limits.per_ip_per_minute)),
            per_username: RateLimiter::keyed(quota(limits.per_username_per_minute)),
            cache,
            limits,
        }
    }

    /// The key a username is counted under: the same for every spelling of one account.
    pub fn username_key(username: &str) -> String {
        username
            .trim()
            .to_lowercase()
            .chars()
            .take(MAX_KEY_CHARS)
            .collect()
    }

    /// Whether another password-hashing request (login, registration) may come from `ip`.
    pub fn admit_address(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.forget_idle_keys();
        self.per_ip.check_key(&ip).map_err(|not_until| {
            too_many(
                "rate_limited",
                "too many login or registration attempts from this address; slow down".into(),
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Whether a login attempt may go ahead.
    pub async fn admit(&self, ip: IpAddr, username: &str) -> Result<(), ApiError> {
        self.admit_address(ip)?;
        let now = DefaultClock::default().now();
        let key = Self::username_key(username);
        if let Err(not_until) = self.per_username.check_key(&key) {
            return Err(too_many(
                "rate_limited",
                "too many login attempts for this username; slow down".into(),
                not_until.wait_time_from(now),
            ));
        }
        let failures = self
            .cache
            .get(&lock_key(&key))
            .await
            .map_err(|e| ApiError::from(AccountError::from(e)))?
            .and_then(|bytes| String::from_utf8(bytes).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        if failures >= self.limits.lockout_failures {
            return Err(too_many(
                "login_locked",
                format!(
                    "{failures} failed logins for this username; it is locked for up to {} \
                     minutes",
                    self.limits.lockout_secs.div_ceil(60)
                ),
                Duration::from_secs(self.limits.lockout_secs),
            ));
        }
        Ok(())
    }

    pub async fn failed(&self, username: &str) -> Result<(), ApiError> {
        self.cache
            .increment(
                &lock_key(&Self::username_key(username)),
                Duration::from_secs(self.limits.lockout_secs),
            )
            .await
            .map(drop)
            .map_err(|e| ApiError::from(AccountError::from(e)))
    }

    pub async fn succeeded(&self, username: &str) -> Result<(), ApiError> {
        self.cache
            .delete(&lock_key(&Self::username_key(username)))
            .await
            .map_err(|e| ApiError::from(AccountError::from(e)))
    }

    fn forget_idle_keys(&self) {
        if self.per_ip.len() > MAX_TRACKED_KEYS {
            self.per_ip.retain_recent();
        }
        if self.per_username.len() > MAX_TRACKED_KEYS {
            self.per_username.retain_recent();
        }
    }
}
