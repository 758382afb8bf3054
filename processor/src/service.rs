//! The processor loop: batch in, documents out, commit. Owns the ordering guarantees:
//! the queue position moves only after the store acknowledged the batch (or the records were
//! dead-lettered), and a shutdown lets the batch in flight finish.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::ProcessorConfig;
use sluice_event::QueuedRecord;
use sluice_event::validate::RejectCode;
use sluice_queue::{BatchLimit, DeadLetter, DeadLetterQueue, QueueConsumer};
use sluice_store::{EventStore, IndexReport, StoreDocument};
use sluice_telemetry::emit;
use sluice_telemetry::events::{
    BatchProcessed, EventsDeadLettered, GeoIpDatabase, GeoIpLookups, QueueBacklog,
    StoreWriteFailed, StoreWritten,
};
use sluice_telemetry::health::Health;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use sluice_geoip::LookupCounts;

use crate::pipeline::{BatchOutput, Pipeline, Stage};
use crate::retry::Backoff;

pub struct Processor {
    consumer: Box<dyn QueueConsumer>,
    store: Arc<dyn EventStore>,
    dead_letters: Arc<dyn DeadLetterQueue>,
    pipeline: Option<Pipeline>,
    config: ProcessorConfig,
    health: Health,
}

/// The processor's checks on `/ready`.
const STORE: &str = "store";
const QUEUE: &str = "queue";
const DEAD_LETTERS: &str = "dead_letters";

/// The loop was told to stop.
struct Shutdown;

impl Processor {
    pub fn new(
        consumer: Box<dyn QueueConsumer>,
        store: Arc<dyn EventStore>,
        dead_letters: Arc<dyn DeadLetterQueue>,
        pipeline: Pipeline,
        config: ProcessorConfig,
        health: Health,
    ) -> Processor {
        Processor {
            consumer,
            store,
            dead_letters,
            pipeline: Some(pipeline),
            config,
            health,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
        )
    }

    /// Runs until `shutdown` is cancelled; the batch in flight is finished first. A backend that
    /// fails (the store, the queue, the dead-letter queue) is retried with back-off and reported
    /// on `/ready` until it works again; the queue position is held meanwhile.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let wait = Duration::from_millis(self.config.batch_max_wait_ms);
        let limit = BatchLimit {
            records: self.config.batch_max_records.max(1),
            bytes: self.config.batch_max_bytes.max(1),
        };
        info!(
            batch_max_records = limit.records,
            batch_max_bytes = limit.bytes,
            "processor started"
        );
        let mut read_backoff = self.backoff();
        loop {
            let batch = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = self.consumer.next_batch(limit, wait) => batch,
            };
            let batch = match batch {
                Ok(batch) => {
                    self.health.recovered(QUEUE);
                    read_backoff.reset();
                    batch
                }
                Err(e) => {
                    self.health
                        .failing(QUEUE, &format!("reading the queue: {e}"));
                    match sleep_or_shutdown(read_backoff.next_delay(), &shutdown).await {
                        Ok(()) => continue,
                        Err(Shutdown) => break,
                    }
                }
            };
            if batch.is_empty() {
                // Idle: still give a replaced GeoIP file its chance to load.
                self.transform(batch).await;
                continue;
            }
            if self.handle(batch, &shutdown).await.is_err() {
                break;
            }
        }
        info!("processor stopped; uncommitted records stay in the queue for the next start");
    }

    async fn handle(
        &mut self,
        batch: Vec<QueuedRecord>,
        shutdown: &CancellationToken,
    ) -> Result<(), Shutdown> {
        let started = Instant::now();
        let records = batch.len();
        let (batch, output) = self.transform(batch).await;
        let BatchOutput {
            documents,
            origins,
            mut dead_letters,
        } = output;
        let documents = Arc::new(documents);
        let report = self.write(&documents, shutdown).await?;
        dead_letters.extend(index_dead_letters(&batch, &documents, &origins, &report));
        self.dead_letter(dead_letters, shutdown).await?;
        self.commit(shutdown).await?;
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

    /// Runs the CPU-bound pipeline on a blocking thread so the async runtime stays responsive;
    /// the batch comes back with what it became.
    async fn transform(&mut self, batch: Vec<QueuedRecord>) -> (Vec<QueuedRecord>, BatchOutput) {
        let Some(mut pipeline) = self.pipeline.take() else {
            return (batch, BatchOutput::default());
        };
        let joined = tokio::task::spawn_blocking(move || {
            // Opening a database is file I/O: it belongs on this thread too.
            let reloaded = pipeline.geo_mut().reload_if_changed();
            let output = pipeline.process(&batch);
            let counts = pipeline.geo_mut().take_counts();
            (pipeline, batch, output, counts, reloaded)
        })
        .await;
        match joined {
            Ok((pipeline, batch, output, counts, reloaded)) => {
                self.pipeline = Some(pipeline);
                report_reload(reloaded);
                if counts != LookupCounts::default() {
                    emit(GeoIpLookups {
                        found: counts.found,
                        not_found: counts.not_found,
                        cached: counts.cached,
                    });
                }
                (batch, output)
            }
            Err(e) => {
                // Records that fail are caught one by one; a panic outside them (reloading
                // GeoIP) is a bug the processor cannot go on from.
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
    ) -> Result<IndexReport, Shutdown> {
        let mut outcome = IndexReport::default();
        if documents.is_empty() {
            return Ok(outcome);
        }
        let mut backoff = self.backoff();
        let mut pending = Arc::clone(documents);
        loop {
            let started = Instant::now();
            let failure = match self.store.index(Arc::clone(&pending)).await {
                Ok(report) => {
                    self.health.recovered(STORE);
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
                Err(e) => {
                    let failure = e.to_string();
                    self.health.failing(STORE, &failure);
                    failure
                }
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
    ) -> Result<(), Shutdown> {
        if letters.is_empty() {
            return Ok(());
        }
        report_dead_letters(&letters);
        let mut backoff = self.backoff();
        loop {
            match self.dead_letters.push(letters.clone()).await {
                Ok(()) => {
                    self.health.recovered(DEAD_LETTERS);
                    return Ok(());
                }
                Err(e) => {
                    self.health.failing(
                        DEAD_LETTERS,
                        &format!("cannot write dead letters, holding the queue position: {e}"),
                    );
                    sleep_or_shutdown(backoff.next_delay(), shutdown).await?;
                }
            }
        }
    }

    /// Moves the queue position past the batch, retrying until the queue takes it.
    async fn commit(&mut self, shutdown: &CancellationToken) -> Result<(), Shutdown> {
        let mut backoff = self.backoff();
        loop {
            match self.consumer.commit().await {
                Ok(()) => {
                    self.health.recovered(QUEUE);
                    return Ok(());
                }
                Err(e) => {
                    self.health
                        .failing(QUEUE, &format!("committing the queue position: {e}"));
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

async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> Result<(), Shutdown> {
    tokio::select! {
        _ = shutdown.cancelled() => Err(Shutdown),
        _ = tokio::time::sleep(delay) => Ok(()),
    }
}

/// Documents the store refused for good become dead letters, with the bytes of the records
/// they were made from, so they can be replayed once what made the store refuse is fixed.
fn index_dead_letters(
    batch: &[QueuedRecord],
    documents: &[StoreDocument],
    origins: &[usize],
    report: &IndexReport,
) -> Vec<DeadLetter> {
    let refused: Vec<_> = report.rejected.iter().filter(|r| !r.retryable).collect();
    if refused.is_empty() {
        return Vec::new();
    }
    let by_id: std::collections::HashMap<&str, usize> = documents
        .iter()
        .zip(origins)
        .map(|(document, origin)| (document.id.as_str(), *origin))
        .collect();
    refused
        .into_iter()
        .map(|rejected| {
            let record = by_id
                .get(rejected.id.as_str())
                .and_then(|&at| batch.get(at));
            DeadLetter {
                id: Some(rejected.id.clone()),
                failed_at_ms: sluice_event::now_ms(),
                received_at_ms: record.map_or(0, |r| r.received_at_ms),
                source: record.map_or(sluice_event::Source::Queue, |r| r.source),
                stage: Stage::Index.as_str().into(),
                code: RejectCode::StoreRefused,
                field: None,
                reason: rejected.reason.clone(),
                payload: record.map(|r| r.payload.clone()).unwrap_or_default(),
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
