//! The embedded store's write path on its own: documents the processor built (generated
//! events through the real pipeline) written to a fresh tantivy index in the processor's
//! batches and committed as it commits them, as `sluice serve` writes them. What it measures is the stage
//! every event waits on at full load: indexing, the commit's segment serialisation, the
//! document store's compression, and the merges that run beside it.
//!
//! `cargo bench -p sluice-benches --bench store_write`. Throughput is per document; the wall
//! time includes merges on the second core. `perf stat -e task-clock` around it gives the CPU.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_config::{ProcessorConfig, StoreConfig};
use sluice_event::validate::Limits;
use sluice_fraud::{FraudConfig, FraudEngine};
use sluice_geoip::GeoResolver;
use sluice_geoip::testing::write_sample_city;
use sluice_processor::Pipeline;
use sluice_store::{EventStore, StoreDocument};
use sluice_store_tantivy::TantivyStore;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The processor's default batch (`processor.batch_max_records`).
const BATCH: usize = 20_000;
const BATCHES: usize = 5;

/// The processor's default commit (`processor.commit_max_records`).
fn commit_max_records() -> usize {
    ProcessorConfig::default().commit_max_records
}

/// The default indexing buffer (`store.writer_memory_mb`), in bytes.
fn writer_memory() -> usize {
    StoreConfig::default().writer_memory_mb * 1024 * 1024
}

fn documents() -> Vec<Arc<Vec<StoreDocument>>> {
    let records = support::records(BATCH * BATCHES);
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("bench-city.mmdb");
    write_sample_city(&database).expect("bench database");
    let mut pipeline = Pipeline::new(
        Limits::default(),
        GeoResolver::open(Some(database), 100_000).expect("geo"),
        FraudEngine::new(FraudConfig::default()),
    );
    records
        .chunks(BATCH)
        .map(|batch| {
            let output = pipeline.process(batch);
            assert!(output.dead_letters.is_empty(), "generated events are valid");
            Arc::new(output.documents)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let batches = documents();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("store_write");
    group.throughput(Throughput::Elements((BATCH * BATCHES) as u64));
    group.sample_size(10);
    // As the processor writes: batch by batch, committing every `processor.commit_max_records` documents
    // and at the end.
    let commit_every = commit_max_records();
    let write_all = |store: &TantivyStore| {
        runtime.block_on(async {
            let mut uncommitted = 0;
            for batch in &batches {
                black_box(store.write(Arc::clone(batch)).await.expect("written"));
                uncommitted += batch.len();
                if uncommitted >= commit_every {
                    store.commit().await.expect("committed");
                    uncommitted = 0;
                }
            }
            if uncommitted > 0 {
                store.commit().await.expect("committed");
            }
        });
    };
    group.bench_function("tantivy_100k_in_batches_of_20k", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = TantivyStore::open(dir.path(), writer_memory()).expect("opens");
                (dir, store)
            },
            |(dir, store)| {
                write_all(&store);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    // The same, timed in CPU seconds of every thread of the process: what the write costs the
    // machine, which on two shared cores is steadier than the wall clock and is what the other
    // stages of the pipeline compete for.
    group.bench_function("tantivy_100k_in_batches_of_20k_cpu_time", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = TantivyStore::open(dir.path(), writer_memory()).expect("opens");
                let before = process_cpu_time();
                write_all(&store);
                spent += process_cpu_time().saturating_sub(before);
                drop(store);
            }
            spent
        });
    });
    group.finish();
}

/// User and system time of this process so far (Linux: `/proc/self/stat`, in the kernel's
/// USER_HZ of 100 a second).
fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = stat.rsplit_once(')').expect("stat has a name").1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |at: usize| fields[at].parse::<u64>().expect("tick count");
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

criterion_group!(benches, bench);
criterion_main!(benches);
