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
use sluice_auth::Accounts;
use sluice_queue::{DeadLetterQueue, Queue};
use sluice_storage::{DiskGuard, available_bytes};
use sluice_store::EventStore;
use sluice_telemetry::emit;
use sluice_telemetry::events::FreeSpace;
use sluice_telemetry::health::Health;

/// What `/ready` checks: the backends this process's roles opened.
#[derive(Clone)]
pub struct OpsState {
    pub metrics: PrometheusHandle,
    pub queue: Option<Arc<dyn Queue>>,
    /// For roles without a producer: the processor's and the api's way to the queue.
    pub dead_letters: Option<Arc<dyn DeadLetterQueue>>,
    pub store: Option<Arc<dyn EventStore>>,
    pub accounts: Option<Arc<Accounts>>,
    /// What the processor found failing while it worked.
    pub health: Health,
    /// The free-space floor over the embedded backends' directories.
    pub disk: DiskGuard,
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
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    let mut record = |name: &str, outcome: Result<(), String>| {
        all_ok &= outcome.is_ok();
        checks.insert(
            name.into(),
            json!(outcome.err().unwrap_or_else(|| "ok".into())),
        );
    };
    if let Some(store) = &state.store {
        record("store", store.ready().await.map_err(|e| e.to_string()));
    }
    if !state.disk.paths().is_empty() {
        record(
            "storage",
            state.disk.check(0).map_err(|low| low.to_string()),
        );
    }
    if let Some(accounts) = &state.accounts {
        let (meta, cache) = accounts.ready().await;
        record("meta", meta);
        record("cache", cache);
    }
    if let (None, Some(dead_letters)) = (&state.queue, &state.dead_letters) {
        record(
            "queue",
            dead_letters.ready().await.map_err(|e| e.to_string()),
        );
    }
    let mut body = json!({});
    if let Some(queue) = &state.queue {
        let backlog = queue.backlog();
        record(
            "queue",
            if backlog.is_full() {
                Err(format!(
                    "backlog {} bytes is at the high-water mark {}",
                    backlog.bytes, backlog.limit_bytes
                ))
            } else {
                Ok(())
            },
        );
        body["queue"] = json!({
            "records": backlog.records,
            "bytes": backlog.bytes,
            "limit_bytes": backlog.limit_bytes,
        });
    }
    // A backend the processor cannot work with is not ready, whatever a ping says.
    let failures = state.health.failures();
    if !failures.is_empty() {
        all_ok = false;
        let mut processor = serde_json::Map::new();
        for (check, failure) in failures {
            let message = format!(
                "failing since {} ({} attempts): {}",
                sluice_event::format_rfc3339_ms(failure.since_ms),
                failure.attempts,
                failure.reason
            );
            checks.insert(format!("processor.{check}"), json!(message));
            processor.insert(check.into(), json!(failure));
        }
        body["processor"] = serde_json::Value::Object(processor);
    }
    body["status"] = json!(if all_ok { "ready" } else { "not_ready" });
    body["checks"] = serde_json::Value::Object(checks);
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    for path in state.disk.paths() {
        if let Ok(bytes) = available_bytes(path) {
            emit(FreeSpace {
                path: &path.display().to_string(),
                bytes,
            });
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
