//! The processor loop: batch in, documents out, commit. Owns the ordering guarantees:
//! the queue position moves only after the store made the batch durable (or the records were
//! dead-lettered), and a shutdown lets the batch in flight finish.
//!
//! Two stages overlap: while the store writes batch N (on its own task), the loop reads and
//! transforms batch N+1; then it waits for N and dead-letters what the store refused. Written
//! batches are committed together (see [`crate::uncommitted`]): the store commits, then the
//! queue commits a checkpoint that covers them all and nothing after them. At most one batch
//! is being written and one transformed; the written ones wait for their commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::ProcessorConfig;
use sluice_event::QueuedRecord;
use sluice_event::validate::RejectCode;
use sluice_queue::{BatchLimit, Checkpoint, DeadLetter, DeadLetterQueue, QueueConsumer};
use sluice_store::{EventStore, IndexReport, StoreDocument};
use sluice_telemetry::emit;
use sluice_telemetry::events::{
    BatchProcessed, EventsDeadLettered, GeoIpDatabase, GeoIpLookups, QueueBacklog, StoreCommitted,
    StoreWriteFailed, StoreWritten,
};
use sluice_telemetry::health::Health;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use sluice_geoip::LookupCounts;

use crate::pipeline::{BatchOutput, Pipeline, Stage};
use crate::retry::Backoff;
use crate::uncommitted::{CommitPolicy, Uncommitted};

pub struct Processor {
    consumer: Box<dyn QueueConsumer>,
    store: Arc<dyn EventStore>,
    dead_letters: Arc<dyn DeadLetterQueue>,
    pipeline: Option<Pipeline>,
    config: ProcessorConfig,
    health: Health,
    /// Back-off for the store as a whole, kept from its first failure to its next commit: a
    /// store that takes writes but cannot commit them is down, however often a write goes in.
    store_retry: Backoff,
}

/// The processor's checks on `/ready`.
const STORE: &str = "store";
const QUEUE: &str = "queue";
const DEAD_LETTERS: &str = "dead_letters";

/// The loop was told to stop.
struct Shutdown;

/// Why a store write did not go through.
enum WriteFailed {
    /// The store failed as a whole: what it had not committed may be lost.
    Store(String),
    Shutdown,
}

/// A batch whose documents the store is writing, with what finishing it needs.
struct InFlight {
    records: Vec<QueuedRecord>,
    checkpoint: Checkpoint,
    documents: Arc<Vec<StoreDocument>>,
    origins: Vec<usize>,
    dead_letters: Vec<DeadLetter>,
    started: Instant,
    write: JoinHandle<Result<IndexReport, WriteFailed>>,
}

impl Processor {
    pub fn new(
        consumer: Box<dyn QueueConsumer>,
        store: Arc<dyn EventStore>,
        dead_letters: Arc<dyn DeadLetterQueue>,
        mut pipeline: Pipeline,
        config: ProcessorConfig,
        health: Health,
    ) -> Processor {
        pipeline.set_validated_at_ingest(consumer.validated_at_ingest());
        Processor {
            store_retry: backoff(&config),
            consumer,
            store,
            dead_letters,
            pipeline: Some(pipeline),
            config,
            health,
        }
    }

    fn backoff(&self) -> Backoff {
        backoff(&self.config)
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
        let policy = CommitPolicy::of(&self.config);
        let mut in_flight: Option<InFlight> = None;
        let mut uncommitted = Uncommitted::default();
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
                // Idle: finish what is being written and commit it, and give a replaced GeoIP
                // file its chance to load.
                if let Some(previous) = in_flight.take()
                    && self
                        .finish(previous, &mut uncommitted, &shutdown)
                        .await
                        .is_err()
                {
                    break;
                }
                if self.commit(&mut uncommitted, &shutdown).await.is_err() {
                    break;
                }
                self.transform(batch.records).await;
                continue;
            }
            let started = Instant::now();
            let (records, output) = self.transform(batch.records).await;
            if let Some(previous) = in_flight.take() {
                if self
                    .finish(previous, &mut uncommitted, &shutdown)
                    .await
                    .is_err()
                {
                    break;
                }
                if uncommitted.is_due(policy)
                    && self.commit(&mut uncommitted, &shutdown).await.is_err()
                {
                    break;
                }
            }
            in_flight =
                Some(self.start_write(records, batch.checkpoint, output, started, &shutdown));
        }
        // Finished and committed unless the shutdown came while a backend was being retried.
        let finished = match in_flight.take() {
            Some(last) => self.finish(last, &mut uncommitted, &shutdown).await,
            None => Ok(()),
        };
        if finished.is_ok() {
            let _ = self.commit(&mut uncommitted, &shutdown).await;
        }
        info!("processor stopped; uncommitted records stay in the queue for the next start");
    }

    /// Hands the batch's documents to the store on a task of their own.
    fn start_write(
        &self,
        records: Vec<QueuedRecord>,
        checkpoint: Checkpoint,
        output: BatchOutput,
        started: Instant,
        shutdown: &CancellationToken,
    ) -> InFlight {
        let BatchOutput {
            documents,
            origins,
            dead_letters,
        } = output;
        let documents = Arc::new(documents);
        let write = tokio::spawn(write(
            Arc::clone(&self.store),
            self.backoff(),
            Arc::clone(&documents),
            shutdown.clone(),
        ));
        InFlight {
            records,
            checkpoint,
            documents,
            origins,
            dead_letters,
            started,
            write,
        }
    }

    /// Waits for the store to take the batch and keeps what it refused for good as dead letters;
    /// the batch then waits for the next commit. Should the store have failed, everything
    /// written since its last commit is written again first. A write that goes in does not end
    /// a store failure on `/ready`: only a commit does.
    async fn finish(
        &mut self,
        done: InFlight,
        uncommitted: &mut Uncommitted,
        shutdown: &CancellationToken,
    ) -> Result<(), Shutdown> {
        let InFlight {
            records,
            checkpoint,
            documents,
            origins,
            mut dead_letters,
            started,
            write,
        } = done;
        let written = match write.await {
            Ok(written) => written,
            Err(e) if e.is_panic() => {
                error!(error = %e, "the store write panicked");
                std::panic::resume_unwind(e.into_panic());
            }
            // The runtime is going away.
            Err(_) => return Err(Shutdown),
        };
        let report = match written {
            Ok(report) => report,
            Err(WriteFailed::Store(failure)) => {
                self.write_again(uncommitted, Some(&documents), failure, shutdown)
                    .await?
            }
            Err(WriteFailed::Shutdown) => return Err(Shutdown),
        };
        dead_letters.extend(index_dead_letters(&records, &documents, &origins, &report));
        self.dead_letter(dead_letters, shutdown).await?;
        uncommitted.add(&checkpoint, documents);
        emit(BatchProcessed {
            records: records.len(),
            indexed: report.indexed,
            duration: started.elapsed(),
        });
        Ok(())
    }

    /// Makes everything written since the last commit durable in the store, then moves the
    /// queue position past it. A failed commit lost those batches: they are written again and
    /// committed again, with back-off, until the store takes them.
    async fn commit(
        &mut self,
        uncommitted: &mut Uncommitted,
        shutdown: &CancellationToken,
    ) -> Result<(), Shutdown> {
        let Some(checkpoint) = uncommitted.checkpoint().cloned() else {
            return Ok(());
        };
        let started = Instant::now();
        while let Err(e) = self.store.commit().await {
            self.write_again(uncommitted, None, e.to_string(), shutdown)
                .await?;
        }
        self.health.recovered(STORE);
        self.store_retry.reset();
        emit(StoreCommitted {
            documents: uncommitted.documents(),
            duration: started.elapsed(),
        });
        self.commit_queue(&checkpoint, shutdown).await?;
        uncommitted.clear();
        let backlog = self.consumer.backlog();
        emit(QueueBacklog {
            records: backlog.records,
            bytes: backlog.bytes,
        });
        Ok(())
    }

    /// After `failure`, writes again every batch written since the last commit, then `current`
    /// (the batch whose write failed, if that is what happened), with back-off, until the store
    /// takes them all; `/ready` shows the failure meanwhile, until the next commit. Returns
    /// `current`'s report (the reports of the others were dealt with when they were first
    /// written). The back-off goes on from where the last failure left it.
    async fn write_again(
        &mut self,
        uncommitted: &Uncommitted,
        current: Option<&Arc<Vec<StoreDocument>>>,
        mut failure: String,
        shutdown: &CancellationToken,
    ) -> Result<IndexReport, Shutdown> {
        loop {
            self.health.failing(STORE, &failure);
            let retry_in = self.store_retry.next_delay();
            emit(StoreWriteFailed {
                error: &failure,
                attempt: self.store_retry.attempt(),
                retry_in,
            });
            sleep_or_shutdown(retry_in, shutdown).await?;
            let rewritten = async {
                for documents in uncommitted.batches() {
                    self.write_once_more(documents, shutdown).await?;
                }
                match current {
                    Some(documents) => self.write_once_more(documents, shutdown).await,
                    None => Ok(IndexReport::default()),
                }
            };
            match rewritten.await {
                Ok(report) => return Ok(report),
                Err(WriteFailed::Store(again)) => failure = again,
                Err(WriteFailed::Shutdown) => return Err(Shutdown),
            }
        }
    }

    /// One batch of [`Processor::write_again`], with [`write`]'s retries of what the store
    /// refuses for now.
    async fn write_once_more(
        &self,
        documents: &Arc<Vec<StoreDocument>>,
        shutdown: &CancellationToken,
    ) -> Result<IndexReport, WriteFailed> {
        write(
            Arc::clone(&self.store),
            self.backoff(),
            Arc::clone(documents),
            shutdown.clone(),
        )
        .await
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

    /// Moves the queue position through `checkpoint`, retrying until the queue takes it.
    async fn commit_queue(
        &mut self,
        checkpoint: &Checkpoint,
        shutdown: &CancellationToken,
    ) -> Result<(), Shutdown> {
        let mut backoff = self.backoff();
        loop {
            match self.consumer.commit(checkpoint).await {
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

/// Writes until every document is taken or refused for good. What the store refused for now
/// (overload, a shard moving) is sent again on its own after a back-off, not with the whole
/// batch. A failure of the store as a whole is the caller's to handle: what the store had not
/// committed may be lost with it.
async fn write(
    store: Arc<dyn EventStore>,
    mut backoff: Backoff,
    documents: Arc<Vec<StoreDocument>>,
    shutdown: CancellationToken,
) -> Result<IndexReport, WriteFailed> {
    let mut outcome = IndexReport::default();
    if documents.is_empty() {
        return Ok(outcome);
    }
    let mut pending = documents;
    loop {
        let started = Instant::now();
        let report = store
            .write(Arc::clone(&pending))
            .await
            .map_err(|e| WriteFailed::Store(e.to_string()))?;
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
        let retry_in = backoff.next_delay();
        emit(StoreWriteFailed {
            error: &failure,
            attempt: backoff.attempt(),
            retry_in,
        });
        sleep_or_shutdown(retry_in, &shutdown)
            .await
            .map_err(|Shutdown| WriteFailed::Shutdown)?;
    }
}

fn backoff(config: &ProcessorConfig) -> Backoff {
    Backoff::new(
        Duration::from_millis(config.retry_initial_ms),
        Duration::from_millis(config.retry_max_ms),
    )
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
                letter_id: String::new(),
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
