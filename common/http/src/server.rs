//! The HTTP accept loop: what `axum::serve` does, with hyper's read buffer bounded.
//!
//! hyper grows a connection's read buffer while a large body streams in, up to about 400 KiB,
//! and keeps it for as long as the connection lives. Ingest bounds what requests hold by bytes
//! in flight, but not that buffer: 200 producers each sending a 20 MB body held 86 MB in hyper
//! alone (heaptrack, `docs/benchmarks.md`). Bodies are split as they arrive, so a small buffer
//! costs nothing but a few more, smaller reads. `axum::serve` does not expose hyper's builder,
//! hence this loop; it keeps the rest of `axum::serve`'s behaviour: the peer address for
//! `ConnectInfo`, accept errors retried, and a graceful shutdown that stops accepting and waits
//! for the requests in progress. With TLS on, each connection's handshake runs in its own task,
//! bounded in time, so a slow or silent client holds up nobody.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sluice_telemetry::emit;
use sluice_telemetry::events::TlsHandshakeFailed;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::tls::TlsListener;

/// The most a connection buffers of what it reads. Request heads must fit in it too: 64 KiB is
/// four times Elasticsearch's `http.max_header_size`.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, then waits for
/// the connections that were open to finish the request they are answering.
pub async fn serve(
    mut listener: TcpListener,
    app: Router,
    tls: Option<Arc<TlsListener>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Every connection holds a receiver; the sender learns when the last one is gone.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let (app, stop) = (app.clone(), stop_rx.clone());
        match &tls {
            None => {
                tokio::spawn(serve_connection(stream, peer, app, stop));
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, app, stop).await,
                        // Plain HTTP to the TLS port, a client that does not trust the
                        // certificate, a scanner: that client's business, counted.
                        Ok(Err(_)) | Err(_) => emit(TlsHandshakeFailed),
                    }
                });
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    // Ends when no connection holds a receiver any more.
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // The peer address feeds the login throttle.
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(READ_BUFFER_BYTES);
    let mut connection = pin!(
        builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
    );
    loop {
        tokio::select! {
            // A connection that fails (a reset, a malformed head) concerns only its client.
            _ = connection.as_mut() => break,
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    connection.as_mut().graceful_shutdown();
                    // Once told, wait for the connection only.
                    let _ = connection.as_mut().await;
                    break;
                }
            }
        }
    }
}
