//! Configuration: defaults for everything, then a TOML file, then `SLUICE_*` environment
//! variables (`SLUICE_PROCESSOR__BATCH_MAX_RECORDS=5000`: a double underscore goes one table
//! down), then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod elasticsearch;
mod kafka;
mod wal;

pub use elasticsearch::ElasticsearchConfig;
pub use kafka::KafkaConfig;
pub use wal::WalConfig;

use sluice_event::validate::Limits;
use sluice_fraud::FraudConfig;
use sluice_storage::StorageConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("{setting} = {url:?}: {reason}")]
    Backend {
        setting: &'static str,
        url: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where the embedded backends keep their files.
    pub data_dir: PathBuf,
    pub queue: QueueConfig,
    pub store: StoreConfig,
    pub storage: StorageConfig,
    pub ingest: IngestConfig,
    pub processor: ProcessorConfig,
    pub geoip: GeoIpConfig,
    pub fraud: FraudConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub meta: MetaConfig,
    pub cache: CacheConfig,
    pub kibana: KibanaConfig,
    pub tls: TlsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            queue: QueueConfig::default(),
            store: StoreConfig::default(),
            storage: StorageConfig::default(),
            ingest: IngestConfig::default(),
            processor: ProcessorConfig::default(),
            geoip: GeoIpConfig::default(),
            fraud: FraudConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            meta: MetaConfig::default(),
            cache: CacheConfig::default(),
            kibana: KibanaConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

/// HTTPS on the listener of every role (`[tls]`): a certificate chain and its private key, PEM.
/// Both or neither; with neither the listener speaks plain HTTP (behind a proxy that ends TLS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Seconds between looks at the two files: a changed pair is served from the next
    /// connection on, so a renewed certificate needs no restart.
    pub reload_check_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            reload_check_secs: 10,
        }
    }
}

impl TlsConfig {
    /// The two files, if TLS is on; an error naming the missing one if only one is set.
    pub fn files(&self) -> Result<Option<(&Path, &Path)>, ConfigError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Invalid(
                "tls.cert is set but tls.key is not: set both (SLUICE_TLS__KEY) or neither".into(),
            )),
            (None, Some(_)) => Err(ConfigError::Invalid(
                "tls.key is set but tls.cert is not: set both (SLUICE_TLS__CERT) or neither".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// `wal://PATH` or `kafka://HOST:PORT[,HOST:PORT…]`; default `wal://<data_dir>/queue`.
    pub url: Option<String>,
    /// Settings of the embedded queue (`[queue.wal]`).
    pub wal: WalConfig,
    /// Settings of the Kafka queue (`[queue.kafka]`).
    pub kafka: KafkaConfig,
}

/// tantivy's own bound on the segments the embedded store merges further.
pub const DEFAULT_MAX_DOCS_PER_MERGE: usize = 10_000_000;

/// Aggregation results the embedded store keeps unless told otherwise, least recently used
/// dropped first. A result is a few to a few hundred kilobytes (a top list of up to 2,000 values,
/// a distinct-count sketch of 16 KB).
pub const DEFAULT_KEPT_AGGREGATIONS: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `tantivy://PATH` or `http(s)://HOST:PORT[,http(s)://HOST:PORT…]` (Elasticsearch);
    /// default `tantivy://<data_dir>/index`.
    pub url: Option<String>,
    /// Indexing buffer of the embedded store, in MiB, shared by its indexing threads.
    pub writer_memory_mb: usize,
    /// Threads the embedded store indexes on.
    pub index_threads: usize,
    /// Segment merges the embedded store runs at once; 0: half the cores, one to four.
    pub merge_threads: usize,
    /// Segments of the embedded store with more documents are not merged further.
    pub max_docs_per_merge: usize,
    /// Aggregation results of large segments the embedded store keeps for repeated questions
    /// (0: none).
    pub kept_aggregations: usize,
    /// Whether the embedded store keeps rollups (hour buckets of what dashboards ask) beside
    /// its segments and answers from them; off, every question reads the events.
    pub rollups: bool,
    /// Days of events kept, by event time; older days are dropped whole (0: forever).
    pub retention_days: u32,
    /// Bytes the store may take on disk before its oldest days are dropped (0: no bound).
    pub max_disk_bytes: u64,
    /// Seconds between retention passes (which also refresh the store's size metrics).
    pub retention_check_secs: u64,
    /// Settings of the Elasticsearch store (`[store.elasticsearch]`).
    pub elasticsearch: ElasticsearchConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            writer_memory_mb: 64,
            index_threads: 1,
            merge_threads: 0,
            max_docs_per_merge: DEFAULT_MAX_DOCS_PER_MERGE,
            kept_aggregations: DEFAULT_KEPT_AGGREGATIONS,
            rollups: true,
            retention_days: 30,
            max_disk_bytes: 0,
            retention_check_secs: 300,
            elasticsearch: ElasticsearchConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest body of `POST /api/logs/ingest` and `POST /_bulk`.
    pub max_body_bytes: usize,
    /// Largest file of `POST /api/logs/upload`.
    pub max_upload_bytes: usize,
    /// Records per queue append while an upload streams in.
    pub upload_chunk_records: usize,
    /// Request bytes all ingest requests together may hold in memory at once; a request that
    /// would go past it waits up to `admission_wait_ms`, then gets 503 with `Retry-After`.
    pub max_in_flight_bytes: usize,
    /// How long a request waits for room under `max_in_flight_bytes`.
    pub admission_wait_ms: u64,
    /// Bounds on each record (`[ingest.limits]`).
    pub limits: Limits,
    /// What each producer may send (`[ingest.quota]`).
    pub quota: QuotaConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 20 * 1024 * 1024,
            max_upload_bytes: 100 * 1024 * 1024,
            upload_chunk_records: 5_000,
            max_in_flight_bytes: 256 * 1024 * 1024,
            admission_wait_ms: 2_000,
            limits: Limits::default(),
            quota: QuotaConfig::default(),
        }
    }
}

/// Producer quotas (`[ingest.quota]`): the rate each API key, and each user sending with a
/// token, may send at, so that one greedy producer cannot starve the others. These are the
/// defaults; an administrator can give a key its own. 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Records a second (valid or not: each costs the server its parse).
    pub events_per_sec: u32,
    /// Record bytes a second, decompressed.
    pub bytes_per_sec: u32,
    /// Seconds of quota a producer may use at once after a quiet spell: the burst, and so the
    /// largest request a producer may send (a larger one is refused with 413).
    pub burst_secs: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            events_per_sec: 0,
            bytes_per_sec: 0,
            burst_secs: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Most records per batch (one store write and one queue commit per batch).
    pub batch_max_records: usize,
    /// Most payload bytes per batch, which bounds the processor's memory whatever the size of
    /// records (a batch holds at least one record).
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill before it is processed anyway.
    pub batch_max_wait_ms: u64,
    /// First delay before retrying a failed store write; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// The store commits (and the queue position moves) once the oldest batch written since
    /// the last commit is this old, …
    pub commit_interval_ms: u64,
    /// … or once this many documents were written since it, whichever comes first. The
    /// documents are kept until then, to be written again should the store lose them.
    pub commit_max_records: usize,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            batch_max_records: 20_000,
            batch_max_bytes: 16 * 1024 * 1024,
            batch_max_wait_ms: 200,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            commit_interval_ms: 1_000,
            commit_max_records: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoIpConfig {
    /// A City database (.mmdb). Default: the first .mmdb in `<data_dir>/geoip/`, if any.
    pub path: Option<PathBuf>,
    /// IPs whose lookup result is cached.
    pub cache_size: usize,
}

impl Default for GeoIpConfig {
    fn default() -> Self {
        GeoIpConfig {
            path: None,
            cache_size: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `sluice=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info,tantivy=warn".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 key for tokens, at least 32 bytes. `sluice serve` without one generates a key and
    /// keeps it in `<data_dir>/jwt-secret`.
    pub jwt_secret: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// bcrypt work factor; 12 in production, lower only to make tests fast.
    pub bcrypt_cost: u32,
    /// Whether `POST /api/auth/register` is open (new accounts are viewers). Unset, it is open
    /// only in local mode ([`AuthConfig::registration_open`]).
    pub allow_registration: Option<bool>,
    pub login: LoginLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            issuer: "sluice".into(),
            audience: "sluice".into(),
            access_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            bcrypt_cost: 12,
            allow_registration: None,
            login: LoginLimits::default(),
        }
    }
}

impl AuthConfig {
    /// Whether anyone who reaches the API may make themselves an account. Unless the operator
    /// says, only in local mode — every role in one process (`sluice serve`) listening on a
    /// loopback address, where whoever reaches the API is on the machine already. Anywhere
    /// else an open sign-up would let any passer-by read revenue, error and fraud figures;
    /// accounts come from an administrator (`sluice user create`, the users page).
    pub fn registration_open(&self, local: bool) -> bool {
        self.allow_registration.unwrap_or(local)
    }
}

/// Brakes on password guessing (`[auth.login]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginLimits {
    /// Login attempts per minute from one client address.
    pub per_ip_per_minute: u32,
    /// Login attempts per minute for one username, from anywhere.
    pub per_username_per_minute: u32,
    /// Failed logins for one username that lock it.
    pub lockout_failures: u64,
    /// How long those failures are remembered, and so how long the lock lasts.
    pub lockout_secs: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_ip_per_minute: 30,
            per_username_per_minute: 10,
            lockout_failures: 5,
            lockout_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// `sqlite://PATH` or `mongodb://HOST:PORT/DATABASE`; default `sqlite://<data_dir>/meta.db`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `memory://` or `redis://HOST:PORT/DB`; default `memory://`.
    pub url: Option<String>,
    /// Entries the in-process cache keeps.
    pub max_entries: usize,
    /// Prefix of every Redis key, so Sluice can share a Redis.
    pub redis_prefix: String,
    /// How long an analytics, dashboard, performance or fraud-stats answer is reused for the
    /// same request; 0 turns the reuse off.
    pub answer_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            url: None,
            max_entries: 100_000,
            redis_prefix: "sluice:".into(),
            answer_ttl_secs: 10,
        }
    }
}

/// Where `sluice setup` imports the Kibana saved objects (data view, visualisations, dashboard).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KibanaConfig {
    /// `http(s)://HOST:5601`; none: `sluice setup` skips Kibana.
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The dashboard the web UI's Kibana page embeds, as the analysts' browsers reach it (which
    /// may not be how Sluice reaches `url`). Default: the dashboard `sluice setup` imports, under
    /// `url`.
    pub dashboard_url: Option<String>,
}

/// The id of the dashboard in `infra/kibana/saved-objects.ndjson`.
pub const KIBANA_DASHBOARD_ID: &str = "sluice-overview";

/// `scheme://host[:port]` of an http(s) address, which is what a browser's security policy
/// names; none for anything else.
pub fn web_origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    valid.then(|| &url[..url.len() - rest.len() + host_end])
}

/// Which meta store to use, decided from `meta.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaBackend {
    Sqlite(PathBuf),
    Mongo(String),
}

/// Which cache to use, decided from `cache.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheBackend {
    Memory,
    Redis(String),
}

/// Which queue to use, decided from `queue.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    Wal(PathBuf),
    /// Comma-separated bootstrap brokers.
    Kafka(String),
}

/// Which event store to use, decided from `store.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    Tantivy(PathBuf),
    /// The cluster's node URLs, comma-separated.
    Elasticsearch(String),
    /// Acknowledges and discards, for benchmarking the processor alone.
    Null,
}

impl Config {
    /// Defaults, then `file` if given, then `SLUICE_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::prefixed("SLUICE_").split("__"))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn queue_backend(&self) -> Result<QueueBackend, ConfigError> {
        match &self.queue.url {
            None => Ok(QueueBackend::Wal(self.data_dir.join("queue"))),
            Some(url) => match url.split_once("://") {
                Some(("wal", path)) if !path.is_empty() => Ok(QueueBackend::Wal(path.into())),
                Some(("kafka", brokers)) if !brokers.is_empty() => Ok(QueueBackend::Kafka(
                    brokers.trim_end_matches('/').to_owned(),
                )),
                _ => Err(ConfigError::Backend {
                    setting: "queue.url",
                    url: url.clone(),
                    reason: "use wal://PATH or kafka://HOST:PORT[,HOST:PORT…]".into(),
                }),
            },
        }
    }

    pub fn store_backend(&self) -> Result<StoreBackend, ConfigError> {
        match &self.store.url {
            None => Ok(StoreBackend::Tantivy(self.data_dir.join("index"))),
            Some(url) => match url.split_once("://") {
                Some(("tantivy", path)) if !path.is_empty() => {
                    Ok(StoreBackend::Tantivy(path.into()))
                }
                Some(("http" | "https", host)) if !host.is_empty() => Ok(
                    StoreBackend::Elasticsearch(url.trim_end_matches('/').to_owned()),
                ),
                Some(("null", "")) => Ok(StoreBackend::Null),
                _ => Err(ConfigError::Backend {
                    setting: "store.url",
                    url: url.clone(),
                    reason: "use tantivy://PATH, http(s)://HOST:PORT for Elasticsearch, or \
                             null:// to discard (benchmarks)"
                        .into(),
                }),
            },
        }
    }

    /// The local directories the embedded queue and store write to (none for remote engines),
    /// which the free-space floor guards.
    pub fn embedded_data_paths(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut paths = Vec::new();
        if let QueueBackend::Wal(dir) = self.queue_backend()? {
            paths.push(dir);
        }
        if let StoreBackend::Tantivy(dir) = self.store_backend()? {
            paths.push(dir);
        }
        Ok(paths)
    }

    pub fn meta_backend(&self) -> Result<MetaBackend, ConfigError> {
        match &self.meta.url {
            None => Ok(MetaBackend::Sqlite(self.data_dir.join("meta.db"))),
            Some(url) => match url.split_once("://") {
                Some(("sqlite", path)) if !path.is_empty() => Ok(MetaBackend::Sqlite(path.into())),
                Some(("mongodb" | "mongodb+srv", rest)) if !rest.is_empty() => {
                    Ok(MetaBackend::Mongo(url.clone()))
                }
                _ => Err(ConfigError::Backend {
                    setting: "meta.url",
                    url: url.clone(),
                    reason: "use sqlite://PATH or mongodb://HOST:PORT/DATABASE".into(),
                }),
            },
        }
    }

    pub fn cache_backend(&self) -> Result<CacheBackend, ConfigError> {
        match &self.cache.url {
            None => Ok(CacheBackend::Memory),
            Some(url) => match url.split_once("://") {
                Some(("memory", "")) => Ok(CacheBackend::Memory),
                Some(("redis" | "rediss", rest)) if !rest.is_empty() => {
                    Ok(CacheBackend::Redis(url.clone()))
                }
                _ => Err(ConfigError::Backend {
                    setting: "cache.url",
                    url: url.clone(),
                    reason: "use memory:// or redis://HOST:PORT/DB".into(),
                }),
            },
        }
    }

    /// The GeoIP database to load: the configured path, else the first `.mmdb` (by name) in
    /// `<data_dir>/geoip/`.
    /// The Kibana dashboard the web UI embeds: `kibana.dashboard_url`, else the imported
    /// dashboard under `kibana.url`; none when neither is set.
    pub fn kibana_dashboard_url(&self) -> Result<Option<String>, ConfigError> {
        let (setting, url) = match (&self.kibana.dashboard_url, &self.kibana.url) {
            (Some(dashboard), _) => ("kibana.dashboard_url", dashboard.clone()),
            (None, Some(kibana)) => (
                "kibana.url",
                format!(
                    "{}/app/dashboards#/view/{KIBANA_DASHBOARD_ID}?embed=true&_g=(time:(from:now-24h,to:now))",
                    kibana.trim_end_matches('/')
                ),
            ),
            (None, None) => return Ok(None),
        };
        match web_origin(&url) {
            Some(_) => Ok(Some(url)),
            None => Err(ConfigError::Backend {
                setting,
                url,
                reason: "use an http:// or https:// address with a host".into(),
            }),
        }
    }

    pub fn geoip_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.geoip.path {
            return Some(path.clone());
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.data_dir.join("geoip"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
            .collect();
        found.sort();
        found.into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_open_by_default_only_in_local_mode() {
        let mut auth = AuthConfig::default();
        assert!(auth.registration_open(true));
        assert!(!auth.registration_open(false));
        auth.allow_registration = Some(false);
        assert!(!auth.registration_open(true));
        auth.allow_registration = Some(true);
        assert!(auth.registration_open(false));
    }

    #[test]
    fn defaults_need_nothing() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.queue_backend().expect("default queue"),
            QueueBackend::Wal(PathBuf::from("./data/queue"))
        );
        assert_eq!(
            config.store_backend().expect("default store"),
            StoreBackend::Tantivy(PathBuf::from("./data/index"))
        );
    }

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\n[fraud]\nthreshold = 70\n[fraud.high_amount]\namount = 500\n",
        )
        .expect("write");
        let config = Config::load(Some(&file)).expect("loads");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.fraud.threshold, 70.0);
        assert_eq!(config.fraud.high_amount.amount, 500.0);
        std::fs::write(&file, "[fraud]\ntreshold = 70\n").expect("write");
        let err = Config::load(Some(&file)).expect_err("typo is refused");
        assert!(err.to_string().contains("treshold"), "{err}");
    }

    #[test]
    fn unsupported_backend_url_says_what_works() {
        let config = Config {
            queue: QueueConfig {
                url: Some("amqp://localhost:5672".into()),
                ..QueueConfig::default()
            },
            ..Config::default()
        };
        let err = config.queue_backend().expect_err("not in this build");
        assert!(err.to_string().contains("wal://"), "{err}");
    }

    #[test]
    fn meta_and_cache_backends_follow_their_urls() {
        let mut config = Config::default();
        assert_eq!(
            config.meta_backend().expect("default"),
            MetaBackend::Sqlite(PathBuf::from("./data/meta.db"))
        );
        assert_eq!(
            config.cache_backend().expect("default"),
            CacheBackend::Memory
        );
        config.meta.url = Some("mongodb://127.0.0.1:27017/sluice".into());
        config.cache.url = Some("redis://127.0.0.1:6379/0".into());
        assert!(matches!(config.meta_backend(), Ok(MetaBackend::Mongo(_))));
        assert!(matches!(config.cache_backend(), Ok(CacheBackend::Redis(_))));
        config.meta.url = Some("postgres://db".into());
        config.cache.url = Some("memcached://x".into());
        assert!(
            config
                .meta_backend()
                .expect_err("unsupported")
                .to_string()
                .contains("sqlite://")
        );
        assert!(
            config
                .cache_backend()
                .expect_err("unsupported")
                .to_string()
                .contains("redis://")
        );
    }

    #[test]
    fn kafka_queue_and_null_store_are_chosen_by_url() {
        let mut config = Config::default();
        config.queue.url = Some("kafka://k1:9092,k2:9092".into());
        config.store.url = Some("null://".into());
        assert_eq!(
            config.queue_backend().expect("kafka"),
            QueueBackend::Kafka("k1:9092,k2:9092".into())
        );
        assert_eq!(config.store_backend().expect("null"), StoreBackend::Null);
        config.store.url = Some("https://es.internal:9200/".into());
        assert_eq!(
            config.store_backend().expect("elasticsearch"),
            StoreBackend::Elasticsearch("https://es.internal:9200".into())
        );
        config.queue.url = Some("kafka://".into());
        assert!(config.queue_backend().is_err(), "brokers are required");
    }

    #[test]
    fn kibana_dashboard_defaults_to_the_imported_one_and_must_be_a_web_address() {
        let mut config = Config::default();
        assert_eq!(config.kibana_dashboard_url().expect("none"), None);
        config.kibana.url = Some("http://kibana:5601/".into());
        let derived = config
            .kibana_dashboard_url()
            .expect("derived")
            .expect("some");
        assert!(derived.starts_with("http://kibana:5601/app/dashboards#/view/sluice-overview?"));
        config.kibana.dashboard_url =
            Some("https://kibana.shop.example/s/ops/app/dashboards".into());
        assert_eq!(
            config.kibana_dashboard_url().expect("explicit").as_deref(),
            Some("https://kibana.shop.example/s/ops/app/dashboards")
        );
        config.kibana.dashboard_url = Some("javascript:alert(1)".into());
        let error = config.kibana_dashboard_url().expect_err("refused");
        assert!(
            error.to_string().contains("kibana.dashboard_url"),
            "{error}"
        );

        assert_eq!(
            web_origin("https://k.example:5601/app?x#y"),
            Some("https://k.example:5601")
        );
        assert_eq!(web_origin("http://[::1]:5601"), Some("http://[::1]:5601"));
        assert_eq!(web_origin("http://"), None);
        assert_eq!(web_origin("http://a b/"), None);
        assert_eq!(web_origin("ftp://k.example/"), None);
    }

    #[test]
    fn missing_config_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/sluice.toml"))).is_err());
    }
}
