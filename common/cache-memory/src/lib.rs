//! The embedded cache: an in-process LRU with a deadline per entry, for one process.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lru::LruCache;
// tokio's clock, so tests can stop and advance time (`tokio::time::pause`).
use tokio::time::Instant;

use sluice_cache::{Cache, CacheError};

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
            // Counters are decimal text, as Redis keeps them, so `get` reads the same on both.
            let current = entries
                .get(key)
                .filter(|entry| entry.expires > now)
                .and_then(|entry| std::str::from_utf8(&entry.value).ok()?.parse::<u64>().ok());
            let (next, expires) = match (current, entries.get(key)) {
                (Some(count), Some(entry)) => (count + 1, entry.expires),
                _ => (1, now + ttl),
            };
            entries.put(
                key.to_owned(),
                Entry {
                    value: next.to_string().into_bytes(),
                    expires,
                },
            );
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_passes_the_conformance_suite() {
        sluice_cache::conformance::run(&MemoryCache::new(1_000), "conformance").await;
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

    /// What the api's answer reuse relies on (`cache.answer_ttl_secs`): an entry is there until
    /// its TTL is up, to the millisecond, and gone after; a counter keeps its first deadline.
    #[tokio::test(start_paused = true)]
    async fn entries_last_exactly_their_ttl() {
        let cache = MemoryCache::new(10);
        let ttl = Duration::from_secs(3);
        cache.set("answer", vec![7], ttl).await.expect("set");
        assert_eq!(cache.increment("count", ttl).await.expect("incr"), 1);
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert_eq!(cache.get("answer").await.expect("get"), Some(vec![7]));
        assert_eq!(cache.increment("count", ttl).await.expect("incr"), 2);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get("answer").await.expect("get"), None);
        assert_eq!(cache.increment("count", ttl).await.expect("incr"), 1);
    }
}
