//! Opening the backends the configuration names, for `serve` and the `user` commands alike.

use std::sync::Arc;

use anyhow::Context;
use sluice_common::auth::Accounts;
use sluice_common::auth::secret;
use sluice_common::cache::{Cache, MemoryCache, RedisCache};
use sluice_common::config::{CacheBackend, Config, MetaBackend};
use sluice_common::meta::MetaStore;
use sluice_common::meta::mongo::MongoMetaStore;
use sluice_common::meta::sqlite::SqliteMetaStore;

pub async fn open_meta(config: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    Ok(match config.meta_backend()? {
        MetaBackend::Sqlite(path) => Arc::new(
            SqliteMetaStore::open(&path)
                .with_context(|| format!("opening the meta store {}", path.display()))?,
        ),
        MetaBackend::Mongo(url) => Arc::new(
            MongoMetaStore::connect(&url)
                .await
                .context("connecting to the MongoDB meta store")?,
        ),
    })
}

pub async fn open_cache(config: &Config) -> anyhow::Result<Arc<dyn Cache>> {
    Ok(match config.cache_backend()? {
        CacheBackend::Memory => Arc::new(MemoryCache::new(config.cache.max_entries)),
        CacheBackend::Redis(url) => Arc::new(
            RedisCache::connect(&url, &config.cache.redis_prefix)
                .await
                .context("connecting to the Redis cache")?,
        ),
    })
}

/// The token key: the configured one, or the one kept in (and on first use generated into) the
/// data directory.
pub fn token_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    match &config.auth.jwt_secret {
        Some(configured) => Ok(secret::configured(configured)?),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data directory {}", config.data_dir.display())
            })?;
            Ok(secret::load_or_create(&config.data_dir.join("jwt-secret"))?)
        }
    }
}

pub async fn open_accounts(config: &Config) -> anyhow::Result<Arc<Accounts>> {
    let meta = open_meta(config).await?;
    let cache = open_cache(config).await?;
    let secret = token_secret(config)?;
    Ok(Arc::new(
        Accounts::open(meta, cache, &secret, config.auth.clone())
            .await
            .context("preparing the accounts in the meta store")?,
    ))
}
