//! Operational endpoints every role serves: `/health` (the process answers), `/ready` (its
//! backends answer) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sluice_common::auth::Accounts;
use sluice_common::queue::Queue;
use sluice_common::store::EventStore;

#[derive(Clone)]
pub struct OpsState {
    pub metrics: PrometheusHandle,
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn EventStore>,
    pub accounts: Arc<Accounts>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn ready(State(state): State<OpsState>) -> Response {
    let store = state.store.ready().await;
    let (meta, cache) = state.accounts.ready().await;
    let backlog = state.queue.backlog();
    let queue_ok = !backlog.is_full();
    let all_ok = store.is_ok() && meta.is_ok() && cache.is_ok() && queue_ok;
    let check = |outcome: Result<(), String>| outcome.err().unwrap_or_else(|| "ok".to_owned());
    let body = json!({
        "status": if all_ok { "ready" } else { "not_ready" },
        "checks": {
            "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
            "meta": check(meta),
            "cache": check(cache),
            "queue": if queue_ok { "ok".to_owned() } else {
                format!("backlog {} bytes is at the high-water mark {}", backlog.bytes, backlog.limit_bytes)
            },
        },
        "queue": {"records": backlog.records, "bytes": backlog.bytes, "limit_bytes": backlog.limit_bytes},
    });
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
