//! Operational endpoints every role serves: `/health` (the process answers), `/ready` (its
//! backends answer) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde_json::Value;
use sluice_auth::Accounts;
use sluice_queue::{DeadLetterQueue, Queue};
use sluice_storage::{DiskGuard, available_bytes};
use sluice_store::EventStore;
use sluice_telemetry::emit;
use sluice_telemetry::events::FreeSpace;
use sluice_telemetry::health::Health;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The operational routes and their OpenAPI description, from one list.
fn routes() -> OpenApiRouter<OpsState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

pub fn router(state: OpsState) -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(state)
}

/// What the operational routes answer, for the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

#[derive(Debug, Serialize, ToSchema)]
struct Liveness {
    /// `ok`.
    status: &'static str,
    version: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Whether the process answers (for liveness probes)",
    responses((status = 200, body = Liveness))
)]
async fn health() -> Json<Liveness> {
    Json(Liveness {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Debug, Serialize, ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Each backend this process's roles opened: `ok`, or what is wrong.
    checks: BTreeMap<String, String>,
    /// The queue's backlog, for a process with the ingest role.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<Backlog>,
    /// What the processor finds failing as it works, by check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    processor: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Backlog {
    records: u64,
    bytes: u64,
    /// The high-water mark: ingest answers 503 above it.
    limit_bytes: u64,
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Whether every backend of this process answers (for readiness probes)",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `checks` says which backend and why", body = Readiness),
    )
)]
async fn ready(State(state): State<OpsState>) -> Response {
    let mut checks = BTreeMap::new();
    let mut all_ok = true;
    let mut record = |name: &str, outcome: Result<(), String>| {
        all_ok &= outcome.is_ok();
        checks.insert(name.into(), outcome.err().unwrap_or_else(|| "ok".into()));
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
    let mut queue_backlog = None;
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
        queue_backlog = Some(Backlog {
            records: backlog.records,
            bytes: backlog.bytes as u64,
            limit_bytes: backlog.limit_bytes as u64,
        });
    }
    // A backend the processor cannot work with is not ready, whatever a ping says.
    let failures = state.health.failures();
    let mut processor = None;
    if !failures.is_empty() {
        all_ok = false;
        let mut failing = BTreeMap::new();
        for (check, failure) in failures {
            let message = format!(
                "failing since {} ({} attempts): {}",
                sluice_event::format_rfc3339_ms(failure.since_ms),
                failure.attempts,
                failure.reason
            );
            checks.insert(format!("processor.{check}"), message);
            failing.insert(
                check.to_owned(),
                serde_json::to_value(failure).unwrap_or_default(),
            );
        }
        processor = Some(failing);
    }
    let body = Readiness {
        status: if all_ok { "ready" } else { "not_ready" },
        checks,
        queue: queue_backlog,
        processor,
    };
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics, in the text exposition format",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
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
