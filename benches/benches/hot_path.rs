//! The processor's hot path, piece by piece and whole, with no I/O:
//! parse + validate, GeoIP lookup, fraud scoring, and record → document, for a record that
//! reached the queue another way (validated here) and for one from the WAL (validated at ingest).
//!
//! `cargo bench -p sluice-benches --bench hot_path`. Set `SLUICE_BENCH_GEOIP=path.mmdb` to
//! measure lookups against a real City database instead of the small generated one; a relative
//! path is read from the workspace root (`cargo bench` runs benchmarks in `benches/`).

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_event::QueuedRecord;
use sluice_event::validate::{Buffers, Limits, parse_record_with, validate};
use sluice_fraud::{Activity, FraudConfig, FraudEngine, FraudInput, GeoFacts};
use sluice_geoip::testing::write_sample_city;
use sluice_geoip::{GeoResolver, Lookup};
use sluice_processor::Pipeline;

/// The allocator the `sluice` binary uses, so these numbers are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use support::{END_MS, records};

const EVENTS: usize = 10_000;

fn geoip_database(dir: &tempfile::TempDir) -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICE_BENCH_GEOIP") {
        let path = PathBuf::from(path);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = if path.is_relative() {
            root.join(path)
        } else {
            path
        };
        assert!(
            path.is_file(),
            "SLUICE_BENCH_GEOIP: no file at {} (fetch one with scripts/fetch-geoip.sh)",
            path.display()
        );
        return path;
    }
    let path = dir.path().join("bench-city.mmdb");
    write_sample_city(&path).expect("bench database");
    path
}

fn ips(records: &[QueuedRecord]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| {
            let value: serde_json::Value = serde_json::from_slice(&r.payload).ok()?;
            value.get("ip")?.as_str()?.parse().ok()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records = records(EVENTS);
    let dir = tempfile::tempdir().expect("tempdir");
    let database = geoip_database(&dir);
    let limits = Limits::default();

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(20);

    group.bench_function("parse_validate", |b| {
        let mut scratch = Vec::new();
        let mut buffers = Buffers::default();
        b.iter(|| {
            for record in &records {
                let parsed =
                    parse_record_with(&record.payload, &mut scratch, &limits, &mut buffers)
                        .expect("parses");
                black_box(validate(parsed.tape.as_value(), END_MS, &limits).expect("valid"));
            }
        });
    });

    let addresses = ips(&records);
    group.throughput(Throughput::Elements(addresses.len() as u64));
    group.bench_function("geoip_lookup_uncached", |b| {
        let mut geo = GeoResolver::open(Some(database.clone()), 1).expect("geo");
        b.iter(|| {
            for ip in &addresses {
                black_box(geo.lookup(*ip));
            }
        });
    });
    group.bench_function("geoip_lookup_cached", |b| {
        let mut geo = GeoResolver::open(Some(database.clone()), 100_000).expect("geo");
        b.iter(|| {
            for ip in &addresses {
                black_box(matches!(geo.lookup(*ip), Lookup::Found(_)));
            }
        });
    });

    let inputs: Vec<(String, IpAddr, f64, i64)> = addresses
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            (
                format!("user-{}", i % 500),
                *ip,
                20.0 + (i % 97) as f64,
                END_MS + i as i64 * 1000,
            )
        })
        .collect();
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("fraud_score", |b| {
        b.iter_batched(
            || FraudEngine::new(FraudConfig::default()),
            |mut engine| {
                for (user, ip, amount, at) in &inputs {
                    black_box(engine.assess(&FraudInput {
                        user_id: Some(user),
                        ip: Some(*ip),
                        event_time_ms: *at,
                        activity: Activity::Transaction {
                            amount: *amount,
                            failed: false,
                        },
                        declared_country: Some("US"),
                        geo: GeoFacts::Found {
                            country_iso: Some("US"),
                            coordinates: Some((40.7, -74.0)),
                            anonymous: false,
                        },
                    }));
                }
            },
            BatchSize::LargeInput,
        );
    });

    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("record_to_document", |b| {
        b.iter_batched(
            || {
                Pipeline::new(
                    limits,
                    GeoResolver::open(Some(database.clone()), 100_000).expect("geo"),
                    FraudEngine::new(FraudConfig::default()),
                )
            },
            |mut pipeline| black_box(pipeline.process(&records)),
            BatchSize::LargeInput,
        );
    });
    // The same records as the WAL delivers them: ingest validated them before it queued them,
    // so the processor reads them without validating them again.
    group.bench_function("wal_record_to_document", |b| {
        b.iter_batched(
            || {
                let mut pipeline = Pipeline::new(
                    limits,
                    GeoResolver::open(Some(database.clone()), 100_000).expect("geo"),
                    FraudEngine::new(FraudConfig::default()),
                );
                pipeline.set_validated_at_ingest(true);
                pipeline
            },
            |mut pipeline| black_box(pipeline.process(&records)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
