//! HTTPS on the listener: rustls over the PEM files of `[tls]`, looked at again on a schedule,
//! so that a renewed certificate (cert-manager rewriting a Secret, certbot's renewal) is served
//! from the next connection on without a restart. A pair that does not load is refused, said
//! and counted, and the one before it goes on being served: a half-written renewal must not take
//! the listener down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sluice_telemetry::emit;
use sluice_telemetry::events::{TlsCertificateLoaded, TlsReloadFailed};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("tls: {path} holds no PEM certificate (a `BEGIN CERTIFICATE` block)")]
    NoCertificate { path: PathBuf },
    #[error("tls: the certificate in {cert} and the key in {key} do not go together: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: rustls::Error,
    },
}

/// The certificate and key files, and what was loaded from them.
pub struct TlsListener {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Loaded>,
}

struct Loaded {
    acceptor: TlsAcceptor,
    /// When each file last changed, as seen when it was loaded.
    stamps: (Option<SystemTime>, Option<SystemTime>),
}

impl TlsListener {
    /// Loads the pair, or says what is wrong with it.
    pub fn open(cert: &Path, key: &Path) -> Result<TlsListener, TlsError> {
        let stamps = (modified(cert), modified(key));
        let acceptor = load(cert, key)?;
        emit(TlsCertificateLoaded { path: cert });
        Ok(TlsListener {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Loaded { acceptor, stamps }),
        })
    }

    /// What new connections are accepted with.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.read().acceptor.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the pair again if either file changed since it was last loaded; a pair that does
    /// not load is reported and not tried again until a file changes once more.
    pub fn reload_if_changed(&self) {
        let stamps = (modified(&self.cert), modified(&self.key));
        if stamps == self.read().stamps {
            return;
        }
        let loaded = load(&self.cert, &self.key);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.stamps = stamps;
        match loaded {
            Ok(acceptor) => {
                current.acceptor = acceptor;
                emit(TlsCertificateLoaded { path: &self.cert });
            }
            Err(error) => emit(TlsReloadFailed {
                error: &error.to_string(),
            }),
        }
    }

    /// Looks at the files every `every` for as long as the process runs.
    pub async fn watch(self: Arc<TlsListener>, every: Duration) {
        let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let listener = Arc::clone(&self);
            // File reads and key parsing are blocking work.
            let _ = tokio::task::spawn_blocking(move || listener.reload_if_changed()).await;
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read_error = |path: &Path, reason: String| TlsError::Read {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        read_error(
            key,
            format!("{e} (a PKCS#8, PKCS#1 or SEC1 private key in PEM is expected)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mismatch = |reason| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(mismatch)?;
    // The accept loop speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
