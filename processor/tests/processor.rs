//! The processor loop against the real embedded queue and store: what is committed, when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sluice_config::ProcessorConfig;
use sluice_event::validate::Limits;
use sluice_event::{QueuedRecord, Source};
use sluice_fraud::{FraudConfig, FraudEngine};
use sluice_geoip::GeoResolver;
use sluice_processor::{Pipeline, Processor};
use sluice_queue::{DeadLetterQueue, Queue};
use sluice_queue_wal::{WalConfig, WalQueue};
use sluice_store::{
    AggregationResults, Aggregations, EventStore, IndexReport, RejectedDocument, SearchQuery,
    SearchResults, StoreDocument, StoreError, StoreUsage,
};
use sluice_store_tantivy::TantivyStore;
use sluice_telemetry::health::Health;
use tokio_util::sync::CancellationToken;

/// The real tantivy store, with its writes going through a fault of the test's choosing.
struct Faulty<F> {
    store: TantivyStore,
    fault: F,
}

/// How a [`Faulty`] store writes. A write that waits for the commit goes as a durable one
/// unless the fault says otherwise.
#[async_trait]
trait WriteFault: Send + Sync {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError>;

    async fn write(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        self.index(store, documents).await
    }

    async fn commit(&self, store: &TantivyStore) -> Result<(), StoreError> {
        store.commit().await
    }
}

impl<F> Faulty<F> {
    fn new(dir: &std::path::Path, fault: F) -> Faulty<F> {
        Faulty {
            store: TantivyStore::open(&dir.join("index"), 20_000_000).expect("store"),
            fault,
        }
    }
}

#[async_trait]
impl<F: WriteFault> EventStore for Faulty<F> {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        self.fault.index(&self.store, documents).await
    }

    async fn write(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        self.fault.write(&self.store, documents).await
    }

    async fn commit(&self) -> Result<(), StoreError> {
        self.fault.commit(&self.store).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        self.store.search(query).await
    }

    async fn aggregate(
        &self,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        self.store.aggregate(query, request).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.store.ready().await
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        self.store.usage().await
    }

    async fn drop_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.store.drop_before(cutoff_ms).await
    }
}

/// Writes fail the first `failures_left` times, as a store that is down does.
struct Outage {
    failures_left: AtomicUsize,
    attempts: AtomicUsize,
}

#[async_trait]
impl WriteFault for Outage {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Write("connection refused".into()));
        }
        store.index(documents).await
    }
}

/// Writes wait for the commit; the first `failing_writes` writes and then the first
/// `failures_left` commits fail and lose every write since the last commit, as the embedded
/// store's writer does when the disk fills.
struct LosingCommits {
    failing_writes: AtomicUsize,
    failures_left: AtomicUsize,
    /// Documents written but not committed.
    pending: std::sync::Mutex<Vec<StoreDocument>>,
    lost: AtomicUsize,
}

impl LosingCommits {
    fn new(failing_writes: usize, failing_commits: usize) -> LosingCommits {
        LosingCommits {
            failing_writes: AtomicUsize::new(failing_writes),
            failures_left: AtomicUsize::new(failing_commits),
            pending: std::sync::Mutex::new(Vec::new()),
            lost: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl WriteFault for LosingCommits {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        store.index(documents).await
    }

    async fn write(
        &self,
        _store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        let mut pending = self.pending.lock().expect("lock");
        if !pending.is_empty()
            && self
                .failing_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.lost.fetch_add(pending.len(), Ordering::SeqCst);
            pending.clear();
            return Err(StoreError::Write(
                "adding documents: No space left on device".into(),
            ));
        }
        pending.extend(documents.iter().cloned());
        Ok(IndexReport {
            indexed: documents.len(),
            rejected: Vec::new(),
        })
    }

    async fn commit(&self, store: &TantivyStore) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("lock"));
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.lost.fetch_add(pending.len(), Ordering::SeqCst);
            return Err(StoreError::Write("commit: No space left on device".into()));
        }
        store.index(Arc::new(pending)).await.map(drop)
    }
}

/// Every other document of the first write is refused for now, as an overloaded
/// Elasticsearch answers 429 for some items of a bulk request.
struct PartlyOverloaded {
    writes: std::sync::Mutex<Vec<usize>>,
}

#[async_trait]
impl WriteFault for PartlyOverloaded {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        let first = {
            let mut writes = self.writes.lock().expect("lock");
            writes.push(documents.len());
            writes.len() == 1
        };
        if !first {
            return store.index(documents).await;
        }
        refuse_some(
            store,
            &documents,
            |i, _| i % 2 == 1,
            "es_rejected_execution_exception",
            true,
        )
        .await
    }
}

/// The documents whose id is listed are refused for good, as Elasticsearch refuses a document
/// whose field conflicts with the index mapping.
struct Refusing {
    refused: Vec<String>,
}

#[async_trait]
impl WriteFault for Refusing {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        let reason = "mapper_parsing_exception: failed to parse field [amount]";
        refuse_some(
            store,
            &documents,
            |_, d| self.refused.contains(&d.id),
            reason,
            false,
        )
        .await
    }
}

/// Writes the documents `refuse` lets through, and reports the others refused for `reason`.
async fn refuse_some(
    store: &TantivyStore,
    documents: &[StoreDocument],
    refuse: impl Fn(usize, &StoreDocument) -> bool,
    reason: &str,
    retryable: bool,
) -> Result<IndexReport, StoreError> {
    let (refused, taken): (Vec<_>, Vec<_>) = documents
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, d)| refuse(*i, d));
    let mut report = store
        .index(Arc::new(taken.into_iter().map(|(_, d)| d).collect()))
        .await?;
    report.rejected = refused
        .into_iter()
        .map(|(_, d)| RejectedDocument {
            id: d.id,
            reason: reason.into(),
            retryable,
        })
        .collect();
    Ok(report)
}

fn record(n: usize) -> QueuedRecord {
    QueuedRecord {
        id: Some(format!("evt-{n}")),
        received_at_ms: sluice_event::now_ms(),
        source: Source::Http,
        partition_key: None,
        payload: format!(
            r#"{{"log_type":"error","error_message":"disk full on node {n}","service":"db"}}"#
        )
        .into_bytes(),
    }
}

fn config() -> ProcessorConfig {
    ProcessorConfig {
        batch_max_records: 100,
        batch_max_bytes: 1 << 20,
        batch_max_wait_ms: 20,
        retry_initial_ms: 10,
        retry_max_ms: 50,
        // Several batches to a commit.
        commit_interval_ms: 200,
        commit_max_records: 250,
    }
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 5 s");
}

/// The embedded queue, in `dir`.
async fn wal_in(dir: &std::path::Path) -> WalQueue {
    WalQueue::open(&dir.join("queue"), WalConfig::default())
        .await
        .expect("wal")
}

/// Runs a processor over `wal` into `store`, as `serve` does.
async fn start(
    wal: &WalQueue,
    store: Arc<dyn EventStore>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    start_with(wal, store, Health::default()).await
}

async fn start_with(
    wal: &WalQueue,
    store: Arc<dyn EventStore>,
    health: Health,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let pipeline = Pipeline::new(
        Limits::default(),
        GeoResolver::without_database(),
        FraudEngine::new(FraudConfig::default()),
    );
    let processor = Processor::new(
        Box::new(wal.consumer().await),
        store,
        Arc::new(wal.clone()),
        pipeline,
        config(),
        health,
    );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(processor.run(shutdown.clone()));
    (shutdown, running)
}

fn all() -> SearchQuery {
    SearchQuery {
        size: 1000,
        ..SearchQuery::default()
    }
}

#[tokio::test]
async fn store_outage_holds_the_queue_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(
        dir.path(),
        Outage {
            failures_left: AtomicUsize::new(3),
            attempts: AtomicUsize::new(0),
        },
    ));
    let health = Health::default();
    let (shutdown, running) = start_with(&wal, store.clone(), health.clone()).await;

    wal.append((0..50).map(record).collect())
        .await
        .expect("append");
    wait_for(async || store.fault.attempts.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(
        wal.backlog().records,
        50,
        "nothing is committed while the store is down"
    );
    let failing = health.failures();
    assert_eq!(
        failing.len(),
        1,
        "the store is reported failing: {failing:?}"
    );
    assert_eq!(failing[0].0, "store");
    assert!(
        failing[0].1.reason.contains("connection refused"),
        "{failing:?}"
    );

    wait_for(async || store.search(&all()).await.expect("search").total == 50).await;
    wait_for(async || wal.backlog().records == 0).await;
    assert!(store.fault.attempts.load(Ordering::SeqCst) >= 4);
    assert!(health.failures().is_empty(), "and recovered");

    shutdown.cancel();
    running.await.expect("clean stop");
}

/// Batches are committed together; a write or a commit that fails loses every batch written
/// since the last commit, and those are written again before the queue moves past them: all
/// indexed, once.
#[tokio::test]
async fn a_failed_commit_writes_again_everything_since_the_last_one() {
    lost_batches_are_written_again(0, 2).await;
}

#[tokio::test]
async fn a_failed_write_writes_again_everything_since_the_last_commit() {
    lost_batches_are_written_again(2, 0).await;
}

async fn lost_batches_are_written_again(failing_writes: usize, failing_commits: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(
        dir.path(),
        LosingCommits::new(failing_writes, failing_commits),
    ));
    let health = Health::default();
    wal.append((0..600).map(record).collect())
        .await
        .expect("append");
    let (shutdown, running) = start_with(&wal, store.clone(), health.clone()).await;

    wait_for(async || wal.backlog().records == 0).await;
    let lost = store.fault.lost.load(Ordering::SeqCst);
    assert!(lost >= 200, "writes of several batches were lost: {lost}");
    let hits = store.search(&all()).await.expect("search");
    assert_eq!(hits.total, 600, "every lost batch was written again");
    let ids: std::collections::BTreeSet<&str> = hits.hits.iter().map(|hit| hit.id()).collect();
    assert_eq!(ids.len(), 600, "and once");
    assert_eq!(wal.newest(10).await.expect("dead letters").total, 0);
    assert!(health.failures().is_empty(), "recovered");

    shutdown.cancel();
    running.await.expect("clean stop");
}

/// Regression: with every write going in and every commit failing (the embedded store on a
/// disk that fails), each rewrite ended the failure on `/ready` and started the back-off over,
/// so the store flapped between failing and ready, always at its first attempt.
#[tokio::test]
async fn a_store_that_takes_writes_but_cannot_commit_is_failing_until_it_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(dir.path(), LosingCommits::new(0, usize::MAX)));
    let health = Health::default();
    wal.append((0..300).map(record).collect())
        .await
        .expect("append");
    let (shutdown, running) = start_with(&wal, store.clone(), health.clone()).await;

    let mut since = None;
    for _ in 0..200 {
        let failing = health.failures();
        if let Some((_, failure)) = failing.iter().find(|(check, _)| *check == "store") {
            since.get_or_insert(failure.since_ms);
            assert_eq!(
                Some(failure.since_ms),
                since,
                "one failure from the first failed commit on: {failing:?}"
            );
            if failure.attempts >= 4 {
                break;
            }
        } else {
            assert!(since.is_none(), "the store stopped failing before a commit");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let failing = health.failures();
    assert!(
        failing
            .iter()
            .any(|(check, failure)| *check == "store" && failure.attempts >= 4),
        "attempts count up while commits fail: {failing:?}"
    );
    assert_eq!(wal.backlog().records, 300, "nothing committed");

    store.fault.failures_left.store(0, Ordering::SeqCst);
    wait_for(async || wal.backlog().records == 0).await;
    assert_eq!(store.search(&all()).await.expect("search").total, 300);
    assert!(health.failures().is_empty(), "recovered by the commit");

    shutdown.cancel();
    running.await.expect("clean stop");
}

#[tokio::test]
async fn documents_refused_for_now_are_sent_again_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(
        dir.path(),
        PartlyOverloaded {
            writes: std::sync::Mutex::new(Vec::new()),
        },
    ));
    wal.append((0..40).map(record).collect())
        .await
        .expect("append");
    let (shutdown, running) = start(&wal, store.clone()).await;

    wait_for(async || wal.backlog().records == 0).await;
    assert_eq!(store.search(&all()).await.expect("search").total, 40);
    assert_eq!(
        *store.fault.writes.lock().expect("lock"),
        [40, 20],
        "the retry carries only the refused half"
    );
    assert_eq!(wal.newest(10).await.expect("dead letters").total, 0);

    shutdown.cancel();
    running.await.expect("clean stop");
}

#[tokio::test]
async fn malformed_queue_records_are_dead_lettered_and_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("store"));
    let (shutdown, running) = start(&wal, store.clone()).await;

    let mut broken = record(99);
    broken.payload = b"{\"log_type\":\"error\",".to_vec();
    wal.append(vec![record(1), broken.clone()])
        .await
        .expect("append");
    wait_for(async || wal.backlog().records == 0).await;
    assert_eq!(store.search(&all()).await.expect("search").total, 1);
    let letters = wal.newest(10).await.expect("dead letters");
    assert_eq!(letters.total, 1);
    assert_eq!(letters.letters[0].payload, broken.payload);
    assert_eq!(letters.letters[0].id.as_deref(), Some("evt-99"));

    shutdown.cancel();
    running.await.expect("clean stop");
}

/// A document the store refuses becomes a dead letter of stage `index` holding the record as it
/// was queued (what a replay needs), and the rest of its batch is indexed and committed.
#[tokio::test]
async fn a_document_the_store_refuses_is_dead_lettered_alone_with_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(
        dir.path(),
        Refusing {
            refused: vec!["evt-3".into()],
        },
    ));
    let (shutdown, running) = start(&wal, store.clone()).await;
    wal.append((0..6).map(record).collect())
        .await
        .expect("append");
    wait_for(async || wal.backlog().records == 0).await;
    assert_eq!(store.search(&all()).await.expect("search").total, 5);
    let letters = wal.newest(10).await.expect("dead letters");
    assert_eq!(letters.total, 1);
    let letter = &letters.letters[0];
    assert_eq!(letter.stage, "index");
    assert_eq!(letter.code.as_str(), "store_refused");
    assert_eq!(letter.id.as_deref(), Some("evt-3"));
    assert_eq!(
        letter.payload,
        record(3).payload,
        "the queued record, not the document"
    );
    assert!(
        letter.reason.contains("mapper_parsing_exception"),
        "{}",
        letter.reason
    );
    shutdown.cancel();
    running.await.expect("clean stop");
}

/// The record that stopped the pipeline for everyone (issue 13): a lone surrogate escape, which
/// simd-json reads and serde_json refuses. It is indexed with U+FFFD, and what follows flows.
#[tokio::test]
async fn a_lone_surrogate_does_not_stop_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("store"));
    let (shutdown, running) = start(&wal, store.clone()).await;
    let mut poison = record(1);
    poison.payload = br#"{"log_type":"error","error_message":"x","n":"\ud800"}"#.to_vec();
    wal.append(vec![poison, record(2)]).await.expect("append");
    wait_for(async || wal.backlog().records == 0).await;
    let hits = store.search(&all()).await.expect("search");
    assert_eq!(hits.total, 2);
    let repaired = hits
        .hits
        .iter()
        .map(|hit| serde_json::from_slice::<serde_json::Value>(&hit.source).expect("JSON"))
        .find(|doc| doc["error_message"] == "x")
        .expect("the repaired record is indexed");
    assert_eq!(repaired["n"], "\u{fffd}");
    assert_eq!(wal.newest(10).await.expect("dead letters").total, 0);
    shutdown.cancel();
    running.await.expect("clean stop");
}

/// The first write waits until the test opens the gate; every write's ids are recorded.
struct Gated {
    open: tokio::sync::Semaphore,
    writes: std::sync::Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl WriteFault for Gated {
    async fn index(
        &self,
        store: &TantivyStore,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        let first = {
            let mut writes = self.writes.lock().expect("lock");
            writes.push(documents.iter().map(|d| d.id.clone()).collect());
            writes.len() == 1
        };
        if first {
            let _permit = self.open.acquire().await.expect("gate");
        }
        store.index(documents).await
    }
}

/// The processor reads and transforms the next batch while the store writes one, but writes
/// one batch at a time, in order, and commits a batch only once its own write is acknowledged.
#[tokio::test]
async fn batches_are_written_one_at_a_time_in_order_and_committed_after_their_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = wal_in(dir.path()).await;
    let store = Arc::new(Faulty::new(
        dir.path(),
        Gated {
            open: tokio::sync::Semaphore::new(0),
            writes: std::sync::Mutex::new(Vec::new()),
        },
    ));
    let (shutdown, running) = start(&wal, store.clone()).await;
    let writes = || store.fault.writes.lock().expect("lock").clone();

    wal.append((0..100).map(record).collect())
        .await
        .expect("append");
    wait_for(async || writes().len() == 1).await;
    wal.append((100..200).map(record).collect())
        .await
        .expect("append");
    // Long enough for the next batch to be read and transformed many times over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(writes().len(), 1, "no second write while the first is held");
    assert_eq!(
        wal.backlog().records,
        200,
        "nothing is committed before its write is acknowledged"
    );

    store.fault.open.add_permits(1);
    wait_for(async || store.search(&all()).await.expect("search").total == 200).await;
    wait_for(async || wal.backlog().records == 0).await;
    let ids: Vec<String> = writes().concat();
    let expected: Vec<String> = (0..200).map(|n| format!("evt-{n}")).collect();
    assert_eq!(ids, expected, "each record written once, in queue order");

    shutdown.cancel();
    running.await.expect("clean stop");
}
