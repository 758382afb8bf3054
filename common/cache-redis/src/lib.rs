//! The distributed cache: Redis (`redis`, through a `ConnectionManager` that reconnects on its
//! own). Every key is namespaced under a prefix so Sluice can share a Redis with other tools.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use sluice_cache::{Cache, CacheError};

/// Bounds on one Redis round trip, so a hung server fails a request instead of holding it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
}

impl RedisCache {
    /// Connects to `url` (`redis://host:port/db`), failing now if Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisCache, CacheError> {
        let client = redis::Client::open(url)
            .map_err(|e| CacheError::Unavailable(format!("cache.url {url:?}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| CacheError::Unavailable(format!("Redis at {url}: {e}")))?;
        Ok(RedisCache {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn unavailable(e: redis::RedisError) -> CacheError {
    CacheError::Unavailable(format!("Redis: {e}"))
}

/// Redis wants a whole, positive number of milliseconds.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut connection = self.connection.clone();
        connection.get(self.key(key)).await.map_err(unavailable)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        connection
            .pset_ex(self.key(key), value, millis(ttl))
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(self.key(key))
            .await
            .map_err(unavailable)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        // One transaction, so a counter never exists without its deadline.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Redis that `scripts/test.sh` starts; `TEST_REDIS_URL` points at it.
    /// Without it the test fails, loudly, rather than passing unseen.
    fn test_url() -> String {
        std::env::var("TEST_REDIS_URL").expect(
            "TEST_REDIS_URL is not set: run the suite through scripts/test.sh, which \
             starts redis-server",
        )
    }

    #[tokio::test]
    async fn redis_passes_the_conformance_suite() {
        let prefix = format!("sluice-test-{}:", std::process::id());
        let cache = RedisCache::connect(&test_url(), &prefix)
            .await
            .expect("connects");
        sluice_cache::conformance::run(&cache, "conformance").await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error() {
        let Err(e) = RedisCache::connect("redis://127.0.0.1:1/", "x:").await else {
            panic!("nothing listens on port 1");
        };
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
}
