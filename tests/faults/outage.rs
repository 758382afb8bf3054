//! The store cut off for a minute while producers keep sending: the queue absorbs the backlog,
//! ingest keeps acknowledging, `/ready` says the store is failing and why, and once the store
//! is back everything acknowledged is indexed once, without a restart. Elasticsearch is cut off
//! by a relay that drops its connections; tantivy by the disk under its index failing every
//! write (reads go on), which is what an embedded store's outage is.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::crashfs::CrashDisk;
use super::load::{self, Shape, Tally};
use super::{assert_exactly_once, drained};
use crate::support::Server;
use crate::support::outage::Relay;

const OUTAGE: Duration = Duration::from_secs(60);

fn shape() -> Shape {
    // About 1,000 events a second for a minute and a half.
    Shape {
        producers: 2,
        batches: 180,
        batch: 250,
        pause: Duration::from_millis(500),
        filler: 100,
    }
}

/// Holds the outage for a minute under load, checking `/ready` says what fails; how many events
/// were acknowledged meanwhile.
async fn through_the_outage(server: &Server, tally: &Tally) -> usize {
    let started = Instant::now();
    let acked_before = tally.acked().len();
    let mut reported = None;
    while started.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ready = server
            .http
            .get(server.url("/ready"))
            .send()
            .await
            .expect("/ready answers during the outage");
        let status = ready.status().as_u16();
        let body: Value = ready.json().await.expect("json");
        // The latest report: the first can come before the first retry.
        if status == 503 && body["checks"]["processor.store"].is_string() {
            reported = Some(body);
        }
    }
    let reported = reported.expect("/ready reported the store failing during the outage");
    assert!(
        reported["processor"]["store"]["attempts"].as_u64() > Some(1),
        "retried: {reported}"
    );
    assert!(
        tally.acked().len() > acked_before + 20_000,
        "ingest kept acknowledging during the outage: {} then {}",
        acked_before,
        tally.acked().len()
    );
    tally.acked().len() - acked_before
}

async fn recovered(
    server: &Server,
    tally: &Tally,
    producers: Vec<tokio::task::JoinHandle<()>>,
    acked_during_outage: usize,
) {
    load::finish(producers, tally, Duration::from_secs(240)).await;
    let acked = tally.acked().len();
    let since = Instant::now();
    let indexed = drained(server, acked, Duration::from_secs(180)).await;
    assert_exactly_once(&indexed, tally);
    println!(
        "{} events acknowledged and indexed once, {acked_during_outage} of them during the \
         outage; drained {:?} after the producers",
        acked,
        since.elapsed()
    );
    let ready: Value = server.get_json("/ready").await;
    assert_eq!(
        ready["status"], "ready",
        "recovered without a restart: {ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_cut_off_for_a_minute_loses_nothing() {
    let upstream = std::env::var("TEST_ELASTICSEARCH_URL")
        .expect("TEST_ELASTICSEARCH_URL: run the suite through scripts/test.sh");
    let address = upstream
        .trim_start_matches("http://")
        .parse()
        .expect("host:port");
    let relay = Relay::start(address).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("http://{}", relay.address);
    let prefix = format!("outage-{}-{}", std::process::id(), sluice_event::now_ms());
    let env = [
        ("SLUICE_STORE__URL", store.as_str()),
        ("SLUICE_STORE__ELASTICSEARCH__INDEX_PREFIX", prefix.as_str()),
        ("SLUICE_PROCESSOR__RETRY_MAX_MS", "2000"),
    ];
    let server = Server::start(&dir.path().join("data"), None, &env);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let (tally, producers) = load::start(target, shape(), "es-outage");
    tokio::time::sleep(Duration::from_secs(3)).await;
    relay.cut();
    let during = through_the_outage(&server, &tally).await;
    relay.restore();
    recovered(&server, &tally, producers, during).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_disk_failing_for_a_minute_loses_nothing() {
    let disk = CrashDisk::mount();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("tantivy://{}", disk.path().join("index").display());
    let env = [
        ("SLUICE_STORE__URL", store.as_str()),
        ("SLUICE_PROCESSOR__RETRY_MAX_MS", "2000"),
    ];
    let server = Server::start(&dir.path().join("data"), None, &env);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let (tally, producers) = load::start(target, shape(), "index-outage");
    tokio::time::sleep(Duration::from_secs(3)).await;
    disk.fail_writes(true);
    let during = through_the_outage(&server, &tally).await;
    disk.fail_writes(false);
    recovered(&server, &tally, producers, during).await;
}
