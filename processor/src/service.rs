//! The processor loop: batch in, documents out, commit. Owns the ordering guarantees:
//! the queue position moves only after the store acknowledged the batch (or the records were
//! dead-lettered), and a shutdown lets the batch in flight finish.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_common::config::ProcessorConfig;
use sluice_common::event::QueuedRecord;
use sluice_common::queue::{DeadLetter, DeadLetterQueue, QueueConsumer, QueueError};
use sluice_common::store::{EventStore, IndexReport, StoreDocument};
use sluice_common::telemetry::emit;
use sluice_common::telemetry::events::{
    BatchProcessed, EventsDeadLettered, GeoIpDatabase, GeoIpLookups, QueueBacklog,
    StoreWriteFailed, StoreWritten,
};
use sluice_common::validate::RejectCode;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use sluice_geoip::LookupCounts;

use crate::pipeline::{BatchOutput, Pipeline};
use crate::retry::Backoff;

pub struct Processor {
    consumer: Box<dyn QueueConsumer>,
    store: Arc<dyn EventStore>,
    dead_letters: Arc<dyn DeadLetterQueue>,
    pipeline: Option<Pipeline>,
    config: ProcessorConfig,
}

/// Why the loop stopped early.
enum Stop {
    Shutdown,
    Queue(QueueError),
}

impl Processor {
    pub fn new(
        consumer: Box<dyn QueueConsumer>,
        store: Arc<dyn EventStore>,
        dead_letters: Arc<dyn DeadLetterQueue>,
        pipeline: Pipeline,
        config: ProcessorConfig,
    ) -> Processor {
        Processor {
            consumer,
            store,
            dead_letters,
            pipeline: Some(pipeline),
            config,
        }
    }

    /// Runs until `shutdown` is cancelled; the batch in flight is finished first. Returns an
    /// error only when the queue itself fails (the store failing is retried, not fatal).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), QueueError> {
        let wait = Duration::from_millis(self.config.batch_max_wait_ms);
        let max = self.config.batch_max_records.max(1);
        info!(batch_max_records = max, "processor started");
        loop {
            let batch = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = self.consumer.next_batch(max, wait) => batch?,
            };
            if batch.is_empty() {
                // Idle: still give a replaced GeoIP file its chance to load.
                self.transform(batch).await;
                continue;
            }
            match self.handle(batch, &shutdown).await {
                Ok(()) => {}
                Err(Stop::Shutdown) => break,
                Err(Stop::Queue(e)) => return Err(e),
            }
        }
        info!("processor stopped; uncommitted records stay in the queue for the next start");
        Ok(())
    }

    async fn handle(
        &mut self,
        batch: Vec<QueuedRecord>,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        let started = Instant::now();
        let records = batch.len();
        let output = self.transform(batch).await;
        let BatchOutput {
            documents,
            mut dead_letters,
        } = output;
        let documents = Arc::new(documents);
        let report = self.write(&documents, shutdown).await?;
        dead_letters.extend(index_dead_letters(&documents, &report));
        self.dead_letter(dead_letters, shutdown).await?;
        self.consumer.commit().await.map_err(Stop::Queue)?;
        let backlog = self.consumer.backlog();
        emit(QueueBacklog {
            records: backlog.records,
            bytes: backlog.bytes,
        });
        emit(BatchProcessed {
            records,
            indexed: report.indexed,
            duration: started.elapsed(),
        });
        Ok(())
    }

    /// Runs the CPU-bound pipeline on a blocking thread so the async runtime stays responsive.
    async fn transform(&mut self, batch: Vec<QueuedRecord>) -> BatchOutput {
        let Some(mut pipeline) = self.pipeline.take() else {
            return BatchOutput::default();
        };
        let joined = tokio::task::spawn_blocking(move || {
            // Opening a database is file I/O: it belongs on this thread too.
            let reloaded = pipeline.geo_mut().reload_if_changed();
            let output = pipeline.process(&batch);
            let counts = pipeline.geo_mut().take_counts();
            (pipeline, output, counts, reloaded)
        })
        .await;
        match joined {
            Ok((pipeline, output, counts, reloaded)) => {
                self.pipeline = Some(pipeline);
                report_reload(reloaded);
                if counts != LookupCounts::default() {
                    emit(GeoIpLookups {
                        found: counts.found,
                        not_found: counts.not_found,
                        cached: counts.cached,
                    });
                }
                output
            }
            Err(e) => {
                // A panic in the pipeline is a bug; without the pipeline the processor cannot go on.
                error!(error = %e, "processor pipeline panicked");
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    /// Writes until every document is indexed or refused for good. What the store refused for
    /// now (overload, a shard moving) is sent again on its own after a back-off, not with the
    /// whole batch; a failed write is retried whole. The queue position waits meanwhile.
    async fn write(
        &self,
        documents: &Arc<Vec<StoreDocument>>,
        shutdown: &CancellationToken,
    ) -> Result<IndexReport, Stop> {
        let mut outcome = IndexReport::default();
        if documents.is_empty() {
            return Ok(outcome);
        }
        let mut backoff = Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
        );
        let mut pending = Arc::clone(documents);
        loop {
            let started = Instant::now();
            let failure = match self.store.index(Arc::clone(&pending)).await {
                Ok(report) => {
                    emit(StoreWritten {
                        documents: report.indexed,
                        duration: started.elapsed(),
                    });
                    outcome.indexed += report.indexed;
                    let (retry, refused): (Vec<_>, Vec<_>) =
                        report.rejected.into_iter().partition(|r| r.retryable);
                    outcome.rejected.extend(refused);
                    if retry.is_empty() {
                        return Ok(outcome);
                    }
                    let failure = format!(
                        "{} documents refused for now (first: {})",
                        retry.len(),
                        retry[0].reason
                    );
                    let again: HashSet<&str> = retry.iter().map(|r| r.id.as_str()).collect();
                    pending = Arc::new(
                        pending
                            .iter()
                            .filter(|d| again.contains(d.id.as_str()))
                            .cloned()
                            .collect(),
                    );
                    failure
                }
                Err(e) => e.to_string(),
            };
            let retry_in = backoff.next_delay();
            emit(StoreWriteFailed {
                error: &failure,
                attempt: backoff.attempt(),
                retry_in,
            });
            sleep_or_shutdown(retry_in, shutdown).await?;
        }
    }

    async fn dead_letter(
        &self,
        letters: Vec<DeadLetter>,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        if letters.is_empty() {
            return Ok(());
        }
        report_dead_letters(&letters);
        let mut backoff = Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
        );
        loop {
            match self.dead_letters.push(letters.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    error!(error = %e, "cannot write dead letters; holding the queue position");
                    sleep_or_shutdown(backoff.next_delay(), shutdown).await?;
                }
            }
        }
    }
}

fn report_reload(reloaded: Option<Result<String, sluice_geoip::GeoIpError>>) {
    match reloaded {
        Some(Ok(description)) => emit(GeoIpDatabase {
            loaded: Some(&description),
            detail: "reloaded after the file changed",
        }),
        Some(Err(e)) => {
            error!(error = %e, "GeoIP database changed but cannot be read; keeping the loaded one")
        }
        None => {}
    }
}

async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> Result<(), Stop> {
    tokio::select! {
        _ = shutdown.cancelled() => Err(Stop::Shutdown),
        _ = tokio::time::sleep(delay) => Ok(()),
    }
}

/// Documents the store refused for good become dead letters (their source is what was sent).
fn index_dead_letters(documents: &[StoreDocument], report: &IndexReport) -> Vec<DeadLetter> {
    report
        .rejected
        .iter()
        .filter(|r| !r.retryable)
        .map(|rejected| {
            let document = documents.iter().find(|d| d.id == rejected.id);
            DeadLetter {
                id: Some(rejected.id.clone()),
                failed_at_ms: sluice_common::now_ms(),
                received_at_ms: document.map_or(0, |d| d.timestamp_ms),
                source: sluice_common::event::Source::Queue,
                stage: "index".into(),
                code: RejectCode::InvalidValue,
                field: None,
                reason: rejected.reason.clone(),
                payload: document.map(|d| d.source.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

fn report_dead_letters(letters: &[DeadLetter]) {
    let mut by_reason: Vec<(&str, RejectCode, usize, &str)> = Vec::new();
    for letter in letters {
        match by_reason
            .iter_mut()
            .find(|(stage, code, _, _)| *stage == letter.stage && *code == letter.code)
        {
            Some(entry) => entry.2 += 1,
            None => by_reason.push((&letter.stage, letter.code, 1, &letter.reason)),
        }
    }
    for (stage, code, count, example) in by_reason {
        emit(EventsDeadLettered {
            stage,
            code,
            count,
            example,
        });
    }
}
