//! Opening the backends the configuration names, for every command alike.

use std::sync::Arc;

use anyhow::Context;
use sluice_auth::Accounts;
use sluice_auth::secret;
use sluice_cache::Cache;
use sluice_cache_memory::MemoryCache;
use sluice_cache_redis::RedisCache;
use sluice_config::{CacheBackend, Config, MetaBackend, QueueBackend, StoreBackend, StoreConfig};
use sluice_meta::MetaStore;
use sluice_meta_mongo::MongoMetaStore;
use sluice_meta_sqlite::SqliteMetaStore;
use sluice_queue::{DeadLetterQueue, Queue, QueueConsumer};
use sluice_queue_kafka::{KafkaConsumer, KafkaDeadLetters, KafkaQueue, KafkaTarget};
use sluice_queue_wal::WalQueue;
use sluice_store::EventStore;
use sluice_store::null::NullStore;
use sluice_store_elasticsearch::ElasticStore;
use sluice_store_tantivy::{TantivyOptions, TantivyStore, WriterOptions};

/// The embedded store's writer as configured; `merge_threads = 0` takes the default for the cores.
pub(crate) fn writer_options(store: &StoreConfig) -> WriterOptions {
    let mut options = WriterOptions::with_memory(store.writer_memory_mb * 1024 * 1024);
    options.index_threads = store.index_threads.max(1);
    if store.merge_threads > 0 {
        options.merge_threads = store.merge_threads;
    }
    options.max_docs_per_merge = store.max_docs_per_merge;
    options
}

pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(match config.store_backend()? {
        StoreBackend::Tantivy(index_dir) => Arc::new(
            TantivyStore::open_with(
                &index_dir,
                TantivyOptions {
                    writer: writer_options(&config.store),
                    kept_aggregations: config.store.kept_aggregations,
                    rollups: config.store.rollups,
                },
            )
            .context("opening the event store (is another sluice using this data directory?)")?,
        ),
        StoreBackend::Elasticsearch(url) => Arc::new(ElasticStore::connect(
            &url,
            config.store.elasticsearch.clone(),
        )?),
        StoreBackend::Null => {
            tracing::warn!("store.url = null://: documents are acknowledged and discarded");
            Arc::new(NullStore)
        }
    })
}

/// The queue's three faces: what ingest appends to, what the processor reads, where dead
/// letters go. A role opens only the faces it uses.
#[derive(Default)]
pub struct Queues {
    pub queue: Option<Arc<dyn Queue>>,
    pub consumer: Option<Box<dyn QueueConsumer>>,
    pub dead_letters: Option<Arc<dyn DeadLetterQueue>>,
}

/// Which faces of the queue to open.
#[derive(Debug, Clone, Copy)]
pub struct QueueFaces {
    pub produce: bool,
    pub consume: bool,
    pub dead_letters: bool,
}

/// The Kafka cluster at `brokers`, its topics created where missing.
pub async fn kafka_with_topics(config: &Config, brokers: String) -> anyhow::Result<KafkaTarget> {
    let target = KafkaTarget {
        brokers,
        config: config.queue.kafka.clone(),
    };
    target
        .ensure_topics()
        .await
        .context("preparing the Kafka topics")?;
    Ok(target)
}

pub async fn open_queue(config: &Config, faces: QueueFaces) -> anyhow::Result<Queues> {
    Ok(match config.queue_backend()? {
        QueueBackend::Wal(dir) => {
            let wal = WalQueue::open(&dir, config.queue.wal.clone())
                .await
                .context("opening the queue")?;
            let mut queues = Queues::default();
            if faces.consume {
                queues.consumer = Some(Box::new(wal.consumer().await));
            }
            if faces.dead_letters {
                queues.dead_letters = Some(Arc::new(wal.clone()));
            }
            if faces.produce {
                queues.queue = Some(Arc::new(wal));
            }
            queues
        }
        QueueBackend::Kafka(brokers) => {
            let target = kafka_with_topics(config, brokers).await?;
            let mut queues = Queues::default();
            if faces.produce {
                queues.queue = Some(Arc::new(KafkaQueue::connect(&target)?));
            }
            if faces.consume {
                queues.consumer = Some(Box::new(KafkaConsumer::connect(&target)?));
            }
            if faces.dead_letters {
                queues.dead_letters = Some(Arc::new(KafkaDeadLetters::connect(&target)?));
            }
            queues
        }
    })
}

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
            sluice_storage::create_dir_all_durably(&config.data_dir).with_context(|| {
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
