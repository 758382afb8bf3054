//! 64 producers each sending one large body at the same moment, against a server whose
//! in-flight limit is far below their sum: the server's peak memory stays near that limit, the
//! producers that are turned away (503 `ingest_busy`, `Retry-After`) send again, and every
//! acknowledged event is indexed once. (The full-size target, 200 concurrent 20 MB bodies under
//! 1 GiB with the defaults, is a benchmark: docs/benchmarks.md.)

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::load::{self, Shape};
use super::{assert_exactly_once, drained};
use crate::support::{Server, memory};

const MIB: u64 = 1024 * 1024;

/// The most anonymous memory (heap, not the index files the kernel maps and can drop) the
/// process held while `sampling` was on, read every 20 ms.
fn sample_anonymous(
    pid: u32,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let on = std::sync::Arc::clone(&sampling);
    let sampler = std::thread::spawn(move || {
        let mut most = 0;
        while on.load(std::sync::atomic::Ordering::SeqCst) {
            most = most.max(memory(pid, "RssAnon"));
            std::thread::sleep(Duration::from_millis(20));
        }
        most
    });
    (sampling, sampler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_large_bodies_keep_memory_bounded_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let in_flight = (32 * MIB).to_string();
    let env = [
        ("SLUICE_INGEST__MAX_IN_FLIGHT_BYTES", in_flight.as_str()),
        ("SLUICE_INGEST__ADMISSION_WAIT_MS", "500"),
    ];
    let server = Server::start(&dir.path().join("data"), None, &env);
    let pid = server.pid().expect("running");
    let idle = memory(pid, "RssAnon");
    let (sampling, sampler) = sample_anonymous(pid);
    // 64 bodies of about 11 MB (2,000 events of 5.7 KB): 740 MB at once, 23 times the limit.
    let shape = Shape {
        producers: 64,
        batches: 1,
        batch: 2_000,
        pause: Duration::ZERO,
        filler: 5_600,
    };
    let target = Arc::new(RwLock::new(load::target(&server)));
    let (tally, producers) = load::start(target, shape, "wide");
    load::finish(producers, &tally, Duration::from_secs(300)).await;
    let acked = tally.acked().len();
    let total = server.total(serde_json::json!({"size": 0})).await;
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().expect("sampler");
    println!(
        "peak anonymous memory {} MB (idle {} MB, VmHWM {} MB) with 32 MB in flight allowed, \
         {total} of {acked} indexed by then; answers {:?}",
        peak / MIB,
        idle / MIB,
        memory(pid, "VmHWM") / MIB,
        tally.answers.lock().expect("lock")
    );
    // The bodies (740 MB) never all sit in memory. What does: about twice what the limit lets
    // in (a body and the records split from it), and some 180 MB the processor holds at full
    // speed (its 16 MiB batches as records and documents, tantivy's 64 MiB indexing buffer).
    assert!(
        peak < idle + 360 * MIB,
        "peak anonymous memory {} MB over an idle {} MB",
        peak / MIB,
        idle / MIB
    );
    assert!(
        tally.answered("503") > 0,
        "the limit turned some away: {:?}",
        tally.answers.lock().expect("lock")
    );
    {
        let refusals = tally.refusals.lock().expect("lock");
        let (retry_after, answer) = refusals.get(&503).expect("a 503");
        assert_eq!(answer["error"]["code"], "ingest_busy", "{answer}");
        assert!(retry_after.is_some(), "Retry-After on a 503");
    }
    assert_eq!(tally.answered("no answer"), 0, "every request was answered");
    let indexed = drained(&server, acked, Duration::from_secs(180)).await;
    assert_exactly_once(&indexed, &tally);
}
