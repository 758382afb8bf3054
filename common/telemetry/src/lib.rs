//! Telemetry in one pattern, borrowed from Vector: a component does not call `metrics` or
//! `tracing` directly; it emits a typed internal event (see [`events`]) that logs and counts in
//! one place, so metric names, labels and log lines stay consistent and greppable. [`health`]
//! keeps each backend's state for `/ready`, reported through the same events.

pub mod events;
pub mod health;
pub mod throttle;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Implemented by every internal event; `emit` logs and updates the metrics for it.
pub trait InternalEvent {
    fn emit(self);
}

/// Emits an internal event: `emit(EventsAccepted { .. })`.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

/// Latency buckets in seconds, from a fast HTTP answer to a slow bulk write.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0,
];

/// Installs the process-wide Prometheus recorder; `/metrics` renders the returned handle.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Suffix("_records".into()), BATCH_SIZE_BUCKETS)
        })
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("a metrics recorder is already installed: {e}"))?;
    events::describe();
    Ok(handle)
}
