//! Settings of the Elasticsearch store (`[store.elasticsearch]`). The URL itself is `store.url`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Events go to daily indices `<index_prefix>-YYYY.MM.DD` (by event time, UTC); searches
    /// read `<index_prefix>-*`; the index template is named after the prefix.
    pub index_prefix: String,
    /// Largest `_bulk` request body; a processor batch is split into requests of at most this.
    pub bulk_max_bytes: usize,
    /// `_bulk` requests of one batch in flight at once.
    pub bulk_concurrency: usize,
    /// Per request, connecting to the last byte of the answer.
    pub request_timeout_ms: u64,
    /// Install (or update) the index template before the first write, as Logstash's
    /// `manage_template` does; `sluice setup` installs it regardless.
    pub manage_template: bool,
    /// Basic authentication.
    pub username: Option<String>,
    pub password: Option<String>,
    /// An API key, as Elasticsearch returns it encoded (base64 of `id:key`).
    pub api_key: Option<String>,
    /// PEM file of the certificate authority that signed the cluster's certificate (the
    /// `http_ca.crt` Elasticsearch 8 generates); default: the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate. For a throwaway cluster only: it gives up on knowing who answers.
    pub tls_insecure: bool,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            index_prefix: "sluice-logs".into(),
            bulk_max_bytes: 5 * 1024 * 1024,
            bulk_concurrency: 2,
            request_timeout_ms: 30_000,
            manage_template: true,
            username: None,
            password: None,
            api_key: None,
            ca_cert: None,
            tls_insecure: false,
        }
    }
}
