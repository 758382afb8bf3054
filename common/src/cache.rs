//! The cache role: short-lived shared state (revoked tokens, login-failure counters, recent
//! searches, cached query answers). Embedded: an in-process LRU with per-entry TTL; distributed:
//! Redis. Only operations Redis has natively are offered, so both adapters behave alike.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lru::LruCache;
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

/// The embedded cache: bounded in entries, least recently used out first.
pub struct MemoryCache {
    entries: Mutex<LruCache<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl MemoryCache {
    pub fn new(max_entries: usize) -> MemoryCache {
        let capacity = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        MemoryCache {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut LruCache<String, Entry>) -> T) -> Result<T, CacheError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| CacheError::Unavailable("cache lock poisoned".into()))?;
        Ok(f(&mut entries))
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.with(|entries| match entries.get(key) {
            Some(entry) if entry.expires > Instant::now() => Some(entry.value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let expires = Instant::now() + ttl;
        self.with(|entries| {
            entries.put(key.to_owned(), Entry { value, expires });
        })
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.with(|entries| {
            entries.pop(key);
        })
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let now = Instant::now();
        self.with(|entries| {
            let entry = entries.get_or_insert_mut(key.to_owned(), || Entry {
                value: 0u64.to_le_bytes().to_vec(),
                expires: now + ttl,
            });
            if entry.expires <= now {
                *entry = Entry {
                    value: 0u64.to_le_bytes().to_vec(),
                    expires: now + ttl,
                };
            }
            let current = entry
                .value
                .as_slice()
                .try_into()
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            let next = current + 1;
            entry.value = next.to_le_bytes().to_vec();
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_delete() {
        let cache = MemoryCache::new(10);
        cache
            .set("k", b"v".to_vec(), Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(cache.get("k").await.expect("get"), Some(b"v".to_vec()));
        cache.delete("k").await.expect("delete");
        assert_eq!(cache.get("k").await.expect("get"), None);
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = MemoryCache::new(10);
        cache
            .set("k", b"v".to_vec(), Duration::ZERO)
            .await
            .expect("set");
        assert_eq!(cache.get("k").await.expect("get"), None);
    }

    #[tokio::test]
    async fn counters_count_and_restart_after_expiry() {
        let cache = MemoryCache::new(10);
        assert_eq!(
            cache
                .increment("c", Duration::from_secs(60))
                .await
                .expect("incr"),
            1
        );
        assert_eq!(
            cache
                .increment("c", Duration::from_secs(60))
                .await
                .expect("incr"),
            2
        );
        assert_eq!(cache.increment("z", Duration::ZERO).await.expect("incr"), 1);
        assert_eq!(cache.increment("z", Duration::ZERO).await.expect("incr"), 1);
    }

    #[tokio::test]
    async fn bounded_in_entries() {
        let cache = MemoryCache::new(2);
        for key in ["a", "b", "c"] {
            cache
                .set(key, vec![1], Duration::from_secs(60))
                .await
                .expect("set");
        }
        assert_eq!(cache.get("a").await.expect("get"), None);
        assert!(cache.get("c").await.expect("get").is_some());
    }
}
