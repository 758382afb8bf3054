//! The processor loop against the real embedded queue and store: what is committed, when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sluice_common::config::ProcessorConfig;
use sluice_common::event::{QueuedRecord, Source};
use sluice_common::fraud::{FraudConfig, FraudEngine};
use sluice_common::queue::wal::{WalConfig, WalQueue};
use sluice_common::queue::{DeadLetterQueue, Queue};
use sluice_common::store::tantivy::TantivyStore;
use sluice_common::store::{
    AggregationResults, Aggregations, EventStore, IndexReport, RejectedDocument, SearchQuery,
    SearchResults, StoreDocument, StoreError,
};
use sluice_common::validate::Limits;
use sluice_geoip::GeoResolver;
use sluice_processor::{Pipeline, Processor};
use tokio_util::sync::CancellationToken;

/// The real tantivy store behind a switch that makes writes fail, as a store that is down does.
struct Outage {
    store: TantivyStore,
    failures_left: AtomicUsize,
    attempts: AtomicUsize,
}

#[async_trait]
impl EventStore for Outage {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Write("connection refused".into()));
        }
        self.store.index(documents).await
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
}

/// The real tantivy store refusing every other document of its first write for now, as an
/// overloaded Elasticsearch answers 429 for some items of a bulk request.
struct PartlyOverloaded {
    store: TantivyStore,
    writes: std::sync::Mutex<Vec<usize>>,
}

#[async_trait]
impl EventStore for PartlyOverloaded {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        let first = {
            let mut writes = self.writes.lock().expect("lock");
            writes.push(documents.len());
            writes.len() == 1
        };
        if !first {
            return self.store.index(documents).await;
        }
        let (refused, taken): (Vec<_>, Vec<_>) = documents
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 1);
        let mut report = self
            .store
            .index(Arc::new(taken.into_iter().map(|(_, d)| d).collect()))
            .await?;
        report.rejected = refused
            .into_iter()
            .map(|(_, d)| RejectedDocument {
                id: d.id,
                reason: "es_rejected_execution_exception".into(),
                retryable: true,
            })
            .collect();
        Ok(report)
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
}

fn record(n: usize) -> QueuedRecord {
    QueuedRecord {
        id: Some(format!("evt-{n}")),
        received_at_ms: sluice_common::now_ms(),
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
        batch_max_wait_ms: 20,
        retry_initial_ms: 10,
        retry_max_ms: 50,
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

/// Runs a processor over `wal` into `store`, as `serve` does.
async fn start(
    wal: &WalQueue,
    store: Arc<dyn EventStore>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), sluice_common::queue::QueueError>>,
) {
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
    let wal = WalQueue::open(&dir.path().join("queue"), WalConfig::default())
        .await
        .expect("wal");
    let store = Arc::new(Outage {
        store: TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("store"),
        failures_left: AtomicUsize::new(3),
        attempts: AtomicUsize::new(0),
    });
    let (shutdown, running) = start(&wal, store.clone()).await;

    wal.append((0..50).map(record).collect())
        .await
        .expect("append");
    wait_for(async || store.attempts.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(
        wal.backlog().records,
        50,
        "nothing is committed while the store is down"
    );

    wait_for(async || store.search(&all()).await.expect("search").total == 50).await;
    wait_for(async || wal.backlog().records == 0).await;
    assert!(store.attempts.load(Ordering::SeqCst) >= 4);

    shutdown.cancel();
    running.await.expect("joins").expect("clean stop");
}

#[tokio::test]
async fn documents_refused_for_now_are_sent_again_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = WalQueue::open(&dir.path().join("queue"), WalConfig::default())
        .await
        .expect("wal");
    let store = Arc::new(PartlyOverloaded {
        store: TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("store"),
        writes: std::sync::Mutex::new(Vec::new()),
    });
    wal.append((0..40).map(record).collect())
        .await
        .expect("append");
    let (shutdown, running) = start(&wal, store.clone()).await;

    wait_for(async || wal.backlog().records == 0).await;
    assert_eq!(store.search(&all()).await.expect("search").total, 40);
    assert_eq!(
        *store.writes.lock().expect("lock"),
        [40, 20],
        "the retry carries only the refused half"
    );
    assert_eq!(wal.newest(10).await.expect("dead letters").total, 0);

    shutdown.cancel();
    running.await.expect("joins").expect("clean stop");
}

#[tokio::test]
async fn malformed_queue_records_are_dead_lettered_and_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = WalQueue::open(&dir.path().join("queue"), WalConfig::default())
        .await
        .expect("wal");
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
    running.await.expect("joins").expect("clean stop");
}
