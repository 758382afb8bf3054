//! The retention schedule: every `store.retention_check_secs` the role that writes the store
//! drops what is past `store.retention_days` or over `store.max_disk_bytes`
//! ([`RetentionPolicy::enforce`]), and refreshes the store's size metrics. A failed pass is
//! reported and tried again at the next one; passes are idempotent, so several processors
//! running them over one Elasticsearch cluster agree.

use std::sync::Arc;
use std::time::Duration;

use sluice_store::{EventStore, RetentionPolicy};
use sluice_telemetry::emit;
use sluice_telemetry::events::{RetentionEnforced, RetentionFailed};
use tokio_util::sync::CancellationToken;

/// Runs a pass every `every`, the first one `every` after start, until `shutdown`.
pub async fn run_retention(
    store: Arc<dyn EventStore>,
    policy: RetentionPolicy,
    every: Duration,
    shutdown: CancellationToken,
) {
    let every = every.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match policy.enforce(store.as_ref(), sluice_event::now_ms()).await {
            Ok(pass) => emit(RetentionEnforced {
                expired: pass.expired,
                evicted: pass.evicted,
                bytes: pass.usage.bytes,
                oldest_ms: pass.usage.oldest_ms,
                over_disk_bound: pass.over_disk_bound,
                max_disk_bytes: policy.max_disk_bytes,
            }),
            Err(e) => emit(RetentionFailed {
                error: &e.to_string(),
            }),
        }
    }
}
