//! The ingest role: takes logs over HTTP in the formats producers already speak, validates each
//! record, and answers only once the valid ones are durable in the queue.
//!
//! - `POST /api/logs/ingest`: one JSON object, a JSON array, or NDJSON;
//! - `POST /api/logs/upload`: a multipart file (JSON array, NDJSON or CSV), streamed;
//! - `POST /_bulk`, `POST /{index}/_bulk`: the Elasticsearch bulk API, and `GET /` like an
//!   Elasticsearch 8 node, so Filebeat, Vector, Fluent Bit and Logstash can ship to Sluice.

mod accept;
mod body;
mod bulk;
mod csv;
mod elasticsearch;
mod http;
mod split;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sluice_common::config::IngestConfig;
use sluice_common::queue::Queue;

/// What the ingest handlers share.
#[derive(Clone)]
pub struct IngestState {
    pub queue: Arc<dyn Queue>,
    pub config: Arc<IngestConfig>,
}

/// The ingest routes. Each is its own `route` so a role guard can be layered per route.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/api/logs/ingest", post(http::ingest))
        .route("/api/logs/upload", post(upload::upload))
        .route("/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/{index}/_bulk", post(bulk::bulk_into).put(bulk::bulk_into))
        .route("/", get(elasticsearch::root).head(elasticsearch::root_head))
        // Bodies are read and bounded by the handlers themselves, with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
