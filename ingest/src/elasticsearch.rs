//! Just enough of an Elasticsearch 8 node for shippers to connect: `GET /` answers like ES,
//! and responses carry `X-Elastic-Product`, which the official 8.x clients check.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The Elasticsearch version Sluice presents itself as.
pub const ES_VERSION: &str = "8.11.0";

pub fn product_header() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-elastic-product"),
        HeaderValue::from_static("Elasticsearch"),
    )
}

pub async fn root() -> Response {
    let body = json!({
        "name": "sluice",
        "cluster_name": "sluice",
        "cluster_uuid": "c2x1aWNlLXNsdWljZS0w",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "sluice",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    });
    ([product_header()], Json(body)).into_response()
}

pub async fn root_head() -> Response {
    (StatusCode::OK, [product_header()]).into_response()
}
