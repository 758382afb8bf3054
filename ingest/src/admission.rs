//! Admission control by bytes in flight: however many producers send at once, the request
//! bodies ingest holds in memory stay under `ingest.max_in_flight_bytes`.
//!
//! A request takes its share before its body is read (its `Content-Length`, or frame by frame
//! for a chunked body) and keeps it until its answer is decided, which covers the body, the
//! records split from it and their trip into the queue. Past the limit a request waits a short
//! while (`ingest.admission_wait_ms`) for others to finish; then it is answered 503 with
//! `Retry-After`, its body left unread (the lingering-close middleware discards it without
//! keeping it). Unread bodies wait in the kernel's socket buffers, which is what pushes back on
//! the producers.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use sluice_event::Source;
use sluice_http::ApiError;
use sluice_telemetry::emit;
use sluice_telemetry::events::{InFlightBytes, RequestRefused};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Permits count KiB, so that the limit fits the semaphore's `u32` grants.
const UNIT: usize = 1024;

#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit_units: usize,
    wait: Duration,
}

/// A request's share of the in-flight bytes; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    permit: Option<OwnedSemaphorePermit>,
    admission: Arc<Semaphore>,
    limit_units: usize,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        drop(self.permit.take());
        report(&self.admission, self.limit_units);
    }
}

fn report(permits: &Semaphore, limit_units: usize) {
    let free = permits.available_permits().min(limit_units);
    emit(InFlightBytes {
        bytes: ((limit_units - free) * UNIT) as u64,
    });
}

impl Admission {
    pub fn new(max_in_flight_bytes: usize, wait: Duration) -> Admission {
        let limit_units = (max_in_flight_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Admission {
            permits: Arc::new(Semaphore::new(limit_units)),
            limit_units,
            wait,
        }
    }

    /// The moment a request arriving now must be admitted by.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.wait
    }

    /// Nothing held yet; [`Admission::grow`] adds to it.
    pub fn empty(&self) -> Admitted {
        Admitted {
            permit: None,
            admission: Arc::clone(&self.permits),
            limit_units: self.limit_units,
        }
    }

    /// Adds `bytes` to what `admitted` holds, waiting until `deadline` for room. A request larger
    /// than the whole limit is let in alone, once everything else is done.
    pub async fn grow(
        &self,
        admitted: &mut Admitted,
        bytes: usize,
        deadline: Instant,
        source: Source,
    ) -> Result<(), ApiError> {
        let held = admitted.permit.as_ref().map_or(0, |p| p.num_permits());
        let wanted = bytes
            .div_ceil(UNIT)
            .min(self.limit_units.saturating_sub(held));
        if wanted == 0 {
            return Ok(());
        }
        // `wanted` is at most the limit, which fits a u32 grant.
        let grant = u32::try_from(wanted).unwrap_or(u32::MAX);
        let acquired = tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.permits).acquire_many_owned(grant),
        )
        .await;
        match acquired {
            Ok(Ok(permit)) => {
                match &mut admitted.permit {
                    Some(held) => held.merge(permit),
                    None => admitted.permit = Some(permit),
                }
                report(&self.permits, self.limit_units);
                Ok(())
            }
            _ => Err(self.refusal(source)),
        }
    }

    /// What a request that waited in vain is answered.
    fn refusal(&self, source: Source) -> ApiError {
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest_busy",
            format!(
                "{} MiB of requests are being taken in already (ingest.max_in_flight_bytes); \
                 nothing from this request was accepted, retry later",
                self.limit_units * UNIT / (1024 * 1024)
            ),
        )
        .retry_after(1);
        emit(RequestRefused {
            source,
            reason: "in_flight_limit",
            detail: &error.message,
        });
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_past_the_limit_wait_then_are_refused_and_room_comes_back() {
        let admission = Admission::new(10 * UNIT, Duration::from_millis(50));
        let mut first = admission.empty();
        admission
            .grow(&mut first, 8 * UNIT, admission.deadline(), Source::Http)
            .await
            .expect("fits");
        let mut second = admission.empty();
        let refused = admission
            .grow(&mut second, 4 * UNIT, admission.deadline(), Source::Http)
            .await
            .expect_err("past the limit");
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after, Some(1));
        drop(first);
        admission
            .grow(&mut second, 4 * UNIT, admission.deadline(), Source::Http)
            .await
            .expect("room again");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_limit_goes_alone() {
        let admission = Admission::new(10 * UNIT, Duration::from_millis(50));
        let mut huge = admission.empty();
        admission
            .grow(&mut huge, 100 * UNIT, admission.deadline(), Source::Http)
            .await
            .expect("let in alone");
        let mut small = admission.empty();
        assert!(
            admission
                .grow(&mut small, 1, admission.deadline(), Source::Http)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_waiting_request_gets_in_when_room_frees_before_its_deadline() {
        let admission = Arc::new(Admission::new(10 * UNIT, Duration::from_secs(5)));
        let mut first = admission.empty();
        admission
            .grow(&mut first, 10 * UNIT, admission.deadline(), Source::Http)
            .await
            .expect("fits");
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                let mut second = admission.empty();
                admission
                    .grow(&mut second, 5 * UNIT, admission.deadline(), Source::Http)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        waiter.await.expect("task").expect("admitted after waiting");
    }
}
