//! `sluice ingest`, `sluice process`, `sluice api`: one role per process, for scaling each on its
//! own. Roles in separate processes share state only through the distributed backends, so the
//! embedded ones that cannot be shared are refused up front with what to use instead, and a
//! role that checks tokens needs the one secret every process verifies them with.

use anyhow::bail;
use sluice_auth::secret;
use sluice_config::{CacheBackend, Config, MetaBackend, QueueBackend, StoreBackend};
use tracing::warn;

use crate::roles::{Roles, RunArgs};

pub fn run(args: RunArgs, roles: Roles) -> anyhow::Result<()> {
    let config = args.into_config()?;
    check_shared_backends(&config, roles)?;
    crate::roles::run_blocking(config, roles)
}

/// Refuses what cannot work across processes; warns about what works on one machine only.
fn check_shared_backends(config: &Config, roles: Roles) -> anyhow::Result<()> {
    if (roles.ingest || roles.process) && matches!(config.queue_backend()?, QueueBackend::Wal(_)) {
        bail!(
            "queue.url: the write-ahead log belongs to one process; separate ingest and process \
             roles need Kafka (queue.url = \"kafka://HOST:9092\", or SLUICE_QUEUE__URL), or run \
             every role in one process with `sluice serve`"
        );
    }
    if (roles.process || roles.api) && matches!(config.store_backend()?, StoreBackend::Tantivy(_)) {
        bail!(
            "store.url: the tantivy index belongs to one process; separate process and api roles \
             need Elasticsearch (store.url = \"http://HOST:9200\", or SLUICE_STORE__URL), or run \
             every role in one process with `sluice serve`"
        );
    }
    if roles.authenticates() {
        let Some(configured) = &config.auth.jwt_secret else {
            bail!(
                "auth.jwt_secret is not set: every ingest and api process must verify tokens \
                 with the same secret of at least 32 bytes (SLUICE_AUTH__JWT_SECRET; e.g. \
                 `openssl rand -base64 48`)"
            );
        };
        secret::configured(configured)?;
        if matches!(config.meta_backend()?, MetaBackend::Sqlite(_)) {
            warn!(
                "meta.url is SQLite: processes share users only on this machine; use MongoDB \
                 (meta.url = \"mongodb://HOST:27017/sluice\") across machines"
            );
        }
        if config.cache_backend()? == CacheBackend::Memory {
            warn!(
                "cache.url is in-process: a logout reaches other processes only after up to 60 s \
                 and login lockouts are per process; use Redis (cache.url = \"redis://HOST:6379\")"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INGEST: Roles = Roles::INGEST;
    const PROCESS: Roles = Roles::PROCESS;
    const API: Roles = Roles::API;

    fn distributed() -> Config {
        let mut config = Config::default();
        config.queue.url = Some("kafka://127.0.0.1:9092".into());
        config.store.url = Some("http://127.0.0.1:9200".into());
        config.auth.jwt_secret = Some("x".repeat(48));
        config
    }

    #[test]
    fn distributed_backends_pass() {
        for roles in [INGEST, PROCESS, API] {
            check_shared_backends(&distributed(), roles).expect("accepted");
        }
    }

    #[test]
    fn embedded_queue_and_store_are_refused_with_the_fix() {
        let mut config = distributed();
        config.queue.url = None;
        let err = check_shared_backends(&config, INGEST).expect_err("WAL refused");
        assert!(err.to_string().contains("kafka://"), "{err}");
        check_shared_backends(&config, API).expect("the api does not use the queue's log");

        let mut config = distributed();
        config.store.url = None;
        let err = check_shared_backends(&config, PROCESS).expect_err("tantivy refused");
        assert!(err.to_string().contains("Elasticsearch"), "{err}");
        check_shared_backends(&config, INGEST).expect("ingest does not use the store");
    }

    #[test]
    fn token_checking_roles_need_a_real_secret() {
        let mut config = distributed();
        config.auth.jwt_secret = None;
        for roles in [INGEST, API] {
            let err = check_shared_backends(&config, roles).expect_err("no secret");
            assert!(err.to_string().contains("SLUICE_AUTH__JWT_SECRET"), "{err}");
        }
        check_shared_backends(&config, PROCESS).expect("the processor checks no tokens");
        config.auth.jwt_secret = Some("short".into());
        assert!(check_shared_backends(&config, API).is_err());
    }
}
