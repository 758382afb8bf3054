//! `sluice serve`: ingest, processor and api in one process on the embedded backends.
//! Startup opens every backend before listening (so a broken data directory fails loudly);
//! shutdown stops accepting requests, lets in-flight ones finish, then lets the processor finish
//! its batch. What is still queued stays in the WAL for the next start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use sluice_common::auth::authorize;
use sluice_common::config::{Config, QueueBackend, StoreBackend};
use sluice_common::fraud::FraudEngine;
use sluice_common::http::{discard_unread_body, track_latency};
use sluice_common::queue::kafka::{KafkaConsumer, KafkaDeadLetters, KafkaQueue, KafkaTarget};
use sluice_common::queue::wal::WalQueue;
use sluice_common::queue::{DeadLetterQueue, Queue, QueueConsumer};
use sluice_common::store::EventStore;
use sluice_common::store::null::NullStore;
use sluice_common::store::tantivy::TantivyStore;
use sluice_common::telemetry::emit;
use sluice_common::telemetry::events::GeoIpDatabase;
use sluice_geoip::GeoResolver;
use sluice_ingest::IngestState;
use sluice_processor::{Pipeline, Processor};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::ConfigArgs;
use crate::ops::OpsState;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where the queue, the index and the GeoIP database live (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// GeoIP City database (.mmdb); default: the first .mmdb in <data-dir>/geoip/.
    #[arg(long, value_name = "PATH")]
    geoip: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(geoip) = args.geoip {
        config.geoip.path = Some(geoip);
    }
    crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = sluice_common::telemetry::install_prometheus().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;

    let store: Arc<dyn EventStore> = match config.store_backend()? {
        StoreBackend::Tantivy(index_dir) => Arc::new(
            TantivyStore::open(&index_dir, config.store.writer_memory_mb * 1024 * 1024).context(
                "opening the event store (is another sluice using this data directory?)",
            )?,
        ),
        StoreBackend::Null => {
            tracing::warn!("store.url = null://: documents are acknowledged and discarded");
            Arc::new(NullStore)
        }
    };
    let queues = open_queue(&config).await?;

    let accounts = crate::backends::open_accounts(&config).await?;
    if accounts.count_users().await? == 0 {
        println!(
            "No users yet. Create the first admin with:\n  \
             sluice user create --username admin --role admin --password-stdin{}",
            config_hint(&config)
        );
    }

    let geo = open_geoip(&config)?;
    let pipeline = Pipeline::new(
        config.ingest.limits,
        geo,
        FraudEngine::new(config.fraud.clone()),
    );
    let processor = Processor::new(
        queues.consumer,
        store.clone(),
        queues.dead_letters.clone(),
        pipeline,
        config.processor.clone(),
    );
    let shutdown = CancellationToken::new();
    let processing = tokio::spawn(processor.run(shutdown.clone()));

    let queue = queues.queue;
    let app = Router::new()
        .merge(sluice_ingest::router(IngestState {
            queue: queue.clone(),
            config: Arc::new(config.ingest.clone()),
        }))
        .merge(sluice_api::router(sluice_api::ApiState {
            store: store.clone(),
            dead_letters: queues.dead_letters,
            login: Arc::new(sluice_api::auth::LoginThrottle::new(
                config.auth.login.clone(),
                accounts.cache().clone(),
            )),
            accounts: accounts.clone(),
        }))
        .merge(crate::ops::router(OpsState {
            metrics,
            queue,
            store,
            accounts: accounts.clone(),
        }))
        .layer(axum::middleware::from_fn_with_state(accounts, authorize))
        .layer(axum::middleware::from_fn(discard_unread_body))
        .layer(axum::middleware::from_fn(track_latency));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    info!(%address, data_dir = %config.data_dir.display(), "sluice serving");
    // On stdout, for people and for tests started on port 0.
    println!("sluice listening on http://{address}");

    // The peer address feeds the login throttle.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("HTTP server")?;
    info!("HTTP stopped; letting the processor finish its batch");
    shutdown.cancel();
    processing
        .await
        .context("processor task")?
        .context("processor")?;
    info!("stopped cleanly");
    Ok(())
}

/// The queue's three faces: what ingest appends to, what the processor reads, where dead
/// letters go.
struct Queues {
    queue: Arc<dyn Queue>,
    consumer: Box<dyn QueueConsumer>,
    dead_letters: Arc<dyn DeadLetterQueue>,
}

async fn open_queue(config: &Config) -> anyhow::Result<Queues> {
    Ok(match config.queue_backend()? {
        QueueBackend::Wal(dir) => {
            let wal = WalQueue::open(&dir, config.queue.wal.clone())
                .await
                .context("opening the queue")?;
            Queues {
                consumer: Box::new(wal.consumer().await),
                dead_letters: Arc::new(wal.clone()),
                queue: Arc::new(wal),
            }
        }
        QueueBackend::Kafka(brokers) => {
            let target = KafkaTarget {
                brokers,
                config: config.queue.kafka.clone(),
            };
            target
                .ensure_topics()
                .await
                .context("preparing the Kafka topics")?;
            Queues {
                queue: Arc::new(KafkaQueue::connect(&target)?),
                consumer: Box::new(KafkaConsumer::connect(&target)?),
                dead_letters: Arc::new(KafkaDeadLetters::connect(&target)?),
            }
        }
    })
}

/// ` --data-dir D` when the data directory is not the default, so the printed command
/// reaches the same meta store.
fn config_hint(config: &Config) -> String {
    if config.data_dir == Config::default().data_dir {
        String::new()
    } else {
        format!(" --data-dir {}", config.data_dir.display())
    }
}

fn open_geoip(config: &Config) -> anyhow::Result<GeoResolver> {
    let Some(path) = config.geoip_path() else {
        let hint = format!(
            "no GeoIP database (run scripts/fetch-geoip.sh, or pass --geoip PATH; looked in {})",
            config.data_dir.join("geoip").display()
        );
        emit(GeoIpDatabase {
            loaded: None,
            detail: &hint,
        });
        return Ok(GeoResolver::without_database());
    };
    let resolver = GeoResolver::open(Some(path.clone()), config.geoip.cache_size)?;
    let detail = resolver
        .database()
        .map(|db| format!("{} ({:?} schema)", db.database_type(), db.schema()))
        .unwrap_or_default();
    emit(GeoIpDatabase {
        loaded: Some(&path.display().to_string()),
        detail: &detail,
    });
    Ok(resolver)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    info!("shutdown requested");
}
