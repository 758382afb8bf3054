//! The cache role: short-lived shared state (revoked tokens, login-failure counters, recent
//! searches, cached query answers). Embedded: an in-process LRU with per-entry TTL; distributed:
//! Redis. Only operations Redis has natively are offered, so both adapters behave alike.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// Stores `value` under `key`, forgotten after `ttl`.
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Adds one to the counter at `key` (0 when absent or expired) and returns the new value;
    /// a new counter lives for `ttl` (`INCR` + `EXPIRE NX` in Redis terms).
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;
}

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
