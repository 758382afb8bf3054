//! Running roles: ingest, processor and api, all of them in one process (`sluice serve`) or one
//! per process (`sluice ingest|process|api`). A role opens only the backends it uses and serves
//! its routes plus `/health`, `/ready` and `/metrics`.
//!
//! Startup opens every backend before listening, so a broken configuration fails loudly. Shutdown
//! stops accepting requests, lets in-flight ones finish, then lets the processor finish its
//! batch; what is still queued stays in the queue for the next start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use sluice_auth::authorize;
use sluice_config::Config;
use sluice_fraud::FraudEngine;
use sluice_geoip::GeoResolver;
use sluice_http::{TlsListener, discard_unread_body, strict_transport_security, track_latency};
use sluice_ingest::IngestState;
use sluice_processor::{OnDemandScorer, Pipeline, Processor};
use sluice_storage::DiskGuard;
use sluice_store::RetentionPolicy;
use sluice_telemetry::emit;
use sluice_telemetry::events::GeoIpDatabase;
use sluice_telemetry::health::Health;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::ConfigArgs;
use crate::backends::{QueueFaces, open_queue, open_store};
use crate::ops::OpsState;

/// Flags of the commands that run roles (`serve`, `ingest`, `process`, `api`).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where the embedded backends and the GeoIP database live (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// GeoIP City database (.mmdb); default: the first .mmdb in <data-dir>/geoip/.
    #[arg(long, value_name = "PATH")]
    geoip: Option<PathBuf>,
}

impl RunArgs {
    /// The configuration, with these flags over the file and the environment.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(geoip) = self.geoip {
            config.geoip.path = Some(geoip);
        }
        Ok(config)
    }
}

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub process: bool,
    pub api: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingest: true,
        process: true,
        api: true,
    };
    pub const INGEST: Roles = Roles {
        ingest: true,
        process: false,
        api: false,
    };
    pub const PROCESS: Roles = Roles {
        ingest: false,
        process: true,
        api: false,
    };
    pub const API: Roles = Roles {
        ingest: false,
        process: false,
        api: true,
    };

    fn names(self) -> String {
        [
            (self.ingest, "ingest"),
            (self.process, "process"),
            (self.api, "api"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join("+")
    }

    /// Ingest and api check callers' credentials.
    pub fn authenticates(self) -> bool {
        self.ingest || self.api
    }
}

/// Starts logging and the runtime, then the roles.
pub fn run_blocking(config: Config, roles: Roles) -> anyhow::Result<()> {
    crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config, roles))
}

/// GeoIP cache entries of on-demand fraud scoring, which sees a request now and then.
const ON_DEMAND_GEOIP_CACHE: usize = 1_024;

pub async fn run(config: Config, roles: Roles) -> anyhow::Result<()> {
    let metrics = sluice_telemetry::install_prometheus().map_err(anyhow::Error::msg)?;
    // Before any backend opens: a certificate that does not load stops the start at once.
    let tls = match config.tls.files()? {
        Some((cert, key)) => Some(Arc::new(TlsListener::open(cert, key)?)),
        None => None,
    };
    if roles == Roles::ALL {
        sluice_storage::create_dir_all_durably(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
    }

    let store = if roles.process || roles.api {
        Some(open_store(&config)?)
    } else {
        None
    };
    let mut queues = open_queue(
        &config,
        QueueFaces {
            // The api role replays dead letters into the queue.
            produce: roles.ingest || roles.api,
            consume: roles.process,
            dead_letters: roles.process || roles.api,
        },
    )
    .await?;

    let accounts = if roles.authenticates() {
        let accounts = crate::backends::open_accounts(&config).await?;
        if roles.api && accounts.count_users().await? == 0 {
            println!(
                "No users yet. Create the first admin with:\n  \
                 sluice user create --username admin --role admin --password-stdin{}",
                config_hint(&config)
            );
        }
        Some(accounts)
    } else {
        None
    };

    let shutdown = CancellationToken::new();
    // What the processor finds failing while it works, for /ready.
    let health = Health::default();
    let disk = DiskGuard::new(config.embedded_data_paths()?, &config.storage);
    // Cancelled if the processor ends before it is asked to: it never does but by a bug, and a
    // process that takes events and no longer processes them must not look alive.
    let processor_ended = CancellationToken::new();
    // The processor's fraud engine, when this process has one, for scoring on demand.
    let mut shared_fraud = None;
    let processing = match (queues.consumer.take(), &store, &queues.dead_letters) {
        (Some(consumer), Some(store), Some(dead_letters)) => {
            let geo = open_geoip(&config)?;
            // On-demand scoring reads the same loaded database, not a second copy of it.
            let on_demand_geo = geo.sharing(ON_DEMAND_GEOIP_CACHE);
            let mut pipeline = Pipeline::new(
                config.ingest.limits,
                geo,
                FraudEngine::new(config.fraud.clone()),
            );
            if !store.reads_field_values() {
                pipeline = pipeline.without_field_values();
            }
            shared_fraud = Some((pipeline.fraud_engine(), on_demand_geo));
            let processor = Processor::new(
                consumer,
                store.clone(),
                dead_letters.clone(),
                pipeline,
                config.processor.clone(),
                health.clone(),
            );
            tokio::spawn(sluice_processor::run_retention(
                store.clone(),
                RetentionPolicy {
                    retention_days: config.store.retention_days,
                    max_disk_bytes: config.store.max_disk_bytes,
                },
                std::time::Duration::from_secs(config.store.retention_check_secs),
                shutdown.clone(),
            ));
            let running = tokio::spawn(processor.run(shutdown.clone()));
            let ended = processor_ended.clone();
            Some(tokio::spawn(async move {
                let outcome = running.await;
                ended.cancel();
                outcome
            }))
        }
        _ => None,
    };

    let mut app = Router::new();
    // The producer face is opened for the ingest role only.
    if let Some(queue) = &queues.queue {
        app = app.merge(sluice_ingest::router(IngestState::new(
            queue.clone(),
            config.ingest.clone(),
            disk.clone(),
        )));
    }
    if let (Some(store), Some(dead_letters), Some(accounts), true) =
        (&store, &queues.dead_letters, &accounts, roles.api)
    {
        sluice_api::prepare_meta(accounts.meta().as_ref())
            .await
            .context("preparing the meta store for saved searches")?;
        // `serve` scores on demand against the processor's own state; an api process alone
        // rebuilds a user's history from the store.
        let fraud: Arc<dyn sluice_fraud::FraudDetector> = match shared_fraud.take() {
            Some((engine, geo)) => {
                Arc::new(OnDemandScorer::shared(config.ingest.limits, geo, engine))
            }
            None => Arc::new(OnDemandScorer::from_store(
                config.ingest.limits,
                open_geoip(&config)?,
                store.clone(),
                config.fraud.clone(),
            )),
        };
        app = app.merge(sluice_api::router(sluice_api::ApiState {
            store: store.clone(),
            dead_letters: dead_letters.clone(),
            queue: queues.queue.clone(),
            login: Arc::new(sluice_api::auth::LoginThrottle::new(
                config.auth.login.clone(),
                accounts.cache().clone(),
            )),
            accounts: accounts.clone(),
            answer_ttl: std::time::Duration::from_secs(config.cache.answer_ttl_secs),
            fraud,
            kibana_dashboard_url: config.kibana_dashboard_url()?,
            registration_open: registration_open(&config, roles),
            openapi: crate::openapi::json()?.into(),
        }));
    }
    app = app.merge(crate::ops::router(OpsState {
        metrics,
        queue: queues.queue.clone(),
        dead_letters: queues.dead_letters.clone(),
        store: store.clone(),
        accounts: accounts.clone(),
        health,
        disk,
    }));
    // A path no route has is answered as every error is, in JSON.
    app = app.fallback(not_found);
    if let Some(accounts) = accounts {
        app = app.layer(axum::middleware::from_fn_with_state(accounts, authorize));
    }
    let mut app = app
        .layer(axum::middleware::from_fn(discard_unread_body))
        .layer(axum::middleware::from_fn(track_latency));
    if let Some(tls) = &tls {
        let every = std::time::Duration::from_secs(config.tls.reload_check_secs);
        tokio::spawn(Arc::clone(tls).watch(every));
        app = app.layer(axum::middleware::from_fn(strict_transport_security));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    info!(%address, roles = %roles.names(), scheme, "sluice serving");
    // On stdout, for people and for tests started on port 0.
    println!("sluice listening on {scheme}://{address}");
    if roles.api {
        println!("web UI: {scheme}://{address}/ui/");
    }

    sluice_http::serve(
        listener,
        app,
        tls,
        stop_requested(processor_ended.clone(), shutdown.clone()),
    )
    .await
    .context("HTTP server")?;
    shutdown.cancel();
    if let Some(processing) = processing {
        info!("HTTP stopped; letting the processor finish its batch");
        processing
            .await
            .context("processor task")?
            .map_err(|e| anyhow::anyhow!("the processor failed ({e}); Sluice stopped so that it can be started again, and what it had not committed stays in the queue"))?;
    }
    info!("stopped cleanly");
    Ok(())
}

/// Whether this process takes new accounts, said once at start: open by default only to a
/// `serve` on a loopback address (local mode).
fn registration_open(config: &Config, roles: Roles) -> bool {
    let local = roles == Roles::ALL && config.listen.ip().is_loopback();
    let open = config.auth.registration_open(local);
    match (open, config.auth.allow_registration) {
        (true, None) => info!(
            listen = %config.listen,
            "registration is open: local mode (serve on a loopback address); set \
             auth.allow_registration = false to close it"
        ),
        (false, None) => info!(
            "registration is closed: accounts come from an administrator (sluice user create, \
             the users page); auth.allow_registration = true opens it"
        ),
        (open, Some(_)) => info!(open, "registration as auth.allow_registration says"),
    }
    open
}

async fn not_found(uri: axum::http::Uri) -> sluice_http::ApiError {
    sluice_http::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no route is {}; /api/docs lists them", uri.path()),
    )
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

/// A signal to stop, or the processor ending on its own (a bug: the process then stops, with an
/// error, for its supervisor to start it again).
async fn stop_requested(processor_ended: CancellationToken, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown_signal() => {}
        () = processor_ended.cancelled(), if !shutdown.is_cancelled() => {
            tracing::error!("the processor stopped unexpectedly; stopping Sluice");
        }
    }
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
