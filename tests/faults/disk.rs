//! A real ext4 volume filling up under producers, then freed by deleting a ballast file:
//! requests get 507 with the path and free space while the disk is full (never a dropped
//! connection), the pipeline resumes on its own once space is back, and every acknowledged
//! event is indexed once, also after a restart. Rollups that cannot be written leave the
//! dashboards right and are built once there is room.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::load::{self, Shape, Tally};
use super::loopdisk::LoopDisk;
use super::{assert_exactly_once, drained};
use crate::support::{Server, count_by_type, generate};

const MIB: u64 = 1024 * 1024;

fn shape(batches: usize) -> Shape {
    Shape {
        producers: 2,
        batches,
        batch: 200,
        pause: Duration::from_millis(10),
        filler: 400,
    }
}

/// What was seen while the disk filled.
struct Filled {
    /// `/ready`'s checks whenever it was not ready.
    not_ready: Vec<String>,
    /// The least free space seen.
    least_free: u64,
}

/// Runs the producers until the disk has turned them away for a while, then frees it. With a
/// `floor`, the disk is then taken below it (ingest refuses a request that would cross the
/// floor, so the disk itself may stay just above it) and `/ready` watched until it says so.
async fn fill_and_free(
    server: &Server,
    disk: &LoopDisk,
    ballast: std::path::PathBuf,
    tally: &Tally,
    floor: Option<u64>,
) -> Filled {
    let started = Instant::now();
    let mut seen_not_ready = Vec::new();
    let mut least_free = u64::MAX;
    while tally.answered("507") < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the disk did not fill: {:?}, {} bytes free",
            tally.answers.lock().expect("lock"),
            disk.free_bytes()
        );
        least_free = least_free.min(disk.free_bytes());
        let ready: Value = server.get_json("/ready").await;
        if ready["status"] != "ready" {
            seen_not_ready.push(ready["checks"].to_string());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(floor) = floor {
        let below = disk.fill_leaving(floor / 2);
        let watched = Instant::now();
        while !seen_not_ready
            .iter()
            .any(|checks| checks.contains("storage.min_free_bytes"))
            && watched.elapsed() < Duration::from_secs(10)
        {
            let ready: Value = server.get_json("/ready").await;
            if ready["status"] != "ready" {
                seen_not_ready.push(ready["checks"].to_string());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        std::fs::remove_file(&below).expect("free the second ballast");
    }
    std::fs::remove_file(&ballast).expect("free the ballast");
    Filled {
        not_ready: seen_not_ready,
        least_free,
    }
}

fn assert_clean_507(tally: &Tally) {
    let refusals = tally.refusals.lock().expect("lock");
    let (retry_after, answer) = refusals.get(&507).expect("a 507 answer");
    assert_eq!(answer["error"]["code"], "insufficient_storage", "{answer}");
    assert!(answer["error"]["path"].is_string(), "{answer}");
    assert!(answer["error"]["free_bytes"].is_u64(), "{answer}");
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "Retry-After on a 507: {retry_after:?}"
    );
    assert_eq!(
        tally.answered("no answer"),
        0,
        "every request got an answer, none a dropped connection"
    );
}

/// With the free-space floor on, ingest stops at the floor, before the disk is full, so the
/// store keeps room to commit and merge.
///
/// The floor is what the index may still need after ingest stops: the backlog's documents
/// before the WAL segments they came from are deleted, and a merge's new segment before the
/// merged ones go. So it is set above all the ingest room the test leaves (64 MiB free less the
/// floor): with a floor of 24 MiB and 32 MiB of room, draining the index took the disk 10 MiB
/// below the floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_disk_is_turned_away_at_the_floor_and_resumes_when_freed() {
    let disk = LoopDisk::mount(200);
    let data = disk.path().join("data");
    let floor_bytes = 40 * MIB;
    let floor = floor_bytes.to_string();
    let env = [
        ("SLUICE_STORAGE__MIN_FREE_BYTES", floor.as_str()),
        ("SLUICE_QUEUE__WAL__SEGMENT_BYTES", "4194304"),
    ];
    let mut server = Server::start(&data, None, &env);
    let ballast = disk.fill_leaving(64 * MIB);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let (tally, producers) = load::start(Arc::clone(&target), shape(400), "floor");
    let filled = fill_and_free(&server, &disk, ballast, &tally, Some(floor_bytes)).await;
    assert!(
        filled
            .not_ready
            .iter()
            .any(|checks| checks.contains("storage.min_free_bytes")),
        "/ready said the disk is below the floor: {:?}",
        filled.not_ready
    );
    // The floor less what requests admitted just above it wrote, and what the index took to
    // drain the backlog.
    assert!(
        filled.least_free > 16 * MIB,
        "the floor kept the disk from filling: {} bytes were left",
        filled.least_free
    );
    load::finish(producers, &tally, Duration::from_secs(180)).await;
    assert_clean_507(&tally);
    let acked = tally.acked().len();
    let indexed = drained(&server, acked, Duration::from_secs(120)).await;
    assert_exactly_once(&indexed, &tally);
    println!(
        "floor {floor} bytes: {acked} events acknowledged and indexed once; least free {} \
         bytes; answers {:?}",
        filled.least_free,
        tally.answers.lock().expect("lock")
    );

    // Nothing acknowledged was only in memory: a clean restart finds the same.
    assert!(server.stop().success());
    let server = Server::start(&data, None, &env);
    assert_exactly_once(&super::indexed_ids(&server).await, &tally);
}

/// With no floor, the disk fills to its last byte: queue appends and index commits fail with
/// ENOSPC. Nothing acknowledged is lost, the pipeline comes back without a restart once space
/// is freed, and a `kill -9` afterwards loses nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_full_to_the_last_byte_loses_nothing_acknowledged() {
    let disk = LoopDisk::mount(200);
    let data = disk.path().join("data");
    let env = [
        ("SLUICE_STORAGE__MIN_FREE_BYTES", "0"),
        ("SLUICE_QUEUE__WAL__SEGMENT_BYTES", "4194304"),
        ("SLUICE_PROCESSOR__RETRY_MAX_MS", "1000"),
    ];
    let mut server = Server::start(&data, None, &env);
    let ballast = disk.fill_leaving(16 * MIB);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let (tally, producers) = load::start(Arc::clone(&target), shape(400), "full");
    let filled = fill_and_free(&server, &disk, ballast, &tally, None).await;
    load::finish(producers, &tally, Duration::from_secs(180)).await;
    assert_clean_507(&tally);
    let acked = tally.acked().len();
    let indexed = drained(&server, acked, Duration::from_secs(120)).await;
    assert_exactly_once(&indexed, &tally);
    println!(
        "no floor: {acked} events acknowledged and indexed once; least free {} bytes; {} \
         /ready answers not ready, the first {}; answers {:?}",
        filled.least_free,
        filled.not_ready.len(),
        filled.not_ready.first().map_or("none", String::as_str),
        tally.answers.lock().expect("lock")
    );
    let ready: Value = server.get_json("/ready").await;
    assert_eq!(
        ready["status"], "ready",
        "recovered without a restart: {ready}"
    );

    server.kill9();
    let server = Server::start(&data, None, &env);
    let indexed = drained(&server, acked, Duration::from_secs(60)).await;
    assert_exactly_once(&indexed, &tally);
}

/// The rollups' own writes failing on a full disk (a small volume mounted where the index keeps
/// them): each failed pass is counted, dashboards stay right meanwhile (the segments are read
/// as events), and once space is freed the next commit rolls every segment up, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_that_cannot_be_written_leave_dashboards_right_and_are_built_once_freed() {
    let disk = LoopDisk::mount(8);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let index = data.join("index");
    std::fs::create_dir_all(&index).expect("index directory");
    std::os::unix::fs::symlink(disk.path(), index.join("rollups")).expect("rollups on the volume");
    let ballast = disk.fill_leaving(0);
    let server = Server::start(&data, None, &[("SLUICE_CACHE__ANSWER_TTL_SECS", "0")]);

    let mut events = generate(31, 2_000, 1, 70);
    ingest(&server, &events).await;
    let failed = "sluice_store_rollup_failures_total";
    wait_for_metric(&server, failed, "rollup writes failing on the full volume").await;
    assert_eq!(
        server.metric("sluice_store_rollups_built_total", "").await,
        0.0
    );
    assert_dashboard_counts(&server, &events).await;

    std::fs::remove_file(&ballast).expect("ballast removed");
    let failures = server.metric(failed, "").await;
    // The next commit wakes the rollup thread.
    let more = generate(32, 200, 1, 70);
    ingest(&server, &more).await;
    events.extend(more);
    let built = "sluice_store_rollups_built_total";
    wait_for_metric(&server, built, "rollups built once the volume had room").await;
    let written: Vec<u64> = std::fs::read_dir(disk.path())
        .expect("rollups listed")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .collect();
    assert!(written.iter().any(|&bytes| bytes > 0), "{written:?}");
    assert_dashboard_counts(&server, &events).await;
    assert_eq!(
        server.metric(failed, "").await,
        failures,
        "no pass failed once there was room"
    );
    let ready: Value = server.get_json("/ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

async fn ingest(server: &Server, events: &[Value]) {
    let before = server.total(json!({"size": 0})).await;
    for batch in events.chunks(500) {
        let (status, answer) = server.post_ndjson("/api/logs/ingest", batch).await;
        assert_eq!(status, 202, "{answer}");
    }
    let expected = before + events.len() as u64;
    server
        .wait_for_total(json!({"size": 0}), expected, Duration::from_secs(60))
        .await;
}

async fn wait_for_metric(server: &Server, name: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.metric(name, "").await == 0.0 {
        assert!(Instant::now() < deadline, "{what}: {name} stayed 0");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The dashboard over the last week counts every event, by type.
async fn assert_dashboard_counts(server: &Server, events: &[Value]) {
    let now = sluice_event::now_ms();
    let week = format!("from={}&to={now}", now - 7 * 86_400_000);
    let overview = server
        .get_json(&format!("/api/dashboard/overview?{week}"))
        .await;
    let expected = count_by_type(events);
    assert_eq!(overview["stats"]["events"], events.len(), "{overview}");
    assert_eq!(overview["stats"]["transactions"], expected["transaction"]);
    assert_eq!(overview["stats"]["errors"], expected["error"]);
}
