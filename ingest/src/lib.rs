//! The ingest role: takes logs over HTTP in the formats producers already speak, validates each
//! record, and answers only once the valid ones are durable in the queue.
//!
//! - `POST /api/logs/ingest`: one JSON object, a JSON array, or NDJSON;
//! - `POST /api/logs/upload`: a multipart file (JSON array, NDJSON or CSV), streamed;
//! - `POST /_bulk`, `POST /{index}/_bulk`: the Elasticsearch bulk API, and `GET /` like an
//!   Elasticsearch 8 node, so Filebeat, Vector, Fluent Bit and Logstash can ship to Sluice.

mod accept;
mod admission;
mod body;
mod bulk;
mod csv;
mod elasticsearch;
mod encoding;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod http;
mod quota;
mod split;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sluice_config::IngestConfig;
use sluice_queue::Queue;
use sluice_storage::DiskGuard;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use admission::Admission;
pub use quota::{Producer, Quotas};

/// What the ingest handlers share.
#[derive(Clone)]
pub struct IngestState {
    pub queue: Arc<dyn Queue>,
    pub config: Arc<IngestConfig>,
    /// The free-space floor on the disks the embedded backends write to.
    pub disk: Arc<DiskGuard>,
    /// Bytes of request bodies held at once, across all requests.
    pub admission: Arc<Admission>,
    /// What each producer may send.
    pub quotas: Arc<Quotas>,
}

impl IngestState {
    pub fn new(queue: Arc<dyn Queue>, config: IngestConfig, disk: DiskGuard) -> IngestState {
        let admission = Admission::new(
            config.max_in_flight_bytes,
            std::time::Duration::from_millis(config.admission_wait_ms),
        );
        let quotas = Quotas::new(config.quota);
        IngestState {
            queue,
            quotas: Arc::new(quotas),
            config: Arc::new(config),
            disk: Arc::new(disk),
            admission: Arc::new(admission),
        }
    }
}

/// The ingest routes and their OpenAPI description, from one list: a route cannot be served
/// and left out of the document. Bodies may come compressed (`encoding`).
fn routes() -> OpenApiRouter<IngestState> {
    OpenApiRouter::new()
        .routes(routes!(http::ingest))
        .routes(routes!(upload::upload))
        .routes(routes!(bulk::bulk))
        .routes(routes!(bulk::bulk_into))
        .routes(routes!(elasticsearch::root))
}

/// The ingest routes. Each is its own `route` so a role guard can be layered per route.
pub fn router(state: IngestState) -> Router {
    let (routes, _) = routes().split_for_parts();
    // Bodies are read and bounded by the handlers themselves, with JSON errors.
    let routes = routes.layer(DefaultBodyLimit::disable());
    encoding::decompressing(routes).with_state(state)
}

/// What the ingest routes answer, for the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
