//! Just enough of an Elasticsearch 8 node for shippers to connect: `GET /` answers like ES,
//! and responses carry `X-Elastic-Product`, which the official 8.x clients check.

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The Elasticsearch version Sluice presents itself as.
pub const ES_VERSION: &str = "8.11.0";

pub fn product_header() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-elastic-product"),
        HeaderValue::from_static("Elasticsearch"),
    )
}

/// What an Elasticsearch node answers on `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeInfo {
    name: &'static str,
    cluster_name: &'static str,
    cluster_uuid: &'static str,
    version: NodeVersion,
    tagline: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct NodeVersion {
    number: &'static str,
    build_flavor: &'static str,
    build_type: &'static str,
    build_hash: &'static str,
    build_snapshot: bool,
    lucene_version: &'static str,
    minimum_wire_compatibility_version: &'static str,
    minimum_index_compatibility_version: &'static str,
}

/// `GET /` (and `HEAD /`, which axum answers from it without the body).
#[utoipa::path(
    get,
    path = "/",
    tag = "elasticsearch",
    summary = "The Elasticsearch handshake shippers make before `_bulk`",
    description = "Answers as an Elasticsearch 8 node does, with `X-Elastic-Product: Elasticsearch`, \
                   so Filebeat, Logstash, Vector, Fluent Bit and the official clients connect.",
    responses((status = 200, description = "The node's identity", body = NodeInfo))
)]
pub async fn root() -> Response {
    let body = NodeInfo {
        name: "sluice",
        cluster_name: "sluice",
        cluster_uuid: "c2x1aWNlLXNsdWljZS0w",
        version: NodeVersion {
            number: ES_VERSION,
            build_flavor: "default",
            build_type: "sluice",
            build_hash: env!("CARGO_PKG_VERSION"),
            build_snapshot: false,
            lucene_version: "9.8.0",
            minimum_wire_compatibility_version: "7.17.0",
            minimum_index_compatibility_version: "7.0.0",
        },
        tagline: "You Know, for Search",
    };
    ([product_header()], Json(body)).into_response()
}
