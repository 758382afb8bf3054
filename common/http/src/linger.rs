//! Reading what is left of a request body after the handler has answered without it.
//!
//! A handler that refuses early (413 on `Content-Length`, 401 before the body, 503 on a full
//! queue) drops the body unread. Closing a TCP socket with unread bytes in its receive buffer
//! sends a reset, and a client still writing its body then loses the answer and sees only
//! "connection reset" instead of the status and the reason. Like nginx's lingering close, this
//! middleware discards the rest of the body, for a bounded time, before the answer goes out.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

/// How long a refused request's body may take to arrive before the connection is cut anyway.
const LINGER_LIMIT: Duration = Duration::from_secs(10);

/// Middleware: runs the handler on a body it can drop without losing the connection, then reads
/// whatever the handler left unread.
pub async fn discard_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(SharedBody(Arc::clone(&shared))));
    let response = next.run(request).await;
    let rest = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
    if !rest.is_end_stream() {
        // Past the limit, or on a read error, the answer goes out and the connection closes.
        let _ = tokio::time::timeout(LINGER_LIMIT, drain(rest)).await;
    }
    response
}

async fn drain(mut body: Body) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// The request body, polled by the handler while this middleware keeps hold of it.
struct SharedBody(Arc<Mutex<Body>>);

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // Only the handler polls while it runs, so the lock is never contended.
        let mut body = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A client that writes its whole body, far larger than the socket buffers, before it reads
    /// the answer (as HTTP clients do), to a handler that answers without reading the body; the
    /// status line the client reads back, or the I/O error it got instead.
    async fn refused_upload(router: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let exchange = async {
            let mut stream = TcpStream::connect(address).await?;
            let body = vec![b'x'; 8 * 1024 * 1024];
            let head = format!(
                "POST /upload HTTP/1.1\r\nhost: sluice\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
            let mut answer = Vec::new();
            let mut buffer = [0u8; 4096];
            while !answer.windows(2).any(|w| w == b"\r\n") {
                let n = stream.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buffer[..n]);
            }
            Ok::<_, std::io::Error>(answer)
        };
        let outcome = tokio::time::timeout(Duration::from_secs(20), exchange).await;
        server.abort();
        match outcome {
            Ok(Ok(answer)) => String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            Ok(Err(e)) => format!("I/O error: {e}"),
            Err(_) => "timed out".to_owned(),
        }
    }

    fn refusing_router() -> Router {
        Router::new().route("/upload", post(|| async { StatusCode::PAYLOAD_TOO_LARGE }))
    }

    #[tokio::test]
    async fn a_refused_body_is_read_so_the_client_gets_the_answer() {
        let router = refusing_router().layer(axum::middleware::from_fn(discard_unread_body));
        for _ in 0..5 {
            assert_eq!(
                refused_upload(router.clone()).await,
                "HTTP/1.1 413 Payload Too Large"
            );
        }
    }

    #[tokio::test]
    async fn bodies_the_handler_reads_are_passed_through_whole() {
        let router = Router::new()
            .route(
                "/upload",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn(discard_unread_body));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: sluice\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            )
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        server.abort();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n5"), "{answer}");
    }
}
