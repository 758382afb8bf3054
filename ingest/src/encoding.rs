//! Compressed request bodies: `Content-Encoding: gzip`, `deflate` or `zstd` on every ingest
//! route, as shippers send them (Filebeat's and Logstash's `compression_level`, Fluent Bit's
//! `compress gzip`, Vector's `compression`) and as Elasticsearch accepts them.
//!
//! tower-http's request decompression does the work, as a stream: the handlers read decompressed
//! frames as they come and apply every bound to those (`ingest.max_body_bytes` and the bytes in
//! flight), so a small body that inflates to gigabytes is refused with 413 at the limit, having
//! held no more than a frame of it. A body that is not what its encoding says fails as it is read
//! (400, `unreadable_body`, with the decoder's reason). What tower-http would refuse with an
//! empty 415 is refused here first, with a JSON error that names the encodings accepted.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_event::Source;
use sluice_http::ApiError;
use tower_http::decompression::RequestDecompressionLayer;

use crate::body::refuse;

/// The content codings a request body may come in, as `Content-Encoding` names them.
const ACCEPTED: &str = "gzip, deflate, zstd (or identity)";

/// `router` with its request bodies decompressed.
pub fn decompressing<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // The codings it decodes are the features tower-http is built with (Cargo.toml): those of
    // `ACCEPTED`, which `check_content_encoding` lets through, and no others.
    router
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(check_content_encoding))
}

/// Spells the coding as the decompression layer matches it (codings are case-insensitive, and
/// `x-gzip` is `gzip`: RFC 9110, 8.4.1.3), or refuses one it cannot decode.
async fn check_content_encoding(mut request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get(header::CONTENT_ENCODING) else {
        return next.run(request).await;
    };
    let coding = value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let canonical = match coding.as_str() {
        "gzip" | "x-gzip" => "gzip",
        "deflate" => "deflate",
        "zstd" => "zstd",
        "identity" | "" => {
            request.headers_mut().remove(header::CONTENT_ENCODING);
            return next.run(request).await;
        }
        _ => {
            let source = source_of(request.uri().path());
            let mut response = refuse(
                source,
                "unsupported_content_encoding",
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_content_encoding",
                    format!(
                        "Content-Encoding {:?} is not accepted; send the body as it is or \
                         compressed with {ACCEPTED}",
                        String::from_utf8_lossy(value.as_bytes())
                    ),
                ),
            )
            .into_response();
            // What RFC 9110 (15.5.16) asks of a 415 for an unsupported coding.
            response.headers_mut().insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, deflate, zstd"),
            );
            return response;
        }
    };
    request.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(canonical),
    );
    next.run(request).await
}

fn source_of(path: &str) -> Source {
    if path.ends_with("/_bulk") {
        Source::Bulk
    } else if path == "/api/logs/upload" {
        Source::Upload
    } else {
        Source::Http
    }
}
